"""Classification losses: binary cross-entropy and (softmax) cross-entropy.

``BinaryCrossEntropy`` follows PyTorch's ``BCEWithLogitsLoss`` (``from_logits=True``) and
``BCELoss`` (``from_logits=False``); ``CrossEntropy`` follows ``CrossEntropyLoss``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from losses.base import Loss, PointwiseLoss, as_target_array
from nn.checks import (
    check_bool,
    check_finite,
    check_finite_real,
    check_labels,
    check_non_negative,
    check_weight_vector,
)

# PyTorch's BCELoss clamps log(p) and log(1 - p) at -100 and divides its gradient by
# max(p (1 - p), 1e-12).
_LOG_CLAMP = -100.0
_BCE_EPS = 1e-12


def _jsonable(arr: np.ndarray | None) -> float | list[float] | None:
    """A weight array as a JSON value: ``None``, a float (0-d) or a list of floats."""
    if arr is None:
        return None
    return float(arr) if arr.ndim == 0 else [float(v) for v in arr]


class BinaryCrossEntropy(PointwiseLoss):
    """Binary cross-entropy ``ℓ = -[p_c y log σ(x) + (1 - y) log(1 - σ(x))]``, per element.

    With ``from_logits=True`` (default, PyTorch ``BCEWithLogitsLoss``) ``pred`` holds
    logits ``x`` and the loss is evaluated in the stable softplus form

        ℓ = (1 - y) x + (1 + (p_c - 1) y) softplus(-x),   softplus(-x) = -log σ(x),
        ∂ℓ/∂x = (1 + (p_c - 1) y) σ(x) - p_c y              (= σ(x) - y when p_c = 1).

    With ``from_logits=False`` (PyTorch ``BCELoss``) ``pred`` holds probabilities
    ``q = σ(x)`` in [0, 1], both logarithms are clamped at -100, and the gradient is
    PyTorch's ``((1 + (p_c - 1) y) q - p_c y) / max(q (1 - q), 1e-12)``.

    ``L = Σ_i s_n ℓ_i / size`` with ``reduction="mean"`` or ``Σ_i s_n ℓ_i`` with ``"sum"``.

    Parameters
    ----------
    from_logits : bool
        Whether ``pred`` holds logits (default) or probabilities.
    pos_weight : float or array of shape (C,), optional
        The weight ``p_c ≥ 0`` of positive examples (``y = 1``) of each column ``c`` (the
        last axis of ``pred``), as PyTorch's ``pos_weight``; ``p_c > 1`` favours recall.
    reduction : {"mean", "sum"}
        Mean over all elements (default) or sum.

    Notes
    -----
    Shapes: ``pred`` and ``target`` ``(N, ...)``, equal, for example ``(N, 1)`` for one
    binary output or ``(N, C)`` for C independent labels; ``sample_weight`` ``(N,)``.
    Targets are 0/1 (or bool) or soft labels in [0, 1]; values outside [0, 1] are rejected
    (PyTorch does not check them).
    """

    def __init__(
        self,
        from_logits: bool = True,
        pos_weight: float | ArrayLike | None = None,
        reduction: str = "mean",
    ) -> None:
        self.from_logits = check_bool("from_logits", from_logits)
        self.squashes = "sigmoid" if self.from_logits else None
        if pos_weight is None:
            self.pos_weight = None
        elif np.ndim(pos_weight) == 0:
            pw = check_non_negative("pos_weight", pos_weight)
            self.pos_weight = np.array(pw)
        else:
            self.pos_weight = check_weight_vector("pos_weight", pos_weight)
        super().__init__(reduction)
        self._pw_cache: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def config(self) -> dict[str, Any]:
        return {
            "from_logits": self.from_logits,
            "pos_weight": _jsonable(self.pos_weight),
            "reduction": self.reduction,
        }

    def _check_pred(self, pred: np.ndarray) -> None:
        pw = self.pos_weight
        if pw is not None and pw.ndim == 1 and pw.size != 1:
            if pred.ndim < 2 or pred.shape[-1] != pw.size:
                raise ValueError(
                    "Received an invalid value for `pred`, expected a last axis of length "
                    f"{pw.size} to match `pos_weight` (one weight per column). "
                    f"Received: pred with shape {pred.shape}"
                )
        if not self.from_logits:
            lo, hi = float(pred.min()), float(pred.max())
            if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
                raise ValueError(
                    "Received an invalid value for `pred`, expected probabilities in [0, 1] "
                    "with from_logits=False (pass logits with from_logits=True). "
                    f"Received: pred with min={lo} and max={hi}"
                )

    _bool_targets = True  # y = (x > 0) is a natural binary target

    def _check_target(self, target: np.ndarray) -> None:
        _check_probabilities(target, "binary targets (0, 1 or soft labels in between)")

    def _pos_weight(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``(p_c, p_c - 1)`` in ``dtype``, computed once per dtype."""
        cached = self._pw_cache.get(dtype)
        if cached is None:
            pw = self.pos_weight.astype(dtype)
            cached = (pw, pw - 1)
            self._pw_cache[dtype] = cached
        return cached

    def _pointwise(self, pred: np.ndarray, target: np.ndarray, out: np.ndarray) -> None:
        x, y = pred, target
        tmp = self._buffer("tmp", x.shape, x.dtype)
        if self.from_logits:
            np.abs(x, out=out)
            np.negative(out, out=out)
            with np.errstate(under="ignore"):
                np.exp(out, out=out)
            np.log1p(out, out=out)  # log(1 + e^-|x|), no overflow
            np.minimum(x, 0, out=tmp)
            out -= tmp  # softplus(-x) = log(1 + e^-|x|) + max(-x, 0) = -log σ(x)
            if self.pos_weight is not None:
                pw, pw_m1 = self._pos_weight(x.dtype)
                np.multiply(y, pw_m1, out=tmp)
                tmp += 1
                out *= tmp  # (1 + (p_c - 1) y) softplus(-x)
            np.subtract(1, y, out=tmp)
            tmp *= x
            out += tmp  # + (1 - y) x
        else:
            with np.errstate(divide="ignore"):
                np.log(x, out=out)
                np.maximum(out, _LOG_CLAMP, out=out)  # a = max(log q, -100)
                np.subtract(1, x, out=tmp)
                np.log(tmp, out=tmp)
                np.maximum(tmp, _LOG_CLAMP, out=tmp)  # b = max(log(1 - q), -100)
            if self.pos_weight is not None:
                out *= self._pos_weight(x.dtype)[0]
            out -= tmp
            out *= y
            out += tmp
            np.negative(out, out=out)  # ℓ = -(b + y (p_c a - b)) = -(p_c y a + (1 - y) b)

    def _backward(self, grad: np.ndarray) -> None:
        x, y = self._pred, self._target
        tmp = self._buffer("tmp", x.shape, x.dtype)
        if self.from_logits:
            with np.errstate(over="ignore", under="ignore"):  # e^-x = inf gives σ = 0
                np.negative(x, out=grad)
                np.exp(grad, out=grad)
            grad += 1
            np.reciprocal(grad, out=grad)  # σ(x) = 1 / (1 + e^-x)
            if self.pos_weight is None:
                grad -= y  # ∂ℓ/∂x = σ(x) - y
            else:
                pw, pw_m1 = self._pos_weight(x.dtype)
                np.multiply(grad, pw_m1, out=tmp)
                tmp -= pw
                tmp *= y
                grad += tmp  # ∂ℓ/∂x = σ + y ((p_c - 1) σ - p_c) = (1 + (p_c - 1) y) σ - p_c y
        else:
            np.subtract(1, x, out=tmp)
            tmp *= x
            np.maximum(tmp, _BCE_EPS, out=tmp)  # max(q (1 - q), 1e-12)
            if self.pos_weight is None:
                np.subtract(x, y, out=grad)  # q - y
            else:
                pw, pw_m1 = self._pos_weight(x.dtype)
                np.multiply(x, pw_m1, out=grad)
                grad -= pw
                grad *= y
                grad += x  # (1 + (p_c - 1) y) q - p_c y
            grad /= tmp
        grad *= self._scale
        self._weigh(grad)  # · s_n


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits: ``ℓ_n = -Σ_c w_c y_nc log softmax(z_n)_c``.

    ``pred`` holds logits ``z`` of shape ``(N, C)``; ``target`` holds either integer class
    labels ``(N,)`` (``y_n`` one-hot; float labels must be whole numbers) or class
    probabilities ``(N, C)``. Label smoothing ``ε`` replaces ``y`` by
    ``y' = (1 - ε) y + ε / C``. The log-softmax is computed stably as
    ``z - max(z) - log Σ exp(z - max(z))``. The gradient is fused:

        ∂ℓ_n/∂z_n = S_n softmax(z_n) - w ⊙ y'_n,   S_n = Σ_c w_c y'_nc,

    which is ``softmax(z_n) - y'_n`` without class weights (rows of ``y'`` summing to 1).

    Reductions follow PyTorch's ``CrossEntropyLoss``: ``"sum"`` gives ``Σ_n s_n ℓ_n``;
    ``"mean"`` divides that sum by ``N``, except with class weights and integer labels,
    where it divides by ``Σ_n w_{label_n}`` (the weights of the targets, also when label
    smoothing is on). Sample weights ``s_n`` multiply ``ℓ_n`` and leave the denominator
    unchanged (Keras's ``sum_over_batch_size``). If every target has weight 0, the mean is
    NaN, as in PyTorch.

    Parameters
    ----------
    label_smoothing : float
        ``ε`` in [0, 1) (default 0: no smoothing).
    weight : array of shape (C,), optional
        Non-negative per-class weights ``w_c`` (default: all 1).
    reduction : {"mean", "sum"}
        Weighted mean (default, see above) or sum.

    Notes
    -----
    Shapes: ``pred`` ``(N, C)``; ``target`` ``(N,)`` integer labels in ``[0, C)`` or
    ``(N, C)`` probabilities in [0, 1] (rows usually sum to 1; not checked, as in PyTorch);
    ``sample_weight`` ``(N,)``.
    """

    takes_labels = True
    squashes = "softmax"

    def __init__(
        self,
        label_smoothing: float = 0.0,
        weight: ArrayLike | None = None,
        reduction: str = "mean",
    ) -> None:
        label_smoothing = check_finite_real("label_smoothing", label_smoothing)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "Received an invalid value for `label_smoothing`, expected a number in "
                f"[0, 1). Received: label_smoothing={label_smoothing!r}"
            )
        self.label_smoothing = label_smoothing
        self.weight = None if weight is None else check_weight_vector("weight", weight)
        super().__init__(reduction)
        self._w_cache: dict[np.dtype, np.ndarray] = {}

    def config(self) -> dict[str, Any]:
        return {
            "label_smoothing": self.label_smoothing,
            "weight": _jsonable(self.weight),
            "reduction": self.reduction,
        }

    # -- checks ---------------------------------------------------------------------------
    def _check_inputs(self, pred: np.ndarray, target: np.ndarray) -> bool:
        """Check shapes and labels; return whether ``target`` holds integer labels."""
        if pred.ndim != 2:
            raise ValueError(
                "Received an invalid value for `pred`, expected logits of shape (N, C). "
                f"Received: pred with shape {pred.shape}"
            )
        n, n_classes = pred.shape
        if self.weight is not None and self.weight.size != n_classes:
            raise ValueError(
                f"Received an invalid value for `pred`, expected C = {self.weight.size} "
                f"columns to match `weight` (one weight per class). "
                f"Received: pred with shape {pred.shape}"
            )
        if target.shape not in ((n,), (n, n_classes)):
            raise ValueError(
                "Received an invalid value for `target`, expected integer labels of shape "
                f"(N,) = ({n},) or class probabilities of shape (N, C) = ({n}, {n_classes}). "
                f"Received: target with shape {target.shape}"
            )
        if target.ndim == 2:
            check_finite("target", target)
            _check_probabilities(target, "class probabilities")
            return False
        check_labels("target", target, n_classes)
        return True

    def _weight(self, dtype: np.dtype) -> np.ndarray:
        """The class weights in ``dtype``, converted once per dtype."""
        w = self._w_cache.get(dtype)
        if w is None:
            w = self._w_cache[dtype] = self.weight.astype(dtype)
        return w

    # -- forward and backward -------------------------------------------------------------
    def _forward(
        self, pred: np.ndarray, target: ArrayLike, sample_weight: np.ndarray | None
    ) -> float:
        target = as_target_array(target)
        is_labels = self._check_inputs(pred, target)

        z, dtype = pred, pred.dtype
        n, n_classes = z.shape
        eps = self.label_smoothing
        w = None if self.weight is None else self._weight(dtype)

        # Stable softmax, kept for backward: exp(z - max) / Σ_c exp(z - max). It is computed on
        # a transposed copy, (C, N): numpy reduces over the classes of a row one element at a
        # time, but over the rows of the copy with vector instructions.
        prob_t = self._buffer("prob_t", (n_classes, n), dtype)
        np.copyto(prob_t, z.T)
        zmax = np.maximum.reduce(prob_t, axis=0, out=self._buffer("zmax", (n,), dtype))
        prob_t -= zmax
        with np.errstate(under="ignore"):
            np.exp(prob_t, out=prob_t)
        sumexp = np.add.reduce(prob_t, axis=0, out=self._buffer("sumexp", (n,), dtype))
        prob_t /= sumexp
        log_sumexp = np.log(sumexp, out=sumexp)  # log p_nc = (z_nc - max_n) - log_sumexp_n

        # Per-sample losses ℓ_n = -(1 - ε) Σ_c w_c y_nc log p_nc - (ε / C) Σ_c w_c log p_nc.
        ell = self._buffer("ell", (n,), dtype)
        logp = None
        if is_labels:
            flat = self._buffer("flat", (n,), np.intp)
            offsets = self._row_offsets(n, n_classes)
            np.add(target, offsets, out=flat, casting="unsafe")  # index into ravel()
            np.take(z.reshape(-1), flat, out=ell, mode="clip")  # z_n,label_n (checked)
            ell -= zmax
            np.subtract(log_sumexp, ell, out=ell)  # -log p_n,label_n
            self._wt = None if w is None else np.take(w, flat - offsets)  # w_label_n, (N,)
            if self._wt is not None:
                ell *= self._wt
            if eps > 0.0:
                ell *= 1.0 - eps
            self._flat = flat
        else:
            logp = self._log_softmax(z, zmax, log_sumexp)
            y = self._as_dtype("target", target, dtype)
            if w is None:
                np.einsum("ij,ij->i", y, logp, out=ell)
            else:
                np.einsum("ij,ij,j->i", y, logp, w, out=ell)
            ell *= -(1.0 - eps)
            self._y = y
        if eps > 0.0:
            if logp is None:
                logp = self._log_softmax(z, zmax, log_sumexp)
            smooth = logp.sum(axis=1) if w is None else logp @ w  # Σ_c w_c logp_nc, (N,)
            smooth *= eps / n_classes
            ell -= smooth

        # Reduction: Σ_n s_n ℓ_n, divided by N or by Σ_n w_label_n.
        if self.reduction == "sum":
            scale = 1.0
        elif is_labels and w is not None:
            total_w = float(self._wt.sum())
            scale = 1.0 / total_w if total_w > 0.0 else math.nan
        else:
            scale = 1.0 / n
        if sample_weight is not None:
            ell *= sample_weight  # s_n ℓ_n, summed in the same order as without weights
        total = float(np.add.reduce(ell))

        self._is_labels = is_labels
        self._prob = prob_t.T  # softmax(z), (N, C)
        self._sw = sample_weight
        self._scale = scale
        return total * scale

    def _backward(self, grad: np.ndarray) -> None:
        n, n_classes = grad.shape
        eps = self.label_smoothing
        w = None if self.weight is None else self._weight(grad.dtype)
        # coef_n = scale · s_n: the reduction and the sample weights, a scalar or (N, 1).
        coef = self._scale if self._sw is None else (self._sw * self._scale)[:, None]

        if self._is_labels:
            # S_n = Σ_c w_c y'_nc = (1 - ε) w_label_n + (ε / C) Σ_c w_c (1 without weights).
            if w is None:
                s = 1.0
            else:
                s = (self._wt * (1.0 - eps))[:, None]
                s += eps / n_classes * float(w.sum())
            np.multiply(self._prob, s * coef, out=grad)  # S_n softmax(z_n) · coef_n
            if eps > 0.0:  # - (ε / C) w_c coef_n: the uniform part of w ⊙ y'
                if w is None:
                    grad -= eps / n_classes * coef
                elif np.ndim(coef) == 0:
                    grad -= w * (eps / n_classes * coef)
                else:
                    tmp = self._buffer("tmp", grad.shape, grad.dtype)
                    np.multiply(coef * (eps / n_classes), w, out=tmp)
                    grad -= tmp
            # - (1 - ε) w_label_n coef_n at each label: the one-hot part of w ⊙ y'
            hot = (1.0 - eps) * coef if np.ndim(coef) == 0 else (1.0 - eps) * coef[:, 0]
            if self._wt is not None:
                hot = hot * self._wt
            grad.reshape(-1)[self._flat] -= hot
        else:
            t = self._buffer("tmp", grad.shape, grad.dtype)
            np.multiply(self._y, 1.0 - eps, out=t)
            if eps > 0.0:
                t += eps / n_classes  # y' = (1 - ε) y + ε / C
            if w is not None:
                t *= w  # w ⊙ y'
            s = t.sum(axis=1, keepdims=True)  # S_n = Σ_c w_c y'_nc
            s *= coef
            np.multiply(self._prob, s, out=grad)  # S_n softmax(z_n) · coef_n
            t *= coef
            grad -= t  # - w ⊙ y'_n · coef_n

    def _log_softmax(self, z: np.ndarray, zmax: np.ndarray, log_sumexp: np.ndarray) -> np.ndarray:
        """log softmax(z) = (z - max) - log Σ_c exp(z - max), shape (N, C), in a buffer.

        ``zmax`` and ``log_sumexp`` have shape (N,).
        """
        logp = np.subtract(z, zmax[:, None], out=self._buffer("logp", z.shape, z.dtype))
        logp -= log_sumexp[:, None]
        return logp

    def _row_offsets(self, n: int, n_classes: int) -> np.ndarray:
        """``[0, C, 2C, ...]``: turns labels into indices of the flattened ``(N, C)`` array."""
        off = self._buffers.get("row_offsets")
        if off is None or off.shape != (n,) or (n > 1 and off[1] != n_classes):
            off = self._buffers["row_offsets"] = np.arange(n, dtype=np.intp) * n_classes
        return off


def _check_probabilities(target: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` unless every value of a finite ``target`` lies in ``[0, 1]``."""
    lo, hi = target.min(), target.max()
    if lo < 0 or hi > 1:
        i = int(np.flatnonzero((target < 0) | (target > 1))[0])
        raise ValueError(
            f"Received an invalid value for `target`, expected {what} in [0, 1]. "
            f"Received: target.flat[{i}]={target.flat[i].item()!r}"
        )
