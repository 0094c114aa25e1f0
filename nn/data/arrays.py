"""Arrays from ``.npz`` and ``.npy`` files, and the checks every loader shares."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import DTypeLike

from nn.checks import check_dtype, check_finite

PathLike = str | os.PathLike
ROWS_PER_CHUNK = 65536  # rows checked at a time when scanning memory-mapped arrays


def load_npz(path: PathLike, dtype: DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Load arrays ``X`` and ``y`` from an ``.npz`` archive (never unpickling anything).

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file, as written by ``np.savez(path, X=X, y=y)``.
    dtype : {float32, float64}
        The dtype of ``X`` and of float labels (default ``float32``).

    Returns
    -------
    X : ndarray, shape (n_samples, n_features)
    y : ndarray, shape (n_samples,) or (n_samples, n_outputs)
        ``int64`` when ``y`` is an integer (or bool) array of shape ``(n_samples,)`` or
        ``(n_samples, 1)``, else ``dtype``.
    """
    dtype = check_dtype("dtype", dtype)
    name = check_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{name}: expected an .npz archive of arrays `X` and `y`, "
            f"found a file numpy cannot read as one ({exc})"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{name}: expected an .npz archive of arrays `X` and `y`, found a single .npy array"
        )
    with archive:
        missing = [key for key in ("X", "y") if key not in archive.files]
        if missing:
            raise ValueError(
                f"{name}: expected arrays `X` and `y`, found "
                f"{sorted(archive.files) or 'no arrays'} (missing "
                f"{', '.join(f'`{k}`' for k in missing)})"
            )
        X = npz_array(archive, "X", name)
        y = npz_array(archive, "y", name)

    check_numeric(X, f"{name}: array `X`")
    check_numeric(y, f"{name}: array `y`")
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"{name}: expected array `X` of shape (n_samples, n_features) with at "
            f"least one sample, found shape {X.shape}"
        )
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name}: expected array `y` of shape ({X.shape[0]},) to match "
            f"`X` of shape {X.shape}, found shape {y.shape}"
        )
    check_finite_data(X, f"{name}: array `X`")
    check_finite_data(y, f"{name}: array `y`")
    return cast(X, dtype, f"{name}: array `X`"), as_labels(y, dtype, f"{name}: array `y`")


def load_npy(
    path: PathLike, dtype: DTypeLike = np.float32, mmap_mode: str | None = None
) -> np.ndarray:
    """Load a feature matrix ``X`` (no labels) from an ``.npy`` file.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file, as written by ``np.save``.
    dtype : {float32, float64}
        The dtype of the returned array (default ``float32``); ignored with ``mmap_mode``.
    mmap_mode : {None, "r", "r+", "c"}
        Memory-map the file instead of reading it (for data larger than memory): the array
        keeps the dtype stored in the file, and models cast it batch by batch.

    Returns
    -------
    X : ndarray or numpy.memmap, shape (n_samples, n_features)
    """
    dtype = check_dtype("dtype", dtype)
    if mmap_mode not in (None, "r", "r+", "c"):
        raise ValueError(
            "Received an invalid value for `mmap_mode`, expected one of None, 'r', "
            f"'r+', 'c'. Received: mmap_mode={mmap_mode!r}"
        )
    name = check_file(path)
    try:
        X = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{name}: expected an .npy array, found a file numpy cannot read as one ({exc})"
        ) from None
    if not isinstance(X, np.ndarray):
        X.close()
        raise ValueError(f"{name}: expected an .npy array, found an .npz archive")
    check_numeric(X, name)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"{name}: expected an array of shape (n_samples, n_features) with at "
            f"least one sample, found shape {X.shape}"
        )
    check_finite_data(X, name)
    return X if mmap_mode is not None else cast(X, dtype, name)


# -- helpers ---------------------------------------------------------------------------------


def check_file(path: PathLike) -> str:
    """The name to show in messages; raises when ``path`` is not an existing file."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            "Received an invalid value for `path`, expected a str or path-like. "
            f"Received: path={path!r}"
        )
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: expected a data file, found no such file")
    if os.path.isdir(name):
        raise ValueError(f"{name}: expected a data file, found a directory")
    if os.path.getsize(name) == 0:
        raise ValueError(f"{name}: expected data, found an empty file")
    return name


def as_labels(y: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """Integer labels ``(n,)`` or ``(n, 1)`` as ``int64`` classes; anything else as floats.

    Floats stay floats even when every value is whole: the file stored them as numbers.
    Other two-dimensional targets (class probabilities, several outputs) become floats.
    """
    if y.dtype.kind in "biu" and (y.ndim == 1 or y.shape[1] == 1):
        return y.astype(np.int64, copy=False)
    return cast(y, dtype, what)


def cast(a: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """``a`` (already checked finite) in ``dtype``, refusing values beyond a narrower float
    dtype's range: they would become ±inf."""
    if a.dtype.kind == "f" and a.dtype.itemsize > np.dtype(dtype).itemsize:
        check_finite(what, a, dtype=dtype)
    return a.astype(dtype, copy=False)


def npz_array(archive: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    """``archive[key]``, with a clear error for arrays that would need pickle."""
    try:
        return archive[key]
    except ValueError as exc:
        raise ValueError(
            f"{name}: expected array `{key}` of numbers, found an array that "
            f"needs pickle to load ({exc})"
        ) from None


def check_numeric(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numbers (bool, int or float), found dtype {a.dtype}")


def check_finite_data(a: np.ndarray, what: str) -> None:
    """Raise naming the first NaN or infinity in ``a`` (scanned in chunks for memmaps)."""
    if a.dtype.kind != "f":
        return
    for start in range(0, a.shape[0], ROWS_PER_CHUNK):
        chunk = np.asarray(a[start : start + ROWS_PER_CHUNK])
        bad = ~np.isfinite(chunk)
        if bad.any():
            where = np.argwhere(bad)[0]
            where[0] += start
            count = sum(
                int((~np.isfinite(np.asarray(a[s : s + ROWS_PER_CHUNK]))).sum())
                for s in range(start, a.shape[0], ROWS_PER_CHUNK)
            )
            index = tuple(int(i) for i in where)
            raise ValueError(
                f"{what}: expected finite numbers, found {count} NaN or infinite "
                f"value(s), the first {a[index]} at index {index}"
            )
