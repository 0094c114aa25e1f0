"""The named benchmark configurations: model sizes, dtype, batch size and how much to time.

A configuration describes one multilayer perceptron trained for classification with
cross-entropy on logits and SGD with momentum 0.9. ``steps`` says how many training steps one
measurement runs: ``None`` means a whole epoch; a number means that many steps, and the time
per epoch is extrapolated from the time per sample (the runner says so in its output). The
``quick_*`` fields are the sizes of ``--quick``, the CI smoke run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The learning rate of every system in every configuration (SGD, momentum 0.9).
LEARNING_RATE = 0.01
MOMENTUM = 0.9


@dataclass(frozen=True)
class Config:
    """One benchmark configuration.

    Parameters
    ----------
    name : str
        The name given to ``--config``.
    sizes : tuple of int
        Layer widths from input to output, e.g. ``(784, 256, 256, 10)``.
    activation : str
        The hidden layers' activation (``"relu"`` or ``"sigmoid"``); the output layer gives
        logits.
    dtype : str
        ``"float32"`` or ``"float64"``, for the data, the parameters and every computation.
    batch_size : int
    n_samples : int
        The samples of one epoch; ``ms/epoch`` refers to this many samples.
    steps : int or None
        Training steps per measurement; ``None`` times a whole epoch (``n_samples //
        batch_size`` full batches).
    quick_steps : int
        Training steps per measurement with ``--quick``.
    memmap : bool
        The data set is a memory-mapped ``.npy`` file and the runner also reports memory
        growth during ``fit`` and epoch time at two data sizes.
    """

    name: str
    sizes: tuple[int, ...]
    activation: str
    dtype: str
    batch_size: int
    n_samples: int
    steps: int | None
    quick_steps: int
    memmap: bool = False
    summary: str = ""

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def n_classes(self) -> int:
        return self.sizes[-1]

    @property
    def hidden(self) -> tuple[int, ...]:
        return self.sizes[1:-1]

    @property
    def architecture(self) -> str:
        return "-".join(str(s) for s in self.sizes)

    def timed_steps(self, quick: bool) -> int:
        """The number of training steps one measurement runs."""
        if quick:
            return self.quick_steps
        if self.steps is None:
            return max(1, self.n_samples // self.batch_size)
        return self.steps


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config(
            "tiny",
            (2, 16, 16, 2),
            "relu",
            "float32",
            batch_size=32,
            n_samples=20_000,
            steps=None,
            quick_steps=20,
            summary="per-step overhead of the framework: the matrix products are negligible",
        ),
        Config(
            "mnist",
            (784, 256, 256, 10),
            "relu",
            "float32",
            batch_size=128,
            n_samples=30_000,
            steps=None,
            quick_steps=8,
            summary="the everyday case: products and everything around them both matter",
        ),
        Config(
            "wide",
            (784, 1024, 1024, 1024, 10),
            "relu",
            "float32",
            batch_size=256,
            n_samples=30_000,
            steps=40,
            quick_steps=2,
            summary="dominated by matrix products: how close to the BLAS floor",
        ),
        Config(
            "sigmoid",
            (784, 128, 10),
            "sigmoid",
            "float64",
            batch_size=128,
            n_samples=30_000,
            steps=None,
            quick_steps=8,
            summary="float64 and a transcendental activation",
        ),
        Config(
            "memmap",
            (784, 256, 256, 10),
            "relu",
            "float32",
            batch_size=128,
            n_samples=60_000,
            steps=None,
            quick_steps=16,
            memmap=True,
            summary="fit on a memory-mapped .npy: memory growth and linear epoch time",
        ),
    )
}

#: The configurations run when no ``--config`` is given, in this order.
DEFAULT_ORDER = ("tiny", "mnist", "wide", "sigmoid", "memmap")


def resolve(names: list[str] | None) -> list[Config]:
    """The configurations named in ``names`` (each may be a comma-separated list).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    if not names:
        return [CONFIGS[n] for n in DEFAULT_ORDER]
    chosen: list[Config] = []
    for item in names:
        for name in item.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in CONFIGS:
                raise ValueError(
                    f"Received an invalid value for `--config`, expected one of "
                    f"{', '.join(DEFAULT_ORDER)}. Received: {name!r}"
                )
            if CONFIGS[name] not in chosen:
                chosen.append(CONFIGS[name])
    if not chosen:
        raise ValueError("Received an empty `--config`; name at least one configuration")
    return chosen
