"""RMSprop (Hinton, 2012), with the centered variant (Graves, 2013) and momentum."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim._vectors import add_scaled, coupled_decay
from optim.optimizer import Optimizer


def rmsprop_update(
    theta: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    decayed: np.ndarray | None,
    scratch: np.ndarray,
    *,
    lr: float,
    alpha: float,
    eps: float,
    momentum: float,
    weight_decay: float,
) -> None:
    r"""One RMSprop step on ``theta`` in place, PyTorch's rule.

    .. math::

        g_t &= \nabla_\theta + \lambda\,\theta_{t-1} \\
        v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2 \\
        \bar g_t &= \alpha\, \bar g_{t-1} + (1 - \alpha)\, g_t, \quad
            \tilde v_t = v_t - \bar g_t^2 \ \text{(centered)}, \quad
            \tilde v_t = v_t \ \text{otherwise} \\
        b_t &= \mu\, b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \quad
            \theta_t = \theta_{t-1} - \gamma\, b_t \quad (\mu > 0) \\
        \theta_t &= \theta_{t-1} - \gamma\, g_t / (\sqrt{\tilde v_t} + \epsilon)
            \quad (\mu = 0)

    ``v_0 = ḡ_0 = b_0 = 0``. ε is added after the square root (TensorFlow adds it inside).
    Momentum convention: the buffer accumulates normalised gradients, ``b ← μb + g/(√ṽ + ε)``,
    and the learning rate multiplies the buffer; there is no bias correction.

    Parameters
    ----------
    theta, grad : ndarray, shape (n,)
        Parameters θ (updated in place) and gradient ∇θ (read only).
    square_avg : ndarray, shape (n,)
        ``v`` (updated in place).
    grad_avg : ndarray, shape (n,) or None
        ``ḡ`` for the centered variant (updated in place), else None.
    momentum_buffer : ndarray, shape (n,) or None
        ``b`` when ``momentum > 0`` (updated in place), else None.
    decayed : ndarray, shape (n,) or None
        Work array holding ``g`` when ``weight_decay != 0``.
    scratch : ndarray, shape (n,)
        Work array.
    lr, alpha, eps, momentum, weight_decay : float
        γ, α, ε, μ and λ.
    """
    g = coupled_decay(theta, grad, weight_decay, decayed)  # g = ∇θ + λθ
    np.multiply(g, g, out=scratch)  # v = αv + (1 − α)g²
    square_avg *= alpha
    add_scaled(square_avg, 1.0 - alpha, scratch, scratch)
    if grad_avg is not None:
        grad_avg *= alpha  # ḡ = αḡ + (1 − α)g
        add_scaled(grad_avg, 1.0 - alpha, g, scratch)
        np.multiply(grad_avg, grad_avg, out=scratch)  # ṽ = v − ḡ²
        np.subtract(square_avg, scratch, out=scratch)
        denom = np.sqrt(scratch, out=scratch)
    else:
        denom = np.sqrt(square_avg, out=scratch)
    denom += eps  # √ṽ + ε
    step = np.divide(g, denom, out=scratch)  # g / (√ṽ + ε)
    if momentum_buffer is not None:
        momentum_buffer *= momentum  # b = μb + g / (√ṽ + ε)
        momentum_buffer += step
        step = momentum_buffer
    add_scaled(theta, -lr, step, scratch)  # θ = θ − γ·step


class RMSprop(Optimizer):
    r"""RMSprop: ``θ ← θ − γ g / (√v + ε)`` with ``v`` a running mean of ``g²``, PyTorch's rule.

    See :func:`rmsprop_update` for the centered variant and momentum.

    Parameters
    ----------
    params : iterable of Parameter
        E.g. ``model.parameters()``.
    lr : float, default 1e-2
        Learning rate γ ≥ 0.
    alpha : float, default 0.99
        Smoothing constant α in [0, 1) of the running mean of ``g²``.
    eps : float, default 1e-8
        ε ≥ 0 added to ``√v``.
    momentum : float, default 0
        Momentum factor μ in [0, 1).
    centered : bool, default False
        Normalise by an estimate of the gradient's variance, ``v − ḡ²``, instead of ``v``.
    weight_decay : float, default 0
        L2 penalty λ ≥ 0 added to the gradient.
    """

    _config = ("alpha", "eps", "momentum", "centered", "weight_decay")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        alpha = checks.check_fraction("alpha", alpha)
        eps = checks.check_non_negative("eps", eps)
        momentum = checks.check_fraction("momentum", momentum)
        centered = checks.check_bool("centered", centered)
        weight_decay = checks.check_non_negative("weight_decay", weight_decay)
        super().__init__(params, lr)
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered
        self.weight_decay = weight_decay
        self._add_state("square_avg")
        if centered:
            self._add_state("grad_avg")
        if momentum:
            self._add_state("momentum_buffer")
        self._add_work(decayed=weight_decay != 0)

    def step(self) -> None:
        """Take one RMSprop step ``θ ← θ − γ g / (√ṽ + ε)`` on every slot.

        With momentum the buffer ``b ← μb + g / (√ṽ + ε)`` is applied instead,
        ``θ ← θ − γb`` (see :func:`rmsprop_update`). ``steps`` goes up by one.
        """
        self.steps += 1
        for slot in self.slots:
            rmsprop_update(
                slot.theta,
                slot.grad,
                slot.state["square_avg"],
                slot.state.get("grad_avg"),
                slot.state.get("momentum_buffer"),
                slot.decayed,
                slot.work,
                lr=self.lr,
                alpha=self.alpha,
                eps=self.eps,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
            )
