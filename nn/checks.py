"""Checks of user input at the boundary, shared by every package: nn, optim and losses.

Every check takes the argument's name first, then its value, and raises with one wording::

    TypeError:  Received an invalid type for `lr`, expected a positive finite number.
                Received: lr='0.1' of type str
    ValueError: Received an invalid value for `lr`, expected a positive finite number.
                Received: lr=-1

Scalar checks return plain Python ``int``, ``float`` or ``bool``: a NumPy float64 scalar
kept as a hyperparameter would promote float32 arithmetic to float64.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Finite checks on large inputs run over row blocks of at most this many elements, so that a
# memory-mapped X is never materialised as a full-size temporary.
_CHECK_BLOCK_ELEMENTS = 1 << 20


def invalid(name: str, expected: str, value: Any) -> ValueError:
    """The ValueError for ``name``: what was expected and what was received."""
    return ValueError(
        f"Received an invalid value for `{name}`, expected {expected}. Received: {name}={value!r}"
    )


def invalid_type(name: str, expected: str, value: Any) -> TypeError:
    """The TypeError for ``name``: what was expected, what was received and its type."""
    return TypeError(
        f"Received an invalid type for `{name}`, expected {expected}. "
        f"Received: {name}={value!r} of type {type(value).__name__}"
    )


# -- scalars ---------------------------------------------------------------------------------


def _integer(name: str, value: Any, expected: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise invalid_type(name, expected, value)
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """An integer ``>= 1`` (epochs, a batch size, a layer width)."""
    out = _integer(name, value, "a positive integer")
    if out < 1:
        raise invalid(name, "a positive integer", value)
    return out


def check_non_negative_int(name: str, value: Any) -> int:
    """An integer ``>= 0`` (a seed, a count)."""
    out = _integer(name, value, "a non-negative integer")
    if out < 0:
        raise invalid(name, "a non-negative integer", value)
    return out


def _real(name: str, value: Any, expected: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise invalid_type(name, expected, value)
    out = float(value)
    if not math.isfinite(out):
        raise invalid(name, expected, value)
    return out


def check_finite_real(name: str, value: Any) -> float:
    """A finite number (a slope, a smoothing amount)."""
    return _real(name, value, "a finite real number")


def check_non_negative(name: str, value: Any) -> float:
    """A finite number ``>= 0`` (learning rates, weight decay, a threshold)."""
    expected = "a non-negative finite number"
    out = _real(name, value, expected)
    if out < 0:
        raise invalid(name, expected, value)
    return out


def check_positive(name: str, value: Any) -> float:
    """A finite number ``> 0`` (eps, a clipping bound, Huber's delta)."""
    expected = "a positive finite number"
    out = _real(name, value, expected)
    if out <= 0:
        raise invalid(name, expected, value)
    return out


def check_fraction(name: str, value: Any, *, closed: bool = False) -> float:
    """A number in ``[0, 1)``, or in ``[0, 1]`` when ``closed``."""
    expected = "a number in [0, 1]" if closed else "a number in [0, 1)"
    out = _real(name, value, expected)
    if not 0.0 <= out <= 1.0 or (out == 1.0 and not closed):
        raise invalid(name, expected, value)
    return out


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy booleans accepted)."""
    if not isinstance(value, bool | np.bool_):
        raise invalid_type(name, "True or False", value)
    return bool(value)


def check_one_of(name: str, value: Any, options: Iterable[str]) -> str:
    """One of the strings ``options``."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise invalid(name, f"one of {listed}", value)
    return value


def check_dtype(name: str, dtype: Any) -> np.dtype:
    """np.float32 or np.float64 (or their names) as a dtype."""
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise invalid(name, "float32 or float64", dtype)
    return dt


# -- arrays ----------------------------------------------------------------------------------


def check_array(
    name: str,
    X: object,
    *,
    ndim: int | None = 2,
    n_features: int | None = None,
    dtype: object = None,
) -> np.ndarray:
    """Return ``X`` as an ndarray (no copy when it already is one) after checking it.

    Checks the kind (real numbers), the number of dimensions, that there is at least one
    sample (and one feature), the number of features, and that every value is finite —
    also once cast to ``dtype`` (the model's), so 1e300 in a float64 X meant for a float32
    model is refused rather than turned into inf. The finite check runs block by block, so a
    memory-mapped array is never copied whole.

    Raises
    ------
    TypeError
        For complex, string, object or other non-numeric data.
    ValueError
        For a wrong number of dimensions or features, no samples, NaN or ±inf.
    """
    if not isinstance(X, np.ndarray):
        X = _from_nullable_pandas(name, X)
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} could not be read as an array: {err}") from None
    if X.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (bool, integer or float), "
            f"but has dtype {X.dtype} ({_kind_name(X.dtype)})"
        )
    if ndim is not None and X.ndim != ndim:
        shape_hint = "(n_samples, n_features)" if ndim == 2 else "(n_samples,)"
        raise ValueError(
            f"{name} must be {ndim}-D with shape {shape_hint}, but has {X.ndim} "
            f"dimension(s) with shape {X.shape}"
        )
    if X.ndim == 0:
        raise ValueError(
            f"{name} must be an array with one row per sample, but is a scalar ({X!r}, shape ())"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples (shape {X.shape}); at least 1 is required")
    if X.ndim == 2 and X.shape[1] == 0:
        raise ValueError(f"{name} has 0 features (shape {X.shape}); at least 1 is required")
    if n_features is not None and X.ndim == 2 and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects {n_features}")
    check_finite(name, X, dtype)
    return X


def _from_nullable_pandas(name: str, X: Any) -> Any:
    """A pandas frame or series of nullable columns (Float64, Int64, boolean) as a numpy array.

    ``np.asarray`` would give an object array. Missing values (pd.NA) are refused with their
    count; anything that is not such a frame is returned as it is.
    """
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "isna"):
        return X
    dtypes = list(dtypes) if hasattr(dtypes, "__iter__") else [dtypes]  # a Series: one dtype
    numpy_dtypes = [getattr(d, "numpy_dtype", d) for d in dtypes]  # Float64Dtype -> float64
    if all(isinstance(d, np.dtype) for d in dtypes) or not all(
        isinstance(d, np.dtype) and d.kind in "biuf" for d in numpy_dtypes
    ):
        return X  # plain numpy columns, or columns that are not numbers (refused later)
    n_missing = int(np.asarray(X.isna()).sum())
    if n_missing:
        raise ValueError(
            f"{name} has {n_missing} missing value(s) (pd.NA) in its nullable pandas columns; "
            "fill or drop them first (e.g. X.dropna() or X.fillna(0))"
        )
    return X.to_numpy(dtype=np.result_type(*numpy_dtypes))


def check_finite(name: str, X: np.ndarray, dtype: Any = None) -> None:
    """Raise ValueError naming the first row of ``X`` with NaN or ±inf; block by block.

    With a narrower float ``dtype`` (float64 data for a float32 model), a value beyond that
    dtype's range is refused too (it would become ±inf in the cast). Only reductions run
    over each block (2**20 elements), so no temporary of the data's size is made.
    """
    if X.dtype.kind != "f":
        return
    target = None if dtype is None else np.dtype(dtype)
    narrower = target is not None and target.kind == "f" and target.itemsize < X.dtype.itemsize
    limit = np.finfo(target).max if narrower else np.inf
    rows = max(1, _CHECK_BLOCK_ELEMENTS // max(1, X[0].size))
    for start in range(0, X.shape[0], rows):
        block = X[start : start + rows]
        with np.errstate(over="ignore", invalid="ignore"):
            total = block.sum()  # finite unless a value is NaN/±inf (or the sum overflows)
        if np.isfinite(total) or np.isfinite(block).all():
            if narrower and (block.max() > limit or block.min() < -limit):
                flat = np.abs(block.reshape(len(block), -1)).max(axis=1)
                bad = start + int(np.flatnonzero(flat > limit)[0])
                raise ValueError(
                    f"{name} has values too large for the model's {target} (first at row "
                    f"{bad}: |x| up to {float(flat[bad - start]):.3g}, while {target} ends at "
                    f"{limit:.3g}); scale the data or use a float64 model"
                )
            continue
        bad = start + int(np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(1))[0])
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad}); expected finite numbers"
        )


def check_same_length(x_name: str, X: Any, y_name: str, y: Any) -> None:
    """Raise ValueError unless ``X`` and ``y`` have one row per sample each."""
    if len(X) != len(y):
        raise ValueError(
            f"{x_name} and {y_name} have different numbers of samples: "
            f"{x_name} has {len(X)}, {y_name} has {len(y)}"
        )


def check_sample_weight(name: str, value: Any, n_samples: int, dtype: Any) -> np.ndarray:
    """Finite, non-negative weights of shape ``(n_samples,)``, as an array of ``dtype``."""
    sw = np.asarray(value)
    if sw.dtype.kind not in "iuf":
        raise TypeError(
            f"Received an invalid type for `{name}`, expected an array of real numbers. "
            f"Received: {name} with dtype {sw.dtype}"
        )
    if sw.shape != (n_samples,):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected shape ({n_samples},), one "
            f"weight per sample. Received: {name} with shape {sw.shape}"
        )
    check_finite(name, sw)
    if sw.size and sw.min() < 0:
        i = int(np.flatnonzero(sw < 0)[0])
        raise ValueError(
            f"Received an invalid value for `{name}`, expected non-negative weights. "
            f"Received: {name}[{i}]={sw[i].item()!r}"
        )
    return sw.astype(dtype, copy=False)


def check_weight_vector(name: str, value: Any) -> np.ndarray:
    """Per-class weights: a finite, non-negative, non-empty 1-D float64 array (a copy)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid_type(name, "a 1-D array of real numbers", value) from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-empty 1-D array "
            f"(one weight per class). Received: {name} with shape {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise invalid(name, "finite non-negative weights", arr.tolist())
    return arr


def check_labels(name: str, y: np.ndarray, n_classes: int | None) -> None:
    """Class labels: whole numbers in ``[0, n_classes)`` (any count when ``n_classes`` is None).

    Reductions first, so a valid batch costs two passes; the culprit is located only on error.
    """
    expected = "integer class labels " + ("≥ 0" if n_classes is None else f"in [0, {n_classes})")
    if y.dtype.kind not in "iuf":
        hint = f"; pass {name}.astype(int) for classes 0 and 1" if y.dtype.kind == "b" else ""
        raise TypeError(
            f"Received an invalid type for `{name}`, expected {expected}. "
            f"Received: {name} with dtype {y.dtype}{hint}"
        )
    if y.dtype.kind == "f" and np.isnan(np.maximum.reduce(y, axis=None)):
        i = int(np.flatnonzero(np.isnan(y))[0])
        raise invalid(f"{name}[{i}]", expected, y[i].item())
    low, high = np.minimum.reduce(y, axis=None), np.maximum.reduce(y, axis=None)
    if low < 0 or (n_classes is not None and high >= n_classes):
        i = int(np.flatnonzero((y < 0) | (y >= (np.inf if n_classes is None else n_classes)))[0])
        raise invalid(f"{name}[{i}]", expected, y[i].item())
    if y.dtype.kind == "f":
        fractional = y != np.floor(y)
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise invalid(f"{name}[{i}]", expected, y[i].item())


# -- saved state -------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A Python scalar from a 0-d array or NumPy scalar (as read back from an .npz file)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    return value


def check_state_dict_header(
    owner: object, state_dict: Any, keys: set[str], kind: str, noun: str
) -> None:
    """A ``state_dict`` is a mapping with exactly ``keys``, saved from ``owner``'s class.

    ``kind`` is the key holding the class name (``"optimizer"`` or ``"scheduler"``) and
    ``noun`` names the owner in messages.
    """
    cls = type(owner).__name__
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"Received an invalid type for `state_dict`, expected a mapping from "
            f"{cls}.state_dict(). Received: {type(state_dict).__name__}"
        )
    missing = sorted(keys - set(state_dict))
    unexpected = sorted(set(state_dict) - keys)
    if missing or unexpected:
        raise ValueError(
            f"state_dict does not match {cls}: missing keys {missing}, unexpected keys {unexpected}"
        )
    name = plain(state_dict[kind])
    if name != cls:
        raise ValueError(f"state_dict was saved from {name!r}; this {noun} is {cls!r}")


def _kind_name(dtype: np.dtype) -> str:
    return {
        "c": "complex",
        "U": "string",
        "S": "bytes",
        "O": "object",
        "M": "datetime",
        "m": "timedelta",
        "V": "void",
    }.get(dtype.kind, dtype.kind)
