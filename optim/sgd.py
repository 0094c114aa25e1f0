"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim._vectors import add_scaled, coupled_decay, vector_norm
from optim.optimizer import Optimizer


def sgd_update(
    theta: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    decayed: np.ndarray | None,
    work: np.ndarray,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    first_step: bool,
) -> None:
    r"""One SGD step on ``theta`` in place, PyTorch's rule.

    .. math::

        g_t &= \nabla_\theta + \lambda\,\theta_{t-1} \\
        b_t &= g_t \ \text{if}\ t = 1, \quad
               \mu\, b_{t-1} + (1 - \tau)\, g_t \ \text{otherwise} \\
        d_t &= g_t + \mu\, b_t \ \text{(Nesterov)}, \quad b_t \ \text{(momentum)}, \quad
               g_t \ (\mu = 0) \\
        \theta_t &= \theta_{t-1} - \gamma\, d_t

    Momentum convention (PyTorch's, not Sutskever et al.'s): the buffer accumulates gradients,
    ``b ← μ b + g``, and the learning rate multiplies the whole buffer, ``θ ← θ − γ b``; the
    first step copies the gradient into the buffer undampened.

    Parameters
    ----------
    theta, grad : ndarray, shape (n,)
        Parameters θ (updated in place) and gradient ∇θ (read only).
    momentum_buffer : ndarray, shape (n,) or None
        The buffer ``b`` (updated in place); None when ``momentum == 0``.
    decayed : ndarray, shape (n,) or None
        Work array holding ``g`` when ``weight_decay != 0``.
    work : ndarray, shape (n,)
        Work array.
    lr, momentum, dampening, weight_decay : float
        γ, μ, τ and λ.
    nesterov : bool
    first_step : bool
        Whether this is step ``t = 1`` (the buffer is then initialised to ``g_1``).
    """
    g = coupled_decay(theta, grad, weight_decay, decayed)  # g = ∇θ + λθ
    d = g
    if momentum != 0:
        if first_step:
            np.copyto(momentum_buffer, g)  # b_1 = g_1
        else:
            momentum_buffer *= momentum  # b = μb + (1 − τ)g
            add_scaled(momentum_buffer, 1.0 - dampening, g, work)
        if nesterov:
            np.multiply(momentum_buffer, momentum, out=work)  # d = g + μb
            work += g
            d = work
        else:
            d = momentum_buffer  # d = b
    add_scaled(theta, -lr, d, work)  # θ = θ − γd


class SGD(Optimizer):
    r"""Stochastic gradient descent: ``θ ← θ − γ·d`` with optional (Nesterov) momentum.

    The update is PyTorch's ``torch.optim.SGD`` exactly (see :func:`sgd_update`):
    ``g = ∇θ + λθ``; ``b = g`` on the first step, then ``b = μb + (1 − τ)g``;
    ``d = g + μb`` with Nesterov momentum, ``d = b`` without; ``θ ← θ − γd``.

    Parameters
    ----------
    params : iterable of Parameter
        E.g. ``model.parameters()``.
    lr : float, default 1e-3
        Learning rate γ ≥ 0 (PyTorch's default).
    momentum : float, default 0
        Momentum factor μ in [0, 1).
    dampening : float, default 0
        Dampening τ in [0, 1] of the gradient added to the momentum buffer.
    nesterov : bool, default False
        Nesterov momentum; requires ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float, default 0
        L2 penalty λ ≥ 0 added to the gradient (coupled, unlike :class:`~optim.AdamW`).

    Examples
    --------
    >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)  # doctest: +SKIP
    """

    _config = ("momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        momentum = checks.check_fraction("momentum", momentum)
        dampening = checks.check_fraction("dampening", dampening, closed=True)
        nesterov = checks.check_bool("nesterov", nesterov)
        weight_decay = checks.check_non_negative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Received an invalid combination: Nesterov momentum requires `momentum` > 0 "
                f"and `dampening` = 0. Received: momentum={momentum}, dampening={dampening}"
            )
        super().__init__(params, lr)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        if momentum:
            self._add_state("momentum_buffer")
        self._add_work(decayed=weight_decay != 0)
        # (t, B): ‖b_t‖ ≤ B for the buffer after step t, as step_bound predicted it
        self._buffer_bound: tuple[int, float] | None = None

    def step(self) -> None:
        """Take one SGD step ``θ ← θ − γ·d`` on every slot (see :func:`sgd_update`).

        ``steps`` goes up by one first; on the first step (``t = 1``) the momentum buffer is
        initialised to the gradient.
        """
        self.steps += 1
        for slot in self.slots:
            sgd_update(
                slot.theta,
                slot.grad,
                slot.state.get("momentum_buffer"),
                slot.decayed,
                slot.work,
                lr=self.lr,
                momentum=self.momentum,
                dampening=self.dampening,
                nesterov=self.nesterov,
                weight_decay=self.weight_decay,
                first_step=self.steps == 1,
            )

    def step_bound(self, grad_norm: float, theta_norm: float) -> float:
        r"""An upper bound on ``‖θ_t − θ_{t−1}‖₂`` for the next step (see :func:`sgd_update`).

        The triangle inequality on each line of the rule: ``‖g‖ ≤ ‖∇θ‖ + λ‖θ‖``;
        ``‖b_t‖ ≤ μ‖b_{t−1}‖ + (1 − τ)‖g‖`` (``‖g‖`` on the first step); ``‖d‖ ≤ ‖g‖ + μ‖b_t‖``
        with Nesterov momentum; the step is ``γ‖d‖``. The bound on ``‖b_t‖`` is kept for the
        next call; ``‖b‖`` is computed in one pass when no bound for the current step is kept
        (the first call, after :meth:`load_state_dict` or a step taken without this call).
        """
        g = grad_norm + self.weight_decay * theta_norm
        if self.momentum == 0:
            return self.lr * g
        if self.steps == 0:
            b = g
        else:
            if self._buffer_bound is None or self._buffer_bound[0] != self.steps:
                buffers = [vector_norm(slot.state["momentum_buffer"]) for slot in self.slots]
                self._buffer_bound = (self.steps, math.hypot(*buffers))
            b = self.momentum * self._buffer_bound[1] + (1.0 - self.dampening) * g
        self._buffer_bound = (self.steps + 1, b)
        return self.lr * (g + self.momentum * b if self.nesterov else b)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state (see :meth:`Optimizer.load_state_dict`); forgets the kept bound."""
        super().load_state_dict(state_dict)
        self._buffer_bound = None
