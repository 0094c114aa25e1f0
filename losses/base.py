"""The Loss base class and the input checks shared by every loss.

A loss maps a batch of predictions and targets to one number and gives back ∂L/∂pred.
The contract:

* ``forward(pred, target, sample_weight=None) -> float`` computes the loss and caches what
  ``backward`` needs (buffers the loss owns, plus references to ``pred`` and ``target``:
  do not modify those arrays in place between ``forward`` and ``backward``).
* ``backward() -> ndarray`` returns ∂L/∂pred with the shape and dtype of ``pred``. The
  array is a buffer owned by the loss and reused while the shape and dtype repeat: it stays
  valid until the next ``backward``. Calling ``backward`` twice gives the same values.

Reductions (``reduction=``)
    ``"mean"`` (default) divides the sum of the per-element losses by the denominator
    PyTorch uses for each loss (the number of elements, except where a loss documents
    otherwise); ``"sum"`` returns the plain sum (equation 5.8 of the reference notes).

Validation
    ``forward`` rejects, with a ``TypeError`` or ``ValueError`` naming the argument, what was
    expected and what was received: a ``pred`` that is not a non-empty floating-point array;
    targets that are not real numbers, have the wrong shape, hold NaN or ±inf, or are out of
    the loss's range (class labels outside ``[0, C)``, negative or fractional; probabilities
    outside ``[0, 1]``); sample weights of the wrong shape, non-finite or negative. Each check
    is one pass over a batch-sized array. NaN or ±inf in ``pred`` are *not* rejected: they
    come from the model, not from the user, and give a non-finite loss, which is how the
    training loop detects divergence.

Sample weights (``sample_weight=``, shape ``(N,)``)
    The Keras convention: the loss of every element of sample ``n`` is multiplied by
    ``sample_weight[n]``; ``"mean"`` keeps the unweighted denominator (Keras's
    ``sum_over_batch_size``), ``"sum"`` sums. ``sample_weight=np.ones(N)`` therefore gives
    exactly the unweighted loss.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nn.checks import check_finite, check_one_of, check_sample_weight

REDUCTIONS = ("mean", "sum")


def as_pred(pred: ArrayLike) -> np.ndarray:
    """``pred`` as a floating-point ndarray with a batch dimension (no copy for ndarrays)."""
    arr = np.asarray(pred)
    if arr.dtype.kind != "f":
        raise TypeError(
            "Received an invalid value for `pred`, expected a floating-point array. "
            f"Received: pred with dtype {arr.dtype}"
        )
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(
            "Received an invalid value for `pred`, expected a non-empty array of shape "
            f"(N, ...). Received: pred with shape {arr.shape}"
        )
    return arr


def as_target_array(target: ArrayLike, *, allow_bool: bool = False) -> np.ndarray:
    """``target`` as a numeric ndarray (no copy for ndarrays); bool only if ``allow_bool``."""
    arr = np.asarray(target)
    if arr.dtype == np.bool_ and allow_bool:
        return arr
    if arr.dtype.kind not in "iuf":  # bool, complex, strings and objects are refused
        raise TypeError(
            "Received an invalid value for `target`, expected an array of real numbers. "
            f"Received: target with dtype {arr.dtype}"
        )
    return arr


def check_same_shape(pred: np.ndarray, target: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``target.shape == pred.shape`` (no broadcasting)."""
    if target.shape != pred.shape:
        raise ValueError(
            "Received an invalid value for `target`, expected the shape of `pred` "
            f"{pred.shape}. Received: target with shape {target.shape}"
        )


def per_sample(w: np.ndarray, ndim: int) -> np.ndarray:
    """A view of the ``(N,)`` weights shaped ``(N, 1, ..., 1)`` to broadcast over a batch."""
    return w.reshape(w.shape + (1,) * (ndim - 1))


# -- the base class -----------------------------------------------------------------------
class Loss:
    """Base class of every loss: ``L = reduce(ℓ(pred, target))``.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        How the per-element losses ℓ are combined: their mean (with each loss's PyTorch
        denominator) or their sum.

    Notes
    -----
    Subclasses implement ``_forward(pred, target, sample_weight) -> float`` (inputs already
    checked, ``sample_weight`` is ``None`` or an ``(N,)`` array of ``pred``'s dtype; it sets
    ``self._scale``, the reduction factor 1/denominator, see :meth:`denominator`) and
    ``_backward(grad)`` which writes ∂L/∂pred into ``grad``, a buffer of ``pred``'s shape
    and dtype. ``forward`` checks every input before it touches any cached state, so a
    rejected call leaves the loss as it was.
    """

    #: Whether 1-D targets are class labels (indices of the outputs) rather than values.
    takes_labels: bool = False
    #: The squashing ("softmax", "sigmoid") the loss applies to ``pred`` itself, if any: a
    #: model whose last layer applies it too squashes twice.
    squashes: str | None = None

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = check_one_of("reduction", reduction, REDUCTIONS)
        self._buffers: dict[str, np.ndarray] = {}
        self._pred: np.ndarray | None = None

    # -- the contract ---------------------------------------------------------------------
    def forward(
        self, pred: ArrayLike, target: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Compute the loss of a batch and cache what ``backward`` needs.

        Parameters
        ----------
        pred : ndarray, shape (N, ...)
            Predictions (floating point; their dtype is the dtype of the gradient).
        target : ndarray
            Targets; the accepted shapes depend on the loss.
        sample_weight : ndarray, shape (N,), optional
            Per-sample weights multiplying each sample's losses (Keras convention).

        Returns
        -------
        float
            The reduced loss.
        """
        pred = as_pred(pred)
        sw = (
            None
            if sample_weight is None
            else check_sample_weight("sample_weight", sample_weight, len(pred), pred.dtype)
        )
        value = self._forward(pred, target, sw)
        self._pred = pred
        return value

    def backward(self) -> np.ndarray:
        """Return ∂L/∂pred for the last ``forward`` (shape and dtype of ``pred``).

        The array is owned by the loss and overwritten by the next ``backward``.
        """
        if self._pred is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() was called before forward(): "
                "call forward(pred, target) first."
            )
        grad = self._buffer("grad", self._pred.shape, self._pred.dtype)
        self._backward(grad)
        return grad

    #: The reduction factor 1/denominator of the last ``forward`` (set by ``_forward``).
    _scale: float | None = None

    def denominator(self) -> float | None:
        """What the last ``forward`` divided its sum of per-element losses by.

        1 with ``reduction="sum"``; with ``"mean"`` the number of elements, or ``Σ_n w_label_n``
        for class-weighted cross-entropy on labels (0 when every target has weight 0: the
        mean is then NaN, as in PyTorch); None before any ``forward``, or for a subclass that
        overrides ``forward`` itself. Over a set split into batches ``b``, the loss that one
        batch of the whole set would give is ``Σ_b L_b·d_b / Σ_b d_b`` for means (batches with
        ``d_b = 0`` add nothing) and ``Σ_b L_b`` for sums; ``fit`` and ``evaluate`` report
        that (weighting batches by their sizes when the denominator is None).
        """
        if self._scale is None:
            return None
        return 0.0 if math.isnan(self._scale) else 1.0 / self._scale

    def __call__(
        self, pred: ArrayLike, target: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Same as ``forward``."""
        return self.forward(pred, target, sample_weight)

    def config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON-compatible values (used by model files)."""
        return {"reduction": self.reduction}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- for subclasses -------------------------------------------------------------------
    def _forward(
        self, pred: np.ndarray, target: ArrayLike, sample_weight: np.ndarray | None
    ) -> float:
        raise NotImplementedError

    def _backward(self, grad: np.ndarray) -> None:
        raise NotImplementedError

    def _buffer(self, key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A scratch array owned by the loss, reused while shape and dtype stay the same."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            self._buffers[key] = buf
        return buf

    def _as_dtype(self, key: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``arr`` itself if it already has ``dtype``, else a copy in an owned buffer."""
        if arr.dtype == dtype:
            return arr
        buf = self._buffer(key, arr.shape, dtype)
        np.copyto(buf, arr, casting="unsafe")
        return buf


class PointwiseLoss(Loss):
    """A loss ``L = reduce(ℓ(pred_i, target_i))`` summed over elements of equal shape.

    ``pred`` and ``target`` have the same shape ``(N, ...)``; ``"mean"`` divides by
    ``pred.size``. Subclasses implement ``_pointwise(pred, target, out)``, which writes the
    per-element losses ℓ into ``out`` and caches what ``_backward`` needs, and
    ``_backward``. ``self._scale`` holds the reduction factor (``1/pred.size`` or ``1``),
    ``self._sw`` the sample weights or ``None`` and ``self._target`` the target in
    ``pred``'s dtype.
    """

    def _forward(
        self, pred: np.ndarray, target: ArrayLike, sample_weight: np.ndarray | None
    ) -> float:
        target = as_target_array(target, allow_bool=self._bool_targets)
        check_same_shape(pred, target)
        check_finite("target", target)
        self._check_target(target)
        self._check_pred(pred)
        target = self._as_dtype("target", target, pred.dtype)

        elem = self._buffer("elem", pred.shape, pred.dtype)
        self._pointwise(pred, target, elem)
        if sample_weight is not None:
            elem *= per_sample(sample_weight, elem.ndim)  # ℓ_n,i · s_n
        self._target = target
        self._sw = sample_weight
        self._scale = 1.0 / pred.size if self.reduction == "mean" else 1.0
        return float(elem.sum()) * self._scale

    #: Whether bool targets are accepted (as 0 and 1): binary targets, yes; regression, no.
    _bool_targets = False

    def _check_pred(self, pred: np.ndarray) -> None:
        """Extra checks on ``pred`` (for example a probability range)."""

    def _check_target(self, target: np.ndarray) -> None:
        """Extra checks on a finite ``target`` of the right shape (for example a range)."""

    def _pointwise(self, pred: np.ndarray, target: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def _weigh(self, grad: np.ndarray) -> None:
        """``grad *= s_n``: multiply each sample's gradient by its sample weight, if any."""
        if self._sw is not None:
            grad *= per_sample(self._sw, grad.ndim)
