"""Scenarios of tests/test_distributed.py, run under mpiexec and, as the reference, in one process.

Under mpiexec (``python -m mpi4py tests/mpi_worker.py OUT_DIR SCENARIO...``) every rank runs the
scenarios with ``comm=MPI.COMM_WORLD``; rank 0 writes each scenario's results to
``OUT_DIR/<scenario>.npz`` together with whether θ came out bitwise the same on every rank.
The test imports the same functions and runs them with ``comm=None``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import losses
import nn
import optim
from nn.distributed import allreduce_gradients, broadcast_parameters


def data(n=103, n_features=5, n_classes=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, n_features))
    y = rng.integers(0, n_classes, size=n)
    w = rng.uniform(0.0, 2.0, size=n)
    return X, y, w


def model():
    return nn.Sequential(
        nn.Dense(5, 16, activation="relu"),
        nn.BatchNorm1d(16),
        nn.Dropout(0.3),
        nn.Dense(16, 3),
        seed=1,
        dtype=np.float64,
    )


def results(m, history, **extra):
    buffers = [a for layer in m.layers for a in layer.buffers().values()]
    return {
        "theta": m.theta.copy(),
        "buffers": np.concatenate([np.zeros(0), *buffers]),
        "history": json.dumps(history.history),
        **extra,
    }


def weighted(comm, out):
    """Dropout, BatchNorm1d, sample weights, clipping, a validation split, metrics.

    82 training rows in batches of 10: a last batch of 2 rows (3 ranks: 0, 1 and 1 rows).
    """
    X, y, w = data()
    m = model()
    if comm is not None and comm.rank > 0:
        m.theta += 1.0  # fit starts from rank 0's θ
    history = m.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.Adam(m.parameters(), lr=0.01),
        epochs=3,
        batch_size=10,
        seed=3,
        sample_weight=w,
        metrics=["accuracy"],
        validation_split=0.2,
        clip_grad_norm=1.0,
        progress=False,
        comm=comm,
    )
    return results(m, history)


def early_stopping(comm, out):
    """Class weights, validation data with weights, early stopping on val_loss."""
    X, y, w = data()
    m = model()
    stop = nn.EarlyStopping("val_loss", patience=1, restore_best_weights=True)
    history = m.fit(
        X[:80],
        y[:80],
        loss=losses.CrossEntropy(weight=[1.0, 0.5, 2.0]),
        optimizer=optim.SGD(m.parameters(), lr=0.5, momentum=0.9),
        epochs=30,
        batch_size=16,
        seed=5,
        validation_data=(X[80:], y[80:], w[80:]),
        metrics=["accuracy"],
        callbacks=[stop],
        progress=False,
        comm=comm,
    )
    return results(m, history, stopped=len(history.history["loss"]))


def full_batch(comm, out):
    """L-BFGS on the whole set, batch by batch (batches of 25 rows, the last of 3)."""
    X, y, _ = data()
    m = nn.Sequential(nn.Dense(5, 8, activation="tanh"), nn.Dense(8, 3), seed=2, dtype=np.float64)
    history = m.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.LBFGS(m.parameters(), max_iter=10),
        epochs=2,
        batch_size=25,
        progress=False,
        comm=comm,
    )
    return results(m, history)


def diverges(comm, out):
    """A learning rate that blows up: the same TrainingDivergedError on every rank."""
    X, y, _ = data()
    m = nn.Sequential(nn.Dense(5, 8, activation="relu"), nn.Dense(8, 1), seed=2, dtype=np.float64)
    try:
        m.fit(
            X,
            y.astype(np.float64) * 1e3,
            loss="mse",
            optimizer=optim.SGD(m.parameters(), lr=10.0),
            epochs=5,
            batch_size=8,
            seed=0,
            progress=False,
            comm=comm,
        )
    except nn.TrainingDivergedError as error:
        where = [error.epoch, error.batch or 0, error.step]
        return {"where": np.array(where), "quantity": error.quantity, "theta": m.theta.copy()}
    raise AssertionError("training did not diverge")


class FailOnRank(nn.Callback):
    """Raises OSError at the end of epoch 2 on rank ``rank`` only."""

    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def on_epoch_end(self, epoch, logs):
        if epoch == 1 and self.rank == _rank():
            raise OSError(f"disk full on rank {self.rank}")


def fails_on_one_rank(comm, out):
    """A callback failing on the last rank: every rank raises, none hangs."""
    X, y, _ = data()
    m = model()
    try:
        m.fit(
            X,
            y,
            loss="cross_entropy",
            optimizer="sgd",
            epochs=4,
            batch_size=16,
            callbacks=[FailOnRank(comm.Get_size() - 1)],
            progress=False,
            comm=comm,
        )
    except Exception as error:  # the failing rank's own error, RankError on the others
        return {"error": f"{type(error).__name__}: {error}", "theta": m.theta.copy()}
    raise AssertionError("no error")


def checkpoint_resume(comm, out):
    """2 epochs with checkpoint= (rank 0 writes it), then resume up to 4 on a new model."""
    X, y, w = data()
    path = Path(out) / "ckpt.npz"
    m = model()
    opt = optim.Adam(m.parameters(), lr=0.01)
    kwargs = {"loss": "cross_entropy", "batch_size": 10, "sample_weight": w, "comm": comm}
    m.fit(X, y, optimizer=opt, epochs=2, seed=4, checkpoint=path, progress=False, **kwargs)
    if comm is not None:
        comm.Barrier()
    resumed = model()
    opt = optim.Adam(resumed.parameters(), lr=0.01)
    history = resumed.fit(X, y, optimizer=opt, epochs=4, resume_from=path, progress=True, **kwargs)
    return results(resumed, history)


def by_hand(comm, out):
    """A loop written by hand: each rank's rows with reduction="sum", the helpers sum ∇θ."""
    X, y, _ = data(n=60)
    m = nn.Sequential(nn.Dense(5, 8, activation="tanh"), nn.Dense(8, 3), seed=None)
    m = m.copy(dtype=np.float64)
    loss = losses.CrossEntropy(reduction="sum")
    if comm is not None:
        broadcast_parameters(m, comm, root=0)  # seed=None: ranks start apart
        rows = slice(comm.rank * 60 // comm.size, (comm.rank + 1) * 60 // comm.size)
    else:
        theta = np.load(Path(out) / "by_hand_start.npy")
        m.theta[...] = theta
        rows = slice(0, 60)
    start = m.theta.copy()
    opt = optim.SGD(m.parameters(), lr=0.01)
    for _ in range(5):
        m.zero_grad()
        loss.forward(m.forward(X[rows]), y[rows])
        m.backward(loss.backward())
        if comm is not None:
            allreduce_gradients(m, comm)
        opt.step()
    return {"theta": m.theta.copy(), "start": start}


SCENARIOS = {
    f.__name__: f
    for f in (
        weighted,
        early_stopping,
        full_batch,
        diverges,
        fails_on_one_rank,
        checkpoint_resume,
        by_hand,
    )
}


def _rank():
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank()


def main(out, names):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    for name in names:
        result = SCENARIOS[name](comm, out)
        thetas = comm.allgather(result["theta"])
        errors = comm.allgather(result.get("error", ""))
        if comm.rank == 0:
            same = all(np.array_equal(t, thetas[0]) for t in thetas)
            np.savez(Path(out) / f"{name}.npz", same=same, errors=np.array(errors), **result)
            if name == "by_hand":
                np.save(Path(out) / "by_hand_start.npy", result["start"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
