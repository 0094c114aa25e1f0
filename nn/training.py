"""The training loop: fit, evaluate and the History they return."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nn.callbacks import Callback, LearningRateScheduler
from nn.metrics import Metric, get_metric
from nn.normalization import BatchNorm1d
from nn.validation import (
    check_array,
    check_fraction,
    check_positive_int,
    check_same_length,
)


class TrainingDivergedError(ArithmeticError):
    """Training produced a non-finite loss or gradient; the model keeps its last finite θ."""


@dataclass
class History:
    """Per-epoch values recorded by ``fit``: ``history["loss"]``, metrics, ``val_*``, ``lr``."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


def _resolve_loss(loss):
    import losses

    return losses.get(loss)


def _resolve_optimizer(optimizer, model):
    import optim

    if isinstance(optimizer, str):
        return optim.get(optimizer, model.parameters())
    if not isinstance(optimizer, optim.Optimizer):
        raise TypeError(
            "Received an invalid value for `optimizer`, expected an optim.Optimizer or a name "
            f"such as 'sgd' or 'adam'. Received: optimizer={optimizer!r}"
        )
    return optimizer


def _resolve_callbacks(callbacks: Iterable) -> list[Callback]:
    from optim.lr_scheduler import LRScheduler

    resolved = []
    for cb in callbacks:
        if isinstance(cb, LRScheduler):
            cb = LearningRateScheduler(cb)
        if not isinstance(cb, Callback):
            raise TypeError(
                f"Received an invalid value in `callbacks`, expected Callback or learning-rate "
                f"schedule instances. Received: {cb!r}"
            )
        resolved.append(cb)
    return resolved


def _check_targets(y: object, loss, name: str = "y") -> np.ndarray:
    """Targets as an array; a 1-D y becomes a column for losses other than CrossEntropy.

    CrossEntropy takes class labels of shape (N,); every other loss compares element by
    element with the model's output of shape (N, n_outputs).
    """
    from losses import CrossEntropy

    y = check_array(y, name, ndim=None)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, but has shape {y.shape}")
    if y.ndim == 1 and loss is not None and not isinstance(loss, CrossEntropy):
        y = y.reshape(-1, 1)
    return y


class _Batches:
    """Mini-batches of (X, y) gathered into reusable buffers of the model's dtype.

    The data set is never copied whole: each batch is gathered with ``np.take`` from rows
    in sorted order (friendly to memory-mapped files), so X may be larger than memory.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, dtype: np.dtype) -> None:
        self.X, self.y, self.batch_size, self.dtype = X, y, batch_size, dtype
        self._xbuf = np.empty((batch_size,) + X.shape[1:], dtype=dtype)
        self._ybuf = np.empty((batch_size,) + y.shape[1:], dtype=y.dtype)

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __call__(self, order: np.ndarray | None):
        n, size = len(self.X), self.batch_size
        for start in range(0, n, size):
            stop = min(start + size, n)
            xb, yb = self._xbuf[: stop - start], self._ybuf[: stop - start]
            if order is None:
                xb[...] = self.X[start:stop]
                yb[...] = self.y[start:stop]
            else:
                rows = np.sort(order[start:stop])
                self._take(self.X, rows, xb)
                np.take(self.y, rows, axis=0, out=yb)
            yield xb, yb

    @staticmethod
    def _take(source: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        if source.dtype == out.dtype:
            np.take(source, rows, axis=0, out=out)
        else:  # another dtype: read the rows, then cast into the buffer
            out[...] = source[rows]


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
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    validation_split: float = 0.0,
    metrics: Sequence[str | Metric] = (),
    callbacks: Sequence = (),
    progress: bool | None = None,
    clip_grad_norm: float | None = None,
) -> History:
    """Train ``model`` by mini-batch gradient descent; see :meth:`Sequential.fit`."""
    loss = _resolve_loss(loss)
    X = check_array(X, "X", n_features=model.n_features)
    y = _check_targets(y, loss)
    check_same_length(X, y)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    validation_split = check_fraction("validation_split", validation_split)
    optimizer = _resolve_optimizer(optimizer, model)
    metric_objs = [get_metric(m) for m in metrics]
    callbacks = _resolve_callbacks(callbacks)

    if validation_data is not None and validation_split:
        raise ValueError("Pass either `validation_data` or `validation_split`, not both")
    if validation_split:
        n_val = int(math.ceil(len(X) * validation_split))
        if n_val >= len(X):
            raise ValueError(f"validation_split={validation_split} leaves no training samples")
        validation_data = (X[-n_val:], y[-n_val:])
        X, y = X[:-n_val], y[:-n_val]
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("`validation_data` must be a tuple (X_val, y_val)")
        X_val = check_array(validation_data[0], "X_val", n_features=model.n_features)
        y_val = _check_targets(validation_data[1], loss, "y_val")
        check_same_length(X_val, y_val, "X_val", "y_val")

    if len(X) % batch_size == 1 and any(isinstance(la, BatchNorm1d) for la in model.layers):
        raise ValueError(
            f"With {len(X)} training samples and batch_size={batch_size} the last batch holds "
            "1 sample, which BatchNorm1d cannot normalise in training; choose another batch_size"
        )
    if seed is not None:
        model.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    rng = model.rng
    batches = _Batches(X, y, min(batch_size, len(X)), model.dtype)
    show_lines = progress is not False
    show_bar = progress is True or (progress is None and sys.stderr.isatty())
    history = History()
    model.stop_training = False
    for cb in callbacks:
        cb.set_model(model)
        cb.on_train_begin({})

    model.train()
    try:
        for epoch in range(epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            order = rng.permutation(len(X)) if shuffle else None
            for m in metric_objs:
                m.reset()
            bar = _progress_bar(epoch, epochs, len(batches)) if show_bar else None
            if getattr(optimizer, "full_batch", False):
                epoch_loss = _full_batch_epoch(model, loss, optimizer, batches, epoch)
                for m in metric_objs:
                    m.reset()
            else:
                epoch_loss = _run_epoch(
                    model, loss, optimizer, batches, order, epoch, metric_objs, bar, clip_grad_norm
                )
            logs = {"loss": epoch_loss}
            logs.update({m.name: m.result() for m in metric_objs})
            if validation_data is not None:
                val = evaluate(
                    model,
                    X_val,
                    y_val,
                    loss=loss,
                    metrics=[type(m)() for m in metric_objs],
                    batch_size=max(batch_size, 256),
                )
                logs.update({f"val_{k}": v for k, v in val.items()})
                model.train()
            logs["lr"] = float(optimizer.lr)
            _end_epoch_output(bar, logs, epoch, epochs, show_lines)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            history.record(epoch, logs)
            if model.stop_training:
                break
    finally:
        model.eval()
    for cb in callbacks:
        cb.on_train_end(history.history)
    return history


def _run_epoch(model, loss, optimizer, batches, order, epoch, metric_objs, bar, clip_norm):
    """One pass over the data; returns the mean loss over samples."""
    total, seen = 0.0, 0
    theta_grad = model.theta_grad
    for step, (xb, yb) in enumerate(batches(order)):
        model.zero_grad()
        pred = model.forward(xb)
        value = loss.forward(pred, yb)
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"Training diverged at epoch {epoch + 1}, batch {step + 1}: loss is {value}. "
                "The model keeps the weights of the previous step; lower the learning rate."
            )
        for m in metric_objs:
            m.update(pred, yb)
        model.backward(loss.backward(), input_grad=False)
        grad_norm_sq = float(np.dot(theta_grad, theta_grad))  # one BLAS pass
        if not math.isfinite(grad_norm_sq):
            raise TrainingDivergedError(
                f"Training diverged at epoch {epoch + 1}, batch {step + 1}: the gradient is "
                "not finite. The model keeps the weights of the previous step."
            )
        if clip_norm is not None and grad_norm_sq > clip_norm * clip_norm:
            theta_grad *= clip_norm / (math.sqrt(grad_norm_sq) + 1e-6)
        optimizer.step()
        total += value * len(xb)
        seen += len(xb)
        if bar is not None:
            bar.update(1)
            if step % 16 == 0:
                bar.set_postfix_str(f"loss={total / seen:.4f}", refresh=False)
    return total / seen


def _full_batch_epoch(model, loss, optimizer, batches, epoch) -> float:
    """One call of a full-batch optimizer (L-BFGS) on the whole training set."""
    n = len(batches.X)
    rng_state = model.rng.bit_generator.state

    def closure() -> float:
        model.rng.bit_generator.state = rng_state  # one objective: the same dropout masks
        model.zero_grad()
        total = 0.0
        for xb, yb in batches(None):
            value = loss.forward(model.forward(xb), yb)
            grad = loss.backward()
            grad *= len(xb) / n  # the full-batch mean is the size-weighted mean of batch means
            model.backward(grad, input_grad=False)
            total += value * len(xb) / n
        if not math.isfinite(total):
            raise TrainingDivergedError(f"Training diverged at epoch {epoch + 1}: loss {total}")
        return total

    return float(optimizer.step(closure))


def evaluate(
    model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss=None,
    metrics: Sequence[str | Metric] = (),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y), in evaluation mode, batch by batch.

    Returns
    -------
    dict
        ``{"loss": ..., metric name: ...}`` (``loss`` only when a loss is given).
    """
    loss = _resolve_loss(loss) if loss is not None else None
    X = check_array(X, "X", n_features=model.n_features)
    y = _check_targets(y, loss)
    check_same_length(X, y)
    batch_size = check_positive_int("batch_size", batch_size)
    metric_objs = [get_metric(m) for m in metrics]
    for m in metric_objs:
        m.reset()
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        for start in range(0, len(X), batch_size):
            xb = np.asarray(X[start : start + batch_size], dtype=model.dtype)
            yb = np.asarray(y[start : start + batch_size])
            pred = model.forward(xb)
            if loss is not None:
                total += loss.forward(pred, yb) * len(xb)
            for m in metric_objs:
                m.update(pred, yb)
    finally:
        model.train(was_training)
    results = {"loss": total / len(X)} if loss is not None else {}
    results.update({m.name: m.result() for m in metric_objs})
    return results


def _progress_bar(epoch: int, epochs: int, n_batches: int):
    from tqdm.auto import tqdm

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
