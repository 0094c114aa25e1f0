"""The worked example of the reference notes (equations 5.9–5.13), computed by hand.

Inputs x₁, x₂ feed one sigmoid neuron z = w₁x₁ + w₂x₂ + b, a = σ(z). Its output a feeds two
neurons z′ = w₃a + b₃ and z″ = w₄a + b₄ with outputs a′ = σ₂(z′), a″ = σ₂(z″), and the loss is
l = ½[(a′ − t₁)² + (a″ − t₂)²]. By hand, with plain Python floats:

    ∂l/∂z′ = σ₂′(z′)(a′ − t₁),   ∂l/∂z″ = σ₂′(z″)(a″ − t₂)
    ∂l/∂a  = w₃·∂l/∂z′ + w₄·∂l/∂z″                        (5.11, the branch rule)
    ∂l/∂z  = σ′(z)·∂l/∂a,  σ′(z) = a(1 − a)                 (5.12)
    ∂l/∂w₁ = x₁·σ′(z)·[w₃·∂l/∂z′ + w₄·∂l/∂z″]               (5.13)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn

W1, W2, B = 0.3, -0.7, 0.1
W3, W4, B3, B4 = 0.8, -1.2, 0.2, -0.4
T1, T2 = 1.0, 0.0
SAMPLES = [(1.0, -2.0), (-0.5, 0.75)]


def sigma(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


OUTPUT = {  # σ₂ and σ₂′ of the output neurons
    "sigmoid": (sigma, lambda v: sigma(v) * (1.0 - sigma(v))),
    "identity": (lambda v: v, lambda v: 1.0),
}


def by_hand(x1: float, x2: float, output: str = "sigmoid") -> dict:
    """Forward and backward pass of one sample, written out with math.exp."""
    act2, act2_prime = OUTPUT[output]
    z = W1 * x1 + W2 * x2 + B
    a = sigma(z)
    z1, z2 = W3 * a + B3, W4 * a + B4  # z′, z″
    a1, a2 = act2(z1), act2(z2)
    loss = 0.5 * ((a1 - T1) ** 2 + (a2 - T2) ** 2)
    dz1 = act2_prime(z1) * (a1 - T1)  # ∂l/∂z′
    dz2 = act2_prime(z2) * (a2 - T2)  # ∂l/∂z″
    da = W3 * dz1 + W4 * dz2  # 5.11
    sigma_prime = a * (1.0 - a)
    dz = sigma_prime * da  # 5.12
    return {
        "z": z, "a": a, "z1": z1, "z2": z2, "out": (a1, a2), "loss": loss,
        "dz1": dz1, "dz2": dz2, "da": da, "dz": dz,
        "dw1": x1 * sigma_prime * (W3 * dz1 + W4 * dz2),  # 5.13
        "dw2": x2 * dz,  # 5.9 with ∂z/∂w₂ = x₂ (5.10)
        "db": dz,
        "dw3": a * dz1, "dw4": a * dz2, "db3": dz1, "db4": dz2,
        "dx1": W1 * dz, "dx2": W2 * dz,
    }  # fmt: skip


def loss_of(params: dict, x1: float, x2: float, output: str) -> float:
    """The same network's loss as a plain function of every number, for finite differences."""
    act2 = OUTPUT[output][0]
    a = sigma(params["w1"] * x1 + params["w2"] * x2 + params["b"])
    a1 = act2(params["w3"] * a + params["b3"])
    a2 = act2(params["w4"] * a + params["b4"])
    return 0.5 * ((a1 - T1) ** 2 + (a2 - T2) ** 2)


def set_weights(model: nn.Sequential) -> None:
    first, second = [layer for layer in model.layers if isinstance(layer, nn.Dense)]
    first.W.data[...] = [[W1], [W2]]
    first.b.data[...] = [B]
    second.W.data[...] = [[W3, W4]]
    second.b.data[...] = [B3, B4]


def fused(output: str, dtype=np.float64) -> nn.Sequential:
    model = nn.Sequential(
        nn.Dense(2, 1, activation="sigmoid"), nn.Dense(1, 2, activation=output), dtype=dtype
    )
    set_weights(model)
    return model


@pytest.mark.parametrize("output", ["sigmoid", "identity"])
def test_hand_formulas_agree_with_finite_differences(output):
    """The hand computation is itself right: compare it with central differences in Python."""
    x1, x2 = SAMPLES[0]
    hand = by_hand(x1, x2, output)
    params = {"w1": W1, "w2": W2, "b": B, "w3": W3, "w4": W4, "b3": B3, "b4": B4}
    h = 1e-6
    for name in params:
        plus, minus = dict(params), dict(params)
        plus[name] += h
        minus[name] -= h
        numeric = (loss_of(plus, x1, x2, output) - loss_of(minus, x1, x2, output)) / (2 * h)
        assert hand["d" + name] == pytest.approx(numeric, rel=1e-7, abs=1e-10), name
    numeric_x1 = (loss_of(params, x1 + h, x2, output) - loss_of(params, x1 - h, x2, output)) / (
        2 * h
    )
    assert hand["dx1"] == pytest.approx(numeric_x1, rel=1e-7)


@pytest.mark.parametrize("output", ["sigmoid", "identity"])
def test_fused_network_reproduces_equation_5_13(output):
    x1, x2 = SAMPLES[0]
    hand = by_hand(x1, x2, output)
    model = fused(output)
    first, second = model.layers
    out = model.forward(np.array([[x1, x2]]))
    np.testing.assert_allclose(out, [hand["out"]], rtol=1e-14)
    dx = model.backward(out - np.array([[T1, T2]]))

    # ∂l/∂w₁ = x₁·σ′(z)·[w₃·∂l/∂z′ + w₄·∂l/∂z″] is the W entry of w₁
    assert first.W.grad[0, 0] == pytest.approx(hand["dw1"], rel=1e-12)
    assert first.W.grad[1, 0] == pytest.approx(hand["dw2"], rel=1e-12)
    assert first.b.grad[0] == pytest.approx(hand["db"], rel=1e-12)
    assert second.W.grad[0, 0] == pytest.approx(hand["dw3"], rel=1e-12)
    assert second.W.grad[0, 1] == pytest.approx(hand["dw4"], rel=1e-12)
    # ∂z′/∂b₃ = 1, so the bias gradients are ∂l/∂z′ and ∂l/∂z″ themselves
    assert second.b.grad[0] == pytest.approx(hand["dz1"], rel=1e-12)
    assert second.b.grad[1] == pytest.approx(hand["dz2"], rel=1e-12)
    np.testing.assert_allclose(dx, [[hand["dx1"], hand["dx2"]]], rtol=1e-12)
    # θ in layer order, W then b: [w₁, w₂, b, w₃, w₄, b₃, b₄]
    expected_theta_grad = [hand[k] for k in ("dw1", "dw2", "db", "dw3", "dw4", "db3", "db4")]
    np.testing.assert_allclose(model.theta_grad, expected_theta_grad, rtol=1e-12)


def test_layer_by_layer_each_equation():
    """With σ as stand-alone layers every intermediate ∂l/∂· of the notes can be read off."""
    x1, x2 = SAMPLES[0]
    hand = by_hand(x1, x2)
    model = nn.Sequential(nn.Dense(2, 1), nn.Sigmoid(), nn.Dense(1, 2), nn.Sigmoid(), dtype=float)
    set_weights(model)
    dense1, sig1, dense2, sig2 = model.layers
    out = model.forward(np.array([[x1, x2]]))

    grad = sig2.backward(out - np.array([[T1, T2]]))  # [∂l/∂z′, ∂l/∂z″]
    np.testing.assert_allclose(grad, [[hand["dz1"], hand["dz2"]]], rtol=1e-12)
    grad = dense2.backward(grad)  # 5.11: ∂l/∂a = w₃·∂l/∂z′ + w₄·∂l/∂z″
    np.testing.assert_allclose(grad, [[hand["da"]]], rtol=1e-12)
    grad = sig1.backward(grad)  # 5.12: ∂l/∂z = σ′(z)·∂l/∂a
    np.testing.assert_allclose(grad, [[hand["dz"]]], rtol=1e-12)
    grad = dense1.backward(grad)  # ∂l/∂x = w·∂l/∂z
    np.testing.assert_allclose(grad, [[hand["dx1"], hand["dx2"]]], rtol=1e-12)
    # 5.9–5.10: ∂l/∂wᵢ = xᵢ·∂l/∂z
    np.testing.assert_allclose(dense1.W.grad, [[hand["dw1"]], [hand["dw2"]]], rtol=1e-12)
    np.testing.assert_allclose(dense2.W.grad, [[hand["dw3"], hand["dw4"]]], rtol=1e-12)


@pytest.mark.parametrize("output", ["sigmoid", "identity"])
def test_a_batch_sums_the_per_sample_gradients(output):
    """5.8: L = Σₙ lⁿ, so each gradient is the sum of the samples' hand-computed gradients."""
    hands = [by_hand(x1, x2, output) for x1, x2 in SAMPLES]
    model = fused(output)
    out = model.forward(np.array(SAMPLES))
    dx = model.backward(out - np.array([[T1, T2]] * len(SAMPLES)))
    keys = ("dw1", "dw2", "db", "dw3", "dw4", "db3", "db4")
    np.testing.assert_allclose(
        model.theta_grad, [math.fsum(h[k] for h in hands) for k in keys], rtol=1e-12
    )
    np.testing.assert_allclose(dx, [[h["dx1"], h["dx2"]] for h in hands], rtol=1e-12)


def test_float32_model_matches_the_hand_values():
    x1, x2 = SAMPLES[1]
    hand = by_hand(x1, x2)
    model = fused("sigmoid", dtype=np.float32)
    out = model.forward(np.array([[x1, x2]]))
    model.backward(out - np.array([[T1, T2]], dtype=np.float32))
    assert model.theta_grad.dtype == np.float32
    expected = [hand[k] for k in ("dw1", "dw2", "db", "dw3", "dw4", "db3", "db4")]
    np.testing.assert_allclose(model.theta_grad, expected, rtol=2e-5)


def test_sigmoid_derivative_at_zero_is_one_quarter():
    """σ′(0) = σ(0)(1 − σ(0)) = ¼: with all weights zero, ∂l/∂b = ¼·(w₃∂l/∂z′ + w₄∂l/∂z″)."""
    model = fused("identity")
    first, second = model.layers
    first.W.data[...] = 0.0
    first.b.data[...] = 0.0
    out = model.forward(np.array([[5.0, -3.0]]))
    np.testing.assert_allclose(out, [[W3 * 0.5 + B3, W4 * 0.5 + B4]], rtol=1e-15)
    model.backward(np.array([[1.0, 1.0]]))  # ∂l/∂z′ = ∂l/∂z″ = 1
    assert first.b.grad[0] == pytest.approx(0.25 * (W3 + W4), rel=1e-15)
    np.testing.assert_allclose(first.W.grad[:, 0], [5.0 * 0.25 * (W3 + W4), -3 * 0.25 * (W3 + W4)])
