"""CSVLogger: the per-epoch values of ``fit`` as a CSV file, as Keras's callback writes them."""

from __future__ import annotations

import math
import os
from pathlib import Path

from nn.checks import check_bool
from nn.files import write_atomically
from nn.training.callbacks import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (0-based) and every value ``fit`` logs.

    The header is ``epoch`` then the names of the first epoch's logs in sorted order
    (``loss``, metrics, ``val_*``, ``lr``); a name missing in a later epoch is written ``NA``.
    After every epoch the whole file is rewritten atomically, so it always holds complete
    rows, readable while training runs (``pandas.read_csv(path)``).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    separator : str
        The field separator.
    append : bool
        Keep the rows already in the file (a resumed run continues them; no second header)
        instead of starting a new file.
    """

    rank_zero_only = True

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                "Received an invalid value for `path`, expected a str or os.PathLike. "
                f"Received: path={path!r} of type {type(path).__name__}"
            )
        if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
            raise ValueError(
                "Received an invalid value for `separator`, expected one character such as "
                f"',' or ';', not a quote or a newline. Received: separator={separator!r}"
            )
        self.path = Path(path)
        self.separator = separator
        self.append = check_bool("append", append)
        self._lines: list[str] = []
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: dict) -> None:
        self._lines, self._keys = [], None
        if self.append and self.path.is_file():
            self._lines = self.path.read_text(encoding="utf-8").splitlines()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self._keys is None:
            self._keys = sorted(logs)
            if not self._lines:
                self._lines.append(self.separator.join(["epoch", *self._keys]))
        row = [str(epoch)] + [_format(logs.get(key)) for key in self._keys]
        self._lines.append(self.separator.join(row))
        text = "\n".join(self._lines) + "\n"
        write_atomically(self.path, lambda f: f.write(text.encode("utf-8")))

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.path)!r}, separator={self.separator!r}, append={self.append})"


def _format(value) -> str:
    """A number exactly (``repr`` round-trips floats); ``NA`` when missing."""
    if value is None:
        return "NA"
    value = float(value)
    return repr(value) if math.isfinite(value) else str(value)
