"""Adagrad: per-coordinate learning rates from accumulated squared gradients (Duchi et al.)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim._vectors import add_scaled, coupled_decay
from optim.optimizer import Optimizer


def adagrad_update(
    theta: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    decayed: np.ndarray | None,
    scratch: np.ndarray,
    *,
    step: int,
    lr: float,
    lr_decay: float,
    eps: float,
    weight_decay: float,
) -> None:
    r"""One Adagrad step on ``theta`` in place, PyTorch's rule.

    .. math::

        g_t &= \nabla_\theta + \lambda\,\theta_{t-1} \\
        \tilde\gamma_t &= \gamma / (1 + (t - 1)\,\eta) \\
        s_t &= s_{t-1} + g_t^2 \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

    ``s_0`` is the optimizer's ``initial_accumulator_value`` (0 by default); the learning-rate
    decay η is applied per step ``t``, as PyTorch's ``clr = lr / (1 + (step − 1)·lr_decay)``.

    Parameters
    ----------
    theta, grad : ndarray, shape (n,)
        Parameters θ (updated in place) and gradient ∇θ (read only).
    state_sum : ndarray, shape (n,)
        ``s`` (updated in place).
    decayed : ndarray, shape (n,) or None
        Work array holding ``g`` when ``weight_decay != 0``.
    scratch : ndarray, shape (n,)
        Work array.
    step : int
        ``t``, starting at 1.
    lr, lr_decay, eps, weight_decay : float
        γ, η, ε and λ.
    """
    g = coupled_decay(theta, grad, weight_decay, decayed)  # g = ∇θ + λθ
    clr = lr / (1.0 + (step - 1) * lr_decay)  # γ̃ = γ / (1 + (t − 1)η)
    np.multiply(g, g, out=scratch)  # s = s + g²
    state_sum += scratch
    denom = np.sqrt(state_sum, out=scratch)  # √s + ε
    denom += eps
    np.divide(g, denom, out=scratch)  # θ = θ − γ̃ g / (√s + ε)
    add_scaled(theta, -clr, scratch, scratch)


class Adagrad(Optimizer):
    r"""Adagrad: ``s ← s + g²``, ``θ ← θ − γ̃ g / (√s + ε)``, PyTorch's rule.

    ``γ̃ = γ / (1 + (t − 1)·lr_decay)`` at step ``t`` and ``s`` starts at
    ``initial_accumulator_value`` (see :func:`adagrad_update`).

    Parameters
    ----------
    params : iterable of Parameter
        E.g. ``model.parameters()``.
    lr : float, default 1e-2
        Learning rate γ ≥ 0.
    eps : float, default 1e-10
        ε ≥ 0 added to ``√s``.
    weight_decay : float, default 0
        L2 penalty λ ≥ 0 added to the gradient.
    lr_decay : float, default 0
        η ≥ 0: step ``t`` uses the learning rate ``γ / (1 + (t − 1)η)``.
    initial_accumulator_value : float, default 0
        ``s_0`` ≥ 0, the starting value of every component of the sum of squares.
    """

    _config = ("eps", "weight_decay", "lr_decay", "initial_accumulator_value")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
    ) -> None:
        eps = checks.check_non_negative("eps", eps)
        weight_decay = checks.check_non_negative("weight_decay", weight_decay)
        lr_decay = checks.check_non_negative("lr_decay", lr_decay)
        initial_accumulator_value = checks.check_non_negative(
            "initial_accumulator_value", initial_accumulator_value
        )
        super().__init__(params, lr)
        self.eps = eps
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.initial_accumulator_value = initial_accumulator_value
        self._add_state("sum", value=initial_accumulator_value)
        self._add_work(decayed=weight_decay != 0)

    def step(self) -> None:
        """Take one Adagrad step on every slot (see :func:`adagrad_update`).

        ``s ← s + g²``, ``θ ← θ − γ/(1 + (t − 1)·lr_decay) · g / (√s + ε)``, where ``t`` is
        ``steps`` after it goes up by one.
        """
        self.steps += 1
        for slot in self.slots:
            adagrad_update(
                slot.theta,
                slot.grad,
                slot.state["sum"],
                slot.decayed,
                slot.work,
                step=self.steps,
                lr=self.lr,
                lr_decay=self.lr_decay,
                eps=self.eps,
                weight_decay=self.weight_decay,
            )
