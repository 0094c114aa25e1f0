"""Mini-batches gathered into reused buffers, and the loss of a set from its batches."""

from __future__ import annotations

import math

import numpy as np


class Batches:
    """Mini-batches of (X, y, sample weights) gathered into reusable buffers.

    The data set is never copied whole: each batch's rows are gathered with ``np.take`` in
    sorted order (friendly to memory-mapped files) into a buffer of X's own dtype, then cast
    into a buffer of the model's dtype, so X may be larger than memory and no batch is
    promoted to float64. Labels keep their dtype; weights are in the model's dtype.

    With a ``shard`` (a data-parallel ``fit``) each batch is this
    rank's contiguous part of the global batch one process would take, and the shard records
    which part for the layers that couple rows.
    """

    def __init__(self, X, y, w, batch_size: int, dtype: np.dtype, shard=None) -> None:
        self.X, self.y, self.w, self.batch_size = X, y, w, batch_size
        self.shard = shard
        size = (batch_size if shard is None else shard.largest(batch_size),)
        self._xbuf = np.empty(size + X.shape[1:], dtype=dtype)
        self._xraw = None if X.dtype == dtype else np.empty(size + X.shape[1:], dtype=X.dtype)
        self._ybuf = np.empty(size + y.shape[1:], dtype=y.dtype)
        self._wbuf = None if w is None else np.empty(size, dtype=w.dtype)
        self._rows = np.empty(batch_size, dtype=np.intp)

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __call__(self, order: np.ndarray | None):
        """Yield ``(xb, yb, wb)`` batch by batch (``wb`` is None without weights).

        The arrays are the shared buffers (or views of them): valid until the next batch.
        """
        X, y, w, shard = self.X, self.y, self.w, self.shard
        n, size = len(X), self.batch_size
        for start in range(0, n, size):
            stop = min(start + size, n)
            first, last = (0, stop - start) if shard is None else shard.split(stop - start)
            k = last - first  # this process's rows of the batch
            xb, yb = self._xbuf[:k], self._ybuf[:k]
            wb = None if w is None else self._wbuf[:k]
            if order is None:
                xb[...] = X[start + first : start + last]
                yb[...] = y[start + first : start + last]
                if wb is not None:
                    wb[...] = w[start + first : start + last]
            else:
                rows = self._rows[: stop - start]
                rows[...] = order[start:stop]
                rows.sort()
                rows = rows[first:last]
                # mode="clip": the rows are a permutation, always in range, and numpy's
                # default mode="raise" gathers into a temporary before copying to `out`
                if self._xraw is None:
                    np.take(X, rows, axis=0, out=xb, mode="clip")
                else:  # read the rows in X's dtype, then cast into the model's
                    raw = self._xraw[:k]
                    np.take(X, rows, axis=0, out=raw, mode="clip")
                    np.copyto(xb, raw, casting="unsafe")
                np.take(y, rows, axis=0, out=yb, mode="clip")
                if wb is not None:
                    np.take(w, rows, out=wb, mode="clip")
            yield xb, yb, wb


# -- the loop --------------------------------------------------------------------------------


class SetLoss:
    """The loss of a set from the losses of its batches: what one batch of it all would give.

    With each batch's denominator (:meth:`losses.Loss.denominator`: the number of elements,
    or the class weights of the targets) a mean is ``Σ_b L_b·d_b / Σ_b d_b`` and a sum
    (``reduction="sum"``) is ``Σ_b L_b``. A loss whose subclass overrides ``forward`` reports
    no denominator; its batches count by their number of samples.
    """

    def __init__(self, loss) -> None:
        self.loss = loss
        self.is_sum = getattr(loss, "reduction", "mean") == "sum"
        self.total = self.weight = 0.0

    def add(self, value: float, n_samples: int) -> float:
        """Count one batch of ``n_samples`` whose loss was ``value`` (call after its forward).

        Returns the factor that multiplied ``value`` in the running total (``d_b``, or 1 for
        sums): the same factor on the batch's gradient makes the total's gradient.
        """
        if self.is_sum:
            self.total += value
            return 1.0
        d = self.loss.denominator()
        if d is None:
            d = n_samples
        if d == 0:  # every target weighs 0 (its mean is NaN): the batch adds nothing
            return 0.0
        self.total += value * d
        self.weight += d
        return d

    def result(self) -> float:
        """The set's loss; NaN for a mean over nothing (every target weighs 0, as in PyTorch)."""
        return self.total if self.is_sum else self.total * self.scale()

    @property
    def empty(self) -> bool:
        """A mean over no weight at all (every target weighs 0): nothing to minimise."""
        return not self.is_sum and self.weight == 0

    def scale(self) -> float:
        """The factor from the running total to the set's loss (1/Σ d_b, or 1 for sums)."""
        if self.is_sum:
            return 1.0
        return 1.0 / self.weight if self.weight else math.nan
