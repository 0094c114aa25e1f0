"""The training loop: fit, evaluate and the History they return.

``fit`` draws mini-batches into buffers it owns (so ``X`` may be memory-mapped and larger
than memory), runs forward, the loss and backward, checks that the loss, the gradient and the
new weights are finite, optionally clips ∇θ, and lets the optimizer update θ. At the end of
each epoch it validates, records the epoch's values in :class:`History`, runs the callbacks
(learning-rate schedules, early stopping, checkpoints) and, with ``checkpoint=``, writes a
training checkpoint from which ``resume_from=`` continues bitwise exactly.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from nn.checks import (
    check_array,
    check_positive_int,
    check_same_length,
    check_sample_weight,
)
from nn.training.arguments import (
    FitArguments,
    check_fit_arguments,
    check_targets,
    resolve_loss,
    resolve_metrics,
)
from nn.training.batches import Batches, SetLoss
from nn.training.checkpoint import restore_checkpoint
from nn.training.distributed import DataParallel
from nn.training.history import History
from nn.training.metrics import Metric
from nn.training.threads import BlasThreads
from nn.training.trainer import Trainer


def fit(
    model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss,
    optimizer,
    epochs: int,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | None = None,
    validation_data: tuple | None = None,
    validation_split: float = 0.0,
    metrics: Sequence[str | Metric] = (),
    callbacks: Sequence = (),
    progress: bool | None = None,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    sample_weight: np.ndarray | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume_from: str | os.PathLike | None = None,
    comm=None,
) -> History:
    """Train ``model`` by mini-batch gradient descent and return the per-epoch History.

    Parameters
    ----------
    model : Sequential
    X : array_like, shape (n_samples, n_features)
        May be a ``np.memmap`` (or ``np.load(..., mmap_mode="r")``) larger than memory:
        batches are gathered into a reused buffer and cast to the model's dtype.
    y : array_like, shape (n_samples,) or (n_samples, n_outputs)
        Class labels ``(N,)`` for CrossEntropy (checked against the number of outputs up
        front); any other loss compares with the output, a 1-D y as one column.
    loss : Loss or str
    optimizer : Optimizer or str
        Built on ``model.parameters()``. A full-batch optimizer (:class:`optim.LBFGS`) is
        called once per epoch on the whole training set.
    epochs : int
        The epoch to train up to; a resumed run continues from the checkpoint's epoch.
    batch_size : int, default 32
        The last batch of an epoch holds the remaining samples.
    shuffle : bool, default True
        A new permutation each epoch, drawn from ``model.rng``.
    seed : int, optional
        Re-seed ``model.rng`` (shuffling, dropout masks) first: same seed, same data and
        same initial model give bitwise the same θ and history.
    validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
    validation_split : float, default 0
        Hold out the last fraction of the samples (before shuffling) for validation.
    metrics : sequence of str or Metric
        ``"accuracy"``, ``"mae"``, ``"mse"``; logged per epoch (running over the epoch's
        batches), and with a ``val_`` prefix when validating.
    callbacks : sequence of Callback or learning-rate schedule
        Schedules are wrapped in :class:`~nn.LearningRateScheduler` (stepped once per epoch;
        ``ReduceLROnPlateau`` gets ``val_loss``, or ``loss`` without validation).
    progress : bool or None
        ``None``: a tqdm bar per epoch on a terminal, plus one plain line per epoch on
        stderr (the only output when stderr is not a terminal); ``True``: the bar and the
        lines; ``False``: silent.
    clip_grad_norm : float, optional
        Before each step, ∇θ ← ∇θ · c / (‖∇θ‖ + 1e-6) when ‖∇θ‖ > c, as
        :func:`optim.clip_grad_norm`.
    clip_grad_value : float, optional
        Before each step, clip every component of ∇θ into [−c, c], as
        :func:`optim.clip_grad_value`. Give at most one of the two clipping arguments.
    sample_weight : array_like, shape (n_samples,), optional
        Non-negative finite weights, passed per batch as
        ``loss.forward(pred, target, sample_weight=...)``: with ``reduction="mean"`` each
        sample's loss is multiplied by its weight and the denominator stays the unweighted
        one (Keras's ``sum_over_batch_size``). Metrics are unweighted.
    checkpoint : path, optional
        Write a training checkpoint there (atomically) after every epoch: the model, the
        optimizer's state, the epoch, ``model.rng``'s state, the history and the callbacks'
        state (see :mod:`nn.checkpoint`).
    resume_from : path, optional
        A checkpoint to continue from: restores θ and the layers' buffers into ``model``,
        the optimizer's state into ``optimizer``, ``model.rng`` (``seed`` is then ignored),
        the history and the state of callbacks passed in the same order, then trains from
        the checkpoint's epoch up to ``epochs``. 2 epochs, save, resume to 4 gives bitwise
        the θ of 4 epochs in one run.
    comm : mpi4py.MPI.Comm, optional
        Train data-parallel on the ranks of ``comm`` (:mod:`nn.training.distributed`): every rank
        passes the same arguments and computes its part of each global batch; ∇θ is summed
        across ranks. θ, the buffers and ``model.rng`` are broadcast from rank 0 first; only
        rank 0 prints and writes checkpoints. Callbacks, resuming and the epoch's end are
        agreed on: an error there on one rank raises on every rank
        (:class:`nn.distributed.RankError` on the others).

    Returns
    -------
    History
        ``history.history["loss"]``, metrics, ``val_*`` and ``lr`` (the rate used during the
        epoch) per epoch.

    Raises
    ------
    TrainingDivergedError
        When the loss, the gradient or the updated weights stop being finite; θ keeps its
        last finite value (the optimizer's moments are not rolled back).
    """
    run = _Run(
        model,
        check_fit_arguments(
            model,
            X,
            y,
            loss=loss,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            validation_data=validation_data,
            validation_split=validation_split,
            metrics=metrics,
            callbacks=callbacks,
            progress=progress,
            clip_grad_norm=clip_grad_norm,
            clip_grad_value=clip_grad_value,
            sample_weight=sample_weight,
            checkpoint=checkpoint,
            resume_from=resume_from,
        ),
        None if comm is None else DataParallel(comm, model),
    )
    try:
        run.begin()
        for epoch in range(run.initial_epoch, run.args.epochs):
            run.epoch(epoch)
            if model.stop_training:
                break
    finally:
        run.close()
    run.end()
    return run.history


class _Run:
    """One call of ``fit``: the trainer, the callbacks and the History, epoch by epoch.

    With a ``sync`` (data-parallel over MPI), blocks that may fail on one rank only are
    agreed on (:mod:`nn.training.distributed`), each rank validates its share of the rows and
    rank 0 alone prints and saves.
    """

    def __init__(self, model, args: FitArguments, sync: DataParallel | None) -> None:
        self.model, self.args, self.sync = model, args, sync
        a = args
        shard = None if sync is None else sync.shard
        self.batches = Batches(a.X, a.y, a.sample_weight, a.batch_size, model.dtype, shard)
        step_loss = a.loss if sync is None else sync.loss(a.loss)
        self.trainer = Trainer(
            model, step_loss, a.optimizer, self.batches, a.metrics, a.clip, a.clip_value,
            a.callbacks, sync,
        )  # fmt: skip
        self.agreed = (lambda what: contextlib.nullcontext()) if sync is None else sync.agreement
        self.active = a.callbacks if sync is None else sync.active(a.callbacks)
        self.val = a.val
        if a.val is not None and sync is not None:
            share = sync.share(len(a.val[0]))
            self.val = tuple(None if v is None else v[share] for v in a.val)
        self.val_metrics = [copy.deepcopy(m) for m in a.metrics]
        self.history = History()
        self.show_lines = a.progress is not False and (sync is None or sync.rank == 0)
        self.show_bar = self.show_lines and (a.progress is True or sys.stderr.isatty())
        self.initial_epoch = 0
        self.was_training = model.training
        self.threads = None  # the BLAS thread policy, from begin() to close()

    def begin(self) -> None:
        """Callbacks begin; θ, the optimizer and callbacks resume; the model enters training."""
        model, a = self.model, self.args
        model.stop_training = False
        params = {
            "epochs": a.epochs,
            "batch_size": a.batch_size,
            "steps": len(self.batches),
            "optimizer": a.optimizer,
            "history": self.history,
            "callbacks": a.callbacks,
        }
        for cb in a.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        with self.agreed("in on_train_begin"):
            for cb in self.active:
                cb.on_train_begin({})
        if a.resume_from is not None:
            with self.agreed(f"to resume from {a.resume_from}"):
                restored = restore_checkpoint(a.resume_from, model, a.optimizer, a.callbacks)
            self.initial_epoch = restored.epoch
            self.history.history = restored.history.history
            self.history.epoch = restored.history.epoch
            if self.initial_epoch >= a.epochs:
                warnings.warn(
                    f"{a.resume_from} is at epoch {self.initial_epoch} already and "
                    f"epochs={a.epochs} is the epoch to train up to, so nothing was trained; "
                    "pass a larger `epochs`",
                    stacklevel=4,
                )
        elif a.seed is not None:
            model.rng.bit_generator.state = np.random.default_rng(a.seed).bit_generator.state
        model.train()
        if self.sync is not None:
            self.sync.start()
        self.threads = BlasThreads(model, a.batch_size)

    def epoch(self, epoch: int) -> None:
        """Train one epoch, validate, log, and run the callbacks' epoch end."""
        model, a, sync = self.model, self.args, self.sync
        with self.agreed("in on_epoch_begin"):
            for cb in self.active:
                cb.on_epoch_begin(epoch, {})
        for m in a.metrics:
            m.reset()
        # Overflow and NaN are checked explicitly (TrainingDivergedError), so numpy's
        # warnings would only repeat that, or flag harmless saturation (exp of -1000).
        with np.errstate(over="ignore", invalid="ignore"):
            if a.optimizer.full_batch:
                epoch_loss = self.trainer.full_batch_epoch(epoch)
                bar = None
            else:
                order = model.rng.permutation(len(a.X)) if a.shuffle else None
                show = self.show_bar
                bar = _progress_bar(epoch, a.epochs, len(self.batches)) if show else None
                epoch_loss = self.trainer.epoch(epoch, order, bar)
        if sync is not None:  # the metrics of every rank's rows
            sync.reduce(None, a.metrics)
        logs = {"loss": epoch_loss}
        logs.update({m.name: m.result() for m in a.metrics})
        if self.val is not None:
            reduce = None if sync is None else sync.reduce
            size = max(a.batch_size, 256)
            results = _evaluate_batches(model, *self.val, a.loss, self.val_metrics, size, reduce)
            logs.update({f"val_{k}": v for k, v in results.items()})
            model.train()
        logs["lr"] = float(a.optimizer.lr)
        with self.agreed(f"at the end of epoch {epoch + 1}"):
            _end_epoch_output(bar, logs, epoch, a.epochs, self.show_lines)
            self.history.record(epoch, logs)
            for cb in self.active:
                cb.on_epoch_end(epoch, logs)

    def close(self) -> None:
        """Put the model back in its mode and release the BLAS threads and the ranks."""
        self.model.train(self.was_training)
        if self.threads is not None:
            self.threads.close()
        if self.sync is not None:
            self.sync.close()

    def end(self) -> None:
        with self.agreed("in on_train_end"):
            for cb in self.active:
                cb.on_train_end(self.history.history)


def evaluate(
    model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss=None,
    metrics: Sequence[str | Metric] = (),
    batch_size: int = 1024,
    sample_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y), in evaluation mode, batch by batch.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
        May be memory-mapped; read and cast batch by batch.
    y : array_like, shape (n_samples,) or (n_samples, n_outputs)
    loss : Loss or str, optional
    metrics : sequence of str or Metric
    batch_size : int, default 1024
    sample_weight : array_like, shape (n_samples,), optional
        Weights of the loss (as in ``fit``); metrics are unweighted.

    Returns
    -------
    dict
        ``{"loss": ..., metric name: ...}`` (``loss`` only when a loss is given): the loss of
        the whole set, whatever ``batch_size`` (batch means weighted by their denominators,
        batch sums added up).
    """
    if loss is None and not metrics:
        raise ValueError(
            "evaluate needs loss= or metrics= (or both): a model keeps no loss of its own, "
            "e.g. model.evaluate(X, y, loss='cross_entropy', metrics=['accuracy'])"
        )
    loss = resolve_loss(loss) if loss is not None else None
    X = check_array("X", X, n_features=model.n_features, dtype=model.dtype)
    y = check_targets(y, loss, model)
    check_same_length("X", X, "y", y)
    if sample_weight is not None:
        sample_weight = check_sample_weight("sample_weight", sample_weight, len(X), model.dtype)
    batch_size = check_positive_int("batch_size", batch_size)
    metric_objs = resolve_metrics(metrics)
    was_training = model.training
    model.eval()
    threads = BlasThreads(model, min(batch_size, len(X)))
    try:
        return _evaluate_batches(model, X, y, sample_weight, loss, metric_objs, batch_size)
    finally:
        model.train(was_training)
        threads.close()


def _evaluate_batches(
    model, X, y, sw, loss, metric_objs, batch_size, reduce=None
) -> dict[str, float]:
    """``evaluate`` on checked inputs, in evaluation mode (the caller restores the mode).

    ``reduce(set_loss, metrics)``, when given, combines the running totals of the ranks of a
    data-parallel ``fit`` (each evaluated its share of the rows) before the results.
    """
    model.eval()
    for m in metric_objs:
        m.reset()
    set_loss = SetLoss(loss)
    for start in range(0, len(X), batch_size):
        stop = start + batch_size
        xb = np.asarray(X[start:stop], dtype=model.dtype)
        yb = np.asarray(y[start:stop])
        pred = model.forward(xb)
        if loss is not None:
            if sw is None:
                set_loss.add(loss.forward(pred, yb), len(xb))
            else:
                set_loss.add(loss.forward(pred, yb, sw[start:stop]), len(xb))
        for m in metric_objs:
            m.update(pred, yb)
    if reduce is not None:
        reduce(set_loss if loss is not None else None, metric_objs)
    results = {"loss": set_loss.result()} if loss is not None else {}
    results.update({m.name: m.result() for m in metric_objs})
    return results


# -- progress output -------------------------------------------------------------------------


def _progress_bar(epoch: int, epochs: int, n_batches: int):
    return tqdm(
        total=n_batches,
        desc=f"Epoch {epoch + 1}/{epochs}",
        unit="batch",
        leave=False,
        file=sys.stderr,
        mininterval=0.1,
    )


def _end_epoch_output(bar, logs: dict, epoch: int, epochs: int, show_lines: bool) -> None:
    """Close the epoch's bar and print one plain summary line (log-file friendly)."""
    if bar is not None:
        bar.close()
    if show_lines:
        summary = "  ".join(f"{k}={v:.4g}" for k, v in logs.items())
        print(f"Epoch {epoch + 1}/{epochs}  {summary}", file=sys.stderr, flush=True)
