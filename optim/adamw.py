"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

from __future__ import annotations

from collections.abc import Iterable

from nn.parameter import Parameter
from optim.adam import Adam


class AdamW(Adam):
    r"""AdamW: ``θ ← θ(1 − γλ)``, then the Adam step on the raw gradient, PyTorch's rule.

    The decay shrinks θ directly and is not rescaled by Adam's ``1/√v`` (see
    :func:`~optim.adam.adam_update` with ``decoupled_weight_decay=True``):

    .. math::

        \theta_t = \theta_{t-1}(1 - \gamma\lambda) - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Parameters
    ----------
    params : iterable of Parameter
        E.g. ``model.parameters()``.
    lr : float, default 1e-3
        Learning rate γ ≥ 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates β₁, β₂ in [0, 1).
    eps : float, default 1e-8
        ε ≥ 0 added to the denominator.
    weight_decay : float, default 1e-2
        Decoupled decay coefficient λ ≥ 0.
    amsgrad : bool, default False
        Normalise by the running maximum of ``v``.
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
