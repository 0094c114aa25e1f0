"""The training loop: fit, evaluate and the History they return.

``fit`` draws mini-batches into buffers it owns (so ``X`` may be memory-mapped and larger
than memory), runs forward, the loss and backward, checks that the loss, the gradient and the
new weights are finite, optionally clips ∇θ, and lets the optimizer update θ. At the end of
each epoch it validates, records the epoch's values in :class:`History`, runs the callbacks
(learning-rate schedules, early stopping, checkpoints) and, with ``checkpoint=``, writes a
training checkpoint from which ``resume_from=`` continues bitwise exactly.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nn.callbacks import Callback, LearningRateScheduler, ModelCheckpoint
from nn.container import _layers_within
from nn.metrics import Metric, get_metric
from nn.normalization import BatchNorm1d
from nn.preprocessing import Standardize
from nn.validation import (
    check_array,
    check_finite,
    check_fraction,
    check_non_negative_int,
    check_positive_int,
    check_same_length,
)


class TrainingDivergedError(ArithmeticError):
    """Training produced a non-finite loss, gradient or weight; θ keeps its last finite value.

    Attributes
    ----------
    epoch, batch : int
        Where it happened, counted from 1 as in the message (``batch`` within the epoch).
    step : int
        The optimizer step of this ``fit`` call, counted from 1, that was refused.
    quantity : {"loss", "gradient", "weights", "buffers"}
        What stopped being finite (``"buffers"``: a layer's running statistics).
    value : float
        The offending value (the loss, or the first non-finite entry).
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int | None = None,
        batch: int | None = None,
        step: int | None = None,
        quantity: str = "loss",
        value: float = math.nan,
    ) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.step = epoch, batch, step
        self.quantity, self.value = quantity, value


@dataclass
class History:
    """Per-epoch values recorded by ``fit``: ``history["loss"]``, metrics, ``val_*``, ``lr``.

    ``epoch`` lists the (0-based) epoch indices in the order they were recorded; a resumed
    run's history continues the checkpoint's.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


# -- resolving arguments ---------------------------------------------------------------------


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
    if not any(np.may_share_memory(data, model.theta) for data, _ in optimizer.vectors):
        raise ValueError(
            "Received an invalid value for `optimizer`: it updates parameters that are not "
            "this model's (was it built on another model's parameters?). Build it with "
            "optimizer=optim.SGD(model.parameters(), lr=...) on the model you fit."
        )
    return optimizer


def _resolve_callbacks(callbacks: Iterable) -> list[Callback]:
    """Callbacks in the order they run: schedules wrapped, checkpoints moved to the end.

    A :class:`ModelCheckpoint` runs after every other callback, so the state it saves (for
    instance the learning rate a schedule has just set) is the one the next epoch starts from.
    """
    from optim.lr_scheduler import LRScheduler

    if isinstance(callbacks, (Callback, LRScheduler)) or not isinstance(callbacks, Iterable):
        raise TypeError(
            "Received an invalid value for `callbacks`, expected a list of Callback or "
            f"learning-rate schedule instances. Received: callbacks={callbacks!r}"
        )
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
    return sorted(resolved, key=lambda cb: isinstance(cb, ModelCheckpoint))


def _resolve_metrics(metrics) -> list[Metric]:
    if isinstance(metrics, (str, Metric)) or not isinstance(metrics, Iterable):
        raise TypeError(
            "Received an invalid value for `metrics`, expected a list of names or Metric "
            f"instances such as ['accuracy']. Received: metrics={metrics!r}"
        )
    return [get_metric(m) for m in metrics]


def _warn_if_the_output_is_squashed(model, loss) -> None:
    """Warn when the last layer applies softmax (sigmoid) for a loss that expects logits.

    The loss applies it again: the model still trains, but slowly and to a worse optimum (a
    new user's digits model stopped at 80% instead of 99.6%). Keras warns the same way.
    """
    from losses import BinaryCrossEntropy, CrossEntropy

    if isinstance(loss, CrossEntropy):
        squash, remedy = "softmax", ""
    elif isinstance(loss, BinaryCrossEntropy) and loss.from_logits:
        squash, remedy = "sigmoid", "; or keep it and use BinaryCrossEntropy(from_logits=False)"
    else:
        return
    last = model.layers[-1]
    if getattr(getattr(last, "activation", last), "name", "") == squash:  # fused or stand-alone
        warnings.warn(
            f"The model's last layer applies {squash}, but {type(loss).__name__} expects "
            f"logits and applies {squash} itself. Remove the {squash} from the last layer "
            f"(predict then gives logits: apply {squash} to them for probabilities){remedy}",
            stacklevel=4,
        )


def _check_targets(y: object, loss, model, name: str = "y") -> np.ndarray:
    """Targets checked against the model's outputs, up front; returned as an array.

    Class labels ``(N,)`` (for CrossEntropy, or for a model with several outputs when no
    loss is given) must be whole numbers in ``[0, n_outputs)``. Any other targets must have
    the model's output width; a 1-D y is one column, and becomes ``(N, 1)`` for a loss.
    Catching this here names ``y`` and its shape; the loss would only see the first batch.
    """
    from losses import CrossEntropy

    y = check_array(y, name, ndim=None)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, but has shape {y.shape}")
    n_outputs = _n_outputs(model)
    labels = y.ndim == 1 and (
        isinstance(loss, CrossEntropy) or (loss is None and n_outputs not in (None, 1))
    )
    if labels:
        _check_labels(y, n_outputs, name)
        return y
    check_finite(y, name, dtype=model.dtype)  # targets too large for the model's dtype
    width = 1 if y.ndim == 1 else y.shape[1]
    if n_outputs is not None and width != n_outputs:
        kind = "class-probability rows" if isinstance(loss, CrossEntropy) else "targets"
        raise ValueError(
            f"{name} has shape {y.shape}, but the model has {n_outputs} output(s): expected "
            f"{kind} of shape ({len(y)}, {n_outputs})"
            + (f" or class labels of shape ({len(y)},)" if isinstance(loss, CrossEntropy) else "")
        )
    if y.ndim == 1 and loss is not None:
        y = y.reshape(-1, 1)
    return y


def _n_outputs(model) -> int | None:
    """The number of output columns, when the model declares its input features."""
    n = model.n_features
    if n is None:
        return None
    for layer in model.layers:
        n = layer.output_features(n)
    return n


def _check_labels(y: np.ndarray, n_classes: int | None, name: str = "y") -> None:
    """Class labels: whole numbers in [0, n_classes), checked up front.

    The loss checks each batch too, but only when it reaches it: a bad label in the last
    batch would otherwise stop training after most of an epoch.
    """
    if y.dtype.kind == "b":
        raise TypeError(
            f"{name} must hold integer class labels for CrossEntropy, but has dtype bool; "
            f"pass {name}.astype(int) for classes 0 and 1"
        )
    if y.dtype.kind == "f" and not np.array_equal(y, np.floor(y)):
        i = int(np.flatnonzero(y != np.floor(y))[0])
        raise ValueError(
            f"{name} must hold integer class labels for CrossEntropy, but {name}[{i}] is "
            f"{y[i].item()!r}"
        )
    low, high = y.min(), y.max()
    if low < 0 or (n_classes is not None and high >= n_classes):
        i = int(np.flatnonzero((y < 0) | (y >= (n_classes or np.inf)))[0])
        raise ValueError(
            f"{name} has a class label out of range: {name}[{i}] is {y[i].item()!r}, but the "
            f"model has {n_classes} outputs, so labels must lie in 0..{(n_classes or 0) - 1}"
        )


def _check_sample_weight(sample_weight: object, n: int, dtype: np.dtype, name: str):
    """``sample_weight`` as a finite, non-negative ``(n,)`` array of the model's dtype."""
    if sample_weight is None:
        return None
    sw = check_array(sample_weight, name, ndim=1)
    if sw.shape != (n,):
        raise ValueError(
            f"{name} must have shape ({n},), one weight per sample, but has shape {sw.shape}"
        )
    if sw.min() < 0:
        i = int(np.flatnonzero(sw < 0)[0])
        raise ValueError(f"{name} must be non-negative, but {name}[{i}] is {sw[i].item()!r}")
    return np.asarray(sw, dtype=dtype)


def _check_clip(name: str, clip: object) -> float | None:
    """A clipping bound: None, or a positive finite number (optim's own check)."""
    from optim._checks import positive

    return None if clip is None else positive(name, clip)


def _check_choice(name: str, value: object, choices: tuple, expected: str) -> None:
    if not any(value is choice for choice in choices):
        raise TypeError(
            f"Received an invalid value for `{name}`, expected {expected}. "
            f"Received: {name}={value!r}"
        )


def _check_path(name: str, path: object) -> None:
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received an invalid value for `{name}`, expected a file path. "
            f"Received: {name}={path!r}"
        )


def _split_validation(X, y, sw, validation_data, validation_split, loss, model):
    """(training X, y, weights) and the validation triple (or None), all checked."""
    if validation_data is not None and validation_split:
        raise ValueError(
            "Received both `validation_data` and `validation_split`; expected at most one. "
            f"Received: validation_split={validation_split!r} with validation_data"
        )
    if validation_split:
        n_val = int(math.ceil(len(X) * validation_split))
        if n_val >= len(X):
            raise ValueError(f"validation_split={validation_split} leaves no training samples")
        val = (X[-n_val:], y[-n_val:], None if sw is None else sw[-n_val:])
        X, y = X[:-n_val], y[:-n_val]
        sw = None if sw is None else sw[:-n_val]
        return X, y, sw, val
    if validation_data is None:
        return X, y, sw, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "`validation_data` must be a tuple (X_val, y_val) or (X_val, y_val, "
            f"sample_weight_val). Received: {type(validation_data).__name__}"
        )
    X_val = check_array(validation_data[0], "X_val", n_features=model.n_features, dtype=model.dtype)
    y_val = _check_targets(validation_data[1], loss, model, "y_val")
    check_same_length(X_val, y_val, "X_val", "y_val")
    sw_val = None
    if len(validation_data) == 3:
        sw_val = _check_sample_weight(
            validation_data[2], len(X_val), model.dtype, "sample_weight_val"
        )
    return X, y, sw, (X_val, y_val, sw_val)


# -- mini-batches ----------------------------------------------------------------------------


class _Batches:
    """Mini-batches of (X, y, sample weights) gathered into reusable buffers.

    The data set is never copied whole: each batch's rows are gathered with ``np.take`` in
    sorted order (friendly to memory-mapped files) into a buffer of X's own dtype, then cast
    into a buffer of the model's dtype, so X may be larger than memory and no batch is
    promoted to float64. Labels keep their dtype; weights are in the model's dtype.
    """

    def __init__(self, X, y, w, batch_size: int, dtype: np.dtype) -> None:
        self.X, self.y, self.w, self.batch_size = X, y, w, batch_size
        size = (batch_size,)
        self._xbuf = np.empty(size + X.shape[1:], dtype=dtype)
        self._xraw = None if X.dtype == dtype else np.empty(size + X.shape[1:], dtype=X.dtype)
        self._ybuf = np.empty(size + y.shape[1:], dtype=y.dtype)
        self._wbuf = None if w is None else np.empty(size, dtype=w.dtype)
        self._rows = np.empty(size, dtype=np.intp)

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __call__(self, order: np.ndarray | None):
        """Yield ``(xb, yb, wb)`` batch by batch (``wb`` is None without weights).

        The arrays are the shared buffers (or views of them): valid until the next batch.
        """
        X, y, w = self.X, self.y, self.w
        n, size = len(X), self.batch_size
        for start in range(0, n, size):
            stop = min(start + size, n)
            k = stop - start
            xb, yb = self._xbuf[:k], self._ybuf[:k]
            wb = None if w is None else self._wbuf[:k]
            if order is None:
                xb[...] = X[start:stop]
                yb[...] = y[start:stop]
                if wb is not None:
                    wb[...] = w[start:stop]
            else:
                rows = self._rows[:k]
                rows[...] = order[start:stop]
                rows.sort()
                # mode="clip": the rows are a permutation, always in range, and numpy's
                # default mode="raise" gathers into a temporary before copying to `out`
                if self._xraw is None:
                    np.take(X, rows, axis=0, out=xb, mode="clip")
                else:  # read the rows in X's dtype, then cast into the model's
                    raw = self._xraw[:k]
                    np.take(X, rows, axis=0, out=raw, mode="clip")
                    np.copyto(xb, raw, casting="unsafe")
                np.take(y, rows, axis=0, out=yb, mode="clip")
                if wb is not None:
                    np.take(w, rows, out=wb, mode="clip")
            yield xb, yb, wb


# -- the loop --------------------------------------------------------------------------------


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
    loss = _resolve_loss(loss)
    X = check_array(X, "X", n_features=model.n_features, dtype=model.dtype)
    y = _check_targets(y, loss, model)
    check_same_length(X, y)
    sample_weight = _check_sample_weight(sample_weight, len(X), model.dtype, "sample_weight")
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    validation_split = check_fraction("validation_split", validation_split)
    clip = _check_clip("clip_grad_norm", clip_grad_norm)
    clip_value = _check_clip("clip_grad_value", clip_grad_value)
    if clip is not None and clip_value is not None:
        raise ValueError(
            "Received both `clip_grad_norm` and `clip_grad_value`; expected at most one. "
            f"Received: clip_grad_norm={clip_grad_norm!r}, clip_grad_value={clip_grad_value!r}"
        )
    _check_choice("shuffle", shuffle, (True, False), "a bool")
    _check_choice("progress", progress, (None, True, False), "True, False or None")
    if seed is not None:
        check_non_negative_int("seed", seed)
    _check_path("checkpoint", checkpoint)
    _check_path("resume_from", resume_from)
    optimizer = _resolve_optimizer(optimizer, model)
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Standardize) and not layer.mean.any() and (layer.scale == 1).all():
            warnings.warn(
                f"layer {i}, {layer!r}, was never adapted (mean 0, scale 1), so it passes the "
                f"features through unchanged; call model.layers[{i}].adapt(X_train) before fit",
                stacklevel=3,
            )
    _warn_if_the_output_is_squashed(model, loss)
    if not np.isfinite(model.theta).all():
        bad = next(
            f"{p.name} of layer {i}"
            for i, layer in enumerate(model.layers)
            for p in layer.parameters()
            if not np.isfinite(p.data).all()
        )
        raise ValueError(
            f"The model's weights must be finite before training, but {bad} holds NaN or "
            "infinity"
        )
    if (clip is not None or clip_value is not None) and optimizer.full_batch:
        name = "clip_grad_norm" if clip is not None else "clip_grad_value"
        raise ValueError(
            f"`{name}` does not apply to {type(optimizer).__name__}, which minimises "
            "the full-batch loss with its own line search"
        )
    metric_objs = _resolve_metrics(metrics)
    callbacks = _resolve_callbacks(callbacks)
    if checkpoint is not None:  # after the user's callbacks, so their states keep positions
        callbacks.append(ModelCheckpoint(checkpoint, save_training_state=True))
    X, y, sample_weight, val = _split_validation(
        X, y, sample_weight, validation_data, validation_split, loss, model
    )
    if len(X) % batch_size == 1 and any(isinstance(la, BatchNorm1d) for la in model.layers):
        raise ValueError(
            f"With {len(X)} training samples and batch_size={batch_size} the last batch holds "
            "1 sample, which BatchNorm1d cannot normalise in training; choose another batch_size"
        )

    batches = _Batches(X, y, sample_weight, min(batch_size, len(X)), model.dtype)
    trainer = _Trainer(model, loss, optimizer, batches, metric_objs, clip, clip_value, callbacks)
    history = History()
    model.stop_training = False
    params = {
        "epochs": epochs,
        "batch_size": batch_size,
        "steps": len(batches),
        "optimizer": optimizer,
        "history": history,
        "callbacks": callbacks,
    }
    for cb in callbacks:
        cb.set_model(model)
        cb.set_params(params)
        cb.on_train_begin({})

    initial_epoch = 0
    if resume_from is not None:
        from nn.checkpoint import restore_checkpoint

        restored = restore_checkpoint(resume_from, model, optimizer, callbacks)
        initial_epoch = restored.epoch
        history.history, history.epoch = restored.history.history, restored.history.epoch
        if initial_epoch >= epochs:
            warnings.warn(
                f"{resume_from} is at epoch {initial_epoch} already and epochs={epochs} is the "
                "epoch to train up to, so nothing was trained; pass a larger `epochs`",
                stacklevel=3,
            )
    elif seed is not None:
        model.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state

    show_lines = progress is not False
    show_bar = progress is True or (progress is None and sys.stderr.isatty())
    val_metrics = [copy.deepcopy(m) for m in metric_objs]
    was_training = model.training
    model.train()
    try:
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            for m in metric_objs:
                m.reset()
            # Overflow and NaN are checked explicitly (TrainingDivergedError), so numpy's
            # warnings would only repeat that, or flag harmless saturation (exp of -1000).
            with np.errstate(over="ignore", invalid="ignore"):
                if optimizer.full_batch:
                    epoch_loss = trainer.full_batch_epoch(epoch)
                    bar = None
                else:
                    order = model.rng.permutation(len(X)) if shuffle else None
                    bar = _progress_bar(epoch, epochs, len(batches)) if show_bar else None
                    epoch_loss = trainer.epoch(epoch, order, bar)
            logs = {"loss": epoch_loss}
            logs.update({m.name: m.result() for m in metric_objs})
            if val is not None:
                results = _evaluate_batches(model, *val, loss, val_metrics, max(batch_size, 256))
                logs.update({f"val_{k}": v for k, v in results.items()})
                model.train()
            logs["lr"] = float(optimizer.lr)
            _end_epoch_output(bar, logs, epoch, epochs, show_lines)
            history.record(epoch, logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    finally:
        model.train(was_training)
    for cb in callbacks:
        cb.on_train_end(history.history)
    return history


class _SetLoss:
    """The loss of a set from the losses of its batches: what one batch of it all would give.

    With each batch's denominator (:meth:`losses.Loss.denominator`: the number of elements,
    or the class weights of the targets) a mean is ``Σ_b L_b·d_b / Σ_b d_b`` and a sum
    (``reduction="sum"``) is ``Σ_b L_b``. A loss whose subclass overrides ``forward`` reports
    no denominator; its batches count by their number of samples.
    """

    def __init__(self, loss) -> None:
        self.loss = loss
        self.is_sum = getattr(loss, "reduction", "mean") == "sum"
        self.total = self.weight = 0.0

    def add(self, value: float, n_samples: int) -> float:
        """Count one batch of ``n_samples`` whose loss was ``value`` (call after its forward).

        Returns the factor that multiplied ``value`` in the running total (``d_b``, or 1 for
        sums): the same factor on the batch's gradient makes the total's gradient.
        """
        if self.is_sum:
            self.total += value
            return 1.0
        d = self.loss.denominator()
        if d is None:
            d = n_samples
        if d == 0:  # every target weighs 0 (its mean is NaN): the batch adds nothing
            return 0.0
        self.total += value * d
        self.weight += d
        return d

    def result(self) -> float:
        """The set's loss; NaN for a mean over nothing (every target weighs 0, as in PyTorch)."""
        return self.total if self.is_sum else self.total * self.scale()

    @property
    def empty(self) -> bool:
        """A mean over no weight at all (every target weighs 0): nothing to minimise."""
        return not self.is_sum and self.weight == 0

    def scale(self) -> float:
        """The factor from the running total to the set's loss (1/Σ d_b, or 1 for sums)."""
        if self.is_sum:
            return 1.0
        return 1.0 / self.weight if self.weight else math.nan


class _Trainer:
    """The per-step work of ``fit``, with the buffers it reuses across steps.

    Every step: a backup of the layer buffers (running statistics, if any), forward, loss,
    metrics, backward writing ∇θ, a finite check of ‖∇θ‖² (one dot product), optional
    clipping, a copy of θ into a backup buffer, the optimizer step and a finite check of ‖θ‖²
    (one dot product) and of the layer buffers. The backups are what let a refused step be
    undone. The loop neither loops over parameters in Python nor allocates arrays of θ's or
    a batch's size; metrics (optional) and the loss's label indexing make batch-row-sized
    temporaries (a numpy fancy-index update is faster than take/put into a buffer).
    """

    def __init__(
        self, model, loss, optimizer, batches, metrics, clip, clip_value, callbacks
    ) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.batches, self.metrics = batches, metrics
        self.clip, self.clip_value = clip, clip_value
        self.batch_callbacks = [
            cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        self.backup = model.theta.copy()
        # Layer buffers such as batch-norm running statistics change in forward, outside θ:
        # each step backs them up too, so that a refused step leaves them as they were.
        self.layer_buffers = [  # (layer index, layer, name, array, its backup)
            (i, part, name, array, array.copy())
            for i, layer in enumerate(model.layers)
            for part in _layers_within(layer)
            for name, array in part.buffers().items()
        ]
        self.step = 0  # optimizer steps taken in this fit call

    def epoch(self, epoch: int, order: np.ndarray | None, bar) -> float:
        """One pass over the data; returns the loss of its batches taken as one set."""
        model, loss, optimizer, metrics = self.model, self.loss, self.optimizer, self.metrics
        theta, theta_grad, backup = model.theta, model.theta_grad, self.backup
        clip, clip_value = self.clip, self.clip_value
        epoch_loss = _SetLoss(loss)
        for batch, (xb, yb, wb) in enumerate(self.batches(order), start=1):
            self._back_up_buffers()
            pred = model.forward(xb)
            value = loss.forward(pred, yb) if wb is None else loss.forward(pred, yb, wb)
            for m in metrics:
                m.update(pred, yb)
            if not math.isfinite(value):
                if loss.denominator() != 0:
                    raise self._diverged(epoch, batch, "loss", value)
                # every target weighs 0 (NaN mean): no step, but forward ran (running stats)
                bad = self._bad_buffer()
                if bad is not None:
                    raise self._diverged(epoch, batch, "buffers", *bad)
                if bar is not None:
                    bar.update(1)
                continue
            # ∇θ is written, not added to: zero_grad() + backward in one pass fewer
            model.backward(loss.backward(), input_grad=False, accumulate=False)
            norm_sq = float(np.dot(theta_grad, theta_grad))  # ‖∇θ‖²: one BLAS pass
            if math.isfinite(norm_sq):
                norm = math.sqrt(norm_sq)
            else:  # NaN or ±inf in ∇θ (raises), or finite entries whose squares overflowed
                norm = self._check_gradient(epoch, batch)
            if clip is not None and norm > clip:  # optim.clip_grad_norm's rule
                theta_grad *= clip / (norm + 1e-6)
            if clip_value is not None:  # optim.clip_grad_value's rule
                np.clip(theta_grad, -clip_value, clip_value, out=theta_grad)
            np.copyto(backup, theta)
            optimizer.step()
            self.step += 1
            self.check_weights(epoch, batch)
            epoch_loss.add(value, len(xb))
            if bar is not None:
                bar.update(1)
                if batch % 16 == 1:
                    bar.set_postfix_str(f"loss={epoch_loss.result():.4f}", refresh=False)
            if self.batch_callbacks:
                logs = {"loss": value, "size": len(xb)}
                for cb in self.batch_callbacks:
                    cb.on_batch_end(batch - 1, logs)
                if model.stop_training:
                    break
        return epoch_loss.result()

    def full_batch_epoch(self, epoch: int) -> float:
        """One call of a full-batch optimizer (L-BFGS) on the whole training set."""
        model, loss, batches = self.model, self.loss, self.batches
        rng_state = model.rng.bit_generator.state
        np.copyto(self.backup, model.theta)  # θ and the layer buffers before this epoch
        self._back_up_buffers()

        empty = False

        def closure() -> float:
            nonlocal empty
            model.rng.bit_generator.state = rng_state  # one objective: the same dropout masks
            model.zero_grad()
            objective = _SetLoss(loss)  # the loss of the whole set, whatever the batch size
            for xb, yb, wb in batches(None):
                pred = model.forward(xb)
                value = loss.forward(pred, yb) if wb is None else loss.forward(pred, yb, wb)
                factor = objective.add(value, len(xb))
                if factor == 0:  # a batch whose targets all weigh 0 adds no loss, no gradient
                    continue
                grad = loss.backward()
                grad *= factor  # ∂(L_b·d_b)/∂pred
                model.backward(grad, input_grad=False)
            if objective.empty:  # every target weighs 0: a flat objective, ∇θ = 0, no step
                empty = True
                return 0.0
            model.theta_grad *= objective.scale()
            total = objective.result()
            if not math.isfinite(total):
                model.theta[...] = self.backup
                self._restore_buffers()
                raise TrainingDivergedError(
                    f"Training diverged at epoch {epoch + 1}: the full-batch loss is {total}. "
                    "θ and the layer buffers are restored to their values before this epoch.",
                    epoch=epoch + 1,
                    step=self.step + 1,
                    quantity="loss",
                    value=total,
                )
            return total

        value = float(self.optimizer.step(closure))
        if empty:
            value = math.nan  # the loss of a set of no weight, as evaluate reports it
        self.step += 1
        if self.metrics:  # the metrics at the final θ, with the objective's dropout masks
            model.rng.bit_generator.state = rng_state
            for xb, yb, _ in batches(None):
                pred = model.forward(xb)
                for m in self.metrics:
                    m.update(pred, yb)
        self.check_weights(epoch, None)
        return value

    # -- divergence (off the hot path) --------------------------------------------------------
    def _diverged(self, epoch, batch, quantity, value, detail=""):
        """Undo the refused step's changes to the layer buffers; return the error to raise."""
        self._restore_buffers()
        what = {
            "loss": f"the loss is {value}",
            "gradient": f"the gradient is not finite{detail}",
            "weights": f"the step made the weights non-finite{detail}",
            "buffers": f"a layer's buffer became non-finite{detail}",
        }[quantity]
        if batch is None:  # a full-batch optimizer's epoch: no batches, no clipping
            where, hint = "", "lower the learning rate or check the data"
        else:
            where = f", batch {batch}"
            hint = "lower the learning rate, clip gradients (clip_grad_norm=) or check the data"
        return TrainingDivergedError(
            f"Training diverged at epoch {epoch + 1}{where} (step {self.step + 1}): {what}. "
            f"The model keeps its weights from before this step; {hint}.",
            epoch=epoch + 1,
            batch=batch,
            step=self.step + 1,
            quantity=quantity,
            value=float(value),
        )

    def _first_bad(self, which: str) -> tuple[float, str]:
        """The first non-finite entry of θ or ∇θ and the parameter holding it."""
        for i, layer in enumerate(self.model.layers):
            for p in layer.parameters():
                array = p.data if which == "data" else p.grad
                bad = ~np.isfinite(array)
                if bad.any():
                    value = float(array[np.unravel_index(np.argmax(bad), array.shape)])
                    return value, f" (first {value} in {p.name} of layer {i}, {layer!r})"
        return math.nan, ""

    def _check_gradient(self, epoch: int, batch: int) -> float:
        """‖∇θ‖ computed without overflow (as optim.clip_grad_norm does), or raise on NaN/inf."""
        from optim._vectors import vector_norm

        grad = self.model.theta_grad
        if not np.isfinite(grad).all():
            value, detail = self._first_bad("grad")
            raise self._diverged(epoch, batch, "gradient", value, detail)
        return vector_norm(grad)

    def check_weights(self, epoch: int, batch: int | None) -> None:
        """Undo the last step and raise if it left NaN or ±inf in θ or in a layer buffer.

        One read-only dot product per step. A non-finite weight does not always show in the
        next loss (a ReLU maps a −inf bias to 0), so θ itself is checked after every step,
        which makes the backup exactly the last finite θ.
        """
        theta = self.model.theta
        if not (math.isfinite(float(np.dot(theta, theta))) or np.isfinite(theta).all()):
            quantity, (value, detail) = "weights", self._first_bad("data")
        else:
            bad = self._bad_buffer()
            if bad is None:
                return
            quantity, (value, detail) = "buffers", bad
        theta[...] = self.backup
        self.step -= 1
        raise self._diverged(epoch, batch, quantity, value, detail)

    def _back_up_buffers(self) -> None:
        for *_, array, array_backup in self.layer_buffers:
            np.copyto(array_backup, array)

    def _restore_buffers(self) -> None:
        for *_, array, array_backup in self.layer_buffers:
            np.copyto(array, array_backup)

    def _bad_buffer(self) -> tuple[float, str] | None:
        """The first non-finite entry of a layer buffer (e.g. running statistics) and where."""
        for i, layer, name, array, _ in self.layer_buffers:
            if math.isfinite(float(np.add.reduce(array, axis=None))) or np.isfinite(array).all():
                continue
            value = float(array.flat[np.argmin(np.isfinite(array))])
            return value, f" (first {value} in {name} of layer {i}, {layer!r})"
        return None


# -- evaluation ------------------------------------------------------------------------------


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
    loss = _resolve_loss(loss) if loss is not None else None
    X = check_array(X, "X", n_features=model.n_features, dtype=model.dtype)
    y = _check_targets(y, loss, model)
    check_same_length(X, y)
    sample_weight = _check_sample_weight(sample_weight, len(X), model.dtype, "sample_weight")
    batch_size = check_positive_int("batch_size", batch_size)
    metric_objs = _resolve_metrics(metrics)
    was_training = model.training
    model.eval()
    try:
        return _evaluate_batches(model, X, y, sample_weight, loss, metric_objs, batch_size)
    finally:
        model.train(was_training)


def _evaluate_batches(model, X, y, sw, loss, metric_objs, batch_size) -> dict[str, float]:
    """``evaluate`` on checked inputs, in evaluation mode (the caller restores the mode)."""
    model.eval()
    for m in metric_objs:
        m.reset()
    set_loss = _SetLoss(loss)
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
    results = {"loss": set_loss.result()} if loss is not None else {}
    results.update({m.name: m.result() for m in metric_objs})
    return results


# -- progress output -------------------------------------------------------------------------


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
