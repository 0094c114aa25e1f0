"""Checks of user input at the boundary: clear errors naming what was expected and received."""

from __future__ import annotations

import math
import numbers

import numpy as np

# Finite checks on large inputs run over row blocks of at most this many elements, so that a
# memory-mapped X is never materialised as a full-size temporary.
_CHECK_BLOCK_ELEMENTS = 1 << 20


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int, or ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Received an invalid type for `{name}`, expected a positive integer. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if value <= 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_non_negative_int(name: str, value: object) -> int:
    """``value`` as an int ``>= 0`` (a seed, a count), or ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Received an invalid type for `{name}`, expected a non-negative integer. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if value < 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-negative integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_finite_real(name: str, value: object) -> float:
    """``value`` as a finite float (a slope, a scale), or ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Received an invalid type for `{name}`, expected a finite real number. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if not math.isfinite(value):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a finite real number. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_fraction(name: str, value: object) -> float:
    """``value`` as a float in [0, 1), or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Received an invalid type for `{name}`, expected a number in [0, 1). "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if not 0 <= value < 1:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a number in [0, 1). "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_array(
    X: object,
    name: str = "X",
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
    check_finite(X, name, dtype)
    return X


def check_finite(X: np.ndarray, name: str = "X", dtype: object = None) -> None:
    """Raise ValueError naming the first row with NaN or ±inf; works block by block.

    With a narrower float ``dtype`` (float64 data for a float32 model), a value beyond that
    dtype's range is refused too (it would become ±inf in the batch cast). Only reductions
    run over each block (2**20 elements), so no temporary of the data's size is made.
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


def check_same_length(X: np.ndarray, y: np.ndarray, x_name: str = "X", y_name: str = "y") -> None:
    if len(X) != len(y):
        raise ValueError(
            f"{x_name} and {y_name} have different numbers of samples: "
            f"{x_name} has {len(X)}, {y_name} has {len(y)}"
        )


def check_dtype(dtype: object) -> np.dtype:
    """np.float32 or np.float64 as a dtype; anything else raises."""
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(
            "Received an invalid value for `dtype`, expected float32 or float64. "
            f"Received: dtype={dtype!r}"
        )
    return dt


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
