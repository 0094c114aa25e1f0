"""Adam: adaptive moment estimation (Kingma & Ba, 2015), with the AMSGrad variant."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim._vectors import add_scaled, coupled_decay
from optim.optimizer import Optimizer


def adam_update(
    theta: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    decayed: np.ndarray | None,
    scratch: np.ndarray,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> None:
    r"""One Adam (or AdamW) step on ``theta`` in place, PyTorch's rule.

    .. math::

        \theta &\leftarrow \theta\,(1 - \gamma\lambda) \quad \text{(AdamW: decoupled decay)} \\
        g_t &= \nabla_\theta + \lambda\,\theta_{t-1} \quad \text{(Adam: L2 penalty)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(AMSGrad)}, \quad v_t \ \text{otherwise} \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    ``m_0 = v_0 = 0``. Bias corrections are computed as PyTorch does: the step size
    ``γ / (1 − β₁ᵗ)`` and ``ε`` added after dividing ``√v̂`` by ``√(1 − β₂ᵗ)``; AMSGrad keeps
    the maximum of the uncorrected ``v``.

    Parameters
    ----------
    theta, grad : ndarray, shape (n,)
        Parameters θ (updated in place) and gradient ∇θ (read only).
    exp_avg, exp_avg_sq : ndarray, shape (n,)
        First and second moments ``m`` and ``v`` (updated in place).
    max_exp_avg_sq : ndarray, shape (n,) or None
        ``max v`` for AMSGrad (updated in place), else None.
    decayed : ndarray, shape (n,) or None
        Work array holding ``g`` for Adam's (coupled) ``weight_decay != 0``.
    scratch : ndarray, shape (n,)
        Work array.
    step : int
        ``t``, starting at 1.
    lr, beta1, beta2, eps, weight_decay : float
        γ, β₁, β₂, ε and λ.
    decoupled_weight_decay : bool
        True for AdamW: shrink θ by ``γλ`` instead of adding ``λθ`` to the gradient.
    """
    if decoupled_weight_decay:
        g = grad
        if weight_decay != 0:
            theta *= 1.0 - lr * weight_decay  # θ = θ(1 − γλ)
    else:
        g = coupled_decay(theta, grad, weight_decay, decayed)  # g = ∇θ + λθ
    exp_avg *= beta1  # m = β₁m + (1 − β₁)g
    add_scaled(exp_avg, 1.0 - beta1, g, scratch)
    np.multiply(g, g, out=scratch)  # v = β₂v + (1 − β₂)g²
    exp_avg_sq *= beta2
    add_scaled(exp_avg_sq, 1.0 - beta2, scratch, scratch)
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)  # v̂ = max(v̂, v)
        v_hat = max_exp_avg_sq
    else:
        v_hat = exp_avg_sq
    bias_correction1 = 1.0 - beta1**step
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
    denom = np.sqrt(v_hat, out=scratch)  # √v̂ / √(1 − β₂ᵗ) + ε
    denom /= bias_correction2_sqrt
    denom += eps
    np.divide(exp_avg, denom, out=scratch)  # θ = θ − γ/(1 − β₁ᵗ) · m / denom
    add_scaled(theta, -lr / bias_correction1, scratch, scratch)


class Adam(Optimizer):
    r"""Adam: ``θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)``, PyTorch's rule.

    ``m`` and ``v`` are running means of the gradient and of its square (see
    :func:`adam_update`). ``weight_decay`` adds ``λθ`` to the gradient (an L2 penalty, which
    Adam then rescales); :class:`~optim.AdamW` decouples it instead.

    Parameters
    ----------
    params : iterable of Parameter
        E.g. ``model.parameters()``.
    lr : float, default 1e-3
        Learning rate γ ≥ 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates β₁, β₂ in [0, 1) of the first and second moment.
    eps : float, default 1e-8
        ε ≥ 0 added to the denominator.
    weight_decay : float, default 0
        L2 penalty λ ≥ 0.
    amsgrad : bool, default False
        Normalise by the running maximum of ``v`` (Reddi et al., 2018).
    """

    _config = ("betas", "eps", "weight_decay", "amsgrad")
    _decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise checks.invalid("betas", "a pair (beta1, beta2) of numbers in [0, 1)", betas)
        betas = (
            checks.check_fraction("betas[0]", betas[0]),
            checks.check_fraction("betas[1]", betas[1]),
        )
        eps = checks.check_non_negative("eps", eps)
        weight_decay = checks.check_non_negative("weight_decay", weight_decay)
        amsgrad = checks.check_bool("amsgrad", amsgrad)
        super().__init__(params, lr)
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self._add_state("exp_avg", "exp_avg_sq")
        if amsgrad:
            self._add_state("max_exp_avg_sq")
        self._add_work(decayed=weight_decay != 0 and not self._decoupled_weight_decay)

    def _hyperparameters(self) -> dict[str, float | bool]:
        return {
            "beta1": self.betas[0],
            "beta2": self.betas[1],
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": self.amsgrad,
        }

    def step(self) -> None:
        """Take one Adam step on every slot (see :func:`adam_update`).

        ``θ ← θ − γ/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)``, after ``θ ← θ(1 − γλ)`` for
        AdamW; ``steps`` goes up by one first and is the ``t`` of the bias corrections.
        """
        self.steps += 1
        beta1, beta2 = self.betas
        for slot in self.slots:
            adam_update(
                slot.theta,
                slot.grad,
                slot.state["exp_avg"],
                slot.state["exp_avg_sq"],
                slot.state.get("max_exp_avg_sq"),
                slot.decayed,
                slot.work,
                step=self.steps,
                lr=self.lr,
                beta1=beta1,
                beta2=beta2,
                eps=self.eps,
                weight_decay=self.weight_decay,
                decoupled_weight_decay=self._decoupled_weight_decay,
            )
