"""Dropout against its definition: out = x ⊙ m / (1 − p), m ~ Bernoulli(1 − p), in training only."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn
import optim
from nn.dropout import Dropout


def normal(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)


# -- evaluation mode and p = 0: the identity -------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9])
def test_eval_mode_is_the_identity_without_a_copy(p):
    layer = Dropout(p).eval()
    x = normal((4, 3), 0)
    assert layer.forward(x) is x
    g = normal((4, 3), 1)
    assert layer.backward(g) is g


def test_p_zero_is_the_identity_in_training_mode():
    layer = Dropout(0.0)
    assert layer.training
    x = normal((5, 2), 0)
    assert layer.forward(x) is x
    g = normal((5, 2), 1)
    assert layer.backward(g) is g


def test_model_eval_and_train_switch_dropout():
    model = nn.Sequential(nn.Dense(3, 200), Dropout(0.5), seed=0, dtype=np.float64)
    x = normal((8, 3), 1)
    model.eval()
    dense_out = model.layers[0].forward(x).copy()
    np.testing.assert_array_equal(model.forward(x), dense_out)
    np.testing.assert_array_equal(model.predict(x), dense_out)
    model.train()
    assert np.any(model.forward(x) == 0)


# -- training mode: the distribution of the mask -----------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zeroes_about_p_and_scales_survivors(p, dtype):
    """#zeros ~ Binomial(n, p): within 5 standard deviations; survivors are x / (1 − p)."""
    model = nn.Sequential(Dropout(p), seed=123, dtype=dtype)
    x = np.random.default_rng(7).uniform(0.5, 2.0, size=(400, 250)).astype(dtype)
    n = x.size
    out = model.forward(x)
    assert out.dtype == dtype
    zeros = int(np.count_nonzero(out == 0))
    assert abs(zeros - n * p) <= 5 * math.sqrt(n * p * (1 - p)), (zeros, n * p)
    kept = out != 0
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=rtol)
    # the expectation is preserved: mean(out / x) = 1 ± 5 std, with Var(m/(1−p)) = p/(1−p)
    ratio = np.asarray(out, dtype=np.float64) / x
    assert abs(ratio.mean() - 1) <= 5 * math.sqrt(p / (1 - p) / n)


def test_each_forward_draws_a_new_mask():
    layer = Dropout(0.5)
    x = np.ones((20, 50))
    first = layer.forward(x) != 0
    second = layer.forward(x) != 0
    assert not np.array_equal(first, second)


def test_backward_uses_the_same_scaled_mask():
    p = 0.3
    layer = Dropout(p)
    x = normal((30, 40), 0)
    out = layer.forward(x).copy()
    g = normal((30, 40), 1)
    g_before = g.copy()
    dx = layer.backward(g)
    scaled_mask = out / x  # m / (1 − p), read off the forward
    np.testing.assert_allclose(dx, g * scaled_mask, rtol=1e-14)
    np.testing.assert_array_equal(dx == 0, out == 0)
    np.testing.assert_array_equal(g, g_before)


def test_forward_leaves_the_input_alone_and_reuses_its_buffers():
    layer = Dropout(0.5)
    x = normal((6, 5), 0)
    x_before = x.copy()
    out1 = layer.forward(x)
    out2 = layer.forward(x)
    np.testing.assert_array_equal(x, x_before)
    assert out1 is out2  # the output is a buffer of the layer, reused while the shape repeats


def test_gradient_by_finite_differences_with_a_frozen_mask():
    """Dense→Dropout→Dense in training mode: replaying the generator freezes the mask, so
    central differences of L = Σ r ⊙ out check ∂L/∂x and ∂L/∂θ through the dropped units."""
    model = nn.Sequential(
        nn.Dense(3, 6, "tanh"), Dropout(0.4), nn.Dense(6, 2), seed=2, dtype=np.float64
    )
    x, r = normal((5, 3), 3), normal((5, 2), 4)
    state = model.rng.bit_generator.state

    def loss() -> float:
        model.rng.bit_generator.state = state  # the same mask on every evaluation
        return float(np.sum(r * model.forward(x)))

    model.rng.bit_generator.state = state
    assert np.any(model.layers[1].forward(np.ones((5, 6))) == 0)  # the frozen mask drops units
    model.zero_grad()
    loss()
    grad_x = model.backward(r).copy()
    eps = 1e-6
    for values, analytic in [(x, grad_x), (model.theta, model.theta_grad.copy())]:
        flat, numeric = values.reshape(-1), np.empty(values.size)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = loss()
            flat[i] = original - eps
            minus = loss()
            flat[i] = original
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic.reshape(-1), numeric, rtol=1e-6, atol=1e-9)


def test_layers_without_random_init_do_not_shift_the_initialisation():
    """Dropout and the norms draw nothing at construction: θ of the Dense layers is unchanged."""
    plain = nn.Sequential(nn.Dense(3, 4), nn.Dense(4, 2), seed=8)
    mixed = nn.Sequential(
        nn.Dense(3, 4), nn.BatchNorm1d(4), Dropout(0.5), nn.LayerNorm(4), nn.Dense(4, 2), seed=8
    )
    np.testing.assert_array_equal(mixed.layers[0].W.data, plain.layers[0].W.data)
    np.testing.assert_array_equal(mixed.layers[4].W.data, plain.layers[1].W.data)


# -- reproducibility ------------------------------------------------------------------------


def outputs(model, x, n=3):
    return [model.forward(x).copy() for _ in range(n)]


def test_sequential_seed_reproduces_the_masks():
    x = normal((16, 4), 0)

    def build(seed):
        return nn.Sequential(nn.Dense(4, 32), Dropout(0.5), nn.Dense(32, 2), seed=seed)

    for a, b in zip(outputs(build(5), x), outputs(build(5), x), strict=True):
        np.testing.assert_array_equal(a, b)
    with_6 = outputs(build(6), x)
    assert not all(np.array_equal(a, b) for a, b in zip(outputs(build(5), x), with_6, strict=True))


def test_masks_come_from_the_model_generator():
    """fit(seed=s) re-seeds model.rng in place; the next masks must follow it."""
    model = nn.Sequential(Dropout(0.5), seed=0, dtype=np.float64)
    x = np.ones((10, 30))
    model.rng.bit_generator.state = np.random.default_rng(42).bit_generator.state
    first = outputs(model, x)
    model.rng.bit_generator.state = np.random.default_rng(42).bit_generator.state
    for a, b in zip(first, outputs(model, x), strict=True):
        np.testing.assert_array_equal(a, b)
    # the same draws as the generator itself: m = [u ≥ p] with u ~ U[0, 1)
    model.rng.bit_generator.state = np.random.default_rng(42).bit_generator.state
    u = np.random.default_rng(42).random(x.shape)
    np.testing.assert_array_equal(model.forward(x) != 0, u >= 0.5)


def test_fit_seed_reproduces_training_with_dropout():
    X, y = normal((40, 3), 0), normal((40, 2), 1)

    def train(seed):
        model = nn.Sequential(nn.Dense(3, 16, "tanh"), Dropout(0.4), nn.Dense(16, 2), seed=0)
        model.fit(
            X,
            y,
            loss="mse",
            optimizer=optim.SGD(model.parameters(), lr=0.05),
            epochs=3,
            batch_size=8,
            seed=seed,
            progress=False,
        )
        return model.theta.copy()

    np.testing.assert_array_equal(train(3), train(3))
    assert not np.array_equal(train(3), train(4))


def test_stand_alone_layer_uses_the_generator_it_is_given():
    x = np.ones((10, 40))
    a, b = Dropout(0.5), Dropout(0.5)
    # fresh entropy each: two stand-alone layers disagree (equal with probability 2⁻⁴⁰⁰)
    assert not np.array_equal(a.forward(x), b.forward(x))
    a.reset_parameters(np.random.default_rng(9))
    b.reset_parameters(np.random.default_rng(9))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with pytest.raises(TypeError, match="Generator"):
        a.reset_parameters(9)


def test_copy_keeps_drawing_independent_masks():
    """Sequential.copy gives the clone its own generator; the original's draws are unaffected."""
    model = nn.Sequential(Dropout(0.5), seed=1, dtype=np.float64)
    reference = nn.Sequential(Dropout(0.5), seed=1, dtype=np.float64)
    x = np.ones((5, 20))
    clone = model.copy()
    clone.forward(x)
    np.testing.assert_array_equal(model.forward(x), reference.forward(x))


# -- description and errors ---------------------------------------------------------------------


def test_config_state_shapes_and_repr():
    layer = Dropout(0.25)
    assert layer.config() == {"p": 0.25}
    assert Dropout(**layer.config()).p == 0.25
    assert Dropout.state_shapes(layer.config()) == ({}, {})
    assert layer.parameters() == [] and layer.buffers() == {}
    assert layer.n_features_in is None and layer.output_features(7) == 7
    assert repr(layer) == "Dropout(p=0.25)"
    assert Dropout().p == 0.5


@pytest.mark.parametrize("p", [1, 1.0, -0.1, 2.5, float("nan")])
def test_invalid_p_raises_value_error(p):
    with pytest.raises(ValueError, match=r"`p`, expected a number in \[0, 1\)\. Received: p="):
        Dropout(p)
    with pytest.raises(ValueError, match=r"`p`"):
        Dropout.state_shapes({"p": p})


@pytest.mark.parametrize("p", ["0.5", None, True])
def test_non_numeric_p_raises_type_error(p):
    with pytest.raises(TypeError, match=r"`p`.*Received: p="):
        Dropout(p)
