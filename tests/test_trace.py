"""The chain-rule trace, against the worked example computed by hand and finite differences.

The worked example (the network of eqs. 5.11–5.13 of the notes): x = (1, −2) feeds
z = w₁x₁ + w₂x₂ + b with w₁ = 0.3, w₂ = −0.7, b = 0.1, a = σ(z); a feeds z′ = w₃a + b₃ and
z″ = w₄a + b₄ with w₃ = 0.8, w₄ = −1.2, b₃ = 0.2, b₄ = −0.4; L = (a′ − 1)² + (a″ − 0)².
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn
from nn.cli import main
from nn.tracing import trace, worked_example


def sigma(v: float) -> float:
    return 1 / (1 + math.exp(-v))


# by hand, with Python floats
Z = 0.3 * 1 + -0.7 * -2 + 0.1  # 1.8
A = sigma(Z)
Z1, Z2 = 0.8 * A + 0.2, -1.2 * A - 0.4
A1, A2 = sigma(Z1), sigma(Z2)
DA1, DA2 = 2 * (A1 - 1), 2 * (A2 - 0)  # ∂L/∂a′, ∂L/∂a″
DZ1, DZ2 = A1 * (1 - A1) * DA1, A2 * (1 - A2) * DA2  # 5.12
DA = 0.8 * DZ1 + -1.2 * DZ2  # 5.11
DZ = A * (1 - A) * DA  # 5.12
DW1 = 1 * A * (1 - A) * (0.8 * DZ1 + -1.2 * DZ2)  # 5.13


def test_the_hand_values_match_numbers_worked_on_paper():
    """A few of them written out: z = 1.8, σ(1.8) = 0.858149, ∂L/∂w₁ = −0.0205392."""
    assert Z == pytest.approx(1.8, abs=1e-15)
    assert A == pytest.approx(0.858149, abs=1e-6)
    assert DW1 == pytest.approx(-0.0205392, abs=1e-7)


def test_the_worked_example_reproduces_every_hand_value():
    report = trace(*worked_example())
    first, second = report.layers
    np.testing.assert_allclose(first["z"], [[Z]], rtol=1e-14)
    np.testing.assert_allclose(first["a"], [[A]], rtol=1e-14)
    np.testing.assert_allclose(first["sigma_prime"], [[A * (1 - A)]], rtol=1e-14)
    np.testing.assert_allclose(second["z"], [[Z1, Z2]], rtol=1e-14)
    np.testing.assert_allclose(second["a"], [[A1, A2]], rtol=1e-14)
    assert report.loss == pytest.approx((A1 - 1) ** 2 + A2**2, rel=1e-14)
    np.testing.assert_allclose(second["dL_da"], [[DA1, DA2]], rtol=1e-14)
    np.testing.assert_allclose(second["dL_dz"], [[DZ1, DZ2]], rtol=1e-13)
    np.testing.assert_allclose(second["dL_dW"], [[A * DZ1, A * DZ2]], rtol=1e-13)
    np.testing.assert_allclose(second["dL_db"], [DZ1, DZ2], rtol=1e-13)
    np.testing.assert_allclose(second["dL_dx"], [[DA]], rtol=1e-13)
    np.testing.assert_allclose(first["dL_da"], [[DA]], rtol=1e-13)
    np.testing.assert_allclose(first["dL_dz"], [[DZ]], rtol=1e-13)
    np.testing.assert_allclose(first["dL_dW"], [[DW1], [-2 * DZ]], rtol=1e-13)
    np.testing.assert_allclose(first["dL_db"], [DZ], rtol=1e-13)
    np.testing.assert_allclose(first["dL_dx"], [[0.3 * DZ, -0.7 * DZ]], rtol=1e-13)
    assert report.max_error < 1e-7


def test_the_printed_trace_shows_equations_beside_values():
    text = str(trace(*worked_example()))
    for piece in (
        "eq. 5.9",
        "eq. 5.11",
        "eq. 5.12",
        "5.13",
        "σ'(z) = a(1 − a)",
        "∂L/∂W = xᵀ·∂L/∂z",
    ):
        assert piece in text
    assert f"{DW1:.6g}" in text  # the 5.13 line, with the hand value
    assert "finite differences agree" in text


def test_every_layer_type_is_traced_and_checked():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Standardize(3),
        nn.Dense(3, 20, activation="gelu"),
        nn.BatchNorm1d(20),
        nn.Dropout(0.5),
        nn.LayerNorm(20),
        nn.Dense(20, 4, activation="elu"),
        nn.Tanh(),
        nn.Dense(4, 3),
        nn.Softmax(),
        seed=0,
    )
    theta = model.theta.copy()
    report = trace(model, rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), "mse")
    assert report.max_error < 1e-6
    assert np.array_equal(model.theta, theta) and model.dtype == np.float32  # untouched
    assert "shape (3, 20): min" in str(report)  # W of 60 entries: summarized
    softmax = report.layers[-1]
    assert "sigma_prime" not in softmax.forward and "dL_dz" in softmax.backward
    checked = report.layers[2].backward["dL_dgamma"]
    assert checked.error < 1e-6 and checked.checked == 20


def test_large_gradients_are_checked_on_a_sample():
    model = nn.Sequential(nn.Dense(30, 40, activation="tanh"), nn.Dense(40, 1), seed=0)
    rng = np.random.default_rng(1)
    report = trace(model, rng.normal(size=(2, 30)), rng.normal(size=(2, 1)), "mse", max_checks=10)
    dW = report.layers[0].backward["dL_dW"]
    assert dW.checked == 10 and dW.value.shape == (30, 40) and dW.error < 1e-6


def test_a_wrong_gradient_is_reported():
    """A layer whose backward is off by a factor shows a large error: the check can fail."""

    class WrongScale(nn.Layer):
        def forward(self, x):
            return 2 * x

        def backward(self, grad_out):
            return 3 * grad_out

    model = nn.Sequential(nn.Dense(2, 2), WrongScale(), dtype=np.float64)
    report = trace(model, [[1.0, 2.0]], [[0.0, 1.0]], "mse")
    assert report.layers[1].backward["dL_dx"].error > 0.1
    assert report.max_error > 0.1


def test_chainrule_trace_prints_the_worked_example(capsys):
    assert main(["trace"]) == 0
    out = capsys.readouterr().out
    assert "Dense(2 -> 1, activation=sigmoid)" in out
    assert f"{A:.6f}" in out and f"{DW1:.6g}" in out


def test_bad_model():
    with pytest.raises(TypeError, match="model"):
        trace(nn.Dense(2, 1), [[1.0, 2.0]], [[1.0]], "mse")
