"""Preprocessing layers: fixed transformations whose statistics come from the data."""

from __future__ import annotations

import numpy as np

from nn.checks import check_positive_int
from nn.layer import Layer, register_layer

__all__ = ["Standardize"]


@register_layer
class Standardize(Layer):
    """Standardize each feature: ``out = (x − mean) / scale``.

    ``mean`` and ``scale`` are non-trainable buffers (returned by :meth:`buffers`, saved with
    the model), set by :meth:`adapt` to the per-feature mean and population standard deviation
    (``ddof=0``) of the training data. They start as 0 and 1 (the identity) and are kept in
    float64 until a model casts them to its dtype.

    Parameters
    ----------
    n_features : int
        The number of features, ``n``.

    Attributes
    ----------
    mean : ndarray, shape (n,)
    scale : ndarray, shape (n,)
        The standard deviations, with 1 for constant features.

    Examples
    --------
    >>> layer = Standardize(2).adapt(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> layer.mean, layer.scale
    (array([1., 5.]), array([1., 1.]))
    """

    buffers_change_in_training = False

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_features_in = self.n_features
        self.mean = np.zeros(self.n_features, dtype=np.float64)
        self.scale = np.ones(self.n_features, dtype=np.float64)

    # -- statistics -------------------------------------------------------------------------
    def fit_warning(self) -> str | None:
        if self.mean.any() or (self.scale != 1).any():
            return None
        return (
            "was never adapted (mean 0, scale 1), so it passes the features through unchanged; "
            "call its adapt(X_train) before fit"
        )

    def adapt(self, X: np.ndarray, batch_size: int = 65536) -> Standardize:
        """Set ``mean`` and ``scale`` from ``X``, reading ``batch_size`` rows at a time.

        Each chunk ``B`` contributes its count ``n_B``, mean ``m_B`` and sum of squared
        deviations ``M2_B = Σ (x − m_B)²``, merged into the running ``(n_A, m_A, M2_A)`` with
        the parallel update of Chan, Golub and LeVeque (1979), in float64:

            δ = m_B − m_A,   n = n_A + n_B
            m = m_A + δ · n_B / n
            M2 = M2_A + M2_B + δ² · n_A · n_B / n

        and ``scale = sqrt(M2 / n)``. A memory-mapped ``X`` is never copied whole. Features
        whose values are all equal get ``mean`` = that value and ``scale`` = 1. The results
        are written into the existing buffers (keeping their dtype).

        Parameters
        ----------
        X : array_like, shape (n_samples, n)
            Training data, for example a ``numpy.memmap`` larger than memory.
        batch_size : int
            Rows per chunk.

        Returns
        -------
        Standardize
            ``self``, so that ``Standardize(n).adapt(X)`` reads naturally.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(
                "Received an invalid value for `X`, expected real numbers. "
                f"Received: X with dtype {X.dtype}"
            )
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] != self.n_features:
            raise ValueError(
                f"Received an invalid value for `X`, expected shape (n_samples, "
                f"{self.n_features}) with n_samples >= 1. Received: X with shape "
                f"{X.shape}"
            )

        n = 0
        mean = np.zeros(self.n_features, dtype=np.float64)
        m2 = np.zeros(self.n_features, dtype=np.float64)
        low = np.full(self.n_features, np.inf)
        high = np.full(self.n_features, -np.inf)
        deviations = np.empty((min(batch_size, X.shape[0]), self.n_features), dtype=np.float64)
        for start in range(0, X.shape[0], batch_size):
            # a float64 view (or cast copy) of the chunk: read-only, it may be the caller's
            chunk = np.asarray(X[start : start + batch_size], dtype=np.float64)
            if not np.isfinite(chunk).all():
                row = start + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
                raise ValueError(
                    f"Received an invalid value for `X`, expected finite numbers. "
                    f"Received: NaN or infinity in row {row}"
                )
            n_b = chunk.shape[0]
            mean_b = chunk.mean(axis=0)
            dev = np.subtract(chunk, mean_b, out=deviations[:n_b])
            m2_b = np.einsum("ij,ij->j", dev, dev)
            np.minimum(low, chunk.min(axis=0), out=low)
            np.maximum(high, chunk.max(axis=0), out=high)
            # Chan et al.: merge (n_b, mean_b, m2_b) into (n, mean, m2)
            total = n + n_b
            delta = mean_b - mean
            mean += delta * (n_b / total)
            m2 += m2_b + delta**2 * (n * n_b / total)
            n = total

        std = np.sqrt(m2 / n)
        constant = (low == high) | (std == 0)
        mean[low == high] = low[low == high]  # exact, so constant features map to 0
        std[constant] = 1.0
        self.mean[...] = mean
        self.scale[...] = std
        return self

    # -- the chain rule ---------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """``out = (x − mean) / scale``.

        Parameters
        ----------
        x : ndarray, shape (batch, n)

        Returns
        -------
        ndarray, shape (batch, n)
            A buffer of the layer, in the dtype of ``mean``.
        """
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"Standardize expected input of shape (batch, {self.n_features}), "
                f"received shape {x.shape}"
            )
        out = self._buffer("out", x.shape, self.mean.dtype)
        np.subtract(x, self.mean, out=out)
        out /= self.scale
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``∂L/∂x = ∂L/∂out / scale`` (the layer has no parameters).

        Parameters
        ----------
        grad_out : ndarray, shape (batch, n)
            ∂L/∂out.

        Returns
        -------
        ndarray, shape (batch, n)
        """
        grad_in = self._buffer("grad_in", grad_out.shape, self.scale.dtype)
        # ∂out_j/∂x_j = 1/scale_j, elementwise (the Jacobian is diagonal)
        np.divide(grad_out, self.scale, out=grad_in)
        return grad_in

    # -- description ------------------------------------------------------------------------
    @classmethod
    def state_shapes(cls, config: dict) -> tuple[dict, dict]:
        n = check_positive_int("n_features", config["n_features"])
        return {}, {"mean": (n,), "scale": (n,)}

    def buffers(self) -> dict[str, np.ndarray]:
        """``{"mean": mean, "scale": scale}``, restored in place by model files."""
        return {"mean": self.mean, "scale": self.scale}

    def output_features(self, n_in: int) -> int:
        """``n`` (the shape is unchanged); raises if ``n_in`` is not ``n``."""
        if n_in != self.n_features:
            raise ValueError(
                f"Standardize(n_features={self.n_features}) expected "
                f"{self.n_features} input features, received {n_in}"
            )
        return n_in

    def config(self) -> dict:
        return {"n_features": self.n_features}
