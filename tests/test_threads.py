"""fit's BLAS thread policy: small models train on one thread, and the setting comes back."""

import numpy as np
from threadpoolctl import threadpool_info

import nn
from nn.training.threads import THREADED_PRODUCT, BlasThreads, threads_may_pay


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


class ThreadsDuringFit(nn.Callback):
    def __init__(self):
        self.seen = []

    def on_batch_end(self, batch, logs):
        self.seen.append(blas_threads())


def test_a_small_model_trains_on_one_blas_thread_and_the_setting_is_restored():
    before = blas_threads()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    model = nn.Sequential(nn.Dense(4, 16, activation="relu"), nn.Dense(16, 3), seed=0)
    spy = ThreadsDuringFit()
    model.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer="sgd",
        epochs=2,
        batch_size=16,
        progress=False,
        callbacks=[spy],
    )
    assert spy.seen and all(threads == [1] * len(before) for threads in spy.seen)
    assert blas_threads() == before


def test_threads_may_pay_from_the_largest_product_of_a_step():
    model = nn.Sequential(nn.Dense(784, 256), nn.Dense(256, 10), seed=0)  # largest W: 784·256
    rows = -(-THREADED_PRODUCT // (784 * 256))  # the fewest rows reaching the threshold
    assert threads_may_pay(model, rows) and not threads_may_pay(model, rows - 1)
    double = nn.Sequential(nn.Dense(784, 256), seed=0, dtype=np.float64)  # twice the work
    assert threads_may_pay(double, -(-rows // 2))


def test_a_large_model_keeps_the_blas_threads():
    before = blas_threads()
    model = nn.Sequential(nn.Dense(1024, 1024), seed=0)
    threads = BlasThreads(model, 256)
    assert blas_threads() == before
    threads.close()
    assert blas_threads() == before


def test_a_small_model_is_held_to_one_thread_until_close():
    before = blas_threads()
    threads = BlasThreads(nn.Sequential(nn.Dense(4, 4), seed=0), 32)
    assert blas_threads() == [1] * len(before)
    threads.close()
    assert blas_threads() == before
