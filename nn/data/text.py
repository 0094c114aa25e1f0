"""Comma-separated files: numbers, an optional header, the label in the last column."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import IO

import numpy as np
from numpy.typing import DTypeLike

from nn.checks import check_bool, check_dtype
from nn.data.arrays import PathLike, as_labels, cast, check_file


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
    name = check_file(path)
    if str(name).lower().endswith(".gz"):

        def open_text() -> IO[str]:
            return gzip.open(path, "rt", encoding="utf-8-sig")
    else:

        def open_text() -> IO[str]:
            return open(path, encoding="utf-8-sig")

    labels = check_bool("labels", labels)
    return read_csv(open_text, name, dtype, header, labels)


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


def read_csv(
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
        return cast(data, dtype, f"{name}: X"), None
    y = data[:, -1]
    if not label_notation and np.all(np.abs(y) < 2.0**63):  # every label written as an integer
        y = y.astype(np.int64)
    return cast(data[:, :-1], dtype, f"{name}: X (the feature columns)"), as_labels(
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
