"""The BLAS thread policy of ``fit`` and ``evaluate``: threads only where they pay.

OpenBLAS splits each matrix product over its threads whatever else runs on the machine. For
small products the split saves microseconds; and when another process holds a core, every
product waits for the thread that cannot run, so a model can train many times slower with
two threads than with one. Small models therefore always run on one thread. For large ones
threads pay on an idle machine and cost on a busy one, so ``fit`` times a few steps each way
now and then and trains with the faster setting (the threaded steps stop being timed as soon
as they fall behind, and a lost comparison is repeated half as often).
"""

from __future__ import annotations

import os
import time

from threadpoolctl import threadpool_limits

#: Work of a step's largest product (batch × n_in × n_out multiply-adds, float64 counting
#: twice) below which one thread is always at least as fast.
THREADED_PRODUCT = 2**24
#: Steps timed on one thread and then with the BLAS's own threads, when fit compares them.
PROBE_STEPS = 6
#: Steps from the start of one comparison to the next, after threads won the last one.
PROBE_PERIOD = 200
#: The longest period, after comparisons that one thread kept winning.
MAX_PROBE_PERIOD = 6400


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
    """One BLAS thread, or the BLAS's own setting, chosen per model and by timing.

    ``tick()`` before every training step runs the comparison; ``close()`` restores the
    BLAS's setting.
    """

    def __init__(self, model, rows: int) -> None:
        self.adaptive = threads_may_pay(model, rows)
        self._held = None  # threadpoolctl's limiter while the BLAS is held to one thread
        self._phase = -1  # steps since the last comparison began
        self._period = PROBE_PERIOD
        self._start = 0.0
        self._one_thread_s = 0.0
        self._hold()  # until a comparison shows that threads pay

    def _hold(self) -> None:
        if self._held is None:
            self._held = threadpool_limits(limits=1, user_api="blas")

    def _release(self) -> None:
        if self._held is not None:
            self._held.restore_original_limits()
            self._held = None

    def tick(self) -> None:
        """Call before each training step: compares the two settings every ``_period`` steps."""
        if not self.adaptive:
            return
        self._phase = phase = (self._phase + 1) % self._period
        if phase == 1:  # step 0 (first-call allocations) is not timed
            self._hold()
            if _busy():  # threads would wait for cores others hold: not worth a comparison
                self._phase = 1 + 2 * PROBE_STEPS
                self._period = min(2 * self._period, MAX_PROBE_PERIOD)
            self._start = time.perf_counter()
        elif phase == 1 + PROBE_STEPS:
            now = time.perf_counter()
            self._one_thread_s, self._start = now - self._start, now
            self._release()
        elif 1 + PROBE_STEPS < phase <= 1 + 2 * PROBE_STEPS and self._held is None:
            if time.perf_counter() - self._start > self._one_thread_s:  # threads lost
                self._hold()
                self._period = min(2 * self._period, MAX_PROBE_PERIOD)
            elif phase == 1 + 2 * PROBE_STEPS:  # threads won: keep them
                self._period = PROBE_PERIOD

    def close(self) -> None:
        self._release()


def _busy() -> bool:
    """Whether the machine's load (1-minute average) exceeds its cores by one or more."""
    try:
        return os.getloadavg()[0] >= len(os.sched_getaffinity(0)) + 1
    except (AttributeError, OSError):  # no load average or affinity on this platform
        return False
