"""The Optimizer base class: parameters, the (θ, ∇θ) vectors, learning rate and saved state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nn.parameter import Parameter
from optim import _checks as checks
from optim._vectors import VectorPair, check_params, vector_pairs


class Optimizer:
    """Base class of the optimizers: updates parameters in place from their gradients.

    The optimizer works on :attr:`vectors`, a list of ``(data, grad)`` pairs found once at
    construction. For a model whose parameters are views into one parameter vector θ and one
    gradient vector ∇θ (every :class:`~nn.Sequential`) it is the single pair ``(θ, ∇θ)``, so a
    step costs a few whole-vector operations however many layers there are; otherwise it holds
    one flattened pair per parameter. State buffers (momentum, moments) are vectors matching
    those pairs, allocated once, and updates run in place in the parameters' dtype.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update, e.g. ``model.parameters()``. Captured at construction.
    lr : float
        Learning rate γ ≥ 0. It may be changed between steps (schedules do).

    Attributes
    ----------
    params : list of Parameter
    vectors : list of (ndarray, ndarray)
        The ``(data, grad)`` pairs updated by :meth:`step`; ``[(θ, ∇θ)]`` for a θ-vector layout.
    state : dict of str to list of ndarray
        State buffers by name, one array per pair of :attr:`vectors`.
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
        self.vectors: list[VectorPair] = vector_pairs(self.params)
        self.lr = lr
        self.steps = 0
        self.state: dict[str, list[np.ndarray]] = {}

    # -- learning rate and fixed hyperparameters ----------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate γ; settable (validated) between steps."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = checks.non_negative("lr", value)

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

    def zero_grad(self) -> None:
        """Set every gradient to zero: one fill per vector (a single one for a θ layout)."""
        for _, grad in self.vectors:
            grad.fill(0)

    # -- buffers -------------------------------------------------------------------------
    def _add_state(self, name: str) -> list[np.ndarray]:
        """Allocate the zero-initialised state buffer ``name``, one array per vector pair."""
        self.state[name] = [np.zeros_like(data) for data, _ in self.vectors]
        return self.state[name]

    def _scratch(self) -> list[np.ndarray]:
        """Work arrays, one per vector pair, reused by every step (not saved)."""
        return [np.empty_like(data) for data, _ in self.vectors]

    # -- saving and restoring --------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, float | int | bool | str]:
        """The fixed hyperparameters as JSON scalars, as saved in :meth:`state_dict`."""
        return {name: getattr(self, name) for name in self._config}

    @property
    def _size(self) -> int:
        return sum(data.size for data, _ in self.vectors)

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
        for name, buffers in self.state.items():
            out[name] = np.concatenate(
                [b.reshape(-1) for b in buffers] or [np.zeros(0)], dtype=self._dtype
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
        keys = {"optimizer", "lr", "step", *self._hyperparameters(), *self.state}
        checks.state_dict_header(self, state_dict, keys, "optimizer", "optimizer")
        for key, value in self._hyperparameters().items():
            saved = checks.plain(state_dict[key])
            if saved != value or isinstance(saved, bool) != isinstance(value, bool):
                raise ValueError(
                    f"state_dict was saved with {key}={saved!r}; this optimizer has "
                    f"{key}={value!r}. Build the optimizer with the same hyperparameters."
                )
        lr = checks.non_negative("lr", checks.plain(state_dict["lr"]))
        steps = checks.non_negative_int("step", checks.plain(state_dict["step"]))
        shape, dtype = (self._size,), self._dtype
        for key in self.state:
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
        for key, buffers in self.state.items():
            start = 0
            for buffer in buffers:
                buffer[...] = state_dict[key][start : start + buffer.size].reshape(buffer.shape)
                start += buffer.size

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("lr", *self._config))
        return f"{type(self).__name__}({args})"
