"""The arguments of ``fit`` and ``evaluate``: resolved by name and checked up front."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

import losses
import optim
from nn.checks import (
    check_array,
    check_bool,
    check_finite,
    check_fraction,
    check_labels,
    check_non_negative_int,
    check_positive,
    check_positive_int,
    check_same_length,
    check_sample_weight,
)
from nn.files.model_file import check_saveable
from nn.training.callbacks import Callback, LearningRateScheduler, ModelCheckpoint
from nn.training.metrics import Metric, get_metric
from optim.lr_scheduler import LRScheduler


def resolve_loss(loss):
    return losses.get(loss)


def resolve_optimizer(optimizer, model):
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


def resolve_callbacks(callbacks: Iterable) -> list[Callback]:
    """Callbacks in the order they run: schedules wrapped, checkpoints moved to the end.

    A :class:`ModelCheckpoint` runs after every other callback, so the state it saves (for
    instance the learning rate a schedule has just set) is the one the next epoch starts from.
    """
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


def resolve_metrics(metrics) -> list[Metric]:
    if isinstance(metrics, (str, Metric)) or not isinstance(metrics, Iterable):
        raise TypeError(
            "Received an invalid value for `metrics`, expected a list of names or Metric "
            f"instances such as ['accuracy']. Received: metrics={metrics!r}"
        )
    return [get_metric(m) for m in metrics]


def warn_if_the_output_is_squashed(model, loss) -> None:
    """Warn when the last layer applies softmax (sigmoid) for a loss that expects logits.

    The loss applies it again: the model still trains, but slowly and to a worse optimum.
    Keras warns the same way.
    """
    squash = getattr(loss, "squashes", None)
    last = model.layers[-1]
    if squash and getattr(getattr(last, "activation", last), "name", "") == squash:
        warnings.warn(  # the squash is fused into the last Dense or is a stand-alone layer
            f"The model's last layer applies {squash}, but {type(loss).__name__} expects "
            f"logits and applies {squash} itself. Remove the {squash} from the last layer "
            f"(predict then gives logits: apply {squash} to them for probabilities)",
            stacklevel=5,
        )


def check_targets(y: object, loss, model, name: str = "y") -> np.ndarray:
    """Targets checked against the model's outputs, up front; returned as an array.

    Class labels ``(N,)`` (for CrossEntropy, or for a model with several outputs when no
    loss is given) must be whole numbers in ``[0, n_outputs)``. Any other targets must have
    the model's output width; a 1-D y is one column, and becomes ``(N, 1)`` for a loss.
    Catching this here names ``y`` and its shape; the loss would only see the first batch.
    """
    y = check_array(name, y, ndim=None)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, but has shape {y.shape}")
    n_outputs = model_outputs(model)
    labels = y.ndim == 1 and (
        getattr(loss, "takes_labels", False) or (loss is None and n_outputs not in (None, 1))
    )
    if labels:
        check_labels(name, y, n_outputs)
        return y
    check_finite(name, y, dtype=model.dtype)  # targets too large for the model's dtype
    width = 1 if y.ndim == 1 else y.shape[1]
    if n_outputs is not None and width != n_outputs:
        takes_labels = getattr(loss, "takes_labels", False)
        kind = "class-probability rows" if takes_labels else "targets"
        raise ValueError(
            f"{name} has shape {y.shape}, but the model has {n_outputs} output(s): expected "
            f"{kind} of shape ({len(y)}, {n_outputs})"
            + (f" or class labels of shape ({len(y)},)" if takes_labels else "")
        )
    if y.ndim == 1 and loss is not None:
        y = y.reshape(-1, 1)
    return y


def model_outputs(model) -> int | None:
    """The number of output columns, when the model declares its input features."""
    n = model.n_features
    if n is None:
        return None
    for layer in model.layers:
        n = layer.output_features(n)
    return n


def check_path(name: str, path: object) -> None:
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received an invalid value for `{name}`, expected a file path. "
            f"Received: {name}={path!r}"
        )


def split_validation(X, y, sw, validation_data, validation_split, loss, model):
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
        if getattr(loss, "takes_labels", False) and y.ndim == 1:
            _warn_if_the_split_misses_classes(y, val[1], validation_split)
        sw = None if sw is None else sw[:-n_val]
        return X, y, sw, val
    if validation_data is None:
        return X, y, sw, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "`validation_data` must be a tuple (X_val, y_val) or (X_val, y_val, "
            f"sample_weight_val). Received: {type(validation_data).__name__}"
        )
    X_val = check_array("X_val", validation_data[0], n_features=model.n_features, dtype=model.dtype)
    y_val = check_targets(validation_data[1], loss, model, "y_val")
    check_same_length("X_val", X_val, "y_val", y_val)
    sw_val = None
    if len(validation_data) == 3:
        sw_val = check_sample_weight(
            "sample_weight_val", validation_data[2], len(X_val), model.dtype
        )
    return X, y, sw, (X_val, y_val, sw_val)


def _warn_if_the_split_misses_classes(y_train, y_val, validation_split: float) -> None:
    """Warn when the held-out labels lack classes of the training part (class-sorted rows).

    ``validation_split`` takes the last rows before shuffling (Keras's rule): on rows sorted
    by class the validation set holds one class, and its scores mean little.
    """
    train_classes, val_classes = np.unique(y_train), np.unique(y_val)
    missing = np.setdiff1d(train_classes, val_classes)
    if missing.size:
        warnings.warn(
            f"validation_split={validation_split} holds out the last {len(y_val)} rows before "
            f"shuffling, and their labels are only the classes {val_classes[:10].tolist()}, "
            f"missing {missing[:10].tolist()} of the training part (are the rows sorted by "
            "class?): shuffle X and y first, or pass validation_data=(X_val, y_val)",
            stacklevel=6,
        )


# -- mini-batches ----------------------------------------------------------------------------


@dataclass
class FitArguments:
    """The arguments of ``fit``, checked and resolved: what the run reads."""

    loss: object
    optimizer: object
    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    val: tuple | None
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int | None
    progress: bool | None
    clip: float | None
    clip_value: float | None
    metrics: list
    callbacks: list
    resume_from: object


def check_fit_arguments(
    model,
    X,
    y,
    *,
    loss,
    optimizer,
    epochs,
    batch_size,
    shuffle,
    seed,
    validation_data,
    validation_split,
    metrics,
    callbacks,
    progress,
    clip_grad_norm,
    clip_grad_value,
    sample_weight,
    checkpoint,
    resume_from,
) -> FitArguments:
    """Check every argument of ``fit`` up front (see its docstring), before any training."""
    loss = resolve_loss(loss)
    X = check_array("X", X, n_features=model.n_features, dtype=model.dtype)
    y = check_targets(y, loss, model)
    check_same_length("X", X, "y", y)
    if sample_weight is not None:
        sample_weight = check_sample_weight("sample_weight", sample_weight, len(X), model.dtype)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    validation_split = check_fraction("validation_split", validation_split)
    clip = None if clip_grad_norm is None else check_positive("clip_grad_norm", clip_grad_norm)
    clip_value = (
        None if clip_grad_value is None else check_positive("clip_grad_value", clip_grad_value)
    )
    if clip is not None and clip_value is not None:
        raise ValueError(
            "Received both `clip_grad_norm` and `clip_grad_value`; expected at most one. "
            f"Received: clip_grad_norm={clip_grad_norm!r}, clip_grad_value={clip_grad_value!r}"
        )
    shuffle = check_bool("shuffle", shuffle)
    progress = None if progress is None else check_bool("progress", progress)
    if seed is not None:
        check_non_negative_int("seed", seed)
    check_path("checkpoint", checkpoint)
    check_path("resume_from", resume_from)
    optimizer = resolve_optimizer(optimizer, model)
    for i, layer in enumerate(model.layers):
        reason = layer.fit_warning()
        if reason is not None:
            warnings.warn(f"model.layers[{i}], {layer!r}, {reason}", stacklevel=4)
    warn_if_the_output_is_squashed(model, loss)
    if not np.isfinite(model.theta).all():
        bad = next(
            f"{p.name} of layer {i}"
            for i, layer in enumerate(model.layers)
            for p in layer.parameters()
            if not np.isfinite(p.data).all()
        )
        raise ValueError(
            f"The model's weights must be finite before training, but {bad} holds NaN or infinity"
        )
    if (clip is not None or clip_value is not None) and optimizer.full_batch:
        name = "clip_grad_norm" if clip is not None else "clip_grad_value"
        raise ValueError(
            f"`{name}` does not apply to {type(optimizer).__name__}, which minimises "
            "the full-batch loss with its own line search"
        )
    metric_objs = resolve_metrics(metrics)
    callbacks = resolve_callbacks(callbacks)
    if checkpoint is not None:  # after the user's callbacks, so their states keep positions
        callbacks.append(ModelCheckpoint(checkpoint, save_training_state=True))
    if any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        try:  # refused now rather than at the end of the first epoch
            check_saveable(model)
        except TypeError as err:
            raise TypeError(
                f"fit cannot write checkpoints (`checkpoint=` or a ModelCheckpoint): {err}"
            ) from None
    X, y, sample_weight, val = split_validation(
        X, y, sample_weight, validation_data, validation_split, loss, model
    )
    check_batch_fits_layers(model, len(X), batch_size)
    return FitArguments(
        loss, optimizer, X, y, sample_weight, val, epochs, min(batch_size, len(X)), shuffle,
        seed, progress, clip, clip_value, metric_objs, callbacks, resume_from,
    )  # fmt: skip


def check_batch_fits_layers(model, n_samples: int, batch_size: int) -> None:
    """Every training batch, the last one too, holds what each layer needs (BatchNorm1d: 2)."""
    smallest = min(n_samples % batch_size or batch_size, n_samples)
    needy = next((la for la in model.layers if la.min_batch_size > smallest), None)
    if needy is not None:
        raise ValueError(
            f"With {n_samples} training samples and batch_size={batch_size} a batch holds "
            f"{smallest} sample(s), but {needy!r} needs at least {needy.min_batch_size} in "
            "training; choose another batch_size"
        )
