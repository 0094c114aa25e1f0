"""Shared fixtures of the engine tests: small losses, closed-form activations, a gradient check.

Everything here is an independent truth written with plain Python floats (``math``) or plain
numpy, so the tests do not depend on the engine's own formulas nor on the ``losses`` package.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import nn

# -- small losses ---------------------------------------------------------------------------


class LinearLoss:
    """L = Σ r ⊙ pred with the target r as the weights: ∂L/∂pred = r, every output direction."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        assert pred.shape == target.shape, (pred.shape, target.shape)
        self._grad = target.astype(pred.dtype)
        return float(np.sum(target.astype(np.float64) * pred.astype(np.float64)))

    def backward(self) -> np.ndarray:
        return self._grad.copy()


class HalfSSE:
    """L = ½ Σ (pred − t)²; ∂L/∂pred = pred − t (a sum, as in equation 5.8)."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        assert pred.shape == target.shape, (pred.shape, target.shape)
        self._grad = (pred - target.astype(pred.dtype)).astype(pred.dtype)
        diff = pred.astype(np.float64) - target.astype(np.float64)
        return 0.5 * float(np.sum(diff * diff))

    def backward(self) -> np.ndarray:
        return self._grad.copy()


@pytest.fixture
def linear_loss() -> LinearLoss:
    return LinearLoss()


@pytest.fixture
def half_sse() -> HalfSSE:
    return HalfSSE()


# -- closed forms of the activations (plain Python floats) ------------------------------------

SQRT2 = math.sqrt(2.0)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))  # log(1 + e^z) without overflow


def _gelu(z: float) -> float:
    return 0.5 * z * (1.0 + math.erf(z / SQRT2))


def _gelu_prime(z: float) -> float:
    cdf = 0.5 * (1.0 + math.erf(z / SQRT2))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _scalar_forms(slope: float = 0.01, alpha: float = 1.0) -> dict:
    """name -> (σ, σ') on Python floats."""
    return {
        "identity": (lambda z: z, lambda z: 1.0),
        "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
        "tanh": (math.tanh, lambda z: 1.0 - math.tanh(z) ** 2),
        "relu": (lambda z: z if z > 0 else 0.0, lambda z: 1.0 if z > 0 else 0.0),
        "leaky_relu": (lambda z: z if z > 0 else slope * z, lambda z: 1.0 if z > 0 else slope),
        "elu": (
            lambda z: z if z > 0 else alpha * math.expm1(z),
            lambda z: 1.0 if z > 0 else alpha * math.exp(z),
        ),
        "gelu": (_gelu, _gelu_prime),
        "softplus": (_softplus, _sigmoid),
    }


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    out = np.empty(z.shape, dtype=np.float64)
    for i, row in enumerate(np.asarray(z, dtype=np.float64)):
        m = max(float(v) for v in row)
        e = [math.exp(float(v) - m) for v in row]
        s = math.fsum(e)
        out[i] = [v / s for v in e]
    return out


def act(name: str, z: np.ndarray, **params) -> np.ndarray:
    """σ(z) from the closed form, element-wise (row-wise for softmax), in float64."""
    z = np.asarray(z, dtype=np.float64)
    if name == "softmax":
        return _softmax_rows(z)
    f = _scalar_forms(params.get("negative_slope", 0.01), params.get("alpha", 1.0))[name][0]
    return np.vectorize(f, otypes=[np.float64])(z) if z.size else z.copy()


def dact(name: str, z: np.ndarray, **params) -> np.ndarray:
    """σ'(z) element-wise from the closed form, in float64 (not for softmax)."""
    z = np.asarray(z, dtype=np.float64)
    f = _scalar_forms(params.get("negative_slope", 0.01), params.get("alpha", 1.0))[name][1]
    return np.vectorize(f, otypes=[np.float64])(z)


def softmax_jacobian(s: np.ndarray) -> np.ndarray:
    """∂sᵢ/∂zⱼ = sᵢ(δᵢⱼ − sⱼ) for one row s."""
    return np.diag(s) - np.outer(s, s)


KINKED = {"relu", "leaky_relu", "elu"}


def reference_forward(model: nn.Sequential, x: np.ndarray):
    """The model's output in float64 from W.data, b.data and the closed forms.

    Returns the output and the smallest |z| fed to an activation with a kink at 0 (inf when
    there is none), so that a gradient check can verify it stays off the kinks.
    """
    a = np.asarray(x, dtype=np.float64)
    closest_kink = math.inf
    for layer in model.layers:
        if isinstance(layer, nn.Dense):
            z = a @ layer.W.data.astype(np.float64)
            if layer.b is not None:
                z = z + layer.b.data.astype(np.float64)
            activation = layer.activation
        elif isinstance(layer, nn.Activation):
            z = a
            activation = layer
        else:
            raise TypeError(f"no reference for {layer!r}")
        if activation.name in KINKED and z.size:
            closest_kink = min(closest_kink, float(np.abs(z).min()))
        a = act(activation.name, z, **activation.config())
    return a, closest_kink


@pytest.fixture
def ref() -> SimpleNamespace:
    """The closed forms, as a namespace: ref.act, ref.dact, ref.forward, ref.softmax_jacobian."""
    return SimpleNamespace(
        act=act,
        dact=dact,
        forward=reference_forward,
        softmax_jacobian=softmax_jacobian,
        names=list(nn.ACTIVATIONS),
    )


# -- gradient checks ------------------------------------------------------------------------

GRADCHECK_TOL = 1e-6
_WORST = {"rel": 0.0, "where": "none"}


def check_model_gradients(model: nn.Sequential, X: np.ndarray, *, seed: int = 0, where: str = ""):
    """nn.gradcheck with a random linear functional loss; asserts a relative error ≤ 1e-6.

    Before trusting the check it verifies that the model computes the closed-form function
    (in float64) and that no kinked activation sees a |z| small enough for the ±eps steps to
    cross its kink, and that the gradients are not trivially zero.
    """
    rng = np.random.default_rng(seed)
    model64 = model.copy(np.float64)
    out = model64.forward(np.asarray(X, dtype=np.float64)).copy()
    expected, closest_kink = reference_forward(model64, X)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert closest_kink > 1e-4, f"input lands on a kink (|z| = {closest_kink:.1e}); pick another"

    r = rng.normal(size=out.shape)
    report = nn.gradcheck(model, LinearLoss(), X, r)
    rel = report.max_rel_error
    if rel > _WORST["rel"]:
        _WORST.update(rel=rel, where=where or repr(model))
    assert report.passed, str(report)
    assert rel <= GRADCHECK_TOL, str(report)

    # a check of all-zero gradients proves nothing
    loss = LinearLoss()
    model64.zero_grad()
    loss.forward(model64.forward(np.asarray(X, dtype=np.float64)), r)
    grad_x = model64.backward(loss.backward())
    if model64.n_parameters:
        assert np.any(model64.theta_grad != 0), "every parameter gradient is zero"
    assert np.any(grad_x != 0), "the input gradient is zero"
    return report


@pytest.fixture
def assert_gradcheck():
    """check_model_gradients(model, X, seed=0, where="") as a fixture."""
    return check_model_gradients


# -- the summary after the run ----------------------------------------------------------------

_SUMMARY: list[str] = []


@pytest.fixture
def summary_line():
    """summary_line(text): show ``text`` in pytest's terminal summary, after the test results."""
    return _SUMMARY.append


def pytest_terminal_summary(terminalreporter) -> None:
    if _WORST["rel"] > 0:
        terminalreporter.write_line(
            f"nn.gradcheck: largest relative difference {_WORST['rel']:.2e} ({_WORST['where']})"
        )
    for line in _SUMMARY:
        terminalreporter.write_line(line)
