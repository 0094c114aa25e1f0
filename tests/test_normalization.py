"""BatchNorm1d and LayerNorm against independent truths.

* the forward formulas written out in float64 numpy here,
* central finite differences (``nn.gradcheck``) inside Sequential stacks,
* the documented running-statistics update rule, computed step by step in the test,
* PyTorch's modules (when torch is installed),
* model files: a save/load round trip gives bitwise-equal predictions.
"""

from __future__ import annotations

import numpy as np
import pytest

import nn
from nn.normalization import BatchNorm1d, LayerNorm

GRADCHECK_TOL = 1e-6


class WeightedSum:
    """L = Σ r ⊙ pred for fixed weights r (the target): ∂L/∂pred = r in every direction."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self._grad = np.asarray(target, dtype=pred.dtype)
        return float(np.sum(np.asarray(target, dtype=np.float64) * pred))

    def backward(self) -> np.ndarray:
        return self._grad.copy()


def normal(shape, seed, scale=1.0, loc=0.0):
    return np.random.default_rng(seed).normal(loc, scale, size=shape)


def batchnorm_reference(x, gamma, beta, mean, var, eps):
    """γ (x − μ) / √(σ² + ε) + β in float64."""
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def layernorm_reference(x, gamma, beta, eps):
    """Per row: γ (x − μᵢ) / √(σᵢ² + ε) + β with the biased variance, in float64."""
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def randomize_affine(layer, seed):
    """Non-trivial γ and β, in place (they are views into θ inside a Sequential)."""
    n = layer.n_features
    layer.gamma.data[...] = normal(n, seed, 0.5, 1.0)
    layer.beta.data[...] = normal(n, seed + 1, 0.5)


def check_gradients(model, X, seed):
    """nn.gradcheck with L = Σ r ⊙ out; returns the report after asserting rel error ≤ 1e-6."""
    model64 = model.copy(np.float64)
    r = normal(model64.forward(np.asarray(X, dtype=np.float64)).shape, seed)
    report = nn.gradcheck(model, WeightedSum(), X, r)
    assert report.passed, str(report)
    assert report.max_rel_error <= GRADCHECK_TOL, str(report)
    # a check of vanishing gradients proves nothing
    for row in report.rows:
        assert row.max_abs_error < 1e-6, str(report)
    model64.zero_grad()
    loss = WeightedSum()
    loss.forward(model64.forward(np.asarray(X, dtype=np.float64)), r)
    grad_x = model64.backward(loss.backward())
    for index, layer in enumerate(model64.layers):
        for p in layer.parameters():
            assert np.any(p.grad != 0), f"the gradient of {index}.{p.name} is zero"
    assert np.any(grad_x != 0)
    return report


# -- gradient checks -------------------------------------------------------------------------------


def min_abs_pre_relu(model, X):
    """The smallest |input| the ReLU of a Dense→BatchNorm1d→ReLU→Dense stack sees."""
    model64 = model.copy(np.float64)
    h = X @ model64.layers[0].W.data
    return float(np.abs(model64.layers[1].forward(h)).min())


# With two samples x̂ = ±√(d²/(d² + ε)), almost constant: ∂L/∂x is O(ε) and only a larger ε
# lifts it above the finite-difference noise.
@pytest.mark.parametrize("batch, eps", [(2, 0.5), (3, 1e-5), (8, 1e-5), (8, 0.1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_gradcheck_in_training_mode(batch, eps, dtype):
    """Dense→BatchNorm1d→ReLU→Dense: every ∂L/∂θ and ∂L/∂x within 1e-6 of finite differences."""
    model = nn.Sequential(
        nn.Dense(4, 6, bias=False),  # a bias before batch norm has a zero gradient (below)
        BatchNorm1d(6, eps=eps),
        nn.ReLU(),
        nn.Dense(6, 3),
        seed=batch,
        dtype=dtype,
    )
    randomize_affine(model.layers[1], seed=10 + batch)
    X = normal((batch, 4), 20 + batch, 2.0, 1.0)
    assert model.training
    assert min_abs_pre_relu(model, X) > 1e-3, "the check would straddle ReLU's kink"
    check_gradients(model, X, seed=batch)


@pytest.mark.parametrize("batch", [1, 2, 9])
@pytest.mark.parametrize("n, eps", [(1, 1e-5), (2, 0.5), (3, 1e-5), (7, 1e-5), (7, 0.1)])
def test_layernorm_gradcheck(batch, n, eps):
    """Dense→LayerNorm→Tanh→Dense, including one feature (x̂ = 0) and one sample.

    With two features x̂ = ±√(d²/(d² + ε)) is almost constant, so (as for BatchNorm1d with two
    samples) only a larger ε lifts ∂L/∂x above the finite-difference noise.
    """
    model = nn.Sequential(
        nn.Dense(3, n), LayerNorm(n, eps=eps), nn.Tanh(), nn.Dense(n, 2), seed=n, dtype=np.float64
    )
    randomize_affine(model.layers[1], seed=n)
    X = normal((batch, 3), batch * 10 + n, 1.5)
    if n == 1:
        # with one feature x̂ ≡ 0: ∂L/∂γ, the Dense before and the input get no gradient
        report = nn.gradcheck(model, WeightedSum(), X, normal((batch, 2), 1))
        assert report.passed, str(report)
        return
    check_gradients(model, X, seed=n)


def test_batchnorm_gradcheck_in_eval_mode_with_running_statistics():
    model = nn.Sequential(
        nn.Dense(3, 5),
        BatchNorm1d(5, momentum=0.5),
        nn.Tanh(),
        nn.Dense(5, 2),
        seed=0,
        dtype=np.float64,
    )
    for step in range(3):  # non-trivial running statistics
        model.forward(normal((6, 3), step, 2.0, 1.0))
    bn = model.layers[1]
    assert not np.allclose(bn.running_mean, 0) and not np.allclose(bn.running_var, 1)
    randomize_affine(bn, seed=3)
    model.eval()
    check_gradients(model, normal((4, 3), 9), seed=4)


def test_a_bias_before_batchnorm_gets_zero_gradient():
    """Batch norm subtracts the batch mean, so a per-feature shift cannot change the output."""
    model = nn.Sequential(
        nn.Dense(3, 4), BatchNorm1d(4), nn.Tanh(), nn.Dense(4, 2), seed=1, dtype=np.float64
    )
    X = normal((5, 3), 2)
    loss = WeightedSum()
    loss.forward(model.forward(X), normal((5, 2), 3))
    model.backward(loss.backward())
    b_grad = model.layers[0].b.grad
    assert np.abs(b_grad).max() <= 1e-14 * np.abs(model.layers[0].W.grad).max()


def test_layernorm_the_same_in_train_and_eval_mode():
    layer = LayerNorm(5)
    randomize_affine(layer, 1)
    x = normal((4, 5), 2, 3.0, 1.0).astype(np.float32)
    train_out = layer.forward(x).copy()
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), train_out)


# -- forward against the formulas --------------------------------------------------------------


def test_batchnorm_training_forward_normalises_with_batch_statistics():
    model = nn.Sequential(BatchNorm1d(4, eps=1e-3), seed=0, dtype=np.float64)
    bn = model.layers[0]
    randomize_affine(bn, 5)
    x = normal((10, 4), 6, 3.0, -2.0)
    out = model.forward(x)
    expected = batchnorm_reference(
        x, bn.gamma.data, bn.beta.data, x.mean(axis=0), x.var(axis=0), 1e-3
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_layernorm_forward_normalises_each_row():
    model = nn.Sequential(LayerNorm(6, eps=1e-2), seed=0, dtype=np.float64)
    ln = model.layers[0]
    randomize_affine(ln, 7)
    x = normal((5, 6), 8, 4.0, 3.0)
    expected = layernorm_reference(x, ln.gamma.data, ln.beta.data, 1e-2)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.35, 1.0, 0.0])
def test_running_statistics_follow_the_update_rule(momentum):
    """running ← (1 − m)·running + m·stat, with the unbiased variance, batch after batch."""
    model = nn.Sequential(BatchNorm1d(3, momentum=momentum), seed=0, dtype=np.float64)
    bn = model.layers[0]
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step, batch in enumerate([5, 2, 17, 8]):
        x = normal((batch, 3), step, 1.0 + step, step - 1.0)
        model.forward(x)
        running_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=0)
        running_var = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)
        np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-13, atol=1e-15)

    # evaluation mode uses, and does not change, the running statistics
    model.eval()
    randomize_affine(bn, 3)
    x = normal((4, 3), 11)
    out = model.forward(x)
    expected = batchnorm_reference(
        x, bn.gamma.data, bn.beta.data, running_mean, running_var, bn.eps
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-13, atol=1e-15)
    # batch size 1 is fine in evaluation mode
    np.testing.assert_allclose(model.forward(x[:1]), expected[:1], rtol=1e-12, atol=1e-12)


def test_backward_accumulates_and_can_skip_the_input_gradient():
    for layer in (BatchNorm1d(3), LayerNorm(3)):
        model = nn.Sequential(layer, seed=0, dtype=np.float64)
        randomize_affine(layer, 1)
        x, g = normal((4, 3), 2), normal((4, 3), 3)
        x_before, g_before = x.copy(), g.copy()
        model.forward(x)
        dx = layer.backward(g).copy()
        once = model.theta_grad.copy()
        layer.needs_input_grad = False
        assert layer.backward(g) is None
        layer.needs_input_grad = True
        np.testing.assert_allclose(model.theta_grad, 2 * once, rtol=1e-15)
        np.testing.assert_allclose(layer.backward(g), dx, rtol=1e-15)
        np.testing.assert_array_equal(x, x_before)  # the caller's arrays are left alone
        np.testing.assert_array_equal(g, g_before)


def test_batchnorm_backward_uses_the_mode_of_its_forward():
    """Backward follows the statistics forward used, even if the mode changed in between."""
    model = nn.Sequential(nn.Dense(2, 3), BatchNorm1d(3), seed=0, dtype=np.float64)
    model.forward(normal((5, 2), 0))
    x, g = normal((5, 2), 1), normal((5, 3), 2)
    model.eval()
    model.forward(x)
    model.train()
    bn = model.layers[1]
    h = model.layers[0].forward(x)
    bn.eval()
    bn.forward(h)
    bn.train()
    dx = bn.backward(g)
    scale = bn.gamma.data / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(dx, g * scale, rtol=1e-13)


# -- dtype, buffers, config ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [BatchNorm1d, LayerNorm])
def test_float32_model_stays_float32(cls):
    model = nn.Sequential(nn.Dense(3, 4), cls(4), nn.Dense(4, 2), seed=0)
    layer = model.layers[1]
    out = model.forward(normal((6, 3), 0))  # float64 input, cast by the model
    assert out.dtype == np.float32
    assert layer.forward(model.layers[0].forward(np.ones((6, 3), np.float32))).dtype == np.float32
    grad = model.backward(np.ones((6, 2), np.float32))
    assert grad.dtype == np.float32
    for array in [p.data for p in layer.parameters()] + [p.grad for p in layer.parameters()]:
        assert array.dtype == np.float32
    for array in layer.buffers().values():
        assert array.dtype == np.float32
    model64 = model.copy(np.float64)
    for array in model64.layers[1].buffers().values():
        assert array.dtype == np.float64


@pytest.mark.parametrize(
    "layer, params, buffers",
    [
        (
            BatchNorm1d(5),
            {"gamma": (5,), "beta": (5,)},
            {"running_mean": (5,), "running_var": (5,)},
        ),
        (LayerNorm(7, eps=1e-3), {"gamma": (7,), "beta": (7,)}, {}),
    ],
)
def test_config_and_state_shapes_match_the_layer(layer, params, buffers):
    assert layer.state_shapes(layer.config()) == (params, buffers)
    assert [p.name for p in layer.parameters()] == ["gamma", "beta"]
    assert {p.name: p.shape for p in layer.parameters()} == params
    assert {k: v.shape for k, v in layer.buffers().items()} == buffers
    for name, array in layer.buffers().items():
        assert getattr(layer, name) is array
    rebuilt = type(layer)(**layer.config())
    assert rebuilt.config() == layer.config()
    assert layer.n_features_in == layer.n_features
    np.testing.assert_array_equal(layer.gamma.data, 1)
    np.testing.assert_array_equal(layer.beta.data, 0)


def test_initial_values_and_reset():
    bn = BatchNorm1d(3)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    bn.forward(normal((4, 3), 0, 2.0, 5.0))
    bn.gamma.data[...] = 3
    bn.reset_parameters(np.random.default_rng(0))
    np.testing.assert_array_equal(bn.gamma.data, 1)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)


def test_repr():
    assert repr(BatchNorm1d(64)) == "BatchNorm1d(64, momentum=0.1, eps=1e-05)"
    assert repr(LayerNorm(8, eps=1e-6)) == "LayerNorm(8, eps=1e-06)"
    assert "BatchNorm1d(4" in repr(nn.Sequential(nn.Dense(2, 4), BatchNorm1d(4)))


# -- errors ------------------------------------------------------------------------------------


def test_batch_of_one_in_training_mode_raises_like_pytorch():
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn.forward(np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(bn.running_mean, 0)  # nothing half-updated


@pytest.mark.parametrize("cls", [BatchNorm1d, LayerNorm])
def test_constructor_validation(cls):
    with pytest.raises(ValueError, match=r"`n_features`.*positive integer.*n_features=0"):
        cls(0)
    with pytest.raises(TypeError, match=r"`n_features`.*n_features=2.5"):
        cls(2.5)
    with pytest.raises(ValueError, match=r"`eps`.*positive finite number.*eps=0"):
        cls(3, eps=0)
    with pytest.raises(ValueError, match=r"`eps`.*eps=nan"):
        cls(3, eps=float("nan"))
    with pytest.raises(TypeError, match=r"`eps`.*eps='1e-5'"):
        cls(3, eps="1e-5")


def test_momentum_validation():
    with pytest.raises(ValueError, match=r"`momentum`.*\[0, 1\].*momentum=1.5"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"`momentum`.*momentum=-0.1"):
        BatchNorm1d(3, momentum=-0.1)
    with pytest.raises(TypeError, match=r"`momentum`.*momentum=None"):
        BatchNorm1d(3, momentum=None)


@pytest.mark.parametrize("cls", [BatchNorm1d, LayerNorm])
def test_feature_mismatch_is_reported(cls):
    with pytest.raises(ValueError, match=r"expects 5 input features, but receives 4"):
        nn.Sequential(nn.Dense(3, 4), cls(5))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 5\).*\(2, 4\)"):
        cls(5).forward(np.ones((2, 4)))


def test_state_shapes_rejects_invalid_configs():
    with pytest.raises(ValueError, match="n_features"):
        BatchNorm1d.state_shapes({"n_features": -1})
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d.state_shapes({"n_features": 2, "momentum": 2})
    with pytest.raises(ValueError, match="eps"):
        LayerNorm.state_shapes({"n_features": 2, "eps": -1})


# -- model files -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_with_all_three_layers(tmp_path, dtype):
    model = nn.Sequential(
        nn.Dense(5, 8),
        BatchNorm1d(8, momentum=0.3),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Dense(8, 6),
        LayerNorm(6, eps=1e-4),
        nn.Dense(6, 3),
        seed=4,
        dtype=dtype,
    )
    for step in range(5):  # a few steps of θ ← θ − η∇θ change γ, β and the running statistics
        model.zero_grad()
        model.forward(normal((16, 5), step, 2.0, 1.0))
        model.backward(normal((16, 3), 100 + step).astype(dtype))
        model.theta -= 0.05 * model.theta_grad
    bn = model.layers[1]
    assert not np.allclose(bn.running_var, 1)

    path = tmp_path / "model.npz"
    model.save(path)
    loaded = nn.load(path)

    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in model.layers]
    assert loaded.dtype == np.dtype(dtype)
    for mine, theirs in zip(model.layers, loaded.layers, strict=True):
        for name, array in mine.buffers().items():
            restored = getattr(theirs, name)
            assert restored.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(restored, array)
    np.testing.assert_array_equal(loaded.theta, model.theta)
    X = normal((37, 5), 50)
    expected = model.predict(X)
    got = loaded.predict(X)
    assert got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()  # bitwise
    assert model.training  # predict left the model in training mode


# -- PyTorch ---------------------------------------------------------------------------------------


def _torch_module(torch, layer):
    dtype = torch.float64
    if isinstance(layer, BatchNorm1d):
        module = torch.nn.BatchNorm1d(
            layer.n_features, eps=layer.eps, momentum=layer.momentum, dtype=dtype
        )
    else:
        module = torch.nn.LayerNorm(layer.n_features, eps=layer.eps, dtype=dtype)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(layer.gamma.data, dtype=np.float64)))
        module.bias.copy_(torch.from_numpy(np.array(layer.beta.data, dtype=np.float64)))
    return module


@pytest.mark.parametrize("cls", [BatchNorm1d, LayerNorm])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_and_gradients_match_pytorch(cls, dtype):
    torch = pytest.importorskip("torch")
    model = nn.Sequential(cls(6), seed=0, dtype=dtype)
    layer = model.layers[0]
    randomize_affine(layer, 2)
    module = _torch_module(torch, layer)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    atol = 1e-12 if dtype == np.float64 else 2e-5

    for step, mode in enumerate(["train", "train", "train", "eval", "train", "eval"]):
        model.train(mode == "train")
        module.train(mode == "train")
        x = normal((9, 6), step, 1.0 + step, step - 2.0)
        g = normal((9, 6), 100 + step)
        model.zero_grad()
        out = model.forward(x.astype(dtype))
        dx = model.backward(g.astype(dtype))

        xt = torch.tensor(x, requires_grad=True)
        module.zero_grad()
        out_t = module(xt)
        out_t.backward(torch.from_numpy(g))
        np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(
            layer.gamma.grad, module.weight.grad.numpy(), rtol=rtol, atol=atol
        )
        np.testing.assert_allclose(layer.beta.grad, module.bias.grad.numpy(), rtol=rtol, atol=atol)
        if cls is BatchNorm1d:
            np.testing.assert_allclose(
                layer.running_mean, module.running_mean.numpy(), rtol=rtol, atol=atol
            )
            np.testing.assert_allclose(
                layer.running_var, module.running_var.numpy(), rtol=rtol, atol=atol
            )


def test_batch_of_one_error_matches_pytorch():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        BatchNorm1d(3).forward(np.ones((1, 3)))


@pytest.mark.parametrize("layer_type", [BatchNorm1d, LayerNorm])
def test_stand_alone_backward_takes_a_float64_gradient_into_a_float32_layer(layer_type):
    """As Dense and the activations do: the gradient is cast to the layer's dtype."""
    rng = np.random.default_rng(0)
    layer = layer_type(3)
    layer.forward(rng.normal(size=(4, 3)).astype(np.float32))
    grad = rng.normal(size=(4, 3))
    from_float64 = layer.backward(grad).copy()
    gamma_grad = layer.gamma.grad.copy()
    layer.grad_is_zero = True  # stale gradients, overwritten
    from_float32 = layer.backward(grad.astype(np.float32))
    assert from_float64.dtype == np.float32
    np.testing.assert_allclose(from_float64, from_float32, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gamma_grad, layer.gamma.grad, rtol=1e-5, atol=1e-6)
    assert np.any(gamma_grad != 0)
