"""The Optimizer base class: parameters, the (θ, ∇θ) vectors, learning rate and saved state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim._vectors import VectorPair, check_params, vector_pairs


@dataclass(eq=False, slots=True)
class Slot:
    """One ``(θ, ∇θ)`` vector pair and every array an update rule keeps for it.

    Attributes
    ----------
    theta, grad : ndarray, shape (n,)
        Parameters (updated in place) and their gradient (read only): views into the
        parameters' own arrays.
    state : dict of str to ndarray, each shape (n,)
        Saved buffers by PyTorch's names (``"exp_avg"``, ``"momentum_buffer"``, ...). A buffer
        the configuration does not use is absent, so ``state.get(name)`` gives None.
    work : ndarray, shape (n,), or None
        Scratch array reused by every step; not saved.
    decayed : ndarray, shape (n,), or None
        Scratch array holding ``g = ∇θ + λθ`` for a coupled ``weight_decay != 0``, else None.
    """

    theta: np.ndarray
    grad: np.ndarray
    state: dict[str, np.ndarray] = field(default_factory=dict)
    work: np.ndarray | None = None
    decayed: np.ndarray | None = None


class Optimizer:
    """Base class of the optimizers: updates parameters in place from their gradients.

    The optimizer works on :attr:`slots`, one :class:`Slot` per ``(data, grad)`` vector pair
    found at construction. For a model whose parameters are views into one parameter vector θ
    and one gradient vector ∇θ (every :class:`~nn.Sequential`) there is a single slot for
    ``(θ, ∇θ)``, so a step costs a few whole-vector operations however many layers there are;
    otherwise there is one slot per (flattened) parameter. Each slot carries its own state
    buffers (momentum, moments) and scratch arrays, allocated once, and updates run in place in
    the parameters' dtype.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update, e.g. ``model.parameters()``. Captured at construction.
    lr : float
        Learning rate γ ≥ 0. It may be changed between steps (schedules do).

    Attributes
    ----------
    params : list of Parameter
    slots : list of Slot
        What :meth:`step` updates: one record per vector pair, a single one for a θ layout.
    steps : int
        The number of steps taken so far (``t`` in the update rules; the next step is ``t+1``).
    full_batch : bool
        False: :meth:`step` takes one mini-batch step. True for :class:`~optim.LBFGS`, which
        minimizes the full-batch loss through a closure and is called once per epoch.
    """

    full_batch: bool = False
    #: Constructor arguments besides ``params`` and ``lr``; fixed once the optimizer is built.
    _config: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params: list[Parameter] = check_params(params)
        self.slots: list[Slot] = [Slot(data, grad) for data, grad in vector_pairs(self.params)]
        self.lr = lr
        self.steps = 0
        self._state_names: list[str] = []

    @property
    def vectors(self) -> list[VectorPair]:
        """The ``(data, grad)`` pairs updated by :meth:`step`; ``[(θ, ∇θ)]`` for a θ layout."""
        return [(slot.theta, slot.grad) for slot in self.slots]

    @property
    def state(self) -> dict[str, list[np.ndarray]]:
        """The saved buffers by name: a new dict of the live arrays, one per slot."""
        return {name: [slot.state[name] for slot in self.slots] for name in self._state_names}

    # -- learning rate and fixed hyperparameters ----------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate γ; settable (validated) between steps."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = checks.check_non_negative("lr", value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._config and name in self.__dict__:
            raise AttributeError(
                f"`{name}` is fixed when {type(self).__name__} is built (its state buffers "
                f"depend on it); build a new optimizer to change it. Only `lr` may change."
            )
        super().__setattr__(name, value)

    # -- the contract ----------------------------------------------------------------------
    def step(self) -> None:
        """Update every parameter once from its gradient (``steps`` goes up by one)."""
        raise NotImplementedError

    def step_bound(self, grad_norm: float, theta_norm: float) -> float | None:
        """An upper bound on ``‖θ_t − θ_{t−1}‖₂`` for the next :meth:`step`, or None if unknown.

        ``fit`` skips the backup of θ for a step whose bound shows that θ cannot overflow.
        Bounds leave out floating-point rounding (the caller keeps a wide margin). The base
        class knows no bound.

        Parameters
        ----------
        grad_norm : float
            An upper bound on ``‖∇θ‖₂`` of the gradient the step will use (finite).
        theta_norm : float
            An upper bound on ``‖θ‖₂`` before the step (finite).
        """
        return None

    def zero_grad(self) -> None:
        """Set every gradient to zero: one fill per vector (a single one for a θ layout)."""
        for slot in self.slots:
            slot.grad.fill(0)

    # -- buffers -------------------------------------------------------------------------
    def _add_state(self, *names: str, value: float = 0.0) -> None:
        """Give every slot the saved buffers ``names``, each filled with ``value``."""
        for name in names:
            self._state_names.append(name)
            for slot in self.slots:
                slot.state[name] = np.full_like(slot.theta, value)

    def _add_work(self, *, decayed: bool) -> None:
        """Give every slot its scratch array ``work``, and ``decayed`` when asked for."""
        for slot in self.slots:
            slot.decayed = np.empty_like(slot.theta) if decayed else None
            slot.work = np.empty_like(slot.theta)

    # -- saving and restoring --------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, float | int | bool | str]:
        """The fixed hyperparameters as JSON scalars, as saved in :meth:`state_dict`."""
        return {name: getattr(self, name) for name in self._config}

    @property
    def _size(self) -> int:
        return sum(slot.theta.size for slot in self.slots)

    @property
    def _dtype(self) -> np.dtype:
        return np.result_type(*(p.data.dtype for p in self.params))

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain values, ready for ``np.savez`` or JSON.

        Returns
        -------
        dict
            ``"optimizer"`` (class name), ``"lr"``, ``"step"`` and the hyperparameters as
            JSON-compatible scalars, and each state buffer (e.g. ``"exp_avg"``) as a new 1-D
            array of all parameters in order, shape ``(n_params,)`` in the parameters' dtype,
            whatever the layout, so a state saved from a θ-vector model loads into a model with
            separate parameters and back.
        """
        out: dict[str, Any] = {"optimizer": type(self).__name__, "lr": self.lr, "step": self.steps}
        out.update(self._hyperparameters())
        for name in self._state_names:
            out[name] = np.concatenate(
                [slot.state[name].reshape(-1) for slot in self.slots] or [np.zeros(0)],
                dtype=self._dtype,
            )
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore ``lr``, the step count and the state buffers from :meth:`state_dict`.

        Everything is checked before anything is written.

        Raises
        ------
        ValueError
            When the keys, the optimizer class, a hyperparameter, or the shape or dtype of a
            buffer differ from this optimizer's.
        """
        keys = {"optimizer", "lr", "step", *self._hyperparameters(), *self._state_names}
        checks.check_state_dict_header(self, state_dict, keys, "optimizer", "optimizer")
        for key, value in self._hyperparameters().items():
            saved = checks.plain(state_dict[key])
            if saved != value or isinstance(saved, bool) != isinstance(value, bool):
                raise ValueError(
                    f"state_dict was saved with {key}={saved!r}; this optimizer has "
                    f"{key}={value!r}. Build the optimizer with the same hyperparameters."
                )
        lr = checks.check_non_negative("lr", checks.plain(state_dict["lr"]))
        steps = checks.check_non_negative_int("step", checks.plain(state_dict["step"]))
        shape, dtype = (self._size,), self._dtype
        for key in self._state_names:
            array = state_dict[key]
            if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
                got = (
                    f"shape {array.shape}, dtype {array.dtype}"
                    if isinstance(array, np.ndarray)
                    else type(array).__name__
                )
                raise ValueError(
                    f"state_dict[{key!r}] must be an ndarray of shape {shape} and dtype "
                    f"{dtype}. Received: {got}"
                )
        # Everything checked: write.
        self.lr = lr
        self.steps = steps
        for key in self._state_names:
            start = 0
            for slot in self.slots:
                buffer = slot.state[key]
                buffer[...] = state_dict[key][start : start + buffer.size].reshape(buffer.shape)
                start += buffer.size

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("lr", *self._config))
        return f"{type(self).__name__}({args})"
