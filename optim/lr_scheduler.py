"""Learning-rate schedules, stepped once per epoch, with PyTorch's semantics.

A schedule reads the optimizer's learning rate when it is built (the base rate γ₀), sets
``optimizer.lr`` for epoch 0 right away, and sets it for epoch ``e`` at its ``e``-th
:meth:`~LRScheduler.step`. Closed-form schedules compute ``γ_e`` from γ₀ and ``e`` alone (PyTorch's
documented formulas, its ``_get_closed_form_lr``), so use one per optimizer.
:class:`ReduceLROnPlateau` instead multiplies the current rate when a metric stops improving.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from nn import checks
from optim.optimizer import Optimizer


class LRScheduler:
    """Base class of the schedules.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``lr`` the schedule sets. Full-batch optimizers (L-BFGS) have no learning rate
        and are refused.

    Attributes
    ----------
    optimizer : Optimizer
    base_lr : float
        γ₀, the optimizer's ``lr`` when the schedule was built.
    last_epoch : int
        The epoch whose rate is in force (0 after construction, +1 per :meth:`step`).
    """

    #: Whether :meth:`step` takes the monitored metric (True only for ReduceLROnPlateau).
    needs_metric: bool = False
    #: Constructor arguments besides ``optimizer``, saved in and checked by the state dict.
    _config: tuple[str, ...] = ()
    #: Attributes that change while training, restored by :meth:`load_state_dict`.
    _counters: tuple[str, ...] = ("base_lr", "last_epoch", "_last_lr")

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                "Received an invalid value for `optimizer`, expected an optim.Optimizer. "
                f"Received: optimizer={optimizer!r}"
            )
        if optimizer.full_batch:
            raise TypeError(
                f"{type(optimizer).__name__} chooses its own step lengths by line search; "
                "learning-rate schedules do not apply to it."
            )
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._last_lr = optimizer.lr

    def _start(self) -> None:
        """Set the rate of epoch 0 (called at the end of each subclass constructor)."""
        self._set_lr(self.lr_at(0))

    def _set_lr(self, lr: float) -> None:
        self.optimizer.lr = lr
        self._last_lr = self.optimizer.lr

    def lr_at(self, epoch: int) -> float:
        """The closed-form learning rate ``γ_e`` of epoch ``e``, from γ₀ and ``e`` alone.

        Parameters
        ----------
        epoch : int
            The epoch ``e`` ≥ 0; epoch 0's rate is set at construction.

        Returns
        -------
        float
        """
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch: ``last_epoch += 1`` and set ``optimizer.lr = γ_last_epoch``."""
        self.last_epoch += 1
        self._set_lr(self.lr_at(self.last_epoch))

    def get_last_lr(self) -> float:
        """The learning rate this schedule set last (PyTorch returns a list per group)."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state: its name, hyperparameters and counters as JSON scalars."""
        out: dict[str, Any] = {"scheduler": type(self).__name__}
        out.update({name: getattr(self, name) for name in self._config})
        out.update({name.lstrip("_"): getattr(self, name) for name in self._counters})
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the counters saved by :meth:`state_dict` (checked before any is written).

        The optimizer's ``lr`` is restored by the optimizer's own ``load_state_dict``.

        Raises
        ------
        ValueError
            When the keys, the schedule class or a hyperparameter differ from this schedule's.
        """
        checks.check_state_dict_header(
            self, state_dict, set(self.state_dict()), "scheduler", "schedule"
        )
        for key in self._config:
            saved, value = checks.plain(state_dict[key]), getattr(self, key)
            if saved != value:
                raise ValueError(
                    f"state_dict was saved with {key}={saved!r}; this schedule has "
                    f"{key}={value!r}. Build the schedule with the same hyperparameters."
                )
        values = {name: checks.plain(state_dict[name.lstrip("_")]) for name in self._counters}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    f"state_dict[{name.lstrip('_')!r}] must be a number. Received: {value!r}"
                )
        for name, value in values.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._config)
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    r"""Decay by ``gamma`` every ``step_size`` epochs: :math:`\gamma_e = \gamma_0\,
    \text{gamma}^{\lfloor e / \text{step\_size} \rfloor}`.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Epochs between decays, ≥ 1.
    gamma : float, default 0.1
        Multiplicative factor > 0.
    """

    _config = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        step_size = checks.check_positive_int("step_size", step_size)
        gamma = checks.check_positive("gamma", gamma)
        super().__init__(optimizer)
        self.step_size = step_size
        self.gamma = gamma
        self._start()

    def lr_at(self, epoch: int) -> float:
        """``γ_e = γ₀ · gamma^⌊e / step_size⌋``.

        Parameters
        ----------
        epoch : int
            The epoch ``e`` ≥ 0.

        Returns
        -------
        float
        """
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    r"""Decay by ``gamma`` every epoch: :math:`\gamma_e = \gamma_0\, \text{gamma}^e`.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        Multiplicative factor > 0.
    """

    _config = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        gamma = checks.check_positive("gamma", gamma)
        super().__init__(optimizer)
        self.gamma = gamma
        self._start()

    def lr_at(self, epoch: int) -> float:
        """``γ_e = γ₀ · gammaᵉ``.

        Parameters
        ----------
        epoch : int
            The epoch ``e`` ≥ 0.

        Returns
        -------
        float
        """
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from γ₀ to ``eta_min`` over ``T_max`` epochs (SGDR without restarts).

    .. math::

        \gamma_e = \eta_{min} + \tfrac{1}{2}(\gamma_0 - \eta_{min})
            \left(1 + \cos\frac{e\,\pi}{T_{max}}\right)

    PyTorch's closed form; past ``T_max`` the cosine goes on, rising back towards γ₀.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half-period in epochs, ≥ 1.
    eta_min : float, default 0
        Minimum learning rate ≥ 0.
    """

    _config = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        T_max = checks.check_positive_int("T_max", T_max)  # noqa: N806
        eta_min = checks.check_non_negative("eta_min", eta_min)
        super().__init__(optimizer)
        self.T_max = T_max
        self.eta_min = eta_min
        self._start()

    def lr_at(self, epoch: int) -> float:
        """``γ_e = η_min + (γ₀ − η_min)(1 + cos(eπ / T_max)) / 2``.

        Parameters
        ----------
        epoch : int
            The epoch ``e`` ≥ 0 (past ``T_max`` the rate rises again).

        Returns
        -------
        float
        """
        cosine = 1.0 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cosine / 2.0


class LinearWarmup(LRScheduler):
    r"""Linear warm-up from ``start_factor``·γ₀ to γ₀ over ``warmup_epochs`` epochs.

    .. math::

        \gamma_e = \gamma_0 \left(f + (1 - f)\,
            \frac{\min(e, \text{warmup\_epochs})}{\text{warmup\_epochs}}\right)

    PyTorch's ``LinearLR(optimizer, start_factor, end_factor=1.0, total_iters=warmup_epochs)``.

    Parameters
    ----------
    optimizer : Optimizer
    warmup_epochs : int
        Epochs until the full rate γ₀, ≥ 1.
    start_factor : float, default 1/3
        ``f`` in (0, 1], the fraction of γ₀ used at epoch 0 (PyTorch's default).
    """

    _config = ("warmup_epochs", "start_factor")

    def __init__(
        self, optimizer: Optimizer, warmup_epochs: int, start_factor: float = 1.0 / 3
    ) -> None:
        warmup_epochs = checks.check_positive_int("warmup_epochs", warmup_epochs)
        start_factor = checks.check_positive("start_factor", start_factor)
        if start_factor > 1:
            raise checks.invalid("start_factor", "a number in (0, 1]", start_factor)
        super().__init__(optimizer)
        self.warmup_epochs = warmup_epochs
        self.start_factor = start_factor
        self._start()

    def lr_at(self, epoch: int) -> float:
        """``γ_e = γ₀ (f + (1 − f) · min(e, warmup_epochs) / warmup_epochs)``, ``f = start_factor``.

        Parameters
        ----------
        epoch : int
            The epoch ``e`` ≥ 0 (γ₀ from ``warmup_epochs`` on).

        Returns
        -------
        float
        """
        progress = min(epoch, self.warmup_epochs) / self.warmup_epochs
        return self.base_lr * (self.start_factor + (1.0 - self.start_factor) * progress)


class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the learning rate by ``factor`` when a metric stops improving.

    At each ``step(metric)``: the metric improves on the best value so far when
    ``metric < best·(1 − threshold)`` (``mode="min"``, ``threshold_mode="rel"``),
    ``metric < best − threshold`` (``"abs"``), or the mirror images for ``mode="max"``.
    Otherwise the count of bad epochs grows (and is reset to 0 while cooling down); once it
    exceeds ``patience``, ``lr ← max(lr·factor, min_lr)`` (skipped when that changes it by
    less than 1e-8), the count restarts and ``cooldown`` epochs pass before counting again.
    PyTorch's rule.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}, default "min"
        Whether the metric should go down (a loss) or up (an accuracy).
    factor : float, default 0.1
        Multiplicative factor in [0, 1).
    patience : int, default 10
        Bad epochs tolerated before reducing, ≥ 0.
    threshold : float, default 1e-4
        How much better than the best counts as an improvement, ≥ 0.
    threshold_mode : {"rel", "abs"}, default "rel"
        Whether ``threshold`` is relative to the best value or absolute.
    cooldown : int, default 0
        Epochs to wait after a reduction before counting bad epochs again, ≥ 0.
    min_lr : float, default 0
        Lower bound ≥ 0 of the learning rate.
    """

    needs_metric = True
    _config = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr")
    _counters = ("last_epoch", "_last_lr", "best", "num_bad_epochs", "cooldown_counter")
    #: Reductions smaller than this are skipped (PyTorch's ``eps``).
    eps = 1e-8

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        self.mode = checks.check_one_of("mode", mode, ("min", "max"))
        self.factor = checks.check_fraction("factor", factor)
        self.patience = checks.check_non_negative_int("patience", patience)
        self.threshold = checks.check_non_negative("threshold", threshold)
        self.threshold_mode = checks.check_one_of("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = checks.check_non_negative_int("cooldown", cooldown)
        self.min_lr = checks.check_non_negative("min_lr", min_lr)
        super().__init__(optimizer)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, metric: float, best: float) -> bool:
        """Whether ``metric`` improves on ``best`` by more than the threshold.

        For ``mode="min"``: ``metric < best·(1 − threshold)`` (``"rel"``) or
        ``metric < best − threshold`` (``"abs"``); for ``"max"``: ``metric > best·(1 + threshold)``
        or ``metric > best + threshold``.

        Parameters
        ----------
        metric, best : float
            The epoch's value and the best value so far.

        Returns
        -------
        bool
        """
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return metric < (best * (1.0 - self.threshold) if relative else best - self.threshold)
        return metric > (best * (1.0 + self.threshold) if relative else best + self.threshold)

    def step(self, metric: float) -> None:  # type: ignore[override]
        """Record the epoch's ``metric`` and set ``lr ← max(lr·factor, min_lr)`` if needed.

        A NaN metric counts as a bad epoch, as in PyTorch.

        Parameters
        ----------
        metric : float
            The monitored value of the epoch just finished, e.g. the validation loss.

        Raises
        ------
        TypeError
            When ``metric`` is not a real number.
        """
        if isinstance(metric, bool) or not isinstance(checks.plain(metric), numbers.Real):
            raise TypeError(
                "Received an invalid value for `metric`, expected a real number such as the "
                f"validation loss. Received: metric={metric!r} of type {type(metric).__name__}"
            )
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            old_lr = self.optimizer.lr
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self.optimizer.lr

    def lr_at(self, epoch: int) -> float:
        """Not available: the rate depends on the metrics seen, not on the epoch alone.

        Raises
        ------
        TypeError
            Always; read ``optimizer.lr`` or :meth:`get_last_lr` instead.
        """
        raise TypeError("ReduceLROnPlateau has no closed form: its rate depends on the metric.")
