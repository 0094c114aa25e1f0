"""Dense: forward and backward against the equations written out in numpy, initializers, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn

NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "softmax"]
HE = {"relu", "leaky_relu", "elu", "gelu"}  # the ReLU family gets He, the others Glorot


def dense64(n_in, n_out, activation=None, seed=0, **kwargs):
    """A float64 Dense layer (bound into a Sequential, which owns θ) and its model."""
    model = nn.Sequential(
        nn.Dense(n_in, n_out, activation=activation, **kwargs), seed=seed, dtype=np.float64
    )
    layer = model.layers[0]
    if layer.b is not None:
        layer.b.data[...] = np.random.default_rng(seed + 100).normal(size=n_out)
    return model, layer


def data(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)


# -- forward and backward against the equations ------------------------------------------------


@pytest.mark.parametrize("name", [n for n in NAMES if n != "softmax"])
@pytest.mark.parametrize("batch", [1, 5])
def test_backward_follows_the_equations(name, batch, ref):
    """∂L/∂z = σ'(z)⊙∂L/∂a, ∂L/∂W = xᵀ∂L/∂z, ∂L/∂b = Σ∂L/∂z, ∂L/∂x = ∂L/∂z Wᵀ."""
    _, layer = dense64(4, 3, name, seed=batch)
    x, g = data((batch, 4), 1), data((batch, 3), 2)
    x_before, g_before = x.copy(), g.copy()
    a = layer.forward(x)
    z = x @ layer.W.data + layer.b.data
    np.testing.assert_allclose(a, ref.act(name, z), rtol=1e-12, atol=1e-14)
    dx = layer.backward(g)
    dz = ref.dact(name, z) * g
    np.testing.assert_allclose(layer.W.grad, x.T @ dz, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.b.grad, dz.sum(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, dz @ layer.W.data.T, rtol=1e-12, atol=1e-14)
    assert dx.shape == x.shape
    # the caller's arrays are never modified
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)


def test_softmax_fused_backward_uses_the_jacobian(ref):
    _, layer = dense64(3, 4, "softmax")
    x, g = data((2, 3), 3), data((2, 4), 4)
    s = layer.forward(x).copy()
    dx = layer.backward(g)
    dz = np.stack([ref.softmax_jacobian(s[i]) @ g[i] for i in range(2)])  # J is symmetric
    np.testing.assert_allclose(layer.W.grad, x.T @ dz, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.b.grad, dz.sum(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, dz @ layer.W.data.T, rtol=1e-12, atol=1e-14)


def test_backward_adds_into_grad_and_skips_input_grad_on_request():
    _, layer = dense64(3, 2, "tanh")
    x, g = data((4, 3), 5), data((4, 2), 6)
    layer.forward(x)
    layer.backward(g)
    once_W, once_b = layer.W.grad.copy(), layer.b.grad.copy()
    layer.needs_input_grad = False
    assert layer.backward(g) is None
    np.testing.assert_allclose(layer.W.grad, 2 * once_W, rtol=1e-14)
    np.testing.assert_allclose(layer.b.grad, 2 * once_b, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "int"])
def test_memory_layout_of_inputs_does_not_change_gradients(layout, dtype):
    """C, Fortran, strided and integer inputs and gradients give the same gradients."""
    model = nn.Sequential(nn.Dense(5, 3), nn.Tanh(), nn.Dense(3, 2), seed=1, dtype=dtype)
    base = np.round(data((6, 10), 7) * 4)  # integral values, so the "int" layout is the same X
    X = np.ascontiguousarray(base[:, ::2], dtype=dtype)
    g = data((6, 2), 8).astype(dtype)
    X_variants = {
        "C": X,
        "F": np.asfortranarray(X),
        "strided": base.astype(dtype)[:, ::2],  # a view with a stride, not a copy
        "int": base[:, ::2].astype(np.int64),
    }
    assert not X_variants["strided"].flags.c_contiguous
    g_strided = np.repeat(g, 2, axis=1)[:, ::2]  # every other column: a real stride
    assert not g_strided.flags.c_contiguous and np.array_equal(g_strided, g)
    g_variants = {"C": g, "F": np.asfortranarray(g), "strided": g_strided, "int": g}
    expected = _grads(model, X, g)
    got = _grads(model, X_variants[layout], g_variants[layout])
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for e, o in zip(expected, got, strict=True):
        assert o.dtype == dtype
        np.testing.assert_allclose(o, e, rtol=tol, atol=tol)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_every_memory_layout_accumulates(layout):
    """∂L/∂W += xᵀ·∂L/∂z adds to what is there for every input layout, never overwrites."""
    model = nn.Sequential(nn.Dense(5, 3, activation="sigmoid"), seed=1, dtype=np.float32)
    X = np.ascontiguousarray(data((6, 5), 14), dtype=np.float32)
    X = {"C": X, "F": np.asfortranarray(X), "strided": np.repeat(X, 2, axis=1)[:, ::2]}[layout]
    g = data((6, 3), 15).astype(np.float32)
    model.forward(X)
    model.backward(g)
    once = model.theta_grad.copy()
    assert np.all(once != 0)
    model.forward(X)
    model.backward(g)
    np.testing.assert_allclose(model.theta_grad, 2 * once, rtol=1e-6)


def test_non_contiguous_grad_out_into_identity_layer():
    """With σ = identity, ∂L/∂z is the caller's ∂L/∂a itself, whatever its layout."""
    model = nn.Sequential(nn.Dense(4, 3), seed=2, dtype=np.float64)
    x = data((5, 4), 9)
    g = data((3, 5), 10).T  # F-ordered view
    expected = _grads(model, x, np.ascontiguousarray(g))
    got = _grads(model, x, g)
    for e, o in zip(expected, got, strict=True):
        np.testing.assert_allclose(o, e, rtol=1e-13)
    layer = model.layers[0]
    np.testing.assert_allclose(layer.W.grad, x.T @ g, rtol=1e-13)


def _grads(model, x, g):
    model.zero_grad()
    model.forward(x)
    dx = model.backward(g)
    return [model.theta_grad.copy(), dx.copy()]


@pytest.mark.parametrize("name", NAMES)
def test_fused_and_standalone_activation_agree(name):
    """Dense(n, m, activation=σ) is the same function as Dense(n, m) followed by σ()."""
    fused = nn.Sequential(nn.Dense(4, 3, activation=name), seed=4, dtype=np.float64)
    split = nn.Sequential(nn.Dense(4, 3), nn.ACTIVATIONS[name](), seed=4, dtype=np.float64)
    fused.theta[...] = np.random.default_rng(5).normal(size=fused.n_parameters)
    split.theta[...] = fused.theta
    x, g = data((6, 4), 11), data((6, 3), 12)
    np.testing.assert_allclose(fused.forward(x), split.forward(x), rtol=1e-14)
    np.testing.assert_allclose(fused.backward(g), split.backward(g), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fused.theta_grad, split.theta_grad, rtol=1e-12, atol=1e-15)


def test_activation_instance_is_copied_per_layer():
    shared = nn.GELU()
    first, second = nn.Dense(3, 4, activation=shared), nn.Dense(4, 2, activation=shared)
    assert isinstance(first.activation, nn.GELU)
    assert first.activation is not second.activation
    assert first.activation is not shared
    slope = nn.Dense(2, 2, activation=nn.LeakyReLU(0.25)).activation
    assert isinstance(slope, nn.LeakyReLU) and slope.negative_slope == 0.25


def test_without_bias():
    model = nn.Sequential(nn.Dense(3, 2, activation="tanh", bias=False), seed=0, dtype=np.float64)
    layer = model.layers[0]
    assert layer.b is None and layer.parameters() == [layer.W]
    assert model.n_parameters == 6
    x = data((4, 3), 13)
    np.testing.assert_allclose(model.forward(x), np.tanh(x @ layer.W.data), rtol=1e-14)
    assert repr(layer) == "Dense(3 -> 2, activation=tanh, bias=False)"


def test_parameters_are_W_then_b_with_documented_shapes():
    layer = nn.Dense(5, 7)
    W, b = layer.parameters()
    assert W is layer.W and b is layer.b
    assert (W.name, W.shape, b.name, b.shape) == ("W", (5, 7), "b", (7,))
    assert W.grad.shape == W.shape and b.grad.shape == b.shape
    assert layer.n_in == 5 and layer.n_out == 7
    assert layer.output_features(5) == 7
    out = nn.Sequential(layer, seed=0).forward(np.ones((3, 5)))
    assert out.shape == (3, 7)


# -- repr -------------------------------------------------------------------------------------


def test_repr():
    assert repr(nn.Dense(784, 256, activation="relu")) == "Dense(784 -> 256, activation=relu)"
    assert repr(nn.Dense(3, 2)) == "Dense(3 -> 2, activation=identity)"
    assert repr(nn.Dense(3, 2, activation=nn.Softmax())) == "Dense(3 -> 2, activation=softmax)"
    leaky = repr(nn.Dense(3, 2, activation=nn.LeakyReLU(0.2)))
    assert leaky == "Dense(3 -> 2, activation=leaky_relu, negative_slope=0.2)"


# -- initializers -----------------------------------------------------------------------------


def _moments(W):
    w = W.astype(np.float64).ravel()
    var = w.var()
    return w.mean(), var, np.mean((w - w.mean()) ** 4) / var**2


def _check_distribution(W, kind, n_in, n_out):
    """Variance within 3 %, zero mean, and the shape (uniform bounded, normal not)."""
    mean, var, kurtosis = _moments(W)
    expected_var = {"he": 2 / n_in, "glorot": 2 / (n_in + n_out)}[kind.split("_")[0]]
    assert abs(var / expected_var - 1) < 0.03, (var, expected_var)
    assert abs(mean) < 5 * math.sqrt(expected_var / W.size)
    if kind.endswith("uniform"):
        limit = math.sqrt(3 * expected_var)
        assert np.abs(W).max() <= limit * (1 + 1e-6)
        assert np.abs(W).max() > 0.999 * limit
        assert abs(kurtosis - 1.8) < 0.1
    else:
        assert abs(kurtosis - 3.0) < 0.15


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_default_initializer_depends_on_activation(name, dtype):
    n_in, n_out = 400, 600
    model = nn.Sequential(nn.Dense(n_in, n_out, activation=name), seed=0, dtype=dtype)
    layer = model.layers[0]
    assert layer.W.data.dtype == dtype
    _check_distribution(layer.W.data, "he_normal" if name in HE else "glorot_uniform", n_in, n_out)
    assert np.all(layer.b.data == 0)


@pytest.mark.parametrize(
    "init", ["he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "he", "glorot"]
)
@pytest.mark.parametrize("name", ["sigmoid", "relu"])
def test_init_override(init, name):
    kind = {"he": "he_normal", "glorot": "glorot_uniform"}.get(init, init)
    model = nn.Sequential(nn.Dense(500, 300, activation=name, init=init), seed=1)
    _check_distribution(model.layers[0].W.data, kind, 500, 300)
    assert np.all(model.layers[0].b.data == 0)


def test_standalone_dense_is_initialised():
    layer = nn.Dense(400, 500, activation="relu")
    _check_distribution(layer.W.data, "he_normal", 400, 500)
    assert np.all(layer.b.data == 0)


def test_reset_parameters_draws_from_the_given_generator():
    model = nn.Sequential(nn.Dense(6, 5, activation="tanh"), seed=0)
    layer = model.layers[0]
    layer.b.data[...] = 3.0
    layer.reset_parameters(np.random.default_rng(42))
    first = model.theta.copy()
    assert np.all(layer.b.data == 0)
    layer.reset_parameters(np.random.default_rng(42))
    np.testing.assert_array_equal(model.theta, first)
    layer.reset_parameters(np.random.default_rng(43))
    assert not np.array_equal(model.theta, first)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arg", ["n_in", "n_out"])
@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_sizes_are_value_errors(arg, value):
    kwargs = {"n_in": 3, "n_out": 2, arg: value}
    with pytest.raises(ValueError, match=rf"`{arg}`.*positive integer.*{arg}={value}"):
        nn.Dense(**kwargs)


@pytest.mark.parametrize("arg", ["n_in", "n_out"])
@pytest.mark.parametrize("value", [2.5, 3.0, "3", None, True])
def test_non_integer_sizes_are_type_errors(arg, value):
    kwargs = {"n_in": 3, "n_out": 2, arg: value}
    with pytest.raises(TypeError, match=rf"`{arg}`.*integer.*{arg}={value!r}"):
        nn.Dense(**kwargs)


def test_numpy_integer_sizes_are_accepted():
    layer = nn.Dense(np.int64(3), np.int32(2))
    assert layer.W.shape == (3, 2) and type(layer.n_in) is int


def test_unknown_init_lists_valid_names():
    with pytest.raises(ValueError, match="init") as info:
        nn.Dense(3, 2, init="xavier")
    for name in ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform"]:
        assert name in str(info.value)
    assert "'xavier'" in str(info.value)


def test_bias_must_be_bool():
    with pytest.raises(TypeError, match="bias"):
        nn.Dense(3, 2, bias=0)


def test_wrong_number_of_input_features():
    with pytest.raises(ValueError, match=r"Dense\(4 -> 2.*expects 4 input features.*3"):
        nn.Dense(4, 2).output_features(3)


def test_grad_is_zero_writes_the_gradients_that_adding_to_zeros_gives():
    _, layer = dense64(3, 2, "tanh")
    x, g = data((4, 3), 5), data((4, 2), 6)
    layer.forward(x)
    layer.backward(g)  # adds into the zeros the gradients start with
    expected_W, expected_b = layer.W.grad.copy(), layer.b.grad.copy()
    layer.W.grad[...], layer.b.grad[...] = 7.0, 7.0  # stale: the hint says "overwrite"
    layer.grad_is_zero = True
    layer.backward(g)
    np.testing.assert_allclose(layer.W.grad, expected_W, rtol=1e-14)
    np.testing.assert_allclose(layer.b.grad, expected_b, rtol=1e-14)
