"""Callbacks: hooks into the training loop (early stopping, checkpoints, schedules)."""

from __future__ import annotations

import math

import numpy as np


class Callback:
    """Base class; ``fit`` calls these hooks with the model set in ``self.model``.

    ``logs`` holds the latest values by name (``"loss"``, ``"val_loss"``, metrics, ``"lr"``).
    Setting ``self.model.stop_training = True`` ends training after the current epoch.
    """

    model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict) -> None: ...

    def on_batch_end(self, batch: int, logs: dict) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, logs: dict) -> None: ...


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
        self.monitor = monitor
        self.mode = _mode_for(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"{self.monitor!r} is not among the logged values {sorted(logs)}; pass "
                "validation data to monitor a val_ value, or monitor one that is logged"
            )
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        A logged value, e.g. ``"val_loss"`` or ``"val_accuracy"``.
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        The smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        Direction of improvement; ``auto`` maximises accuracy-like names, minimises others.
    restore_best_weights : bool
        At the end of training, whether it stopped early or ran all epochs, put back the
        weights (θ and layer buffers) of the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(
                f"Received an invalid value for `patience`, expected a non-negative integer. "
                f"Received: patience={patience!r}"
            )
        self._tracker = _Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self._best_state: list[np.ndarray] | None = None

    @property
    def best(self) -> float:
        return self._tracker.best

    def on_train_begin(self, logs: dict) -> None:
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        value = self._tracker.value(logs)
        if self._tracker.improved(value):
            self._tracker.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self._best_state = _snapshot(self.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict) -> None:
        if self.restore_best_weights and self._best_state is not None:
            _restore(self.model, self._best_state)


def _snapshot(model) -> list[np.ndarray]:
    """Copies of θ and of every layer buffer."""
    arrays = [model.theta]
    arrays += [a for layer in model.layers for a in layer.buffers().values()]
    return [a.copy() for a in arrays]


def _restore(model, state: list[np.ndarray]) -> None:
    arrays = [model.theta]
    arrays += [a for layer in model.layers for a in layer.buffers().values()]
    for target, saved in zip(arrays, state, strict=True):
        target[...] = saved


class ModelCheckpoint(Callback):
    """Save the model (atomically) at the end of every epoch, or only when it improves.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file to write; ``{epoch}`` in the name is replaced by the epoch number.
    monitor, mode : str
        What counts as better, as for :class:`EarlyStopping`, when ``save_best_only``.
    save_best_only : bool
        Only overwrite the file when ``monitor`` improves.
    """

    def __init__(
        self,
        path,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.path = path
        self.save_best_only = save_best_only
        self._tracker = _Monitor(monitor, mode, 0.0)
        self.saved_epochs: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.save_best_only:
            value = self._tracker.value(logs)
            if not self._tracker.improved(value):
                return
            self._tracker.best = value
        path = str(self.path).replace("{epoch}", str(epoch + 1))
        self.model.save(path)
        self.saved_epochs.append(epoch)


class LearningRateScheduler(Callback):
    """Step an ``optim`` learning-rate schedule once per epoch.

    ``fit`` wraps schedule objects passed in ``callbacks`` in this callback automatically.
    ``ReduceLROnPlateau``-style schedules receive the value of ``monitor``.
    """

    def __init__(self, scheduler, monitor: str = "val_loss") -> None:
        self.scheduler = scheduler
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if getattr(self.scheduler, "needs_metric", False):
            key = self.monitor if self.monitor in logs else "loss"
            self.scheduler.step(logs[key])
        else:
            self.scheduler.step()
