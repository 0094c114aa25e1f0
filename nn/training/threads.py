"""The BLAS thread policy of ``fit`` and ``evaluate``: threads only where they pay.

OpenBLAS splits each matrix product over its threads whatever its size. For small products
the split saves microseconds at best, and when another process holds a core every product
waits for the thread that cannot run: a small model can train many times slower with two
threads than with one. So a model whose largest product per step is small trains on one
BLAS thread; larger models keep the BLAS's own setting, where threads pay.
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController

#: Work of a step's largest product (batch × n_in × n_out multiply-adds, float64 counting
#: twice) below which one thread is at least as fast.
THREADED_PRODUCT = 2**24


def threads_may_pay(model, rows: int) -> bool:
    """Whether a matrix product of ``model`` on ``rows`` rows is large enough for threads.

    Parameters
    ----------
    model : Sequential
    rows : int
        Rows of a batch: the products are x·W in forward and their transposes in backward.
    """
    largest = max((p.data.size for p in model.parameters() if p.data.ndim == 2), default=0)
    return largest * rows * model.dtype.itemsize // 4 >= THREADED_PRODUCT


class BlasThreads:
    """Hold the BLAS to one thread while a small model trains; ``close()`` restores it."""

    def __init__(self, model, rows: int) -> None:
        if threads_may_pay(model, rows):
            self.held = None
        else:
            self.held = _blas_libraries().limit(limits=1, user_api="blas")

    def close(self) -> None:
        if self.held is not None:
            self.held.restore_original_limits()
            self.held = None


@functools.cache
def _blas_libraries() -> ThreadpoolController:
    """The thread pools loaded in this process, found once (a scan takes about 0.5 ms)."""
    return ThreadpoolController()
