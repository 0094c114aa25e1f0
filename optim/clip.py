"""Gradient clipping, in place on the gradients: by global L2 norm or by value."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from nn import checks
from nn.parameter import Parameter
from optim._vectors import check_params, vector_norm, vector_pairs


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    r"""Rescale all gradients together so their global L2 norm is at most ``max_norm``.

    .. math::

        \|g\| = \sqrt{\textstyle\sum_p \|\nabla_p\|_2^2}, \qquad
        \nabla_p \leftarrow \nabla_p \cdot \frac{\text{max\_norm}}{\|g\| + 10^{-6}}
        \quad \text{when } \|g\| > \text{max\_norm}

    as PyTorch's ``clip_grad_norm_`` (the ``1e-6`` guards against division by zero). For
    parameters that are views into one gradient vector ∇θ this is one dot product and one
    scaling of ∇θ. A non-finite norm scales the gradients by 0 (inf) or leaves them as they are
    (NaN); check the returned norm.

    Parameters
    ----------
    params : iterable of Parameter
        Whose ``grad`` arrays are clipped in place.
    max_norm : float
        Largest allowed global norm, ≥ 0.

    Returns
    -------
    float
        The global norm ‖g‖ before clipping.
    """
    max_norm = checks.check_non_negative("max_norm", max_norm)
    pairs = vector_pairs(check_params(params))
    total = math.hypot(*(vector_norm(grad) for _, grad in pairs))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for _, grad in pairs:
            grad *= scale
    return total


def clip_grad_value(params: Iterable[Parameter], clip_value: float) -> None:
    r"""Clip every gradient component into ``[−clip_value, clip_value]`` in place.

    .. math:: \nabla_i \leftarrow \min(\max(\nabla_i, -c), c)

    One ``np.clip`` over ∇θ for parameters that are views into one gradient vector.

    Parameters
    ----------
    params : iterable of Parameter
        Whose ``grad`` arrays are clipped in place.
    clip_value : float
        The bound ``c`` ≥ 0.
    """
    clip_value = checks.check_non_negative("clip_value", clip_value)
    for _, grad in vector_pairs(check_params(params)):
        np.clip(grad, -clip_value, clip_value, out=grad)
