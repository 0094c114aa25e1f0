"""Back-propagation against finite differences for every activation, and nn.gradcheck itself.

Every model is checked by ``nn.gradcheck`` (central differences in float64, every entry of θ
and of the input) with a random linear loss L = Σ r ⊙ out, which weighs every output
direction. One mixed model is also checked by finite differences written here, and layers with
deliberately wrong backward passes show that the checker fails when it should.
"""

from __future__ import annotations

import numpy as np
import pytest

import nn

NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "softmax"]
INSTANCES = {  # non-default parameters where an activation has one
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(negative_slope=0.2),
    "elu": lambda: nn.ELU(alpha=0.7),
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "softmax": nn.Softmax,
}
SHAPES = {  # (batch, layer widths, seed); the seed keeps a batch of 1 off dead ReLUs
    "b1-single": (1, (3, 4), 0),
    "b1-deep": (1, (2, 5, 3, 2), 3),
    "b5-two": (5, (3, 6, 4), 0),
    "b4-three": (4, (4, 3, 5, 2), 0),
    "b3-narrow": (3, (1, 2, 3, 2), 2),
}


def build(name: str, form: str, widths, seed=0, dtype=np.float64) -> nn.Sequential:
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    if form == "name":
        layers = [nn.Dense(i, o, activation=name) for i, o in pairs]
    elif form == "instance":
        shared = INSTANCES[name]()  # one instance for every layer: each Dense must copy it
        layers = [nn.Dense(i, o, activation=shared) for i, o in pairs]
    else:
        layers = [layer for i, o in pairs for layer in (nn.Dense(i, o), INSTANCES[name]())]
    model = nn.Sequential(*layers, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1000)
    for p in model.parameters():
        if p.name == "b":  # nonzero biases, so their gradients are really exercised
            p.data[...] = rng.normal(scale=0.3, size=p.shape)
    return model


def inputs(batch, n, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, n))


# -- every activation, fused and stand-alone, several shapes ---------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("form", ["name", "instance", "standalone"])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name, form, shape, assert_gradcheck):
    batch, widths, seed = SHAPES[shape]
    model = build(name, form, widths, seed=seed)
    assert_gradcheck(model, inputs(batch, widths[0], seed=seed), where=f"{name}/{form}/{shape}")


@pytest.mark.parametrize("name", NAMES)
def test_float32_models_are_checked_in_float64(name, assert_gradcheck):
    model = build(name, "name", (4, 5, 3), seed=2, dtype=np.float32)
    report = assert_gradcheck(model, inputs(3, 4, seed=2).astype(np.float32), where=f"{name}/f32")
    assert [row.name for row in report.rows] == ["0.W", "0.b", "1.W", "1.b", "input"]


def _random_biases(model: nn.Sequential, seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        if p.name == "b":
            p.data[...] = rng.normal(scale=0.3, size=p.shape)
    return model


def mixed_smooth() -> nn.Sequential:
    """Smooth activations fused and stand-alone, with non-default ELU/LeakyReLU parameters."""
    model = nn.Sequential(
        nn.Dense(3, 5, activation="sigmoid"),
        nn.Tanh(),
        nn.Dense(5, 4, activation="gelu"),
        nn.Softplus(),
        nn.Dense(4, 4, activation=nn.ELU(alpha=1.3)),
        nn.LeakyReLU(0.1),
        nn.Dense(4, 3),
        seed=1,
        dtype=np.float64,
    )
    return _random_biases(model, 2)


def mixed_kinked() -> nn.Sequential:
    """The other half: ReLU family, a bias-free layer, Identity and a softmax output."""
    model = nn.Sequential(
        nn.Dense(3, 5, activation="tanh"),
        nn.ReLU(),
        nn.Dense(5, 4, activation="leaky_relu"),
        nn.GELU(),
        nn.Dense(4, 4, bias=False),
        nn.Identity(),
        nn.Dense(4, 3, activation="elu"),
        nn.Sigmoid(),
        nn.Dense(3, 3, activation="softmax"),
        seed=1,
        dtype=np.float64,
    )
    return _random_biases(model, 2)


@pytest.mark.parametrize("make", [mixed_smooth, mixed_kinked])
def test_mixed_deep_stacks(make, assert_gradcheck):
    assert_gradcheck(make(), inputs(4, 3, seed=21), where=make.__name__)


def test_dense_without_bias(assert_gradcheck):
    model = nn.Sequential(
        nn.Dense(3, 4, activation="tanh", bias=False), nn.Dense(4, 2, bias=False), seed=3
    )
    report = assert_gradcheck(model, inputs(5, 3, seed=3), where="no bias")
    assert [row.name for row in report.rows] == ["0.W", "1.W", "input"]


# -- an independent finite difference, written here ------------------------------------------


def finite_differences(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(v + eps) − f(v − eps)) / 2eps of f() w.r.t. each entry of array."""
    grad = np.empty_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = f()
        array[index] = saved - eps
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b)))


@pytest.mark.parametrize(
    "make",
    [
        mixed_smooth,
        mixed_kinked,
        lambda: build("softmax", "standalone", (3, 4, 3)),
        lambda: build("relu", "name", (2, 6, 3)),
    ],
    ids=["mixed-smooth", "mixed-kinked", "softmax-standalone", "relu"],
)
def test_backprop_matches_finite_differences_computed_here(make, half_sse, linear_loss, ref):
    """Checks the engine and, through the same model, nn.gradcheck itself."""
    model = make()
    X = inputs(3, model.n_features, seed=21)
    _, closest_kink = ref.forward(model, X)
    assert closest_kink > 1e-4
    target = np.random.default_rng(22).normal(size=model.forward(X).shape)

    def loss_value() -> float:
        return half_sse.forward(model.forward(X), target)

    model.zero_grad()
    loss_value()
    grad_X = model.backward(half_sse.backward()).copy()
    grad_theta = model.theta_grad.copy()

    numeric_theta = finite_differences(loss_value, model.theta)
    numeric_X = finite_differences(loss_value, X)
    assert relative_error(grad_theta, numeric_theta) < 1e-7
    assert relative_error(grad_X, numeric_X) < 1e-7
    np.testing.assert_allclose(grad_theta, numeric_theta, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(grad_X, numeric_X, rtol=1e-5, atol=1e-9)
    # every parameter array, one by one, through its view
    offset = 0
    for p in model.parameters():
        part = numeric_theta[offset : offset + p.size].reshape(p.shape)
        np.testing.assert_allclose(p.grad, part, rtol=1e-5, atol=1e-9)
        offset += p.size

    report = nn.gradcheck(model, half_sse, X, target)
    assert report.passed and report.max_rel_error < 1e-6, str(report)


# -- the checker fails when the gradient is wrong --------------------------------------------


class DoubledWeightGrad(nn.Dense):
    """Adds ∂L/∂W twice: the analytic gradient of W is 2n, so ‖a − n‖/‖a‖ = ½ exactly."""

    def backward(self, grad_out):
        before = self.W.grad.copy()
        grad_in = super().backward(grad_out)
        self.W.grad += self.W.grad - before
        return grad_in


class ForgetsBiasGrad(nn.Dense):
    """Never accumulates ∂L/∂b: relative error 1."""

    def backward(self, grad_out):
        before = self.b.grad.copy()
        grad_in = super().backward(grad_out)
        self.b.grad[...] = before
        return grad_in


class FlipsInputGrad(nn.Dense):
    """Returns −∂L/∂x: relative error ‖2n‖/‖n‖ = 2 for everything upstream."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        return None if grad_in is None else -grad_in


class SlightlyOffWeightGrad(nn.Dense):
    """∂L/∂W off by 0.1 %: a small error the checker must still see."""

    def backward(self, grad_out):
        before = self.W.grad.copy()
        grad_in = super().backward(grad_out)
        self.W.grad += 1e-3 * (self.W.grad - before)
        return grad_in


class OneEntryOff(nn.Dense):
    """∂L/∂W right except for one entry, off by 0.01: every entry must be checked."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        self.W.grad[1, 0] += 0.01
        return grad_in


class SigmoidWithoutOneMinusA(nn.Sigmoid):
    """σ'(z) taken as a instead of a(1 − a)."""

    def chain(self, z, a, grad_a, out):
        np.multiply(a, grad_a, out=out)
        return out


def check_with(layers, linear_loss, seed=0, check_input=True):
    model = nn.Sequential(*layers, seed=seed, dtype=np.float64)
    X = inputs(4, model.n_features, seed=seed)
    r = np.random.default_rng(seed + 1).normal(size=model.forward(X).shape)
    report = nn.gradcheck(model, linear_loss, X, r, check_input=check_input)
    return {row.name: row for row in report.rows}, report


def test_correct_model_passes(linear_loss):
    rows, report = check_with([nn.Dense(3, 4, "tanh"), nn.Dense(4, 2)], linear_loss)
    assert report.passed and bool(report)
    assert all(row.passed for row in rows.values())
    assert report.max_rel_error < 1e-6


def test_doubled_weight_gradient_fails_with_relative_error_one_half(linear_loss):
    rows, report = check_with([nn.Dense(3, 4, "tanh"), DoubledWeightGrad(4, 2)], linear_loss)
    assert not report.passed and not bool(report)
    assert not rows["1.W"].passed
    assert rows["1.W"].rel_error == pytest.approx(0.5, rel=1e-6)
    for name in ("0.W", "0.b", "1.b", "input"):  # the rest is right and said to be right
        assert rows[name].passed and rows[name].rel_error < 1e-6
    assert report.max_rel_error == pytest.approx(0.5, rel=1e-6)


def test_missing_bias_gradient_fails(linear_loss):
    rows, report = check_with([ForgetsBiasGrad(3, 4, "sigmoid"), nn.Dense(4, 2)], linear_loss)
    assert not report.passed
    assert not rows["0.b"].passed and rows["0.b"].rel_error == pytest.approx(1.0)
    assert rows["0.W"].passed and rows["1.W"].passed and rows["input"].passed


def test_wrong_input_gradient_fails_upstream(linear_loss):
    rows, report = check_with(
        [nn.Dense(3, 4, "elu"), nn.Dense(4, 5, "gelu"), FlipsInputGrad(5, 2)], linear_loss
    )
    assert not report.passed
    for name in ("0.W", "0.b", "1.W", "1.b", "input"):
        assert not rows[name].passed
        assert rows[name].rel_error == pytest.approx(2.0, rel=1e-6)
    assert rows["2.W"].passed and rows["2.b"].passed


def test_wrong_input_gradient_of_first_layer_fails_in_the_input_row(linear_loss):
    rows, report = check_with([FlipsInputGrad(3, 2, "tanh")], linear_loss)
    assert not report.passed
    assert not rows["input"].passed
    assert rows["0.W"].passed and rows["0.b"].passed
    rows, report = check_with([FlipsInputGrad(3, 2, "tanh")], linear_loss, check_input=False)
    assert "input" not in rows and report.passed  # nothing checked there, nothing failed


def test_small_gradient_error_is_caught(linear_loss):
    rows, report = check_with([nn.Dense(3, 4, "relu"), SlightlyOffWeightGrad(4, 3)], linear_loss)
    assert not report.passed and not rows["1.W"].passed
    assert rows["1.W"].rel_error == pytest.approx(1e-3 / 1.001, rel=1e-3)


def test_a_single_wrong_entry_fails(linear_loss):
    rows, report = check_with([nn.Dense(3, 4, "softplus"), OneEntryOff(4, 3)], linear_loss)
    assert not report.passed and not rows["1.W"].passed
    assert rows["1.W"].max_abs_error == pytest.approx(0.01, rel=1e-6)
    assert rows["1.b"].passed and rows["0.W"].passed


def test_wrong_activation_derivative_fails(linear_loss):
    rows, report = check_with(
        [nn.Dense(3, 4), SigmoidWithoutOneMinusA(), nn.Dense(4, 2)], linear_loss
    )
    assert not report.passed
    assert not rows["0.W"].passed and not rows["input"].passed
    assert rows["2.W"].passed and rows["2.b"].passed


# -- the report -------------------------------------------------------------------------------


def test_report_is_readable(linear_loss):
    _, good = check_with([nn.Dense(3, 4, "tanh"), nn.ReLU(), nn.Dense(4, 2)], linear_loss)
    text = str(good)
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck PASSED") and "rtol=1e-05" in lines[0]
    assert len(lines) == 1 + len(good.rows) == 6
    for line, name in zip(lines[1:], ["0.W", "0.b", "2.W", "2.b", "input"], strict=True):
        assert line.split()[0] == name and line.rstrip().endswith("ok")
        assert "rel" in line and "max abs" in line

    _, bad = check_with([nn.Dense(3, 4, "tanh"), DoubledWeightGrad(4, 2)], linear_loss)
    text = str(bad)
    assert text.startswith("gradcheck FAILED")
    failing = [line for line in text.splitlines() if line.rstrip().endswith("FAIL")]
    assert len(failing) == 1 and failing[0].split()[0] == "1.W"
    assert "5.00e-01" in failing[0]


def test_tolerances_are_passed_through(linear_loss):
    model = nn.Sequential(nn.Dense(3, 4, "tanh"), SlightlyOffWeightGrad(4, 2), seed=0)
    X = inputs(4, 3)
    r = np.random.default_rng(1).normal(size=(4, 2))
    assert not nn.gradcheck(model, linear_loss, X, r).passed
    loose = nn.gradcheck(model, linear_loss, X, r, rtol=1e-2)
    assert loose.passed and loose.rtol == 1e-2
    assert "rtol=0.01" in str(loose)


def test_gradcheck_leaves_the_model_and_data_alone(linear_loss):
    model = nn.Sequential(nn.Dense(3, 4, "gelu"), nn.Dense(4, 2), seed=0, dtype=np.float32)
    X = inputs(5, 3).astype(np.float32)
    r = np.random.default_rng(1).normal(size=(5, 2))
    theta, X_before, r_before = model.theta.copy(), X.copy(), r.copy()
    model.theta_grad[...] = 7.0  # a gradient the caller is accumulating
    report = nn.gradcheck(model, linear_loss, X, r)
    assert report.passed
    assert model.dtype == np.float32 and model.theta.dtype == np.float32
    np.testing.assert_array_equal(model.theta, theta)
    assert np.all(model.theta_grad == 7.0)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(r, r_before)


def test_report_without_rows_is_still_readable(linear_loss):
    model = nn.Sequential(nn.Tanh(), seed=0)
    X = inputs(2, 3)
    report = nn.gradcheck(model, linear_loss, X, np.ones((2, 3)), check_input=False)
    assert report.passed and report.max_rel_error == 0.0
    assert str(report).startswith("gradcheck PASSED")
