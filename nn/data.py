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

import contextlib
import gzip
import io
import itertools
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from importlib import resources
from numbers import Integral, Real
from typing import IO

import numpy as np
from numpy.typing import DTypeLike

from nn.checks import check_bool, check_dtype, check_finite

__all__ = [
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_npy",
    "load_npz",
    "train_test_split",
]

PathLike = str | os.PathLike

_DIGITS_RESOURCE = "datasets/digits.csv.gz"
_DIGITS_SHAPE = (1797, 64)
_SUFFIXES = (".csv", ".csv.gz", ".npz", ".npy")
_ROWS_PER_CHUNK = 65536  # rows checked at a time when scanning memory-mapped arrays


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

    X, y = _read_csv(open_text, name, dtype, header=False, labels=True)
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


def load_csv(
    path: PathLike, dtype: DTypeLike = np.float32, header: bool | None = None, labels: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a comma-separated file of numbers whose last column is the label.

    Blank lines are skipped. A ``.gz`` suffix means gzip-compressed text. A first column with
    an empty name in the header (or pandas' ``Unnamed: 0``) that holds distinct whole numbers
    is the row index ``DataFrame.to_csv`` writes by default: it is dropped with a warning
    (as a feature it could leak the label of sorted data); any other unnamed first column is
    kept, with a warning.

    Parameters
    ----------
    path : str or path-like
        The ``.csv`` or ``.csv.gz`` file.
    dtype : {float32, float64}
        The dtype of ``X`` and of float labels (default ``float32``).
    header : bool or None
        Whether the first row holds column names. ``None`` detects it: the first row is a
        header when none of its cells is a number (a row with a stray word among numbers is
        reported as bad data, not silently dropped).
    labels : bool
        Whether the last column holds the labels (default); ``False`` reads every column as
        a feature (data to predict from) and returns ``y = None``.

    Returns
    -------
    X : ndarray, shape (n_samples, n_columns - 1), or (n_samples, n_columns) without labels
    y : ndarray, shape (n_samples,), or None without labels
        ``int64`` when every label is written as an integer (no decimal point, no exponent),
        else ``dtype``.
    """
    dtype = check_dtype("dtype", dtype)
    if header is not None and not isinstance(header, bool):
        raise TypeError(
            "Received an invalid value for `header`, expected True, False or None. "
            f"Received: header={header!r}"
        )
    name = _check_file(path)
    if str(name).lower().endswith(".gz"):

        def open_text() -> IO[str]:
            return gzip.open(path, "rt", encoding="utf-8-sig")
    else:

        def open_text() -> IO[str]:
            return open(path, encoding="utf-8-sig")

    labels = check_bool("labels", labels)
    return _read_csv(open_text, name, dtype, header, labels)


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
    name = _check_file(path)
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
        X = _npz_array(archive, "X", name)
        y = _npz_array(archive, "y", name)

    _check_numeric(X, f"{name}: array `X`")
    _check_numeric(y, f"{name}: array `y`")
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
    _check_finite(X, f"{name}: array `X`")
    _check_finite(y, f"{name}: array `y`")
    return _cast(X, dtype, f"{name}: array `X`"), _labels(y, dtype, f"{name}: array `y`")


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
    name = _check_file(path)
    try:
        X = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{name}: expected an .npy array, found a file numpy cannot read as one ({exc})"
        ) from None
    if not isinstance(X, np.ndarray):
        X.close()
        raise ValueError(f"{name}: expected an .npy array, found an .npz archive")
    _check_numeric(X, name)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"{name}: expected an array of shape (n_samples, n_features) with at "
            f"least one sample, found shape {X.shape}"
        )
    _check_finite(X, name)
    return X if mmap_mode is not None else _cast(X, dtype, name)


# -- helpers ---------------------------------------------------------------------------------


def _check_file(path: PathLike) -> str:
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


def _labels(y: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """Integer labels ``(n,)`` or ``(n, 1)`` as ``int64`` classes; anything else as floats.

    Floats stay floats even when every value is whole: the file stored them as numbers.
    Other two-dimensional targets (class probabilities, several outputs) become floats.
    """
    if y.dtype.kind in "biu" and (y.ndim == 1 or y.shape[1] == 1):
        return y.astype(np.int64, copy=False)
    return _cast(y, dtype, what)


def _cast(a: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """``a`` (already checked finite) in ``dtype``, refusing values beyond a narrower float
    dtype's range: they would become ±inf."""
    if a.dtype.kind == "f" and a.dtype.itemsize > np.dtype(dtype).itemsize:
        check_finite(what, a, dtype=dtype)
    return a.astype(dtype, copy=False)


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    """``archive[key]``, with a clear error for arrays that would need pickle."""
    try:
        return archive[key]
    except ValueError as exc:
        raise ValueError(
            f"{name}: expected array `{key}` of numbers, found an array that "
            f"needs pickle to load ({exc})"
        ) from None


def _check_numeric(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numbers (bool, int or float), found dtype {a.dtype}")


def _check_finite(a: np.ndarray, what: str) -> None:
    """Raise naming the first NaN or infinity in ``a`` (scanned in chunks for memmaps)."""
    if a.dtype.kind != "f":
        return
    for start in range(0, a.shape[0], _ROWS_PER_CHUNK):
        chunk = np.asarray(a[start : start + _ROWS_PER_CHUNK])
        bad = ~np.isfinite(chunk)
        if bad.any():
            where = np.argwhere(bad)[0]
            where[0] += start
            count = sum(
                int((~np.isfinite(np.asarray(a[s : s + _ROWS_PER_CHUNK]))).sum())
                for s in range(start, a.shape[0], _ROWS_PER_CHUNK)
            )
            index = tuple(int(i) for i in where)
            raise ValueError(
                f"{what}: expected finite numbers, found {count} NaN or infinite "
                f"value(s), the first {a[index]} at index {index}"
            )


def _is_number(cell: str) -> bool:
    """Whether a CSV cell holds a number as numpy's parser reads it."""
    if "_" in cell:  # float() accepts 1_000, numpy's parser does not
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _data_lines(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for the non-blank lines, numbered from 1."""
    return ((i, line) for i, line in enumerate(lines, start=1) if line.strip())


@contextlib.contextmanager
def _text_errors(name: str) -> Iterator[None]:
    """Turn decoding and decompression failures into one-line ValueErrors naming the file."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{name}: expected UTF-8 text, found undecodable bytes ({exc.reason} "
            f"at byte {exc.start})"
        ) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(
            f"{name}: expected gzip-compressed CSV, found data that does not decompress ({exc})"
        ) from None


def _read_csv(
    open_text: Callable[[], IO[str]], name: str, dtype: np.dtype, header: bool | None, labels: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse with numpy's fast reader; on any problem, rescan to name the line and cell."""
    with _text_errors(name), open_text() as f:
        rows = _data_lines(f)
        first = next(rows, None)
        if first is None:
            raise ValueError(
                f"{name}: expected rows of comma-separated numbers, found only blank lines"
            )
        if header is None:
            # a header names every column: a row with some numbers is data (with a typo)
            header = not any(_is_number(c) for c in first[1].split(","))
        names = first[1].split(",") if header else None
        if header:  # the data start at the next non-blank line, if there is one
            first = next(rows, None)
        data, numpy_error = None, None
        label_notation: set[str] = set()  # "float" once a label cell has a "." or an exponent
        if first is not None:
            lines = itertools.chain([first[1]], (line for _, line in rows))
            if labels:
                lines = _watch_label_notation(lines, label_notation)
            try:
                data = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
            except UnicodeDecodeError:
                raise
            except ValueError as exc:
                numpy_error = exc

    header_width = None if names is None else len(names)
    if (
        data is None
        or data.shape[1] < 1 + labels
        or header_width not in (None, data.shape[1])
        or not np.isfinite(data).all()
    ):
        with _text_errors(name):
            _diagnose_csv(open_text, name, header, labels)
        # numpy refused something the line-by-line scan accepts (not expected to happen)
        raise ValueError(
            f"{name}: expected rows of comma-separated numbers, found data numpy "
            f"cannot parse ({numpy_error})"
        )
    if names is not None and _is_row_index(names[0], data, name, labels):
        data = data[:, 1:]
    if not labels:
        return _cast(data, dtype, f"{name}: X"), None
    y = data[:, -1]
    if not label_notation and np.all(np.abs(y) < 2.0**63):  # every label written as an integer
        y = y.astype(np.int64)
    return _cast(data[:, :-1], dtype, f"{name}: X (the feature columns)"), _labels(
        y, dtype, f"{name}: the label column"
    )


def _watch_label_notation(lines: Iterator[str], notation: set[str]) -> Iterator[str]:
    """Pass ``lines`` through, adding "float" to ``notation`` once a last cell is written with a
    decimal point or an exponent (``151.0``, ``1e3``): such labels are numbers, not classes."""
    for line in lines:
        if not notation:
            last = line[line.rfind(",") + 1 :]
            if "." in last or "e" in last or "E" in last:
                notation.add("float")
        yield line


def _is_row_index(header_cell: str, data: np.ndarray, name: str, labels: bool) -> bool:
    """Whether the first column is an unnamed row index to drop (pandas' ``to_csv`` default).

    Warns when it is, and when an unnamed first column is kept as a feature.
    """
    if header_cell.strip().strip('"') not in ("", "Unnamed: 0"):
        return False
    column = data[:, 0]
    enough = data.shape[1] > 1 + labels  # a feature column is left after dropping it
    if enough and np.all(column == np.round(column)) and np.unique(column).size == column.size:
        n = column.size
        if np.array_equal(column, np.arange(n)):
            what = f"counts the rows 0..{n - 1}"
        else:
            what = "holds distinct whole numbers"
        warnings.warn(
            f"{name}: dropped column 1, which has no name and {what}: a row index such as "
            "pandas' DataFrame.to_csv writes by default (write the file with index=False, or "
            "name the column to keep it)",
            UserWarning,
            stacklevel=4,
        )
        return True
    warnings.warn(
        f"{name}: column 1 has no name in the header; it is read as a feature",
        UserWarning,
        stacklevel=4,
    )
    return False


def _diagnose_csv(open_text: Callable[[], IO[str]], name: str, header: bool, labels: bool) -> None:
    """Scan the file line by line and raise a ValueError naming the first problem."""
    with open_text() as f:
        rows = _data_lines(f)
        first = next(rows)
        header_line = None
        if header:
            header_line = first
            first = next(rows, None)
            if first is None:
                raise ValueError(
                    f"{name}, line {header_line[0]}: expected data rows after "
                    "the header, found none"
                )
        n_columns = len(first[1].split(","))
        if labels and n_columns < 2:
            other = next((sep for sep in (";", "\t", " ") if sep in first[1].strip()), None)
            hint = f" (the values look separated by {other!r}; use commas)" if other else ""
            raise ValueError(
                f"{name}, line {first[0]}: expected at least 2 columns (features, "
                f"then the label), found {n_columns}{hint}"
            )
        if header_line is not None and len(header_line[1].split(",")) != n_columns:
            raise ValueError(
                f"{name}, line {header_line[0]}: expected a header of {n_columns} "
                f"names like the data rows, found {len(header_line[1].split(','))}"
            )
        for lineno, line in itertools.chain([first], rows):
            cells = line.split(",")
            if len(cells) != n_columns:
                raise ValueError(
                    f"{name}, line {lineno}: expected {n_columns} columns, found {len(cells)}"
                )
            for column, cell in enumerate(cells, start=1):
                if not _is_number(cell):
                    if not cell.strip():
                        hint = " (a missing value: fill it in or drop the row first)"
                    elif labels and column == n_columns:
                        hint = " (labels must be numbers: encode class names as 0..C-1 first)"
                    elif lineno == first[0] and not header:
                        hint = " (pass header=True if the first row names the columns)"
                    else:
                        hint = ""
                    raise ValueError(
                        f"{name}, line {lineno}, column {column}: expected a "
                        f"number, found {cell.strip()!r}{hint}"
                    )
                if not np.isfinite(float(cell)):
                    raise ValueError(
                        f"{name}, line {lineno}, column {column}: expected a "
                        f"finite number, found {cell.strip()!r}"
                    )
