"""Callbacks: hooks into the training loop (early stopping, checkpoints, schedules)."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nn.checks import check_bool, check_non_negative, check_non_negative_int
from nn.training.checkpoint import save_checkpoint
from nn.training.history import StateMismatchError
from optim.lr_scheduler import LRScheduler


class Callback:
    """Base class; ``fit`` calls these hooks with the model set in ``self.model``.

    ``logs`` holds the latest values by name (``"loss"``, ``"val_loss"``, metrics, ``"lr"``).
    Setting ``self.model.stop_training = True`` ends training after the current epoch (after
    the current batch when set in ``on_batch_end``).

    ``self.params`` is set by ``fit`` before ``on_train_begin``: ``"epochs"``,
    ``"batch_size"``, ``"steps"`` (batches per epoch), ``"optimizer"``, ``"history"`` (the
    :class:`~nn.training.History` being filled) and ``"callbacks"`` (all of them, in the
    order they run).

    A callback with state worth resuming implements :meth:`state_dict` and
    :meth:`load_state_dict`; training checkpoints save and restore it.
    """

    model = None
    params: dict = {}
    #: Whether a data-parallel fit runs it on rank 0 only (callbacks that write files).
    rank_zero_only: bool = False

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs: dict) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict) -> None: ...

    def on_batch_end(self, batch: int, logs: dict) -> None:
        """After each optimizer step, with ``logs = {"loss": batch loss, "size": batch size}``.

        ``fit`` only calls it for callbacks that override it (the loop stays lean otherwise).
        """

    def on_epoch_end(self, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, logs: dict) -> None: ...

    def state_dict(self) -> dict:
        """State to save in a training checkpoint: JSON values and ndarrays, by name."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (called after ``on_train_begin``).

        ``state`` may come from a file written by anyone: check all of it before writing
        anything. Raise :class:`StateMismatchError` when it is well-formed but was saved with
        another configuration of this callback, and ``KeyError``, ``TypeError`` or
        ``ValueError`` when it is malformed (resuming then reports a damaged checkpoint).
        Resuming runs it on a deep copy of the callback first, so that a checkpoint failing
        any check leaves every object as it was.
        """


def _mode_for(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(
            f"Received an invalid value for `mode`, expected one of ('auto', 'min', 'max'). "
            f"Received: mode={mode!r}"
        )
    if mode == "auto":
        return "max" if any(k in monitor for k in ("acc", "auc")) else "min"
    return mode


class _Monitor:
    """Tracks the best value of a logged quantity."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"`monitor` must be a string such as 'val_loss'. Received: {monitor!r}")
        min_delta = check_non_negative("min_delta", min_delta)
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode)
        self.min_delta = float(min_delta)
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"{self.monitor!r} is not among the logged values {sorted(logs)}; pass "
                "validation data to monitor a val_ value, or monitor one that is logged"
            )
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        """Better than the best by more than ``min_delta`` (NaN never improves)."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    An epoch improves when ``value < best − min_delta`` (``mode="min"``) or
    ``value > best + min_delta`` (``"max"``); the first epoch always improves on ±∞. After
    ``patience`` epochs in a row without improvement, training stops (``patience=0``: at
    the first epoch that does not improve).

    Parameters
    ----------
    monitor : str
        A logged value, e.g. ``"val_loss"`` or ``"val_accuracy"``.
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        The smallest change that counts as an improvement, ≥ 0.
    mode : {"auto", "min", "max"}
        Direction of improvement; ``auto`` maximises accuracy-like names, minimises others.
    restore_best_weights : bool
        At the end of training, whether it stopped early or ran all epochs, put back the
        weights (θ and layer buffers) of the best epoch.

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch, stopped_epoch : int or None
        0-based epoch indices of the best value and of the stop (None if it did not stop).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self._tracker = _Monitor(monitor, mode, min_delta)
        self.patience = check_non_negative_int("patience", patience)
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)
        self._reset()

    def _reset(self) -> None:
        self._tracker.reset()
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self._best_state: list[np.ndarray] | None = None

    @property
    def monitor(self) -> str:
        return self._tracker.monitor

    @property
    def best(self) -> float:
        return self._tracker.best

    def on_train_begin(self, logs: dict) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        value = self._tracker.value(logs)
        if self._tracker.improved(value):
            self._tracker.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self._best_state = _snapshot(self.model, self._best_state)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict) -> None:
        if self.restore_best_weights and self._best_state is not None:
            _restore(self.model, self._best_state)

    def state_dict(self) -> dict:
        state = {
            "best": self._tracker.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }
        for i, array in enumerate(self._best_state or ()):
            state[f"best_weights.{i}"] = array
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the best value, the counters and the best weights (all checked first).

        The best weights, when saved, must match θ and the layer buffers of ``self.model``.
        """
        owner = type(self).__name__
        n_arrays = sum(1 for key in _keys(owner, state) if key.startswith("best_weights."))
        expected = {"best", "wait", "best_epoch", "stopped_epoch"}
        expected |= {f"best_weights.{i}" for i in range(n_arrays)}
        _expect_keys(owner, state, expected)
        best = _number(owner, "best", state["best"])
        wait = _count(owner, "wait", state["wait"])
        best_epoch = _count(owner, "best_epoch", state["best_epoch"], optional=True)
        stopped_epoch = _count(owner, "stopped_epoch", state["stopped_epoch"], optional=True)
        arrays = [state[f"best_weights.{i}"] for i in range(n_arrays)]
        if arrays and self.model is not None:
            _check_like(owner, "best_weights", arrays, _model_arrays(self.model))
        # Everything checked: write.
        self._tracker.best = best
        self.wait = wait
        self.best_epoch = best_epoch
        self.stopped_epoch = stopped_epoch
        self._best_state = [np.array(a) for a in arrays] or None


def _keys(owner: str, state: object) -> list[str]:
    if not isinstance(state, Mapping):
        raise TypeError(
            f"The state of {owner} must be a mapping from {owner}.state_dict(). "
            f"Received: {type(state).__name__}"
        )
    return [str(key) for key in state]


def _expect_keys(owner: str, state: object, expected: set[str]) -> None:
    """``state`` is a mapping with exactly the keys ``expected``."""
    keys = set(_keys(owner, state))
    missing, unexpected = sorted(expected - keys), sorted(keys - expected)
    if missing or unexpected:
        raise ValueError(
            f"The state of {owner} does not match {owner}.state_dict(): missing keys "
            f"{missing}, unexpected keys {unexpected}"
        )


def _number(owner: str, name: str, value: object) -> float:
    """A real number, ±inf allowed (an initial best value), NaN not."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"The state {name!r} of {owner} must be a number. Received: {value!r} of type "
            f"{type(value).__name__}"
        )
    if math.isnan(value):
        raise ValueError(f"The state {name!r} of {owner} must be a number, not NaN")
    return float(value)


def _count(owner: str, name: str, value: object, optional: bool = False) -> int | None:
    """A non-negative integer (or None when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or value < 0:
        expected = "a non-negative integer" + (" or None" if optional else "")
        raise TypeError(f"The state {name!r} of {owner} must be {expected}. Received: {value!r}")
    return int(value)


def _check_like(owner: str, name: str, arrays: list, like: list[np.ndarray]) -> None:
    """``arrays`` are ndarrays of the shapes and dtypes of ``like``, one each."""
    got = [
        (a.shape, a.dtype.name) if isinstance(a, np.ndarray) else type(a).__name__ for a in arrays
    ]
    wanted = [(a.shape, a.dtype.name) for a in like]
    if got != wanted:
        raise ValueError(
            f"The saved {name} of {owner} do not fit the model: expected arrays (shape, "
            f"dtype) {wanted}. Received: {got}"
        )


def _model_arrays(model) -> list[np.ndarray]:
    """θ and every layer buffer: the model's whole state."""
    arrays = [model.theta]
    arrays += [a for layer in model.layers for a in layer.buffers().values()]
    return arrays


def _snapshot(model, into: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Copies of θ and of every layer buffer, reusing the arrays of ``into`` if given."""
    arrays = _model_arrays(model)
    if into is None or [a.shape for a in into] != [a.shape for a in arrays]:
        return [a.copy() for a in arrays]
    for target, array in zip(into, arrays, strict=True):
        target[...] = array
    return into


def _restore(model, state: list[np.ndarray]) -> None:
    for target, saved in zip(_model_arrays(model), state, strict=True):
        target[...] = saved


class ModelCheckpoint(Callback):
    """Save the model (atomically) at the end of every epoch, or only when it improves.

    Runs after every other callback of ``fit``, so what it saves is the state the next epoch
    starts from (for instance the learning rate a schedule has just set).

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file to write. As in Keras, it is a format string: ``{epoch}`` (counted
        from 1) and the epoch's logs fill it in, e.g. ``"ep{epoch:02d}-{val_loss:.3f}.npz"``.
        Its directory must exist.
    monitor, mode : str
        What counts as better, as for :class:`EarlyStopping`, when ``save_best_only``.
    save_best_only : bool
        Only write when ``monitor`` improves on the best value so far.
    save_training_state : bool
        Write a training checkpoint (:func:`nn.training.checkpoint.save_checkpoint`: the model plus
        the optimizer's state, the epoch, ``model.rng``, the history and the callbacks'
        state) that ``fit(..., resume_from=path)`` continues exactly. The file still loads
        with ``nn.load`` as a plain model.

    Attributes
    ----------
    saved_epochs : list of int
        The 0-based epochs at which a file was written.
    """

    rank_zero_only = True

    def __init__(
        self,
        path,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        save_training_state: bool = False,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"Received an invalid value for `path`, expected a file path. Received: {path!r}"
            )
        self.path = path
        self.save_best_only = bool(save_best_only)
        self.save_training_state = bool(save_training_state)
        self._tracker = _Monitor(monitor, mode, 0.0)
        self.saved_epochs: list[int] = []

    def on_train_begin(self, logs: dict) -> None:
        directory = Path(self.path).parent
        if not directory.is_dir():
            raise ValueError(
                f"ModelCheckpoint cannot write {str(self.path)!r}: the directory "
                f"{str(directory)!r} does not exist"
            )

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.save_best_only:
            value = self._tracker.value(logs)
            if not self._tracker.improved(value):
                return
            self._tracker.best = value
        self.saved_epochs.append(epoch)
        try:
            path = str(self.path).format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"ModelCheckpoint cannot fill in the path {str(self.path)!r} ({err!r}): it can "
                f"use {{epoch}} and the logs {sorted(logs)}"
            ) from None
        if self.save_training_state:
            save_checkpoint(
                path,
                self.model,
                self.params["optimizer"],
                epoch=epoch + 1,
                history=self.params.get("history"),
                callbacks=self.params.get("callbacks", ()),
            )
        else:
            self.model.save(path)

    def state_dict(self) -> dict:
        if not self.save_best_only:
            return {}  # nothing to carry over: every epoch is saved
        return {"best": self._tracker.best, "saved_epochs": list(self.saved_epochs)}

    def load_state_dict(self, state: dict) -> None:
        """Restore the best value and the saved epochs (all checked first)."""
        owner = type(self).__name__
        _expect_keys(owner, state, {"best", "saved_epochs"})
        best = _number(owner, "best", state["best"])
        epochs = state["saved_epochs"]
        if not isinstance(epochs, list | tuple):
            raise TypeError(
                f"The state 'saved_epochs' of {owner} must be a list of epochs. Received: "
                f"{epochs!r:.200}"
            )
        epochs = [_count(owner, "saved_epochs", e) for e in epochs]
        # Everything checked: write.
        self._tracker.best = best
        self.saved_epochs = epochs


class LearningRateScheduler(Callback):
    """Step an ``optim`` learning-rate schedule once per epoch.

    ``fit`` wraps schedule objects passed in ``callbacks`` in this callback automatically.
    The rate a schedule sets at the end of epoch ``e`` is used in epoch ``e + 1``; History's
    ``lr`` records the rate used during each epoch.

    Parameters
    ----------
    scheduler : optim.LRScheduler
    monitor : str, optional
        For schedules that take a metric (``ReduceLROnPlateau``): the logged value passed to
        ``step``. Default: ``"val_loss"`` when validating, else ``"loss"``.
    """

    def __init__(self, scheduler, monitor: str | None = None) -> None:
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(
                "Received an invalid value for `scheduler`, expected an optim learning-rate "
                f"schedule such as optim.StepLR(...). Received: {scheduler!r}"
            )
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"`monitor` must be a string such as 'val_loss'. Received: {monitor!r}")
        self.scheduler = scheduler
        self.monitor = monitor

    def on_train_begin(self, logs: dict) -> None:
        optimizer = self.params.get("optimizer")
        if optimizer is not None and optimizer is not self.scheduler.optimizer:
            raise ValueError(
                f"The schedule {self.scheduler!r} sets the learning rate of another optimizer "
                "than the one being trained; build it on the optimizer passed to fit"
            )

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if getattr(self.scheduler, "needs_metric", False):
            key = self.monitor
            if key is None:
                key = "val_loss" if "val_loss" in logs else "loss"
            elif key not in logs:
                raise ValueError(
                    f"{key!r} is not among the logged values {sorted(logs)}; pass validation "
                    "data to monitor a val_ value, or monitor one that is logged"
                )
            self.scheduler.step(float(logs[key]))
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the schedule's counters (checked first).

        Raises
        ------
        StateMismatchError
            When the state was saved from another schedule class or other hyperparameters.
        KeyError, TypeError, ValueError
            When the state is malformed.
        """
        owner = type(self).__name__
        _expect_keys(owner, state, {"scheduler"})
        saved, live = state["scheduler"], self.scheduler.state_dict()
        name = type(self.scheduler).__name__
        saved_kind = saved.get("scheduler") if isinstance(saved, Mapping) else None
        if not isinstance(saved_kind, str):
            raise TypeError(
                f"The state of {owner} must hold a schedule's state_dict() with its class "
                f"name. Received: {saved!r:.200}"
            )
        if saved_kind != name:
            raise StateMismatchError(
                f"The schedule was saved from {saved_kind!r}; this one is {name!r}. Resume with "
                f"a {saved_kind} of the same hyperparameters."
            )
        _expect_keys(name, saved, set(live))
        for key, value in live.items():
            _check_like_scalar(name, key, saved[key], value)
        try:
            self.scheduler.load_state_dict(saved)
        except ValueError as err:  # the form is checked: a hyperparameter differs
            raise StateMismatchError(str(err)) from err


def _check_like_scalar(owner: str, name: str, saved: object, live: object) -> None:
    """``saved`` is a JSON scalar of the kind of ``live``: a str, a bool, an integer ≥ 0 or a
    number (learning rates finite and ≥ 0)."""
    if isinstance(live, str | bool):
        if type(saved) is not type(live):
            raise TypeError(
                f"The state {name!r} of {owner} must be a {type(live).__name__} like {live!r}. "
                f"Received: {saved!r:.200}"
            )
    elif isinstance(live, numbers.Integral):
        _count(owner, name, saved)
    else:
        value = _number(owner, name, saved)
        if name.endswith("lr") and not (math.isfinite(value) and value >= 0):
            raise ValueError(
                f"The state {name!r} of {owner} must be a finite non-negative learning rate. "
                f"Received: {saved!r}"
            )
