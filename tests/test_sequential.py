"""Sequential: θ as one vector, gradient accumulation, dtypes, seeds, predict, copy, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import nn


def mlp(seed=0, dtype=np.float64):
    """4 → 6 (tanh) → ReLU-free stand-alone sigmoid → 5 (relu) → 3 (identity)."""
    return nn.Sequential(
        nn.Dense(4, 6, activation="tanh"),
        nn.Sigmoid(),
        nn.Dense(6, 5, activation="relu"),
        nn.Dense(5, 3),
        seed=seed,
        dtype=dtype,
    )


def data(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def randomise_biases(model, seed=1):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        if p.name == "b":
            p.data[...] = rng.normal(scale=0.5, size=p.shape)


class ModeProbe(nn.Layer):
    """A parameter-free layer that records the mode it runs in."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(self.training)
        return x

    def backward(self, grad_out):
        return grad_out


# -- θ is one vector --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_theta_is_one_contiguous_vector_with_every_parameter_a_view(dtype):
    model = mlp(dtype=dtype)
    theta, grad = model.theta, model.theta_grad
    for vec in (theta, grad):
        assert vec.ndim == 1 and vec.flags.c_contiguous and vec.dtype == dtype
    params = model.parameters()
    expected_order = [
        model.layers[0].W, model.layers[0].b, model.layers[2].W, model.layers[2].b,
        model.layers[3].W, model.layers[3].b,
    ]  # fmt: skip
    assert len(params) == len(expected_order)
    assert all(p is q for p, q in zip(params, expected_order, strict=True))
    assert model.n_parameters == theta.size == sum(p.size for p in params) == 4 * 6 + 6 + 35 + 18

    def offset(view, base):
        return (view.ctypes.data - base.ctypes.data) // base.itemsize

    start = 0
    for p in params:
        assert np.shares_memory(p.data, theta) and np.shares_memory(p.grad, grad)
        assert p.data.dtype == p.grad.dtype == dtype
        assert p.data.flags.c_contiguous and p.grad.flags.c_contiguous
        assert offset(p.data, theta) == start and offset(p.grad, grad) == start
        start += p.size
    assert start == theta.size

    # and, value by value: θ is the concatenation of the flattened parameters, W before b
    theta[...] = np.arange(theta.size)
    np.testing.assert_array_equal(np.concatenate([p.data.ravel() for p in params]), theta)
    grad[...] = -np.arange(grad.size)
    np.testing.assert_array_equal(np.concatenate([p.grad.ravel() for p in params]), grad)


def test_writing_theta_changes_forward(ref):
    model = mlp()
    x = data((5, 4))
    before = model.forward(x).copy()
    model.theta[...] = np.random.default_rng(3).normal(size=model.n_parameters)
    after = model.forward(x)
    assert not np.allclose(after, before)
    expected, _ = ref.forward(model, x)
    np.testing.assert_allclose(after, expected, rtol=1e-12, atol=1e-14)


def test_in_place_weight_assignment_is_seen_by_forward():
    model = nn.Sequential(nn.Dense(3, 2, activation="sigmoid"), seed=0, dtype=np.float64)
    layer = model.layers[0]
    layer.W.data[...] = 0.0
    layer.b.data[...] = [0.0, np.log(3.0)]
    np.testing.assert_allclose(model.forward(data((4, 3))), np.tile([0.5, 0.75], (4, 1)))
    layer.W.data[...] = [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    layer.b.data[...] = 0.0
    x = data((4, 3), 1)
    np.testing.assert_allclose(model.forward(x)[:, 0], 1 / (1 + np.exp(-x[:, 0])), rtol=1e-14)
    assert np.shares_memory(layer.W.data, model.theta)  # still a view after the writes


# -- gradients: zero_grad, accumulation, a manual step ---------------------------------------


def test_zero_grad_zeroes_every_gradient():
    model = mlp()
    model.forward(data((3, 4)))
    model.backward(data((3, 3), 1))
    assert all(np.any(p.grad != 0) for p in model.parameters())
    model.zero_grad()
    assert np.all(model.theta_grad == 0)
    assert all(np.all(p.grad == 0) for p in model.parameters())
    assert np.all(model.layers[0].W.grad == 0)


def test_gradients_accumulate_until_zero_grad():
    model = mlp()
    randomise_biases(model)
    x, g = data((5, 4)), data((5, 3), 1)
    model.forward(x)
    dx_once = model.backward(g).copy()
    once = model.theta_grad.copy()
    assert np.count_nonzero(once) > once.size // 2
    model.forward(x)
    dx_twice = model.backward(g)
    np.testing.assert_allclose(model.theta_grad, 2 * once, rtol=1e-14)
    np.testing.assert_allclose(dx_twice, dx_once, rtol=1e-14)  # ∂L/∂x is returned, not summed
    model.zero_grad()
    model.forward(x)
    model.backward(g)
    np.testing.assert_allclose(model.theta_grad, once, rtol=1e-14)


def test_gradients_of_two_batches_sum_to_the_gradient_of_their_union():
    """Equation 5.8: ∂L/∂θ = Σₙ ∂lⁿ/∂θ, so accumulating two halves equals one full batch."""
    model = mlp()
    randomise_biases(model)
    x, g = data((8, 4)), data((8, 3), 1)
    model.forward(x)
    model.backward(g)
    full = model.theta_grad.copy()
    model.zero_grad()
    for part in (slice(0, 3), slice(3, 8)):
        model.forward(x[part])
        model.backward(g[part])
    np.testing.assert_allclose(model.theta_grad, full, rtol=1e-12, atol=1e-15)


def test_without_input_grad_backward_returns_none_with_the_same_parameter_gradients():
    model = mlp()
    x, g = data((4, 4)), data((4, 3), 1)
    model.forward(x)
    model.backward(g)
    expected = model.theta_grad.copy()
    model.zero_grad()
    model.forward(x)
    model.needs_input_grad = False
    assert model.backward(g) is None
    np.testing.assert_array_equal(model.theta_grad, expected)
    assert all(layer.needs_input_grad for layer in model.layers)  # defaults restored


def test_manual_step_on_theta_updates_the_layers():
    """θ ← θ − η∇L(θ) (5.3) as one vector operation moves every W and b."""
    model = mlp()
    x, g = data((4, 4)), data((4, 3), 1)
    W_before = [layer.W.data.copy() for layer in model.layers if isinstance(layer, nn.Dense)]
    model.forward(x)
    model.backward(g)
    W_grads = [layer.W.grad.copy() for layer in model.layers if isinstance(layer, nn.Dense)]
    model.theta -= 0.1 * model.theta_grad
    dense = [layer for layer in model.layers if isinstance(layer, nn.Dense)]
    for layer, before, grad in zip(dense, W_before, W_grads, strict=True):
        assert np.shares_memory(layer.W.data, model.theta)
        np.testing.assert_allclose(layer.W.data, before - 0.1 * grad, rtol=1e-14)
        assert not np.array_equal(layer.W.data, before)


def test_a_small_step_against_the_gradient_lowers_a_loss(half_sse):
    model = mlp()
    x, t = data((6, 4)), data((6, 3), 1)
    loss0 = half_sse.forward(model.forward(x), t)
    model.backward(half_sse.backward())
    model.theta -= 1e-3 * model.theta_grad
    loss1 = half_sse.forward(model.forward(x), t)
    # first order: L(θ − ηg) ≈ L(θ) − η‖g‖²
    expected_drop = 1e-3 * float(model.theta_grad @ model.theta_grad)
    assert loss0 - loss1 == pytest.approx(expected_drop, rel=0.05)


# -- dtypes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_dtype_end_to_end(dtype, input_dtype):
    model = nn.Sequential(
        nn.Dense(4, 6, activation="gelu"),
        nn.Softplus(),
        nn.Dense(6, 5, activation="elu"),
        nn.Dense(5, 3, activation="softmax"),
        seed=0,
        dtype=dtype,
    )
    x = (data((5, 4)) * 3).astype(input_dtype)
    out = model.forward(x)
    assert out.dtype == dtype
    assert model.predict(x).dtype == dtype
    grad_in = model.backward(data((5, 3), 1).astype(dtype))
    assert grad_in.dtype == dtype
    assert model.theta.dtype == model.theta_grad.dtype == dtype
    for p in model.parameters():
        assert p.data.dtype == p.grad.dtype == dtype


@pytest.mark.parametrize("input_dtype", [np.float64, np.int64])
@pytest.mark.parametrize(
    "layers",
    [lambda: [nn.Tanh()], lambda: [nn.Sigmoid(), nn.Dense(4, 3)], lambda: [nn.Identity()]],
    ids=["tanh", "sigmoid-dense", "identity"],
)
def test_inputs_are_cast_before_the_first_layer(layers, input_dtype):
    """A first layer without weights sees the input as it is, so the model must cast it."""
    model = nn.Sequential(*layers(), seed=0, dtype=np.float32)
    x = np.arange(-4, 8).reshape(3, 4).astype(input_dtype)
    x_before = x.copy()
    out = model.forward(x)
    assert out.dtype == np.float32
    assert model.backward(np.ones_like(out)).dtype == np.float32
    assert model.predict(x).dtype == np.float32
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [nn.Dense(4, 3)],
        lambda: [nn.Dense(4, 5), nn.ReLU(), nn.Dense(5, 3)],
        lambda: [nn.Dense(4, 3), nn.Tanh()],
    ],
    ids=["dense", "dense-relu-dense", "dense-tanh"],
)
def test_float64_grad_out_is_not_promoted_in_a_float32_model(layers):
    """A float64 ∂L/∂out (as a float64 target gives) must not leak float64 into the model."""
    model = nn.Sequential(*layers(), seed=0, dtype=np.float32)
    x, g = data((5, 4)), data((5, 3), 1)
    model.forward(x)
    grad_in = model.backward(g)
    assert grad_in.dtype == np.float32
    assert model.theta_grad.dtype == np.float32
    expected = model.copy(np.float64)
    expected.forward(x)
    np.testing.assert_allclose(grad_in, expected.backward(g), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.theta_grad, expected.theta_grad, rtol=1e-4, atol=1e-6)


def test_float32_and_float64_models_agree():
    m32, m64 = mlp(seed=5, dtype=np.float32), mlp(seed=5, dtype=np.float64)
    np.testing.assert_allclose(m32.theta, m64.theta, rtol=1e-6)  # the same draws
    x, g = data((6, 4)), data((6, 3), 1)
    np.testing.assert_allclose(m32.forward(x), m64.forward(x), rtol=1e-4, atol=1e-5)
    m32.backward(g.astype(np.float32))
    m64.backward(g)
    np.testing.assert_allclose(m32.theta_grad, m64.theta_grad, rtol=1e-3, atol=1e-5)


# -- seeds ------------------------------------------------------------------------------------


def test_seed_makes_theta_reproducible():
    np.testing.assert_array_equal(mlp(seed=7).theta, mlp(seed=7).theta)
    assert not np.allclose(mlp(seed=7).theta, mlp(seed=8).theta)
    assert not np.allclose(mlp(seed=None).theta, mlp(seed=None).theta)
    # every layer is drawn from the seeded generator, not only the first
    a, b = mlp(seed=7), mlp(seed=8)
    for la, lb in zip(a.layers, b.layers, strict=True):
        if isinstance(la, nn.Dense):
            assert not np.allclose(la.W.data, lb.W.data)


def test_seed_does_not_touch_the_global_random_state():
    np.random.seed(123)  # noqa: NPY002 (the legacy global state is what is checked)
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    mlp(seed=1)
    nn.Dense(3, 2)
    assert np.random.random() == expected  # noqa: NPY002


# -- predict ----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 1024])
def test_predict_equals_forward_batched(batch_size):
    model = mlp()
    randomise_biases(model)
    X = data((10, 4))
    expected = model.forward(X).copy()
    out = model.predict(X, batch_size=batch_size)
    assert out.shape == (10, 3) and out.dtype == model.dtype
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_predict_returns_a_new_array():
    model = mlp()
    X1, X2 = data((5, 4)), data((5, 4), 1)
    first = model.predict(X1)
    kept = first.copy()
    forward_out = model.forward(X1)
    assert not np.shares_memory(first, forward_out)
    model.predict(X2)
    model.forward(X2)
    np.testing.assert_array_equal(first, kept)  # not overwritten by later calls
    second = model.predict(X1)
    assert second is not first and not np.shares_memory(first, second)


def test_predict_runs_in_eval_mode_and_restores_the_mode():
    probe = ModeProbe()
    model = nn.Sequential(nn.Dense(3, 2), probe, seed=0)
    assert model.training and probe.training
    model.predict(data((5, 3)), batch_size=2)
    assert probe.seen == [False, False, False]
    assert model.training and probe.training
    model.eval()
    assert not probe.training
    model.predict(data((2, 3)))
    assert not model.training and not probe.training
    model.train()
    assert probe.training and all(layer.training for layer in model.layers)


def test_predict_accepts_lists_and_casts_float64_to_float32():
    model = mlp(dtype=np.float32)
    X = data((3, 4))
    out = model.predict(X.tolist())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, model.predict(X.astype(np.float32)), rtol=1e-6)


# -- copy -------------------------------------------------------------------------------------


def test_copy_to_float64_has_equal_values_and_independent_memory():
    model = mlp(dtype=np.float32)
    randomise_biases(model)
    clone = model.copy(np.float64)
    assert clone.dtype == np.float64 and clone.theta.dtype == np.float64
    np.testing.assert_array_equal(clone.theta, model.theta.astype(np.float64))
    assert not np.shares_memory(clone.theta, model.theta)
    for p in clone.parameters():
        assert np.shares_memory(p.data, clone.theta)
        assert not np.shares_memory(p.data, model.theta)
        assert p.data.dtype == np.float64
    X = data((4, 4))
    np.testing.assert_allclose(clone.forward(X), model.forward(X), rtol=1e-5, atol=1e-6)
    before = model.theta.copy()
    clone.theta += 1.0
    clone.layers[0].W.data[...] = 0.0
    np.testing.assert_array_equal(model.theta, before)
    model.forward(X)
    clone.forward(X)
    clone.backward(data((4, 3), 1))
    assert np.all(model.theta_grad == 0)


def test_copy_keeps_dtype_and_mode():
    model = mlp(dtype=np.float32).eval()
    clone = model.copy()
    assert clone.dtype == np.float32 and not clone.training
    np.testing.assert_array_equal(clone.theta, model.theta)
    assert [repr(layer) for layer in clone.layers] == [repr(layer) for layer in model.layers]


# -- repr -------------------------------------------------------------------------------------


def test_repr_lists_the_layers():
    text = repr(nn.Sequential(nn.Dense(784, 256, activation="relu"), nn.Dense(256, 10), seed=0))
    assert "Dense(784 -> 256, activation=relu)" in text
    assert "Dense(256 -> 10, activation=identity)" in text
    assert "float32" in text and str(784 * 256 + 256 + 2570) in text


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [nn.Dense, "dense", 3, None, lambda x: x])
def test_non_layer_arguments_are_type_errors(bad):
    with pytest.raises(TypeError, match=r"Layer.*argument 1"):
        nn.Sequential(nn.Dense(3, 2), bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda act: [nn.Dense(3, 4), act, nn.Dense(4, 4), act],
        lambda act: [act, act, nn.Dense(3, 2)],
    ],
    ids=["activation-twice", "adjacent"],
)
def test_a_layer_object_used_twice_is_rejected(make):
    """Its forward cache would be overwritten by its second use: wrong gradients."""
    with pytest.raises(ValueError, match=r"same layer object Tanh\(\) is used twice"):
        nn.Sequential(*make(nn.Tanh()), seed=0)


def test_no_layers_is_a_value_error():
    with pytest.raises(ValueError, match="at least one layer"):
        nn.Sequential()


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [nn.Dense(4, 8), nn.Dense(7, 2)],
        lambda: [nn.Dense(4, 8), nn.ReLU(), nn.Dense(7, 2)],
        lambda: [nn.Dense(4, 8), nn.Dense(8, 3), nn.Softmax(), nn.Dense(8, 2)],
    ],
    ids=["adjacent", "through-activation", "third-dense"],
)
def test_mismatched_consecutive_sizes_are_value_errors(layers):
    with pytest.raises(ValueError, match=r"expects \d+ input features, but receives \d+"):
        nn.Sequential(*layers())


@pytest.mark.parametrize(
    "bad",
    [
        np.int32,
        np.float16,
        np.complex128,
        "int8",
        "banana",
        [1, 2],
    ],
)
def test_bad_dtype_is_a_value_error(bad):
    with pytest.raises(ValueError, match=r"`dtype`.*float32 or float64.*Received"):
        nn.Sequential(nn.Dense(3, 2), dtype=bad)


def test_dtype_none_is_rejected():
    with pytest.raises(ValueError, match=r"`dtype`, expected float32 or float64. Received: dtype="):
        nn.Sequential(nn.Dense(3, 2), dtype=None)


@pytest.mark.parametrize(("spelling", "dtype"), [("float64", np.float64), (np.float32, np.float32)])
def test_dtype_spellings_are_accepted(spelling, dtype):
    model = nn.Sequential(nn.Dense(3, 2), dtype=spelling)
    assert model.dtype == dtype and model.theta.dtype == dtype


@pytest.mark.parametrize("bad", ["1", 1.0, True])
def test_bad_seed_is_a_type_error(bad):
    with pytest.raises(TypeError, match="seed"):
        nn.Sequential(nn.Dense(3, 2), seed=bad)


PREDICT_ERRORS = [
    (np.ones((5, 3)), ValueError, r"X has 3 features, but the model expects 4"),
    (np.ones(4), ValueError, r"X must be 2-D.*1 dimension"),
    (np.ones((2, 5, 4)), ValueError, r"X must be 2-D.*3 dimension"),
    (np.ones((0, 4)), ValueError, r"0 samples"),
    (np.array([[1.0, 2.0, np.nan, 4.0]] * 3), ValueError, r"X contains NaN.*row 0"),
    (np.vstack([np.ones((3, 4)), [[1, np.inf, 1, 1]]]), ValueError, r"NaN or infinity.*row 3"),
    (np.full((2, 4), "1.0"), TypeError, r"X must hold real numbers.*string"),
    (np.ones((2, 4), dtype=complex), TypeError, r"X must hold real numbers.*complex"),
    (np.ones((2, 4), dtype=object), TypeError, r"X must hold real numbers.*object"),
    ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], ValueError, r"X could not be read as an array"),
]


@pytest.mark.parametrize(("X", "error", "match"), PREDICT_ERRORS, ids=lambda v: "")
def test_predict_rejects_bad_input_with_informative_messages(X, error, match):
    model = mlp()
    with pytest.raises(error, match=match):
        model.predict(X)


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-1, ValueError), (2.5, TypeError)])
def test_predict_rejects_bad_batch_size(bad, error):
    with pytest.raises(error, match="batch_size"):
        mlp().predict(np.ones((3, 4)), batch_size=bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_first_backward_after_zero_grad_gives_the_same_gradients(dtype):
    """Layers write ∂L/∂p into a zeroed ∇θ: the same as adding, and adding resumes after."""
    model = nn.Sequential(
        nn.Dense(4, 6, activation="tanh"),
        nn.BatchNorm1d(6),
        nn.Dense(6, 5, activation="relu"),
        nn.LayerNorm(5),
        nn.Dense(5, 3),
        seed=3,
        dtype=dtype,
    )
    x, g = data((7, 4)).astype(dtype), data((7, 3), 1).astype(dtype)
    model.forward(x)
    model.backward(g)  # adds into the zeros ∇θ starts with
    expected = model.theta_grad.copy()
    assert np.all(expected != 0)

    model.theta_grad[...] = 123.0
    model.zero_grad()
    model.forward(x)
    model.backward(g)
    np.testing.assert_array_equal(model.theta_grad, expected)
    assert not any(layer.grad_is_zero for layer in [model, *model.layers])

    model.forward(x)
    model.backward(g)  # the next backward adds
    np.testing.assert_allclose(model.theta_grad, 2 * expected, rtol=1e-6)


class PlainScale(nn.Layer):
    """A layer written to DESIGN's plain contract: backward(grad_out) adds and returns ∂L/∂x."""

    def __init__(self, n):
        super().__init__()
        self.s = nn.Parameter(np.ones(n, dtype=np.float32), "s")

    def parameters(self):
        return [self.s]

    def forward(self, x):
        self._x = x
        return x * self.s.data

    def backward(self, grad_out):
        self.s.grad += (grad_out * self._x).sum(axis=0)  # ∂L/∂s = Σ_batch g ⊙ x
        return grad_out * self.s.data


def test_a_layer_with_the_plain_backward_contract_trains_correctly(linear_loss):
    model = nn.Sequential(nn.Dense(3, 4, activation="tanh"), PlainScale(4), nn.Dense(4, 2), seed=0)
    model.layers[1].s.data[...] = [0.5, -1.0, 2.0, 1.5]
    X, r = data((5, 3)), data((5, 2), 1)
    report = nn.gradcheck(model, linear_loss, X, r)
    assert report.passed, str(report)

    model.forward(X)
    model.backward(r)  # the loss gradient of L = Σ r ⊙ out is r
    expected = model.theta_grad.copy()
    model.theta_grad[...] = 9.0  # stale: zero_grad() must clear it for the plain layer too
    model.zero_grad()
    model.forward(X)
    model.needs_input_grad = False
    assert model.backward(r) is None
    np.testing.assert_allclose(model.theta_grad, expected, rtol=1e-6)
    model.forward(X)
    model.backward(r)  # ignoring the hints, the plain layer still adds
    np.testing.assert_allclose(model.theta_grad, 2 * expected, rtol=1e-6)


def test_a_layer_bound_to_one_model_is_refused_by_another():
    dense = nn.Dense(3, 2)
    first = nn.Sequential(dense, seed=0)
    with pytest.raises(ValueError, match=r"already belongs to a Sequential.*deepcopy"):
        nn.Sequential(dense, seed=1)
    assert np.shares_memory(dense.W.data, first.theta)  # the first model is untouched
    second = nn.Sequential(copy.deepcopy(dense), seed=1)
    assert not np.shares_memory(second.theta, first.theta)


def test_training_skips_the_input_gradient_below_the_first_layer_with_parameters():
    calls = []

    class Spy(nn.Dense):
        def backward(self, grad_out):
            calls.append(self.needs_input_grad)
            return super().backward(grad_out)

    model = nn.Sequential(nn.Standardize(3), Spy(3, 4, activation="relu"), Spy(4, 2), seed=0)
    out = model.forward(data((6, 3)))
    model.needs_input_grad = False
    assert model.backward(np.ones_like(out)) is None
    assert calls == [True, False]  # the last Dense feeds the first; the first feeds no one
    calls.clear()
    model.needs_input_grad = True
    assert model.backward(np.ones_like(out)).shape == (6, 3)
    assert calls == [True, True]


def test_calling_a_model_is_forward_in_a_new_array():
    """PyTorch users keep the results of several calls: they must not share a buffer."""
    model = mlp()
    x, x2 = data((3, 4)), data((3, 4), 1)
    first = model(x)
    np.testing.assert_array_equal(first, model.forward(x))
    kept = first.copy()
    second = model(x2)
    assert second is not first and not np.shares_memory(first, model.forward(x2))
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(second, model.forward(x2))
