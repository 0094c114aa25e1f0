"""Dropout: randomly zero activations during training (inverted dropout)."""

from __future__ import annotations

import numpy as np

from nn.checks import check_fraction
from nn.layer import Layer, register_layer

__all__ = ["Dropout"]

_RANDOM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@register_layer
class Dropout(Layer):
    """Inverted dropout: out = x ⊙ m / (1 − p) with m ~ Bernoulli(1 − p) in training.

    In training mode every entry of ``x`` is kept with probability ``1 − p`` and zeroed
    otherwise; the survivors are scaled by ``1 / (1 − p)`` so that E[out] = x and the layer
    is the identity in evaluation mode (``forward`` then returns ``x`` itself, no copy).

    The mask is drawn from the generator handed to :meth:`reset_parameters`: inside a
    :class:`~nn.Sequential` that is ``model.rng``, so ``Sequential(..., seed=s)`` and
    ``fit(..., seed=s)`` give reproducible masks. A stand-alone layer draws from a fresh
    ``np.random.default_rng()`` until then.

    Parameters
    ----------
    p : float
        The probability of zeroing an entry, in [0, 1). ``p = 0`` is the identity.

    Notes
    -----
    Forward caches the scaled mask s = m / (1 − p), shape ``(batch, n)``; backward reuses it::

        out   = x ⊙ s
        ∂L/∂x = ∂L/∂out ⊙ s
    """

    couples_rows = True

    _forward_cache = ("_mask",)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_fraction("p", p)
        self._rng = np.random.default_rng()
        self._mask: np.ndarray | None = None  # the scaled mask s, or None for the identity
        # In a data-parallel fit (nn.training.distributed) this rank's rows of the global batch: the
        # mask is drawn for the whole batch and the layer uses its rows of it.
        self.shard = None

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw future masks from ``rng`` (the layer has no parameters to initialise)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                "Received an invalid value for `rng`, expected a numpy.random.Generator. "
                f"Received: rng={rng!r} of type {type(rng).__name__}"
            )
        self._rng = rng

    @classmethod
    def state_shapes(cls, config: dict) -> tuple[dict, dict]:
        check_fraction("p", config.get("p", 0.5))
        return {}, {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = x ⊙ m / (1 − p) in training, out = x in evaluation.

        Parameters
        ----------
        x : ndarray, shape (batch, n)

        Returns
        -------
        ndarray, shape (batch, n)
            ``x`` itself in evaluation mode or when ``p = 0``; otherwise a buffer of the layer.
        """
        if not self.training or self.p == 0:
            self._mask = None
            return x
        dtype = x.dtype if x.dtype in _RANDOM_DTYPES else np.dtype(np.float64)
        shard = self.shard
        if shard is None:
            mask = self._buffer("mask", x.shape, dtype)
            self._rng.random(out=mask, dtype=dtype)  # u ~ U[0, 1)
        else:  # u for the global batch, every rank alike; this rank's rows of it
            full = self._buffer("mask", (shard.total,) + x.shape[1:], dtype)
            self._rng.random(out=full, dtype=dtype)
            mask = full[shard.start : shard.stop]
        np.greater_equal(mask, self.p, out=mask)  # m = [u ≥ p] ~ Bernoulli(1 − p)
        mask *= 1 / (1 - self.p)  # s = m / (1 − p)
        self._mask = mask
        return np.multiply(x, mask, out=self._buffer("out", x.shape, dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """∂L/∂x = ∂L/∂out ⊙ m / (1 − p), with the mask of the last forward.

        Parameters
        ----------
        grad_out : ndarray, shape (batch, n)
            ∂L/∂out.

        Returns
        -------
        ndarray, shape (batch, n)
            ``grad_out`` itself when the last forward was the identity.
        """
        mask = self._mask
        if mask is None:
            return grad_out  # the identity: ∂out/∂x = I
        # ∂out/∂x = diag(s): the same scaled mask as forward
        grad_in = self._buffer("grad_in", mask.shape, mask.dtype)
        return np.multiply(grad_out, mask, out=grad_in)

    def config(self) -> dict:
        return {"p": self.p}
