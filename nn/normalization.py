"""Normalization layers: BatchNorm1d (over the batch) and LayerNorm (over the features)."""

from __future__ import annotations

import numpy as np

from nn.checks import check_fraction, check_positive, check_positive_int
from nn.layer import Layer, register_layer
from nn.parameter import Parameter

__all__ = ["BatchNorm1d", "LayerNorm"]


class _Normalization(Layer):
    """What BatchNorm1d and LayerNorm share: n features, ε, and the affine γ, β.

    Both compute ``out = γ ⊙ x̂ + β`` from a normalised ``x̂``; forward caches ``x̂`` and the
    reciprocal standard deviation ``1/σ`` for backward.
    """

    _forward_cache = ("_xhat", "_inv_std")

    def __init__(self, n_features: int, eps: float) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_features_in = self.n_features
        self.eps = check_positive("eps", eps)
        self.gamma = Parameter(np.ones(self.n_features, dtype=np.float32), "gamma")
        self.beta = Parameter(np.zeros(self.n_features, dtype=np.float32), "beta")
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    def parameters(self) -> list[Parameter]:
        """``[gamma, beta]``."""
        return [self.gamma, self.beta]

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """γ = 1, β = 0, in place (``rng`` is not needed)."""
        self.gamma.data[...] = 1
        self.beta.data[...] = 0

    def output_features(self, n_in: int) -> int:
        """``n_features`` (the shape is unchanged); raises if ``n_in`` differs."""
        if n_in != self.n_features:
            raise ValueError(
                f"{self!r} expects {self.n_features} input features, but receives {n_in}"
            )
        return n_in

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"{self!r} expects input of shape (batch, {self.n_features}), "
                f"but receives shape {x.shape}"
            )

    def _affine(self, xhat: np.ndarray) -> np.ndarray:
        """out = γ ⊙ x̂ + β, into the layer's output buffer."""
        out = np.multiply(xhat, self.gamma.data, out=self._buffer("out", xhat.shape, xhat.dtype))
        out += self.beta.data
        return out

    def _accumulate_affine_grads(self, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """∂L/∂γ += Σ_batch ∂L/∂out ⊙ x̂ and ∂L/∂β += Σ_batch ∂L/∂out; returns both sums.

        With ``grad_is_zero`` the sums overwrite the gradients instead.
        """
        n, dtype = self.n_features, self.gamma.grad.dtype
        # same_kind: a float64 ∂L/∂out into a float32 layer is cast, as ufuncs with out= do
        dgamma = np.einsum(
            "ij,ij->j",
            grad_out,
            self._xhat,
            out=self._buffer("dgamma", (n,), dtype),
            casting="same_kind",
        )
        dbeta = np.sum(grad_out, axis=0, out=self._buffer("dbeta", (n,), dtype))
        if self.grad_is_zero:
            self.gamma.grad[...] = dgamma
            self.beta.grad[...] = dbeta
        else:
            self.gamma.grad += dgamma
            self.beta.grad += dbeta
        return dgamma, dbeta


@register_layer
class BatchNorm1d(_Normalization):
    """Batch normalisation: out = γ ⊙ (x − μ) / √(σ² + ε) + β, per feature, as in PyTorch.

    In training mode μ and σ² are the mean and the *biased* variance of each feature over
    the batch, and the running statistics are updated with the *unbiased* variance:

        μ_B = (1/N) Σᵢ xᵢ,     σ²_B = (1/N) Σᵢ (xᵢ − μ_B)²
        running_mean ← (1 − momentum) · running_mean + momentum · μ_B
        running_var  ← (1 − momentum) · running_var  + momentum · σ²_B · N / (N − 1)

    In evaluation mode μ and σ² are ``running_mean`` and ``running_var``.

    Parameters
    ----------
    n_features : int
        The number of features ``n``; the input has shape ``(N, n)``.
    momentum : float
        Weight of the new batch in the running statistics, in [0, 1] (PyTorch's
        convention, not an optimizer's momentum).
    eps : float
        ε > 0 added to the variance.

    Attributes
    ----------
    gamma, beta : Parameter, shape (n,)
        The scale γ (PyTorch's ``weight``, starts at 1) and the shift β (``bias``, starts at 0).
    running_mean, running_var : ndarray, shape (n,)
        Non-trainable buffers (start at 0 and 1), saved with the model.

    Notes
    -----
    Forward caches x̂ = (x − μ)/σ and 1/σ. In training mode backward uses the compact formula
    (μ and σ depend on every sample of the batch)::

        ∂L/∂β += Σᵢ gᵢ
        ∂L/∂γ += Σᵢ gᵢ ⊙ x̂ᵢ
        ∂L/∂x  = γ/σ ⊙ (g − (Σᵢ gᵢ + x̂ ⊙ Σᵢ gᵢ ⊙ x̂ᵢ) / N)

    with g = ∂L/∂out. In evaluation mode μ and σ are constants and ∂L/∂x = γ/σ ⊙ g.
    """

    couples_rows = True

    min_batch_size = 2

    def __init__(self, n_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__(n_features, eps)
        self.momentum = check_fraction("momentum", momentum, closed=True)
        self.running_mean = np.zeros(self.n_features, dtype=np.float32)
        self.running_var = np.ones(self.n_features, dtype=np.float32)
        self._batch_stats = True  # whether the last forward normalised with batch statistics
        # In a data-parallel fit (nn.training.distributed) this rank's rows of the global batch: the
        # batch statistics and the sums of backward are then summed over the ranks.
        self.shard = None

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """γ = 1, β = 0, running_mean = 0 and running_var = 1, in place."""
        super().reset_parameters(rng)
        self.running_mean[...] = 0
        self.running_var[...] = 1

    def buffers(self) -> dict[str, np.ndarray]:
        """``{"running_mean": ..., "running_var": ...}``, restored in place by model files."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    @classmethod
    def state_shapes(cls, config: dict) -> tuple[dict, dict]:
        n = check_positive_int("n_features", config["n_features"])
        check_fraction("momentum", config.get("momentum", 0.1), closed=True)
        check_positive("eps", config.get("eps", 1e-5))
        return {"gamma": (n,), "beta": (n,)}, {"running_mean": (n,), "running_var": (n,)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = γ ⊙ (x − μ) / √(σ² + ε) + β with batch (training) or running statistics.

        Parameters
        ----------
        x : ndarray, shape (N, n)
            N ≥ 2 in training mode.

        Returns
        -------
        ndarray, shape (N, n)
            A buffer of the layer, in the dtype of γ.
        """
        self._check_input(x)
        shard = self.shard
        batch = x.shape[0] if shard is None else shard.total  # N of the global batch
        if self.training and batch < 2:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input of shape "
                f"{x.shape}; BatchNorm1d needs a batch of at least 2 samples in training mode"
            )
        n, dtype = self.n_features, self.gamma.data.dtype
        xhat = self._buffer("xhat", x.shape, dtype)
        inv_std = self._buffer("inv_std", (n,), dtype)
        self._batch_stats = self.training
        if self.training:
            mean = np.sum(x, axis=0, out=self._buffer("mean", (n,), dtype))
            if shard is not None:
                shard.allreduce(mean)  # Σ over the ranks' rows
            mean /= batch  # μ_B
            np.subtract(x, mean, out=xhat)  # x − μ_B
            var = np.einsum("ij,ij->j", xhat, xhat, out=self._buffer("var", (n,), dtype))
            if shard is not None:
                shard.allreduce(var)
            var /= batch  # σ²_B, biased
            self._update_running_stats(mean, var, batch)
        else:
            np.subtract(x, self.running_mean, out=xhat)
            var = self.running_var
        np.add(var, self.eps, out=inv_std)
        np.sqrt(inv_std, out=inv_std)
        np.reciprocal(inv_std, out=inv_std)  # 1/σ = 1/√(σ² + ε)
        xhat *= inv_std  # x̂ = (x − μ)/σ
        self._xhat, self._inv_std = xhat, inv_std
        return self._affine(xhat)

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, batch: int) -> None:
        """running ← (1 − momentum)·running + momentum·batch statistic (unbiased variance)."""
        m = self.momentum
        step = self._buffer("stat_step", mean.shape, self.running_mean.dtype)
        self.running_mean *= 1 - m
        self.running_mean += np.multiply(mean, m, out=step)
        self.running_var *= 1 - m
        self.running_var += np.multiply(var, m * batch / (batch - 1), out=step)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Add ∂L/∂γ and ∂L/∂β into the gradients; return ∂L/∂x.

        Parameters
        ----------
        grad_out : ndarray, shape (N, n)
            g = ∂L/∂out of the last forward.

        Returns
        -------
        ndarray, shape (N, n), or None when ``needs_input_grad`` is False
        """
        xhat, inv_std = self._xhat, self._inv_std
        # ∂out/∂γ = x̂ and ∂out/∂β = 1, summed over the batch
        dgamma, dbeta = self._accumulate_affine_grads(grad_out)  # Σ g⊙x̂ and Σ g
        if not self.needs_input_grad:
            return None
        dtype = xhat.dtype
        # γ/σ, per feature
        scale = self._buffer("scale", inv_std.shape, dtype)
        np.multiply(self.gamma.data, inv_std, out=scale)
        dx = self._buffer("dx", xhat.shape, dtype)
        if not self._batch_stats:
            # μ, σ constant: ∂L/∂x = γ/σ ⊙ g
            return np.multiply(grad_out, scale, out=dx)
        n_batch = xhat.shape[0]
        if self.shard is not None:  # Σg and Σg⊙x̂ over the global batch (∇γ, ∇β stay local)
            sums = np.stack([dgamma, dbeta], out=self._buffer("sums", (2, len(dgamma)), dtype))
            self.shard.allreduce(sums)
            dgamma, dbeta, n_batch = sums[0], sums[1], self.shard.total
        # μ_B and σ_B depend on every sample: ∂L/∂x = γ/σ ⊙ (g − (Σg + x̂ ⊙ Σg⊙x̂)/N)
        np.multiply(xhat, dgamma, out=dx)
        dx += dbeta
        dx *= 1 / n_batch
        np.subtract(grad_out, dx, out=dx)
        dx *= scale
        return dx

    def config(self) -> dict:
        return {"n_features": self.n_features, "momentum": self.momentum, "eps": self.eps}

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.n_features}, momentum={self.momentum}, eps={self.eps})"


@register_layer
class LayerNorm(_Normalization):
    """Layer normalisation: out = γ ⊙ (x − μ) / √(σ² + ε) + β, per sample, as in PyTorch.

    μ and σ² are the mean and the biased variance of each row over its n features:

        μᵢ = (1/n) Σⱼ xᵢⱼ,     σᵢ² = (1/n) Σⱼ (xᵢⱼ − μᵢ)²

    The layer computes the same in training and evaluation mode and keeps no running state.

    Parameters
    ----------
    n_features : int
        The number of features ``n``; the input has shape ``(N, n)``.
    eps : float
        ε > 0 added to the variance.

    Attributes
    ----------
    gamma, beta : Parameter, shape (n,)
        Elementwise scale γ (starts at 1) and shift β (starts at 0).

    Notes
    -----
    Forward caches x̂ = (x − μ)/σ and 1/σ (one per row). With g = ∂L/∂out and
    ĝ = γ ⊙ g = ∂L/∂x̂, backward computes, row by row::

        ∂L/∂β += Σᵢ gᵢ
        ∂L/∂γ += Σᵢ gᵢ ⊙ x̂ᵢ
        ∂L/∂x  = (1/σ) ⊙ (ĝ − mean_j(ĝ) − x̂ ⊙ mean_j(ĝ ⊙ x̂))
    """

    def __init__(self, n_features: int, eps: float = 1e-5) -> None:
        super().__init__(n_features, eps)

    @classmethod
    def state_shapes(cls, config: dict) -> tuple[dict, dict]:
        n = check_positive_int("n_features", config["n_features"])
        check_positive("eps", config.get("eps", 1e-5))
        return {"gamma": (n,), "beta": (n,)}, {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        """out = γ ⊙ (x − μ) / √(σ² + ε) + β with μ, σ² per row.

        Parameters
        ----------
        x : ndarray, shape (N, n)

        Returns
        -------
        ndarray, shape (N, n)
            A buffer of the layer, in the dtype of γ.
        """
        self._check_input(x)
        rows, dtype = x.shape[0], self.gamma.data.dtype
        mean = np.mean(x, axis=1, out=self._buffer("mean", (rows,), dtype))  # μᵢ
        xhat = np.subtract(x, mean[:, None], out=self._buffer("xhat", x.shape, dtype))  # x − μ
        inv_std = np.einsum("ij,ij->i", xhat, xhat, out=self._buffer("inv_std", (rows,), dtype))
        inv_std *= 1 / self.n_features  # σᵢ², biased
        inv_std += self.eps
        np.sqrt(inv_std, out=inv_std)
        np.reciprocal(inv_std, out=inv_std)  # 1/σᵢ = 1/√(σᵢ² + ε)
        xhat *= inv_std[:, None]  # x̂ = (x − μ)/σ
        self._xhat, self._inv_std = xhat, inv_std
        return self._affine(xhat)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Add ∂L/∂γ and ∂L/∂β into the gradients; return ∂L/∂x.

        Parameters
        ----------
        grad_out : ndarray, shape (N, n)
            g = ∂L/∂out of the last forward.

        Returns
        -------
        ndarray, shape (N, n), or None when ``needs_input_grad`` is False
        """
        xhat, inv_std = self._xhat, self._inv_std
        # ∂out/∂γ = x̂ and ∂out/∂β = 1, summed over the batch
        self._accumulate_affine_grads(grad_out)
        if not self.needs_input_grad:
            return None
        rows, dtype = xhat.shape[0], xhat.dtype
        # ĝ = ∂L/∂x̂ = γ ⊙ g
        dx = np.multiply(grad_out, self.gamma.data, out=self._buffer("dx", xhat.shape, dtype))
        mean_g = np.mean(dx, axis=1, out=self._buffer("mean_g", (rows,), dtype))
        mean_gx = np.einsum("ij,ij->i", dx, xhat, out=self._buffer("mean_gx", (rows,), dtype))
        mean_gx *= 1 / self.n_features
        # μᵢ and σᵢ depend on every feature of row i:
        # ∂L/∂x = (1/σ) ⊙ (ĝ − mean_j ĝ − x̂ ⊙ mean_j(ĝ ⊙ x̂))
        tmp = np.multiply(xhat, mean_gx[:, None], out=self._buffer("tmp", xhat.shape, dtype))
        tmp += mean_g[:, None]
        dx -= tmp
        dx *= inv_std[:, None]
        return dx

    def config(self) -> dict:
        return {"n_features": self.n_features, "eps": self.eps}

    def __repr__(self) -> str:
        return f"LayerNorm({self.n_features}, eps={self.eps})"
