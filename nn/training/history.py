"""What training returns and raises: History, TrainingDivergedError, StateMismatchError."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nn.training.plot import plot_history


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

    def plot(self, path=None, metrics=None):
        """Draw the loss and each metric per epoch (see :func:`nn.training.plot.plot_history`).

        Needs matplotlib (``pip install 'chainrule[plot]'``); returns the Figure.
        """
        return plot_history(self, path, metrics)


# -- resolving arguments ---------------------------------------------------------------------


class StateMismatchError(ValueError):
    """A saved callback state is well-formed but was saved with another configuration.

    Raised by :meth:`Callback.load_state_dict` when, for instance, a schedule is resumed with
    other hyperparameters than the ones it was saved with: a user error, reported as such by
    ``fit(..., resume_from=...)``, whereas any other error of ``load_state_dict`` means the
    checkpoint is damaged (:class:`~nn.files.ModelFileError`).
    """
