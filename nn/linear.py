"""Dense: the fully connected layer z = x·W + b, a = σ(z)."""

from __future__ import annotations

import numpy as np

from nn.activations import Activation, get_activation
from nn.checks import check_bool, check_positive_int
from nn.init import get_initializer
from nn.layer import Layer, register_layer
from nn.parameter import Parameter


def _allocate_weights(n_in: int, n_out: int) -> np.ndarray:
    """An empty float32 ``W`` of shape ``(n_in, n_out)``; errors name both sizes."""
    try:
        return np.empty((n_in, n_out), dtype=np.float32)
    except ValueError:  # more elements than an array can address
        raise ValueError(
            "Received an invalid value for `n_in` and `n_out`, expected a weight matrix "
            f"W of n_in·n_out elements that an array can hold. Received: n_in={n_in}, "
            f"n_out={n_out} ({n_in * n_out:.3g} elements)"
        ) from None
    except MemoryError:
        raise MemoryError(
            f"Dense(n_in={n_in}, n_out={n_out}) needs {n_in * n_out * 4 / 2**30:.3g} GiB "
            "for W, which could not be allocated"
        ) from None


@register_layer
class Dense(Layer):
    """Fully connected layer: z = x·W + b, a = σ(z).

    Parameters
    ----------
    n_in, n_out : int
        Input and output features. ``W`` has shape ``(n_in, n_out)``, ``b`` shape ``(n_out,)``.
    activation : str, Activation or None
        σ, fused into the layer: one of ``nn.activations.ACTIVATIONS`` or an
        :class:`~nn.activations.Activation` instance; ``None`` is the identity.
    init : str or None
        Initializer of ``W`` (``"glorot"``, ``"he"``, ... see ``nn.init``); by default He for
        the ReLU family and Glorot otherwise. ``b`` starts at zero.
    bias : bool
        Whether the layer has ``b``.

    Notes
    -----
    Forward caches x, z and a = σ(z). Backward follows equations 5.8–5.12 of the reference
    notes, from those cached values only::

        ∂L/∂z  = σ'(z) ⊙ ∂L/∂a
        ∂L/∂W += xᵀ · ∂L/∂z
        ∂L/∂b += Σ_batch ∂L/∂z
        ∂L/∂x  = ∂L/∂z · Wᵀ
    """

    _forward_cache = ("_x", "_z", "_a")

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str | Activation | None = None,
        init: str | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        self.n_features_in = self.n_in
        self.activation = get_activation(activation)
        self.init = init
        self._initializer = get_initializer(init or self.activation.init)
        bias = check_bool("bias", bias)
        self.W = Parameter(_allocate_weights(self.n_in, self.n_out), "W")
        self.b = Parameter(np.zeros(self.n_out, dtype=np.float32), "b") if bias else None
        self._x: np.ndarray | None = None
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None
        self.reset_parameters(np.random.default_rng())

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """W from the initializer, b = 0, in place."""
        self._initializer(self.W.data, rng)
        if self.b is not None:
            self.b.data[...] = 0

    @classmethod
    def state_shapes(cls, config: dict) -> tuple[dict, dict]:
        n_in = check_positive_int("n_in", config["n_in"])
        n_out = check_positive_int("n_out", config["n_out"])
        bias = check_bool("bias", config.get("bias", True))
        params = {"W": (n_in, n_out)}
        if bias:
            params["b"] = (n_out,)
        return params, {}

    def parameters(self) -> list[Parameter]:
        return [self.W] if self.b is None else [self.W, self.b]

    def output_features(self, n_in: int) -> int:
        if n_in != self.n_in:
            raise ValueError(f"{self!r} expects {self.n_in} input features, but receives {n_in}")
        return self.n_out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """a = σ(x·W + b).

        Parameters
        ----------
        x : ndarray, shape (batch, n_in)

        Returns
        -------
        ndarray, shape (batch, n_out)
        """
        W = self.W.data
        z = self._buffer("z", (x.shape[0], self.n_out), W.dtype)
        np.matmul(x, W, out=z)
        if self.b is not None:
            z += self.b.data
        self._x, self._z = x, z
        self._a = self.activation.apply(z, self._buffer("a", z.shape, z.dtype))
        return self._a

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Add ∂L/∂W and ∂L/∂b into the gradients; return ∂L/∂x.

        With ``grad_is_zero`` the products are written straight into ``W.grad`` and
        ``b.grad``; with ``needs_input_grad`` False ∂L/∂x is skipped (see :class:`Layer`).

        Parameters
        ----------
        grad_out : ndarray, shape (batch, n_out)
            ∂L/∂a.

        Returns
        -------
        ndarray, shape (batch, n_in), or None when ``needs_input_grad`` is False
        """
        x, z, a = self._x, self._z, self._a
        # 5.12: ∂L/∂z = σ'(z) ⊙ ∂L/∂a, with σ'(z) from the cached z and a
        dz = self.activation.chain(z, a, grad_out, self._buffer("dz", z.shape, z.dtype))
        # 5.10 and 5.8: ∂z/∂W = x, summed over the batch: ∂L/∂W += xᵀ·∂L/∂z
        self._add_product(self.W, x.T, dz)
        if self.b is not None:
            # ∂z/∂b = 1: ∂L/∂b += Σ_batch ∂L/∂z, as the product 1ᵀ·∂L/∂z
            ones = self._buffer("ones", (len(dz),), dz.dtype, fill=1)
            self._add_product(self.b, ones, dz)
        if not self.needs_input_grad:
            return None
        # 5.11: x feeds every z of the layer, so ∂L/∂x = ∂L/∂z · Wᵀ
        return np.matmul(dz, self.W.data.T, out=self._buffer("dx", x.shape, dz.dtype))

    def _add_product(self, p: Parameter, a: np.ndarray, b: np.ndarray) -> None:
        """p.grad += a·b (p.grad = a·b when it is zero), in numpy's BLAS, allocating nothing."""
        if self.grad_is_zero:
            np.matmul(a, b, out=p.grad)
            return
        p.grad += np.matmul(a, b, out=self._buffer(f"d{p.name}", p.grad.shape, p.grad.dtype))

    def config(self) -> dict:
        act = self.activation
        activation = {"name": act.name, **act.config()} if act.config() else act.name
        cfg = {"n_in": self.n_in, "n_out": self.n_out, "activation": activation}
        if self.init is not None:
            cfg["init"] = self.init
        if self.b is None:
            cfg["bias"] = False
        return cfg

    def __repr__(self) -> str:
        act = self.activation
        args = "".join(f", {k}={v}" for k, v in act.config().items())
        extra = "" if self.b is not None else ", bias=False"
        return f"Dense({self.n_in} -> {self.n_out}, activation={act.name}{args}{extra})"
