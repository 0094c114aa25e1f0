"""Regression losses: MSE, L1 and Huber (PyTorch's MSELoss, L1Loss and HuberLoss).

All three compare ``pred`` and ``target`` of the same shape ``(N, ...)`` element by element
with the difference ``d = pred - target``; ``"mean"`` divides by the number of elements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losses.base import PointwiseLoss
from nn.checks import check_positive


class MSE(PointwiseLoss):
    """Mean squared error: ``ℓ_i = (pred_i - target_i)²``, ``∂ℓ_i/∂pred_i = 2 d_i``.

    ``L = Σ_i s_n ℓ_i / size`` with ``reduction="mean"`` (PyTorch ``MSELoss``) or
    ``Σ_i s_n ℓ_i`` with ``"sum"``, where ``s_n`` is the sample weight of the sample that
    element ``i`` belongs to (1 without ``sample_weight``).

    Parameters
    ----------
    reduction : {"mean", "sum"}
        Mean over all elements (default) or sum.

    Notes
    -----
    Shapes: ``pred`` and ``target`` ``(N, ...)``, equal; ``sample_weight`` ``(N,)``.
    """

    def _pointwise(self, pred: np.ndarray, target: np.ndarray, out: np.ndarray) -> None:
        self._diff = np.subtract(pred, target, out=self._buffer("diff", pred.shape, pred.dtype))
        np.multiply(self._diff, self._diff, out=out)  # ℓ = d²

    def _backward(self, grad: np.ndarray) -> None:
        np.multiply(self._diff, 2.0 * self._scale, out=grad)  # ∂L/∂pred = 2 d · scale
        self._weigh(grad)  # · s_n


class L1(PointwiseLoss):
    """Mean absolute error: ``ℓ_i = |pred_i - target_i|``, ``∂ℓ_i/∂pred_i = sign(d_i)``.

    The subgradient at ``d_i = 0`` is 0, as PyTorch's ``L1Loss`` (``sign(0) = 0``).
    ``L = Σ_i s_n ℓ_i / size`` with ``reduction="mean"`` or ``Σ_i s_n ℓ_i`` with ``"sum"``.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        Mean over all elements (default) or sum.

    Notes
    -----
    Shapes: ``pred`` and ``target`` ``(N, ...)``, equal; ``sample_weight`` ``(N,)``.
    """

    def _pointwise(self, pred: np.ndarray, target: np.ndarray, out: np.ndarray) -> None:
        self._diff = np.subtract(pred, target, out=self._buffer("diff", pred.shape, pred.dtype))
        np.abs(self._diff, out=out)  # ℓ = |d|

    def _backward(self, grad: np.ndarray) -> None:
        np.sign(self._diff, out=grad)  # ∂ℓ/∂pred = sign(d), 0 at d = 0
        grad *= self._scale
        self._weigh(grad)  # · s_n


class Huber(PointwiseLoss):
    """Huber loss (PyTorch ``HuberLoss``): quadratic near 0, linear beyond ``delta``.

    ``ℓ_i = ½ d_i²`` if ``|d_i| < δ`` else ``δ (|d_i| - ½ δ)``, with ``d = pred - target``;
    ``∂ℓ_i/∂pred_i = clip(d_i, -δ, δ)``. Both branches meet at ``|d| = δ``, so with
    ``c = clip(d, -δ, δ)`` the loss is ``ℓ = c (d - ½ c)`` everywhere.
    ``L = Σ_i s_n ℓ_i / size`` with ``reduction="mean"`` or ``Σ_i s_n ℓ_i`` with ``"sum"``.

    Parameters
    ----------
    delta : float
        The threshold δ > 0 between the quadratic and the linear part (default 1.0).
    reduction : {"mean", "sum"}
        Mean over all elements (default) or sum.

    Notes
    -----
    Shapes: ``pred`` and ``target`` ``(N, ...)``, equal; ``sample_weight`` ``(N,)``.
    """

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        delta = check_positive("delta", delta)
        super().__init__(reduction)
        self.delta = delta

    def config(self) -> dict[str, Any]:
        return {"delta": self.delta, "reduction": self.reduction}

    def _pointwise(self, pred: np.ndarray, target: np.ndarray, out: np.ndarray) -> None:
        d = np.subtract(pred, target, out=self._buffer("diff", pred.shape, pred.dtype))
        c = np.clip(d, -self.delta, self.delta, out=self._buffer("clip", d.shape, d.dtype))
        np.multiply(c, 0.5, out=out)
        np.subtract(d, out, out=out)
        out *= c  # ℓ = c (d - c/2)
        self._clip = c

    def _backward(self, grad: np.ndarray) -> None:
        np.multiply(self._clip, self._scale, out=grad)  # ∂ℓ/∂pred = clip(d, -δ, δ)
        self._weigh(grad)  # · s_n
