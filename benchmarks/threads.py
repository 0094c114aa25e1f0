"""Default BLAS threads against one thread, in fresh processes, interleaved.

Two jobs: the default ``chainrule train`` (a small model) and a one-epoch fit at the ``mnist``
size (large products). Each runs ``rounds`` times with the environment as it is and with
``OPENBLAS_NUM_THREADS=1``, alternating, so that load on the machine hits both alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

MNIST_FIT = """
import numpy as np, nn
rng = np.random.default_rng(0)
X = rng.random((30000, 784), dtype=np.float32)
y = rng.integers(0, 10, 30000)
model = nn.Sequential(nn.Dense(784, 256, activation="relu"),
                      nn.Dense(256, 256, activation="relu"), nn.Dense(256, 10), seed=0)
model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, batch_size=128,
          progress=False)
"""


def _seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def compare(rounds: int) -> list[dict]:
    """Median wall seconds of each job with default threads and with one, and their ratio."""
    with tempfile.TemporaryDirectory(prefix="chainrule-threads-") as directory:
        jobs = {
            "chainrule train (default job)": [
                sys.executable, "-m", "nn", "train", "--quiet",
                "--out", os.path.join(directory, "model.npz"),
            ],
            "mnist-size fit, one epoch": [sys.executable, "-c", MNIST_FIT],
        }  # fmt: skip
        default = dict(os.environ)
        one = {**default, "OPENBLAS_NUM_THREADS": "1"}
        results = []
        for name, command in jobs.items():
            times: dict[str, list[float]] = {"default": [], "one": []}
            for _ in range(rounds):
                times["default"].append(_seconds(command, default))
                times["one"].append(_seconds(command, one))
            d, o = statistics.median(times["default"]), statistics.median(times["one"])
            results.append(
                {"job": name, "default_s": d, "one_thread_s": o, "one_over_default": o / d,
                 "times": times}
            )  # fmt: skip
    return results


def markdown_lines(results: list[dict], rounds: int) -> list[str]:
    lines = [
        f"Threads (fresh processes, interleaved, medians of {rounds}): default BLAS threads "
        "against `OPENBLAS_NUM_THREADS=1`; above 1× the default is faster.",
        "",
        "| job | default threads (s) | one thread (s) | one ÷ default |",
        "|---|--:|--:|--:|",
    ]
    for r in results:
        lines.append(
            f"| {r['job']} | {r['default_s']:.2f} | {r['one_thread_s']:.2f} | "
            f"{r['one_over_default']:.2f}× |"
        )
    return lines
