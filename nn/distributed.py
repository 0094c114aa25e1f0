"""Data-parallel training over MPI, for loops written by hand.

``fit(..., comm=MPI.COMM_WORLD)`` does all of this itself (see :mod:`nn.training.distributed`);
a loop of one's own broadcasts θ once, then all-reduces ∇θ after every backward::

    broadcast_parameters(model, comm)
    for xb, yb in my_batches:      # this rank's rows of each global batch
        ...forward, loss, backward...
        allreduce_gradients(model, comm, average=True)
        optimizer.step()
"""

from nn.training.distributed import (
    RankError,
    allreduce_gradients,
    broadcast_parameters,
    world_from_environment,
)

__all__ = ["RankError", "allreduce_gradients", "broadcast_parameters", "world_from_environment"]
