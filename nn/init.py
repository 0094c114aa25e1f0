"""Weight initializers: Glorot (Xavier) for sigmoid/tanh/identity/softmax, He for the ReLU family.

Each draws in place into ``W`` of shape ``(n_in, n_out)`` from an explicit generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def glorot_uniform(W: np.ndarray, rng: np.random.Generator) -> None:
    """W ~ U(−r, r) with r = √(6 / (n_in + n_out)) (Glorot and Bengio, 2010)."""
    n_in, n_out = W.shape
    limit = math.sqrt(6.0 / (n_in + n_out))
    W[...] = rng.uniform(-limit, limit, size=W.shape)


def he_normal(W: np.ndarray, rng: np.random.Generator) -> None:
    """W ~ N(0, 2 / n_in) (He et al., 2015), for ReLU-like activations."""
    n_in = W.shape[0]
    W[...] = rng.normal(0.0, math.sqrt(2.0 / n_in), size=W.shape)


def he_uniform(W: np.ndarray, rng: np.random.Generator) -> None:
    """W ~ U(−r, r) with r = √(6 / n_in) (He et al., 2015)."""
    limit = math.sqrt(6.0 / W.shape[0])
    W[...] = rng.uniform(-limit, limit, size=W.shape)


def glorot_normal(W: np.ndarray, rng: np.random.Generator) -> None:
    """W ~ N(0, 2 / (n_in + n_out))."""
    n_in, n_out = W.shape
    W[...] = rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=W.shape)


INITIALIZERS: dict[str, Callable[[np.ndarray, np.random.Generator], None]] = {
    "glorot": glorot_uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def get_initializer(name: str) -> Callable[[np.ndarray, np.random.Generator], None]:
    """The initializer called ``name``; raises ValueError listing the valid names."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"Received an invalid value for `init`, expected one of {sorted(INITIALIZERS)} "
            f"or None. Received: init={name!r}"
        )
    return INITIALIZERS[name]
