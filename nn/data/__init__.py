"""Data sets: the bundled digits, CSV/NPZ/NPY files, and train/test splits.

Every loader returns ``(X, y)`` with ``X`` of shape ``(n_samples, n_features)`` and ``y`` of
shape ``(n_samples,)`` (or ``None`` when the file holds no labels). Labels stored as integers
(cells written without a decimal point or exponent in a CSV, an integer array in an ``.npz``)
come back as ``int64`` class labels; any other labels come back as floats of the requested
``dtype`` (regression targets), even when their values are whole numbers (``151.0``).

Mistakes in a data file raise :class:`ValueError` (or :class:`FileNotFoundError` for a missing
file) with one line naming the file, what was expected and what was found, for example
``data.csv, line 7: expected 65 columns, found 64``.
"""

from __future__ import annotations

import gzip
import io
import os
from importlib import resources
from numbers import Integral, Real
from typing import IO

import numpy as np
from numpy.typing import DTypeLike

from nn.checks import check_dtype
from nn.data.arrays import PathLike, load_npy, load_npz
from nn.data.text import load_csv, read_csv

__all__ = [
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_npy",
    "load_npz",
    "train_test_split",
]

_DIGITS_RESOURCE = "datasets/digits.csv.gz"
_DIGITS_SHAPE = (1797, 64)
_SUFFIXES = (".csv", ".csv.gz", ".npz", ".npy")


# -- the bundled data set -------------------------------------------------------------------


def load_digits(dtype: DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The handwritten digits bundled with the package: 8x8 images as 64 features.

    The test part of the UCI "Optical Recognition of Handwritten Digits" data set
    (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), read from the installed package with
    :mod:`importlib.resources`.

    Parameters
    ----------
    dtype : {float32, float64}
        The dtype of ``X`` (default ``float32``).

    Returns
    -------
    X : ndarray, shape (1797, 64)
        Pixel intensities, whole numbers 0..16, row by row.
    y : ndarray of int64, shape (1797,)
        The digit shown, 0..9.
    """
    dtype = check_dtype("dtype", dtype)
    name = f"nn/{_DIGITS_RESOURCE}"
    text = gzip.decompress(resources.files("nn").joinpath(_DIGITS_RESOURCE).read_bytes())
    text = text.decode("utf-8")

    def open_text() -> IO[str]:
        return io.StringIO(text)

    X, y = read_csv(open_text, name, dtype, header=False, labels=True)
    if X.shape != _DIGITS_SHAPE:  # a damaged installation, not a user error
        raise ValueError(f"{name}: expected shape {_DIGITS_SHAPE}, found {X.shape}")
    return X, y


# -- train/test split -----------------------------------------------------------------------


def train_test_split(
    X: np.ndarray,
    y: np.ndarray | None,
    test_size: float | int = 0.2,
    stratify: bool = False,
    seed: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Shuffle the samples and split them into a training and a test set.

    ``n_test = ceil(test_size * n)`` for a fraction, or ``test_size`` itself for a count; both
    sets get at least one sample. With ``stratify=True`` each class is split on its own, so the
    test set keeps the class proportions of ``y``: class ``c`` with ``n_c`` samples gives
    ``floor(n_test * n_c / n)`` test samples, and the remaining ones go to the classes with the
    largest fractional parts (so the sizes add up to ``n_test`` exactly).

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
        The samples.
    y : array_like, shape (n_samples, ...) or None
        The labels or targets; ``None`` splits ``X`` alone (the label parts are ``None``).
    test_size : float in (0, 1) or int in [1, n_samples - 1]
        The fraction or the number of samples in the test set.
    stratify : bool
        Keep the class proportions of ``y`` (which must hold class labels, shape (n_samples,)).
    seed : int, numpy.random.Generator or None
        Seed of the ``np.random.Generator`` that draws the permutation; the global random
        state is never used.

    Returns
    -------
    X_train, X_test : ndarray, shapes (n_train, ...) and (n_test, ...)
    y_train, y_test : ndarray or None, shapes (n_train, ...) and (n_test, ...)
    """
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(
            "Received an invalid value for `X`, expected an array of samples. "
            f"Received: X with shape {X.shape}"
        )
    n = X.shape[0]
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"`X` and `y` must have the same number of samples. Received: "
                f"X with shape {X.shape}, y with shape {y.shape}"
            )
    if n < 2:
        raise ValueError(
            f"Cannot split {n} sample(s) into two non-empty sets; expected at least 2 samples."
        )
    n_test = _n_test(test_size, n)
    rng = np.random.default_rng(seed)

    if stratify:
        train_idx, test_idx = _stratified_indices(y, n_test, rng)
    else:
        perm = rng.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]

    y_train = None if y is None else y[train_idx]
    y_test = None if y is None else y[test_idx]
    return X[train_idx], X[test_idx], y_train, y_test


def _n_test(test_size: float | int, n: int) -> int:
    """The number of test samples for ``test_size`` out of ``n``."""
    if isinstance(test_size, bool) or not isinstance(test_size, Real):
        raise TypeError(
            "Received an invalid value for `test_size`, expected a fraction in (0, 1) "
            f"or a sample count. Received: test_size={test_size!r}"
        )
    if isinstance(test_size, Integral):
        if not 1 <= test_size <= n - 1:
            raise ValueError(
                "Received an invalid value for `test_size`, expected a count in "
                f"[1, {n - 1}] for {n} samples. Received: test_size={test_size}"
            )
        return int(test_size)
    if not 0.0 < test_size < 1.0:
        raise ValueError(
            "Received an invalid value for `test_size`, expected a fraction in "
            f"(0, 1). Received: test_size={test_size}"
        )
    return min(max(int(np.ceil(test_size * n)), 1), n - 1)


def _stratified_indices(
    y: np.ndarray | None, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with the class proportions of ``y`` in both parts."""
    if y is None or y.ndim != 1:
        shape = None if y is None else y.shape
        raise ValueError(
            "`stratify=True` needs class labels `y` of shape (n_samples,). "
            f"Received: y with shape {shape}"
        )
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(y == np.round(y))):
        raise ValueError(
            "`stratify=True` needs class labels, found non-integer values in `y` "
            "(regression targets cannot be stratified)"
        )
    _, classes = np.unique(y, return_inverse=True)
    counts = np.bincount(classes)
    n = y.shape[0]

    # Largest-remainder rounding of n_test * n_c / n: floor first, then one more sample for
    # the classes with the largest fractional parts until the counts add up to n_test. The
    # floor leaves every class a training sample, and extras go only to classes that keep one
    # after them while any such class is left; when fewer of those are left than extras are
    # due, they share the extras evenly.
    exact = n_test * counts / n
    per_class = np.floor(exact).astype(np.int64)
    short = n_test - int(per_class.sum())
    if short:
        fraction = exact - per_class  # what each class is still due
        tie_break = rng.random(counts.size)
        while short:  # one pass in practice
            # classes that keep a training sample after one more; if none, any with samples
            room = counts - 1 - per_class
            if not (room > 0).any():
                room = counts - per_class
            candidates = np.flatnonzero(room > 0)
            if short < candidates.size:  # one extra each, to the largest fractions still due
                best = np.lexsort((tie_break[candidates], -fraction[candidates]))[:short]
                chosen = candidates[best]
                give = np.ones(short, dtype=np.int64)
            else:  # every class with room gets some: equal shares, capped by the room
                chosen = candidates
                give = np.minimum(room[candidates], short // candidates.size)
            per_class[chosen] += give
            fraction[chosen] -= give
            short -= int(give.sum())

    test_parts, train_parts = [], []
    for c, k in enumerate(per_class):
        members = rng.permutation(np.flatnonzero(classes == c))
        test_parts.append(members[:k])
        train_parts.append(members[k:])
    # mix the classes so neither set is ordered by label
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(test_parts))


# -- files -----------------------------------------------------------------------------------


def load_dataset(
    path: PathLike, dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load ``(X, y)`` from a file, chosen by its suffix.

    ``.csv`` and ``.csv.gz`` go to :func:`load_csv` (label in the last column), ``.npz`` to
    :func:`load_npz` (arrays ``X`` and ``y``), ``.npy`` to :func:`load_npy` (``X`` only;
    ``y`` is ``None``).

    Parameters
    ----------
    path : str or path-like
        The data file.
    dtype : {float32, float64}
        The dtype of ``X`` and of float labels (default ``float32``).

    Returns
    -------
    X : ndarray, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,) or (n_samples, n_outputs), or None
    """
    name = os.fspath(path)
    lower = str(name).lower()
    if lower.endswith((".csv", ".csv.gz")):
        return load_csv(path, dtype=dtype)
    if lower.endswith(".npz"):
        return load_npz(path, dtype=dtype)
    if lower.endswith(".npy"):
        return load_npy(path, dtype=dtype), None
    raise ValueError(
        f"{name}: expected a file ending in one of {', '.join(_SUFFIXES)}, "
        f"found suffix {os.path.splitext(lower)[1] or '(none)'!r}"
    )
