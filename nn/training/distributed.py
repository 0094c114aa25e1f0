"""Data-parallel training over MPI: each global batch split across ranks, ∇θ summed.

``fit(..., comm=MPI.COMM_WORLD)`` runs the same training on every rank of an mpi4py
communicator. Every rank holds the same X and y; each global batch of ``batch_size`` rows (the
rows one process would take, in the same order) is cut into ``size`` contiguous parts and rank
``r`` reads and computes part ``r`` only. Everything that couples the rows of a batch is
computed over the global batch:

- the loss: each rank's ``(L_r·d_r, d_r)`` is summed, giving ``L = Σ L_r·d_r / Σ d_r`` and a
  local ∂L/∂pred scaled by ``d_r / Σ d_r`` (the denominator of the whole batch);
- ∇θ: one in-place ``Allreduce`` (sum) of the contiguous gradient vector after backward;
- BatchNorm1d: the per-feature sums of forward and backward are summed across ranks (as
  PyTorch's SyncBatchNorm), so running statistics are equal everywhere;
- Dropout: every rank draws the mask of the global batch from the shared ``model.rng`` and
  uses its own rows of it;
- metrics and validation: each rank accumulates its share, the running totals are summed.

So N ranks compute what one process computes, up to the order of floating-point sums, and θ
stays identical on every rank. Launch with ``mpiexec -n 4 python -m mpi4py train.py``:
``-m mpi4py`` makes an uncaught exception on any rank abort the whole job.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from nn.container import layers_within

__all__ = [
    "RankError",
    "allreduce_gradients",
    "broadcast_parameters",
    "world_from_environment",
]


class RankError(RuntimeError):
    """Raised on the other ranks when one rank fails where ``fit`` agrees on errors."""


def _mpi():
    """The ``mpi4py.MPI`` module (an optional dependency: ``pip install 'chainrule[mpi]'``)."""
    try:
        from mpi4py import MPI  # optional dependency, needed only for comm=
    except ImportError as error:
        raise ImportError(
            "Data-parallel training needs mpi4py and an MPI library: pip install 'chainrule[mpi]'"
        ) from error
    return MPI


def check_comm(comm):
    """``comm`` as an ``mpi4py.MPI.Comm``, or TypeError naming the argument."""
    MPI = _mpi()
    if not isinstance(comm, MPI.Comm) or comm == MPI.COMM_NULL:
        raise TypeError(
            "Received an invalid value for `comm`, expected an mpi4py communicator such as "
            f"MPI.COMM_WORLD, or None. Received: comm={comm!r} of type {type(comm).__name__}"
        )
    return comm


def world_from_environment():
    """``MPI.COMM_WORLD`` when this process was started by mpiexec with several ranks, else None.

    Reads the launcher's environment (MPICH/Hydra and Slurm's ``PMI_SIZE``, Open MPI's
    ``OMPI_COMM_WORLD_SIZE``), so a plain single-process run never imports mpi4py.
    """
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "1").strip() not in ("", "0", "1"):
            return _mpi().COMM_WORLD
    return None


# -- helpers for loops written by hand ---------------------------------------------------------


def allreduce_gradients(model, comm, *, average: bool = False) -> None:
    """Sum ∇θ (``model.theta_grad``) over the ranks of ``comm``, in place: one Allreduce.

    Parameters
    ----------
    model : Sequential
    comm : mpi4py.MPI.Comm
    average : bool, default False
        Divide the sum by the number of ranks (for losses averaged over each rank's rows when
        every rank holds the same number of rows).
    """
    MPI = _mpi()
    grad = model.theta_grad
    check_comm(comm).Allreduce(MPI.IN_PLACE, grad, op=MPI.SUM)
    if average:
        grad *= 1 / comm.Get_size()


def broadcast_parameters(model, comm, root: int = 0) -> None:
    """Copy θ and the layer buffers (e.g. running statistics) of rank ``root`` to every rank."""
    check_comm(comm).Bcast(model.theta, root=root)
    for layer in model.layers:
        for part in layers_within(layer):
            for array in part.buffers().values():
                comm.Bcast(array, root=root)


# -- what fit uses -----------------------------------------------------------------------------


class Shard:
    """This rank's rows ``[start, stop)`` of the current global batch of ``total`` rows.

    :class:`nn.training.batches.Batches` sets them batch by batch; Dropout and BatchNorm1d
    read them (and :meth:`allreduce`) while attached to a data-parallel ``fit``.
    """

    def __init__(self, comm) -> None:
        MPI = _mpi()
        self.comm, self._in_place, self._sum = comm, MPI.IN_PLACE, MPI.SUM
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.start = self.stop = self.total = 0

    def split(self, total: int) -> tuple[int, int]:
        """Take a global batch of ``total`` rows; return this rank's ``(start, stop)`` in it."""
        self.total = total
        self.start = self.rank * total // self.size
        self.stop = (self.rank + 1) * total // self.size
        return self.start, self.stop

    def largest(self, total: int) -> int:
        """The most rows any rank gets from a batch of ``total`` rows."""
        return -(-total // self.size)

    def allreduce(self, array: np.ndarray) -> np.ndarray:
        """Sum a contiguous ``array`` over the ranks, in place; returns it."""
        self.comm.Allreduce(self._in_place, array, op=self._sum)
        return array


class GlobalLoss:
    """A loss whose value and denominator are those of the global batch.

    ``forward`` sums ``(L_r·d_r, d_r)`` over the ranks (``L_r`` for ``reduction="sum"``) and
    returns ``L = Σ L_r·d_r / Σ d_r``; ``backward`` returns the local ∂L_r/∂pred times
    ``d_r / Σ d_r``, so that the summed ∇θ is the gradient of ``L``. A rank with no rows (a
    last batch smaller than the number of ranks) or no weight adds nothing.
    """

    def __init__(self, loss, shard: Shard) -> None:
        self.loss, self.shard = loss, shard
        self.reduction = getattr(loss, "reduction", "mean")
        self._sums = np.empty(2)
        self._factor = 0.0
        self._pred: np.ndarray | None = None

    def forward(self, pred: np.ndarray, target: np.ndarray, *weights) -> float:
        """``L`` of the global batch (the same on every rank)."""
        loss, sums = self.loss, self._sums
        self._pred = pred
        if len(pred) == 0:
            sums[:] = 0.0
        else:
            value = loss.forward(pred, target, *weights)
            if self.reduction == "sum":
                sums[:] = value, 0.0
            else:
                d = loss.denominator()
                d = len(pred) if d is None else d
                sums[:] = (value * d, d) if d != 0 else (0.0, 0.0)
        local_d = sums[1]
        self.shard.allreduce(sums)
        if self.reduction == "sum":
            self._factor = 1.0 if len(pred) else 0.0
            return float(sums[0])
        self._factor = local_d / sums[1] if local_d else 0.0
        return float(sums[0] / sums[1]) if sums[1] else float("nan")

    def denominator(self) -> float:
        """``Σ d_r``: the denominator of the global batch (1 for sums)."""
        return 1.0 if self.reduction == "sum" else float(self._sums[1])

    def backward(self) -> np.ndarray:
        """This rank's share of ∂L/∂pred, shape of pred."""
        if self._factor == 0.0:
            return np.zeros_like(self._pred)
        grad = self.loss.backward()
        if self._factor != 1.0:
            grad *= self._factor
        return grad


class DataParallel:
    """The data-parallel side of one ``fit`` call on communicator ``comm``."""

    def __init__(self, comm, model) -> None:
        self.comm, self.model = check_comm(comm), model
        self.shard = Shard(comm)
        self.rank, self.size = self.shard.rank, self.shard.size
        self.synced = [
            part for layer in model.layers for part in layers_within(layer) if part.couples_rows
        ]

    def start(self) -> None:
        """Broadcast θ, the layer buffers and ``model.rng`` from rank 0; attach the shard."""
        broadcast_parameters(self.model, self.comm, root=0)
        rng = self.model.rng.bit_generator
        rng.state = self.comm.bcast(rng.state, root=0)
        for layer in self.synced:
            layer.shard = self.shard

    def close(self) -> None:
        """Detach the shard from the layers (the model trains on one process again)."""
        for layer in self.synced:
            layer.shard = None

    def loss(self, loss) -> GlobalLoss:
        return GlobalLoss(loss, self.shard)

    def backward(self, grad: np.ndarray) -> None:
        """Backward on this rank's rows, then ∇θ summed over the ranks (one Allreduce)."""
        self.model.backward(grad)
        self.shard.allreduce(self.model.theta_grad)

    def sum_gradient(self) -> None:
        self.shard.allreduce(self.model.theta_grad)

    def share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` rows (validation)."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def reduce(self, set_loss, metrics) -> None:
        """Sum a SetLoss's running totals and the metrics' totals over the ranks, in place."""
        values = [set_loss.total, set_loss.weight] if set_loss is not None else []
        for m in metrics:
            values += [m._total, m._count]
        sums = self.shard.allreduce(np.array(values, dtype=np.float64))
        if set_loss is not None:
            set_loss.total, set_loss.weight = float(sums[0]), float(sums[1])
        for i, m in enumerate(metrics, start=len(sums) - 2 * len(metrics)):
            m._total, m._count = float(sums[i]), float(sums[i + 1])

    def active(self, callbacks: list) -> list:
        """The callbacks this rank runs: all on rank 0; the others skip those that write files."""
        if self.rank == 0:
            return callbacks
        return [cb for cb in callbacks if not cb.rank_zero_only]

    @contextlib.contextmanager
    def agreement(self, what: str):
        """Run a block on every rank, then agree: if it raised anywhere, it raises everywhere.

        The rank that failed re-raises its own error; the others raise :class:`RankError`
        naming that rank and its error. One ``allgather`` of a short message per block.
        """
        try:
            yield
        except BaseException as error:
            self._agree(what, f"{type(error).__name__}: {error}")
            raise
        self._agree(what, None)

    def _agree(self, what: str, message: str | None) -> None:
        failures = [(rank, text) for rank, text in enumerate(self.comm.allgather(message)) if text]
        if failures and message is None:
            rank, text = failures[0]
            raise RankError(f"rank {rank} of {self.size} failed {what}: {text}")
