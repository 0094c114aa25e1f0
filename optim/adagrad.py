"""Adagrad: per-coordinate learning rates from accumulated squared gradients (Duchi et al.)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nn.parameter import Parameter
from optim import _checks as checks
from optim._vectors import add_scaled
from optim.optimizer import Optimizer


def adagrad_update(
    theta: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    decayed: np.ndarray | None,
    scratch: np.ndarray,
    *,
    lr: float,
    eps: float,
    weight_decay: float,
) -> None:
    r"""One Adagrad step on ``theta`` in place, PyTorch's rule (``lr_decay = 0``).

    .. math::

        g_t &= \nabla_\theta + \lambda\,\theta_{t-1} \\
        s_t &= s_{t-1} + g_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma\, g_t / (\sqrt{s_t} + \epsilon)

    ``s_0 = 0`` (PyTorch's default ``initial_accumulator_value``).

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
    lr, eps, weight_decay : float
        γ, ε and λ.
    """
    g = grad
    if weight_decay != 0:
        np.multiply(theta, weight_decay, out=decayed)  # g = ∇θ + λθ
        decayed += grad
        g = decayed
    np.multiply(g, g, out=scratch)  # s = s + g²
    state_sum += scratch
    denom = np.sqrt(state_sum, out=scratch)  # √s + ε
    denom += eps
    np.divide(g, denom, out=scratch)  # θ = θ − γ g / (√s + ε)
    add_scaled(theta, -lr, scratch, scratch)


class Adagrad(Optimizer):
    r"""Adagrad: ``s ← s + g²``, ``θ ← θ − γ g / (√s + ε)``, PyTorch's rule.

    See :func:`adagrad_update`. PyTorch's ``lr_decay`` and ``initial_accumulator_value`` are
    fixed at their defaults, 0.

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
    """

    _config = ("eps", "weight_decay")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
    ) -> None:
        eps = checks.non_negative("eps", eps)
        weight_decay = checks.non_negative("weight_decay", weight_decay)
        super().__init__(params, lr)
        self.eps = eps
        self.weight_decay = weight_decay
        self._add_state("sum")
        self._add_work(decayed=weight_decay != 0)

    def step(self) -> None:
        """Take one Adagrad step on every slot from the current gradients."""
        self.steps += 1
        for slot in self.slots:
            adagrad_update(
                slot.theta,
                slot.grad,
                slot.state["sum"],
                slot.decayed,
                slot.work,
                lr=self.lr,
                eps=self.eps,
                weight_decay=self.weight_decay,
            )
