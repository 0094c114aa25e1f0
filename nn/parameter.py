"""Parameter: a trainable array and the gradient accumulated for it."""

from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array ``data`` with its gradient ``grad`` (same shape and dtype).

    Inside a :class:`~nn.Sequential` both arrays are views into the model's parameter vector
    θ and gradient vector ∇θ, so assign values in place: ``p.data[...] = values``.

    Parameters
    ----------
    data : ndarray
        The initial values; the parameter keeps this array (no copy).
    name : str
        A short name such as ``"W"`` or ``"b"``.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data: np.ndarray, name: str) -> None:
        self.data = data
        self.grad = np.zeros_like(data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={self.data.shape}, dtype={self.data.dtype})"
