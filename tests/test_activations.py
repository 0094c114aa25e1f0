"""Activation values and derivatives against their closed forms, extreme inputs, names, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import expit

import nn

NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "softmax"]
ELEMENTWISE = [name for name in NAMES if name != "softmax"]
CLASSES = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "softmax": nn.Softmax,
}
TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-14}, np.float32: {"rtol": 2e-6, "atol": 1e-6}}


def random_z(shape, seed=0, scale=3.0):
    """Random pre-activations, none of them near the kink at 0."""
    z = np.random.default_rng(seed).normal(scale=scale, size=shape)
    z[np.abs(z) < 1e-3] = 0.5
    return z


@pytest.fixture
def strict_numerics():
    """Turn floating-point overflow/invalid/divide warnings into errors for the test."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        yield


# -- the registry ---------------------------------------------------------------------------


def test_registry_has_exactly_the_documented_names():
    assert sorted(nn.ACTIVATIONS) == sorted(NAMES)
    for name, cls in CLASSES.items():
        assert nn.ACTIVATIONS[name] is cls
        assert cls.name == name
        assert issubclass(cls, nn.Layer)


def test_get_activation_gives_fresh_instances():
    assert isinstance(nn.get_activation(None), nn.Identity)
    first, second = nn.get_activation("gelu"), nn.get_activation("gelu")
    assert isinstance(first, nn.GELU) and first is not second
    leaky = nn.LeakyReLU(negative_slope=0.2)
    copied = nn.get_activation(leaky)
    assert isinstance(copied, nn.LeakyReLU) and copied is not leaky
    assert copied.negative_slope == 0.2
    from_dict = nn.get_activation({"name": "elu", "alpha": 0.5})
    assert isinstance(from_dict, nn.ELU) and from_dict.alpha == 0.5


@pytest.mark.parametrize("bad", ["sigmod", "", "soft_max", "relu6"])
def test_unknown_activation_name_lists_valid_names(bad):
    with pytest.raises(ValueError, match="activation") as info:
        nn.Dense(3, 2, activation=bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in NAMES:
        assert name in message
    with pytest.raises(ValueError, match="expected one of"):
        nn.get_activation(bad)


def test_activation_config_with_unknown_argument_is_a_value_error():
    with pytest.raises(ValueError, match="elu"):
        nn.get_activation({"name": "elu", "slope": 2.0})


@pytest.mark.parametrize("bad", [3, 1.5, nn.Sigmoid, ["relu"]])
def test_activation_of_wrong_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="activation"):
        nn.Dense(3, 2, activation=bad)


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_standalone_values_match_closed_form(name, dtype, ref):
    z = random_z((7, 5), seed=1).astype(dtype)
    z_before = z.copy()
    out = CLASSES[name]().forward(z)
    assert out.shape == z.shape and out.dtype == dtype
    np.testing.assert_allclose(out, ref.act(name, z), **TOL[dtype])
    np.testing.assert_array_equal(z, z_before)  # the caller's array is left alone


@pytest.mark.parametrize("name", NAMES)
def test_fused_values_match_closed_form(name, ref):
    model = nn.Sequential(nn.Dense(4, 6, activation=name), seed=3, dtype=np.float64)
    x = random_z((5, 4), seed=2, scale=1.0)
    W, b = model.layers[0].W.data, model.layers[0].b.data
    b[...] = np.linspace(-0.5, 0.5, 6)  # a nonzero bias must show up in z
    np.testing.assert_allclose(model.forward(x), ref.act(name, x @ W + b), rtol=1e-12, atol=1e-14)


def test_known_values():
    """A few values worth knowing by heart."""
    z = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_allclose(nn.Sigmoid().forward(z), [[1 / (1 + math.e), 0.5, expit(2.0)]])
    np.testing.assert_allclose(nn.Softplus().forward(z)[0, 1], math.log(2.0))
    np.testing.assert_allclose(nn.GELU().forward(z)[0, 2], 2.0 * 0.5 * (1 + math.erf(math.sqrt(2))))
    np.testing.assert_allclose(nn.ELU().forward(z)[0, 0], math.exp(-1.0) - 1.0)
    np.testing.assert_allclose(nn.LeakyReLU().forward(z), [[-0.01, 0.0, 2.0]])
    np.testing.assert_allclose(nn.ReLU().forward(z), [[0.0, 0.0, 2.0]])
    e = np.exp([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(nn.Softmax().forward(z), [e / e.sum()])


def test_activation_parameters_are_used(ref):
    z = random_z((6, 4), seed=4)
    np.testing.assert_allclose(
        nn.LeakyReLU(negative_slope=0.2).forward(z), ref.act("leaky_relu", z, negative_slope=0.2)
    )
    np.testing.assert_allclose(nn.ELU(alpha=0.5).forward(z), ref.act("elu", z, alpha=0.5))
    fused = nn.Sequential(nn.Dense(4, 4, activation=nn.LeakyReLU(0.3)), dtype=np.float64)
    layer = fused.layers[0]
    np.testing.assert_allclose(
        fused.forward(z),
        ref.act("leaky_relu", z @ layer.W.data + layer.b.data, negative_slope=0.3),
    )


@pytest.mark.parametrize("slope", [-0.5, 0.0, 0.01, 1.0, 1.5, 3.0])
def test_leaky_relu_any_slope(slope, ref):
    """σ(z) = z for z > 0 else slope·z holds for every slope, including slopes above 1."""
    z = random_z((4, 5), seed=12)
    g = np.random.default_rng(13).normal(size=z.shape)
    layer = nn.LeakyReLU(negative_slope=slope)
    np.testing.assert_allclose(layer.forward(z), ref.act("leaky_relu", z, negative_slope=slope))
    np.testing.assert_allclose(
        layer.backward(g), ref.dact("leaky_relu", z, negative_slope=slope) * g
    )
    fused = nn.Sequential(nn.Dense(5, 3, activation=layer), seed=0, dtype=np.float64)
    W = fused.layers[0].W.data
    np.testing.assert_allclose(fused.forward(z), ref.act("leaky_relu", z @ W, negative_slope=slope))


def test_softmax_rows_are_distributions_invariant_to_shifts():
    z = random_z((6, 5), seed=5)
    s = nn.Softmax().forward(z).copy()
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-14)
    assert np.all(s > 0)
    shifted = nn.Softmax().forward(z + np.arange(6.0)[:, None] * 100)
    np.testing.assert_allclose(shifted, s, rtol=1e-12)


# -- derivatives ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_standalone_backward_is_closed_form_derivative_times_grad(name, dtype, ref):
    """∂L/∂z = σ'(z) ⊙ ∂L/∂a (5.12) with σ' from its closed form."""
    z = random_z((6, 4), seed=6).astype(dtype)
    g = np.random.default_rng(7).normal(size=z.shape).astype(dtype)
    g_before = g.copy()
    layer = CLASSES[name]()
    layer.forward(z)
    grad = layer.backward(g)
    assert grad.shape == z.shape and grad.dtype == dtype
    np.testing.assert_allclose(grad, ref.dact(name, z) * g, **TOL[dtype])
    np.testing.assert_array_equal(g, g_before)
    again = layer.backward(g)  # backward from the same cache gives the same result
    np.testing.assert_allclose(again, ref.dact(name, z) * g, **TOL[dtype])


def test_parametrised_derivatives(ref):
    z = random_z((5, 5), seed=8)
    g = np.random.default_rng(9).normal(size=z.shape)
    for layer, name, params in [
        (nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
        (nn.ELU(alpha=0.5), "elu", {"alpha": 0.5}),
        (nn.ELU(alpha=2.0), "elu", {"alpha": 2.0}),
    ]:
        layer.forward(z)
        np.testing.assert_allclose(layer.backward(g), ref.dact(name, z, **params) * g)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_backward_is_jacobian_transpose_product(dtype, ref):
    """Row by row, ∂L/∂z = Jᵀ ∂L/∂a with J = diag(s) − s sᵀ."""
    z = random_z((4, 5), seed=10).astype(dtype)
    g = np.random.default_rng(11).normal(size=z.shape).astype(dtype)
    layer = nn.Softmax()
    s = layer.forward(z).astype(np.float64)
    grad = layer.backward(g)
    assert grad.dtype == dtype
    expected = np.stack([ref.softmax_jacobian(s[i]).T @ g[i] for i in range(len(z))])
    np.testing.assert_allclose(grad, expected, **TOL[dtype])
    # and the full Jacobian of row 0, one unit vector at a time
    for j in range(z.shape[1]):
        e = np.zeros_like(g)
        e[0, j] = 1
        np.testing.assert_allclose(
            layer.backward(e)[0], ref.softmax_jacobian(s[0])[j], **TOL[dtype]
        )


# -- extreme inputs -------------------------------------------------------------------------

EXTREMES = np.array([[-1000.0, -50.0, -1.0, 0.5, 50.0, 1000.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_are_finite_exact_and_silent(name, dtype, ref, strict_numerics):
    z = EXTREMES.astype(dtype)
    layer = CLASSES[name]()
    out = layer.forward(z)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref.act(name, z), **TOL[dtype])
    grad = layer.backward(np.ones_like(z))
    assert np.all(np.isfinite(grad))
    if name != "softmax":
        np.testing.assert_allclose(grad, ref.dact(name, z), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saturating_limits(dtype, strict_numerics):
    z = np.array([[-1000.0, -50.0, 50.0, 1000.0]], dtype=dtype)
    sig = nn.Sigmoid().forward(z)
    assert sig[0, 0] == 0.0 and sig[0, 3] == 1.0
    np.testing.assert_allclose(sig[0, 1], math.exp(-50.0), rtol=1e-5)  # not flushed to 0
    sp = nn.Softplus().forward(z)
    assert sp[0, 3] == 1000.0 and sp[0, 2] == 50.0 and sp[0, 0] == 0.0
    np.testing.assert_allclose(sp[0, 1], math.exp(-50.0), rtol=1e-5)  # log1p(e^-50)
    sm = nn.Softmax().forward(z)
    np.testing.assert_allclose(sm, [[0.0, 0.0, 0.0, 1.0]], atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_of_huge_equal_logits(dtype, strict_numerics):
    z = np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [1000.0, -1000.0]], dtype=dtype)
    s = nn.Softmax().forward(z)
    np.testing.assert_allclose(s, [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    grad = nn.Softmax()
    grad.forward(z)
    assert np.all(np.isfinite(grad.backward(np.ones_like(z))))


@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_through_dense(name, strict_numerics):
    """The fused path sees huge z too: outputs and all gradients stay finite."""
    model = nn.Sequential(nn.Dense(2, 3, activation=name), seed=0, dtype=np.float32)
    layer = model.layers[0]
    layer.W.data[...] = [[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]]
    x = np.array([[1000.0, 1.0], [-1000.0, 1.0], [50.0, 0.0]], dtype=np.float32)
    out = model.forward(x)
    assert np.all(np.isfinite(out))
    grad = model.backward(np.ones_like(out))
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(model.theta_grad))


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(nn.activations.ACTIVATIONS))
def test_stand_alone_backward_takes_a_gradient_of_another_dtype(name, x_dtype):
    rng = np.random.default_rng(0)
    act = nn.activations.get_activation(name)
    act.forward(rng.normal(size=(4, 3)).astype(x_dtype))
    grad = rng.normal(size=(4, 3)).astype(x_dtype)
    same = act.backward(grad).copy()
    other = act.backward(grad.astype(np.float64 if x_dtype == np.float32 else np.float32))
    np.testing.assert_allclose(other, same, rtol=1e-5, atol=1e-6)
