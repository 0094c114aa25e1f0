"""Activation functions σ and their derivatives, fused into Dense or as stand-alone layers.

Each activation computes ``a = σ(z)`` into a buffer and, in backward, ∂L/∂z = σ'(z) ⊙ ∂L/∂a
(equation 5.12 of the reference notes) from the values cached by forward, in place.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from nn.checks import check_finite_real
from nn.layer import Layer, register_layer


class Activation(Layer):
    """An element-wise (or row-wise, for softmax) function σ, usable two ways.

    * Fused into :class:`~nn.Dense` (``Dense(..., activation=Sigmoid())``): the Dense layer calls
      ``apply(z, out)``, which writes σ(z) into ``out``, and ``chain(z, a, grad_a, out)``, which
      writes ∂L/∂z = σ'(z) ⊙ ∂L/∂a into ``out`` from the cached ``z`` and ``a = σ(z)``.
    * As a stand-alone layer (``Sequential(Dense(4, 8), Sigmoid())``): ``forward(x)`` caches
      x and σ(x); ``backward`` returns σ'(x) ⊙ ∂L/∂a.

    Instances keep per-call state (GELU keeps Φ(z)), so each layer owns its own instance.
    """

    _forward_cache = ("_x", "_a")

    name = ""
    init = "glorot"  # the initializer that suits this activation

    def __init__(self) -> None:
        super().__init__()
        self._x: np.ndarray | None = None
        self._a: np.ndarray | None = None

    def apply(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write σ(z) into ``out`` (same shape as ``z``) and return it."""
        raise NotImplementedError

    def chain(
        self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """Write ∂L/∂z = σ'(z) ⊙ ∂L/∂a into ``out`` from cached z and a; return it."""
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        """a = σ(x), shape ``(batch, n)``; caches x and a."""
        self._x = x
        self._a = self.apply(x, self._buffer("a", x.shape, x.dtype))
        return self._a

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """∂L/∂x = σ'(x) ⊙ ∂L/∂a (5.12), shape ``(batch, n)``; no parameters."""
        out = self._buffer("grad_in", grad_out.shape, grad_out.dtype)
        return self.chain(self._x, self._a, grad_out, out)

    def config(self) -> dict:
        """Constructor arguments (the slope or alpha of the activations that have one)."""
        return {k: getattr(self, k) for k in inspect.signature(type(self)).parameters}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Identity(Activation):
    """σ(z) = z; σ'(z) = 1. Forward returns ``z`` itself and backward ``grad_a`` itself."""

    name = "identity"

    def apply(self, z, out):
        return z

    def chain(self, z, a, grad_a, out):
        return grad_a


class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^{−z}); σ'(z) = a(1 − a) from the cached a."""

    name = "sigmoid"

    def apply(self, z, out):
        # numpy's vectorised exp is 3-4x faster than scipy's expit; e^{−z} = inf for z < −88
        # (float32) gives exactly 0, so the overflow is harmless and silenced.
        with np.errstate(over="ignore"):
            np.negative(z, out=out)
            np.exp(out, out=out)
        out += 1
        return np.reciprocal(out, out=out)

    def chain(self, z, a, grad_a, out):
        np.subtract(1, a, out=out)  # 1 − a
        out *= a  # σ'(z) = a(1 − a)
        out *= grad_a  # ∂L/∂z = σ'(z) ⊙ ∂L/∂a
        return out


class Tanh(Activation):
    """σ(z) = tanh z; σ'(z) = 1 − a² from the cached a."""

    name = "tanh"

    def apply(self, z, out):
        return np.tanh(z, out=out)

    def chain(self, z, a, grad_a, out):
        np.multiply(a, a, out=out)
        np.subtract(1, out, out=out)  # σ'(z) = 1 − a²
        out *= grad_a
        return out


class ReLU(Activation):
    """σ(z) = max(z, 0); σ'(z) = 1 where z > 0, else 0."""

    name = "relu"
    init = "he"

    def apply(self, z, out):
        # against an array of zeros: numpy vectorises maximum of two arrays, not of an array
        # and a scalar
        return np.maximum(z, self._buffer("zeros", z.shape, z.dtype, fill=0), out=out)

    def chain(self, z, a, grad_a, out):
        np.greater(z, 0, out=out)  # σ'(z) ∈ {0, 1}
        out *= grad_a
        return out


class LeakyReLU(Activation):
    """σ(z) = z for z > 0, else slope·z; σ'(z) = 1 or slope."""

    name = "leaky_relu"
    init = "he"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_finite_real("negative_slope", negative_slope)

    def apply(self, z, out):
        np.multiply(z, self.negative_slope, out=out)
        # z where z > 0, else slope·z: the larger of the two for slope ≤ 1, the smaller above
        pick = np.maximum if self.negative_slope <= 1 else np.minimum
        return pick(z, out, out=out)

    def chain(self, z, a, grad_a, out):
        np.greater(z, 0, out=out)
        out *= 1 - self.negative_slope
        out += self.negative_slope  # σ'(z) ∈ {slope, 1}
        out *= grad_a
        return out


class ELU(Activation):
    """σ(z) = z for z > 0, else α(e^z − 1); σ'(z) = 1 or a + α from the cached a."""

    name = "elu"
    init = "he"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_finite_real("alpha", alpha)

    def apply(self, z, out):
        positive = np.greater(z, 0, out=self._buffer("positive", z.shape, np.dtype(bool)))
        np.minimum(z, 0, out=out)
        np.expm1(out, out=out)
        out *= self.alpha
        np.copyto(out, z, where=positive)
        return out

    def chain(self, z, a, grad_a, out):
        np.add(a, self.alpha, out=out)  # σ'(z) = a + α where z ≤ 0
        np.copyto(out, 1, where=self._buffers["positive"])  # σ'(z) = 1 where z > 0 (cached)
        out *= grad_a
        return out


class GELU(Activation):
    """Exact GELU: σ(z) = z·Φ(z) with Φ the standard normal CDF; σ'(z) = Φ(z) + z·φ(z).

    Φ(z) is cached by forward; φ(z) = e^{−z²/2}/√(2π) is computed in backward.
    """

    name = "gelu"
    init = "he"

    def apply(self, z, out):
        from scipy.special import erf  # scipy.special takes longer to import than nn: on first use

        cdf = self._buffer("phi_cdf", out.shape, out.dtype)
        np.multiply(z, 1 / math.sqrt(2), out=cdf)
        erf(cdf, out=cdf)
        cdf += 1
        cdf *= 0.5  # Φ(z) = (1 + erf(z/√2)) / 2
        return np.multiply(z, cdf, out=out)

    def chain(self, z, a, grad_a, out):
        np.multiply(z, z, out=out)
        out *= -0.5
        np.exp(out, out=out)
        out *= 1 / math.sqrt(2 * math.pi)  # φ(z)
        out *= z
        out += self._buffers["phi_cdf"]  # σ'(z) = Φ(z) + z·φ(z)
        out *= grad_a
        return out


class Softplus(Activation):
    """σ(z) = log(1 + e^z); σ'(z) = 1/(1 + e^{−z}) = 1 − e^{−a} from the cached a."""

    name = "softplus"

    def apply(self, z, out):
        return np.logaddexp(0, z, out=out)

    def chain(self, z, a, grad_a, out):
        np.negative(a, out=out)
        np.expm1(out, out=out)
        np.negative(out, out=out)  # σ'(z) = −expm1(−a), exact also for tiny a
        out *= grad_a
        return out


class Softmax(Activation):
    """Row-wise σ(z)ᵢ = e^{zᵢ} / Σⱼ e^{zⱼ}; ∂L/∂z = a ⊙ (∂L/∂a − Σⱼ aⱼ ∂L/∂aⱼ).

    For classification, prefer logits with :class:`losses.CrossEntropy`, whose fused gradient
    softmax(z) − y is cheaper and more accurate.
    """

    name = "softmax"

    def apply(self, z, out):
        row = self._buffer("row", (z.shape[0], 1), out.dtype)
        np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True, out=row), out=out)  # shift
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=1, keepdims=True, out=row)
        return out

    def chain(self, z, a, grad_a, out):
        dot = self._buffer("row", (a.shape[0], 1), out.dtype)
        # Σⱼ aⱼ ∂L/∂aⱼ per row (same_kind: a float64 ∂L/∂a is cast like in the ufuncs)
        np.einsum("ij,ij->i", grad_a, a, out=dot[:, 0], casting="same_kind")
        np.subtract(grad_a, dot, out=out)
        out *= a  # Jacobian-vector product of softmax
        return out


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softplus, Softmax)
}
for _cls in ACTIVATIONS.values():  # the stand-alone activation layers
    register_layer(_cls)


def get_activation(activation: str | dict | Activation | None) -> Activation:
    """Return a fresh activation instance for a name, ``None`` (identity) or an instance.

    The config form ``{"name": "leaky_relu", "negative_slope": 0.2}`` (as written in model files)
    is accepted too.

    Raises
    ------
    ValueError
        For an unknown name or arguments; the message lists the valid names.
    TypeError
        For anything that is neither a string, a dict, ``None`` nor an :class:`Activation`.
    """
    if activation is None:
        return Identity()
    if isinstance(activation, Activation):
        return type(activation)(**activation.config())
    if isinstance(activation, str):
        return _activation_class(activation)()
    if isinstance(activation, dict):
        args = dict(activation)
        cls = _activation_class(args.pop("name", None))
        accepted = set(inspect.signature(cls).parameters)
        unknown = sorted(map(str, set(args) - accepted))
        if unknown:
            raise ValueError(
                f"Received invalid arguments for activation {cls.name!r}, expected only "
                f"{sorted(accepted)}. Received unknown: {unknown}"
            )
        return cls(**args)  # the constructor checks each value and names it
    raise TypeError(
        "Received an invalid type for `activation`, expected a string, None or an Activation. "
        f"Received: activation={activation!r} of type {type(activation).__name__}"
    )


def _activation_class(name: object) -> type[Activation]:
    cls = ACTIVATIONS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"Received an invalid value for `activation`, expected one of "
            f"{sorted(ACTIVATIONS)} or None. Received: activation={name!r}"
        )
    return cls
