"""Optimizers against independent truths: the documented update rules written out element by
element in plain Python floats, PyTorch (when installed), closed-form minima for L-BFGS.

Every optimizer runs on two layouts of the same parameters: the θ-vector layout of a
Sequential (consecutive views into one parameter vector and one gradient vector, where the
optimizer must find the single (θ, ∇θ) pair) and separate arrays, some not C-contiguous (one
pair per parameter, updated through their original shapes).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import optim
from nn.parameter import Parameter

SHAPES = [(3, 4), (4,), (4, 2), (2,)]  # W1, b1, W2, b2 of a 3-4-2 perceptron
N = sum(math.prod(s) for s in SHAPES)
STEPS = 7


# -- parameter layouts ------------------------------------------------------------------------


def initial_values(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=N)


def split(flat: np.ndarray) -> list[np.ndarray]:
    out, start = [], 0
    for shape in SHAPES:
        size = math.prod(shape)
        out.append(np.asarray(flat[start : start + size]).reshape(shape))
        start += size
    return out


def vector_layout(values: np.ndarray, dtype=np.float64):
    """Parameters as consecutive views into one θ and one ∇θ, as a Sequential lays them out."""
    theta = np.array(values, dtype=dtype)
    theta_grad = np.zeros(N, dtype=dtype)
    params, start = [], 0
    for i, shape in enumerate(SHAPES):
        size = math.prod(shape)
        p = Parameter(theta[start : start + size].reshape(shape), f"p{i}")
        p.grad = theta_grad[start : start + size].reshape(shape)
        params.append(p)
        start += size
    return theta, theta_grad, params


def separate_layout(values: np.ndarray, dtype=np.float64) -> list[Parameter]:
    """The same values in separate arrays: Fortran-ordered, strided, transposed-grad, plain."""
    v = split(np.asarray(values, dtype=dtype))
    p0 = Parameter(np.asfortranarray(v[0]), "p0")  # 2-D, not C-contiguous
    p0.grad = np.zeros(SHAPES[0], dtype=dtype, order="F")
    strided = np.zeros(2 * v[1].size, dtype=dtype)[::2]  # 1-D with stride 2
    strided[...] = v[1]
    p1 = Parameter(strided, "p1")
    p2 = Parameter(v[2].copy(), "p2")
    p2.grad = np.zeros(SHAPES[2][::-1], dtype=dtype).T  # contiguous data, transposed grad
    p3 = Parameter(v[3].copy(), "p3")
    params = [p0, p1, p2, p3]
    assert not p0.data.flags.c_contiguous and not p1.data.flags.c_contiguous
    return params


def make_params(layout: str, values: np.ndarray, dtype=np.float64) -> list[Parameter]:
    if layout == "vector":
        return vector_layout(values, dtype)[2]
    return separate_layout(values, dtype)


def flat_data(params: list[Parameter]) -> np.ndarray:
    return np.concatenate([p.data.reshape(-1) for p in params])


def set_grads(params: list[Parameter], flat: np.ndarray) -> None:
    for p, g in zip(params, split(flat), strict=True):
        p.grad[...] = g


# -- the gradients fed to every optimizer ----------------------------------------------------

_RNG = np.random.default_rng(1234)
CURVATURE = _RNG.uniform(0.5, 2.0, size=N)
FORCING = _RNG.normal(size=N)


def gradient(theta: list[float] | np.ndarray, t: int) -> list[float]:
    """A gradient that depends on θ and varies in sign and size, with spikes at steps 1 and 4
    (so that Adam's second moment also decreases and AMSGrad's maximum matters)."""
    spike = 30.0 if t in (1, 4) else 0.3
    return [
        CURVATURE[i] * float(theta[i]) + spike * FORCING[i] * math.cos(0.9 * t * (i + 1))
        for i in range(N)
    ]


# -- the documented rules, element by element, in Python floats ------------------------------


def ref_sgd(theta, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    theta = [float(x) for x in theta]
    buf = [0.0] * N
    for t in range(1, STEPS + 1):
        grads = gradient(theta, t)
        for i in range(N):
            g = grads[i] + weight_decay * theta[i]
            if momentum != 0:
                buf[i] = g if t == 1 else momentum * buf[i] + (1 - dampening) * g
                g = g + momentum * buf[i] if nesterov else buf[i]
            theta[i] -= lr * g
    return theta


def ref_adam(
    theta,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    decoupled=False,
):
    b1, b2 = betas
    theta = [float(x) for x in theta]
    m, v, v_max = [0.0] * N, [0.0] * N, [0.0] * N
    for t in range(1, STEPS + 1):
        grads = gradient(theta, t)
        for i in range(N):
            g = grads[i]
            if decoupled:
                theta[i] *= 1 - lr * weight_decay
            else:
                g += weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            if amsgrad:
                v_max[i] = max(v_max[i], v[i])
                v_hat = v_max[i] / (1 - b2**t)
            else:
                v_hat = v[i] / (1 - b2**t)
            theta[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return theta


def ref_adamw(theta, weight_decay=1e-2, **kwargs):
    return ref_adam(theta, weight_decay=weight_decay, decoupled=True, **kwargs)


def ref_rmsprop(
    theta, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0
):
    theta = [float(x) for x in theta]
    v, g_avg, buf = [0.0] * N, [0.0] * N, [0.0] * N
    for t in range(1, STEPS + 1):
        grads = gradient(theta, t)
        for i in range(N):
            g = grads[i] + weight_decay * theta[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            v_tilde = v[i]
            if centered:
                g_avg[i] = alpha * g_avg[i] + (1 - alpha) * g
                v_tilde = v_tilde - g_avg[i] ** 2
            if momentum > 0:
                buf[i] = momentum * buf[i] + g / (math.sqrt(v_tilde) + eps)
                theta[i] -= lr * buf[i]
            else:
                theta[i] -= lr * g / (math.sqrt(v_tilde) + eps)
    return theta


def ref_adagrad(
    theta, lr=1e-2, eps=1e-10, weight_decay=0.0, lr_decay=0.0, initial_accumulator_value=0.0
):
    theta = [float(x) for x in theta]
    s = [initial_accumulator_value] * N
    for t in range(1, STEPS + 1):
        grads = gradient(theta, t)
        clr = lr / (1 + (t - 1) * lr_decay)
        for i in range(N):
            g = grads[i] + weight_decay * theta[i]
            s[i] += g * g
            theta[i] -= clr * g / (math.sqrt(s[i]) + eps)
    return theta


REFERENCES = {
    "sgd": ref_sgd,
    "adam": ref_adam,
    "adamw": ref_adamw,
    "rmsprop": ref_rmsprop,
    "adagrad": ref_adagrad,
}

CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.1, "amsgrad": True}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.5, "amsgrad": True}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "eps": 1e-3, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.2}),
    ("adagrad", {"lr": 0.1, "initial_accumulator_value": 2.0}),
    (
        "adagrad",
        {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.5},
    ),
]
CASE_IDS = [name + "-" + "-".join(f"{k}={v}" for k, v in kw.items()) for name, kw in CASES]


def run(name: str, kwargs: dict, params: list[Parameter], steps: int = STEPS, start: int = 1):
    opt = optim.get(name, params, **kwargs)
    for t in range(start, start + steps):
        set_grads(params, np.array(gradient(flat_data(params), t)))
        opt.step()
    return opt


# -- the update rules ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["vector", "separate"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_update_rule_matches_hand_computation(name, kwargs, layout):
    values = initial_values()
    expected = REFERENCES[name](values, **kwargs)
    params = make_params(layout, values)
    opt = run(name, kwargs, params)
    assert len(opt.vectors) == (1 if layout == "vector" else len(SHAPES))
    assert opt.steps == STEPS
    np.testing.assert_allclose(flat_data(params), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_update_rule_matches_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    classes = {
        "sgd": torch.optim.SGD,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
        "adagrad": torch.optim.Adagrad,
    }
    values = initial_values()
    tensors = [torch.tensor(v, dtype=torch.float64) for v in split(values)]
    for p in tensors:
        p.requires_grad_(True)
    torch_opt = classes[name](tensors, **kwargs)
    for t in range(1, STEPS + 1):
        flat = np.concatenate([p.detach().numpy().reshape(-1) for p in tensors])
        for p, g in zip(tensors, split(np.array(gradient(flat, t))), strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        torch_opt.step()
    expected = np.concatenate([p.detach().numpy().reshape(-1) for p in tensors])

    params = make_params("vector", values)
    run(name, kwargs, params)
    np.testing.assert_allclose(flat_data(params), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(n, kw) for n, kw in CASES if len(kw) > 1 or n == "adamw"],
    ids=[i for (n, kw), i in zip(CASES, CASE_IDS, strict=True) if len(kw) > 1 or n == "adamw"],
)
def test_each_option_changes_the_trajectory(name, kwargs):
    """The cases above would prove little if an option had no effect on these gradients: each
    changes the result by far more than the tolerances (1e-10) of the comparisons."""
    values = initial_values()
    base = "adam" if name == "adamw" else name
    plain = REFERENCES[base](values, lr=kwargs["lr"])
    assert np.max(np.abs(np.subtract(REFERENCES[name](values, **kwargs), plain))) > 1e-5


def test_adagrad_lr_decay_and_initial_accumulator_by_hand():
    """A constant gradient g = 3 with s₀ = 7, γ = 0.5, η = 0.25, ε = 0:
    t = 1: γ̃ = 0.5, s = 7 + 9 = 16, θ −= 0.5·3/4 = 0.375;
    t = 2: γ̃ = 0.5/1.25 = 0.4, s = 25, θ −= 0.4·3/5 = 0.24;
    then θ −= γ/(1 + (t − 1)η) · 3/√(7 + 9t) for t = 3, 4, 5."""
    values = initial_values()
    theta, theta_grad, params = vector_layout(values)
    theta_grad[...] = 3.0
    opt = optim.Adagrad(params, lr=0.5, eps=0.0, lr_decay=0.25, initial_accumulator_value=7.0)
    np.testing.assert_array_equal(opt.state["sum"][0], np.full(N, 7.0))
    opt.step()
    np.testing.assert_allclose(theta, values - 0.375, rtol=0, atol=1e-15)
    opt.step()
    np.testing.assert_allclose(theta, values - 0.615, rtol=0, atol=1e-15)
    expected = values - 0.615
    for t in range(3, 6):
        opt.step()
        expected = expected - 0.5 / (1 + (t - 1) * 0.25) * 3.0 / math.sqrt(7.0 + 9.0 * t)
    np.testing.assert_allclose(theta, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state["sum"][0], 7.0 + 9.0 * 5, rtol=0, atol=0)


def test_sgd_uses_the_learning_rate_set_between_steps():
    values = initial_values()
    params = make_params("vector", values)
    opt = optim.SGD(params, lr=0.1)
    set_grads(params, np.ones(N))
    opt.step()
    opt.lr = 0.25
    opt.step()
    np.testing.assert_allclose(flat_data(params), values - 0.35, rtol=0, atol=1e-15)


def test_defaults_are_pytorchs():
    # PyTorch's defaults, as optim.get("sgd", params) is used by fit and the CLI.
    params = make_params("vector", initial_values())
    assert optim.SGD(params).lr == 1e-3
    assert optim.Adam(params).betas == (0.9, 0.999)
    assert optim.AdamW(params).weight_decay == 1e-2
    assert optim.RMSprop(params).lr == 1e-2 and optim.RMSprop(params).alpha == 0.99
    adagrad = optim.Adagrad(params)
    assert adagrad.eps == 1e-10 and adagrad.lr == 1e-2
    assert adagrad.lr_decay == 0 and adagrad.initial_accumulator_value == 0


# -- layout detection ---------------------------------------------------------------------


def test_vector_layout_is_found_as_one_pair():
    theta, theta_grad, params = vector_layout(initial_values())
    opt = optim.Adam(params)
    assert len(opt.vectors) == 1
    data, grad = opt.vectors[0]
    assert data.shape == grad.shape == (N,)
    assert np.shares_memory(data, theta) and data.ctypes.data == theta.ctypes.data
    assert np.shares_memory(grad, theta_grad) and grad.ctypes.data == theta_grad.ctypes.data
    assert all(buffers[0].shape == (N,) for buffers in opt.state.values())


def test_views_covering_part_of_a_larger_vector_update_only_that_part():
    owner = np.arange(N + 6, dtype=np.float64)
    owner_grad = np.ones(N + 6)
    params, start = [], 3
    for i, shape in enumerate(SHAPES):
        size = math.prod(shape)
        p = Parameter(owner[start : start + size].reshape(shape), f"p{i}")
        p.grad = owner_grad[start : start + size].reshape(shape)
        params.append(p)
        start += size
    opt = optim.SGD(params, lr=0.5, weight_decay=0.1)
    assert len(opt.vectors) == 1 and opt.vectors[0][0].size == N
    before = owner.copy()
    opt.step()
    np.testing.assert_array_equal(owner[:3], before[:3])
    np.testing.assert_array_equal(owner[3 + N :], before[3 + N :])
    np.testing.assert_allclose(owner[3 : 3 + N], before[3 : 3 + N] * 0.95 - 0.5)


@pytest.mark.parametrize("how", ["gap", "reordered", "grads_apart"])
def test_broken_vector_layouts_fall_back_to_one_pair_per_parameter(how):
    values = initial_values()
    theta, theta_grad, params = vector_layout(values)
    if how == "gap":
        big, big_grad = np.zeros(N + 1), np.zeros(N + 1)
        start = 0
        for p in params:
            if p is params[2]:
                start += 1  # leave one element unused
            p.data = big[start : start + p.size].reshape(p.shape)
            p.grad = big_grad[start : start + p.size].reshape(p.shape)
            p.data[...] = split(values)[params.index(p)]
            start += p.size
    elif how == "reordered":
        params = params[::-1]
    else:
        for p in params:
            p.grad = np.zeros(p.shape)
    opt = optim.SGD(params, lr=0.1)
    assert len(opt.vectors) == len(params)
    for p in params:
        p.grad[...] = 1.0
    before = [p.data.copy() for p in params]
    opt.step()
    for p, b in zip(params, before, strict=True):
        np.testing.assert_allclose(p.data, b - 0.1)


@pytest.mark.parametrize("layout", ["vector", "separate"])
def test_zero_grad_zeroes_every_gradient(layout):
    params = make_params(layout, initial_values())
    set_grads(params, np.arange(1.0, N + 1))
    opt = optim.SGD(params, lr=0.1)
    opt.zero_grad()
    assert all(np.all(p.grad == 0) for p in params)


# -- dtype --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_float32_parameters_stay_float32(name, kwargs):
    values = initial_values()
    theta, theta_grad, params = vector_layout(values, np.float32)
    opt = optim.get(name, params, **kwargs)
    opt.lr = np.float64(kwargs["lr"])  # a NumPy float64 lr must not promote the update
    assert type(opt.lr) is float
    for t in range(1, STEPS + 1):
        theta_grad[...] = gradient(theta, t)
        opt.step()
    assert theta.dtype == np.float32 and params[0].data.base is not None
    assert all(b[0].dtype == np.float32 for b in opt.state.values())
    expected = REFERENCES[name](values, **kwargs)
    np.testing.assert_allclose(theta, expected, rtol=2e-4, atol=2e-5)


def test_update_allocates_no_new_vector_per_step():
    """Buffers are preallocated: a step rebinds no state array and θ stays the same memory."""
    theta, theta_grad, params = vector_layout(initial_values())
    opt = optim.RMSprop(params, momentum=0.9, centered=True, weight_decay=0.1)
    ids = {k: [id(a) for a in v] for k, v in opt.state.items()}
    theta_grad[...] = 1.0
    for _ in range(3):
        opt.step()
    assert {k: [id(a) for a in v] for k, v in opt.state.items()} == ids
    assert opt.vectors[0][0].ctypes.data == theta.ctypes.data


# -- state_dict ---------------------------------------------------------------------------

STATEFUL = [
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.3, "initial_accumulator_value": 0.5}),
]
STATEFUL_IDS = [n + "-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in STATEFUL]


@pytest.mark.parametrize(("name", "kwargs"), STATEFUL, ids=STATEFUL_IDS)
@pytest.mark.parametrize(
    ("saved_from", "loaded_into"), [("vector", "separate"), ("separate", "vector")]
)
def test_state_dict_round_trip_through_npz_resumes_exactly(
    name, kwargs, saved_from, loaded_into, tmp_path
):
    values = initial_values()
    straight = make_params("vector", values)
    run(name, kwargs, straight, steps=6)

    first = make_params(saved_from, values)
    opt = run(name, kwargs, first, steps=3)
    state = opt.state_dict()
    for value in state.values():
        if isinstance(value, np.ndarray):
            assert value.shape == (N,) and value.dtype == np.float64
        else:
            json.dumps(value)  # JSON-compatible scalars only
    np.savez(tmp_path / "opt.npz", **state)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        loaded = {k: f[k] for k in f.files}

    second = make_params(loaded_into, flat_data(first))
    resumed = optim.get(name, second, **kwargs)
    resumed.load_state_dict(loaded)
    assert resumed.steps == 3
    for t in range(4, 7):
        set_grads(second, np.array(gradient(flat_data(second), t)))
        resumed.step()
    np.testing.assert_allclose(flat_data(second), flat_data(straight), rtol=1e-13, atol=1e-14)


def test_state_dict_restores_the_learning_rate_and_copies_buffers():
    params = make_params("vector", initial_values())
    opt = run("adam", {"lr": 0.01}, params, steps=2)
    opt.lr = 0.005
    state = opt.state_dict()
    state["exp_avg"][...] = 0.0  # a copy: the optimizer's own buffer is untouched
    assert np.any(opt.state["exp_avg"][0] != 0)
    other = optim.Adam(make_params("vector", initial_values()), lr=0.01)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.005 and other.steps == 2
    np.testing.assert_array_equal(other.state["exp_avg"][0], opt.state["exp_avg"][0])


def test_adagrad_state_dict_saves_and_checks_its_new_hyperparameters():
    kwargs = {"lr": 0.1, "lr_decay": 0.3, "initial_accumulator_value": 0.5}
    opt = run("adagrad", kwargs, make_params("vector", initial_values()), steps=2)
    state = opt.state_dict()
    assert state["lr_decay"] == 0.3 and state["initial_accumulator_value"] == 0.5
    for other in ({"lr_decay": 0.0}, {"initial_accumulator_value": 0.0}):
        fresh = optim.Adagrad(make_params("vector", initial_values()), **{**kwargs, **other})
        with pytest.raises(ValueError, match=next(iter(other))):
            fresh.load_state_dict(state)
        assert fresh.steps == 0


def _broken_states():
    good = optim.SGD(make_params("vector", initial_values()), lr=0.1, momentum=0.9).state_dict()
    cases = {}
    cases["other optimizer"] = {**good, "optimizer": "Adam"}
    cases["other momentum"] = {**good, "momentum": 0.5}
    cases["other nesterov"] = {**good, "nesterov": True}
    cases["short buffer"] = {**good, "momentum_buffer": np.zeros(N - 1)}
    cases["float32 buffer"] = {**good, "momentum_buffer": np.zeros(N, np.float32)}
    cases["list buffer"] = {**good, "momentum_buffer": [0.0] * N}
    cases["missing key"] = {k: v for k, v in good.items() if k != "momentum_buffer"}
    cases["extra key"] = {**good, "exp_avg": np.zeros(N)}
    cases["negative lr"] = {**good, "lr": -1.0}
    return cases


@pytest.mark.parametrize("case", list(_broken_states()))
def test_load_state_dict_rejects_mismatches_and_writes_nothing(case):
    params = make_params("vector", initial_values())
    opt = run("sgd", {"lr": 0.1, "momentum": 0.9}, params, steps=2)
    before = opt.state_dict()
    bad = {**_broken_states()[case], "step": 99}
    with pytest.raises(ValueError):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["step"] == before["step"] == 2 and after["lr"] == 0.1
    np.testing.assert_array_equal(after["momentum_buffer"], before["momentum_buffer"])


def test_load_state_dict_needs_a_mapping():
    opt = optim.SGD(make_params("vector", initial_values()), lr=0.1)
    with pytest.raises(TypeError):
        opt.load_state_dict([("lr", 0.1)])


# -- argument checks ----------------------------------------------------------------------

ACCUMULATOR = "initial_accumulator_value"
INVALID = [
    (optim.SGD, {"lr": -0.1}, "lr", "non-negative"),
    (optim.SGD, {"lr": math.nan}, "lr", "non-negative"),
    (optim.SGD, {"lr": math.inf}, "lr", "non-negative"),
    (optim.SGD, {"lr": 0.1, "momentum": -0.5}, "momentum", "[0, 1)"),
    (optim.SGD, {"lr": 0.1, "momentum": 1.0}, "momentum", "[0, 1)"),
    (optim.SGD, {"lr": 0.1, "momentum": math.nan}, "momentum", "[0, 1)"),
    (optim.SGD, {"lr": 0.1, "dampening": 1.5}, "dampening", "[0, 1]"),
    (optim.SGD, {"lr": 0.1, "weight_decay": -1e-4}, "weight_decay", "non-negative"),
    (optim.SGD, {"lr": 0.1, "weight_decay": math.inf}, "weight_decay", "non-negative"),
    (optim.Adam, {"eps": -1e-8}, "eps", "non-negative"),
    (optim.Adam, {"betas": (1.0, 0.999)}, "betas[0]", "[0, 1)"),
    (optim.Adam, {"betas": (0.9, -0.1)}, "betas[1]", "[0, 1)"),
    (optim.Adam, {"betas": (0.9,)}, "betas", "pair"),
    (optim.Adam, {"weight_decay": math.nan}, "weight_decay", "non-negative"),
    (optim.AdamW, {"weight_decay": -0.01}, "weight_decay", "non-negative"),
    (optim.RMSprop, {"alpha": 1.0}, "alpha", "[0, 1)"),
    (optim.RMSprop, {"momentum": -0.1}, "momentum", "[0, 1)"),
    (optim.RMSprop, {"eps": math.inf}, "eps", "non-negative"),
    (optim.Adagrad, {"lr": -0.01}, "lr", "non-negative"),
    (optim.Adagrad, {"eps": -1.0}, "eps", "non-negative"),
    (optim.Adagrad, {"lr_decay": -0.1}, "lr_decay", "non-negative"),
    (optim.Adagrad, {"lr_decay": math.inf}, "lr_decay", "non-negative"),
    (optim.Adagrad, {ACCUMULATOR: -1.0}, ACCUMULATOR, "non-negative"),
    (optim.Adagrad, {ACCUMULATOR: math.nan}, ACCUMULATOR, "non-negative"),
    (optim.LBFGS, {"max_iter": 0}, "max_iter", "positive integer"),
    (optim.LBFGS, {"tol": -1.0}, "tol", "non-negative"),
    (optim.LBFGS, {"history_size": 0}, "history_size", "positive integer"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "name", "expected"),
    INVALID,
    ids=[f"{c.__name__}-{n}" for c, _, n, _ in INVALID],
)
def test_invalid_hyperparameters_raise_value_error_naming_them(cls, kwargs, name, expected):
    params = make_params("vector", initial_values())
    with pytest.raises(ValueError) as info:
        cls(params, **kwargs)
    message = str(info.value)
    assert f"Received an invalid value for `{name}`" in message
    assert expected in message
    assert f"Received: {name}=" in message


def test_error_message_is_keras_style():
    with pytest.raises(ValueError) as info:
        optim.SGD(make_params("vector", initial_values()), lr=-0.1)
    assert str(info.value) == (
        "Received an invalid value for `lr`, expected a non-negative finite number. "
        "Received: lr=-0.1"
    )


@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_non_numeric_hyperparameters_raise_type_error(value):
    with pytest.raises(TypeError, match="`lr`"):
        optim.SGD(make_params("vector", initial_values()), lr=value)


def test_nesterov_needs_momentum_and_no_dampening():
    params = make_params("vector", initial_values())
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="dampening"):
        optim.SGD(params, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


def test_params_are_checked():
    params = make_params("vector", initial_values())
    with pytest.raises(ValueError, match="non-empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="non-empty"):
        optim.Adam(iter([]))
    with pytest.raises(TypeError, match=r"params\[1\]"):
        optim.SGD([params[0], np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Parameters"):
        optim.SGD(params[0], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([params[0], params[0]], lr=0.1)
    bad = Parameter(np.zeros(3), "bad")
    bad.grad = np.zeros(4)
    with pytest.raises(ValueError, match="grad"):
        optim.SGD([bad], lr=0.1)
    ints = Parameter(np.zeros(3, dtype=np.int64), "ints")
    with pytest.raises(TypeError, match="floating"):
        optim.SGD([ints], lr=0.1)


def test_generator_of_params_is_accepted():
    params = make_params("vector", initial_values())
    opt = optim.SGD(iter(params), lr=0.1)
    assert opt.params == params and len(opt.vectors) == 1


def test_lr_is_settable_and_checked_other_hyperparameters_are_fixed():
    opt = optim.SGD(make_params("vector", initial_values()), lr=0.1, momentum=0.9)
    opt.lr = 0.0
    assert opt.lr == 0.0
    with pytest.raises(ValueError, match="`lr`"):
        opt.lr = -1.0
    assert opt.lr == 0.0
    with pytest.raises(AttributeError, match="momentum"):
        opt.momentum = 0.5
    assert opt.momentum == 0.9


def test_repr_reads_like_the_constructor():
    params = make_params("vector", initial_values())
    assert repr(optim.SGD(params, lr=0.1, momentum=0.9)) == (
        "SGD(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)"
    )
    assert repr(optim.Adam(params)) == (
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)"
    )
    assert repr(optim.LBFGS(params)) == "LBFGS(max_iter=100, tol=1e-06, history_size=10)"


# -- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", optim.SGD),
        ("Adam", optim.Adam),
        ("ADAMW", optim.AdamW),
        ("rmsprop", optim.RMSprop),
        ("adagrad", optim.Adagrad),
        ("lbfgs", optim.LBFGS),
    ],
)
def test_get_builds_by_name(name, cls):
    opt = optim.get(name, make_params("vector", initial_values()))
    assert type(opt) is cls
    assert opt.full_batch is (cls is optim.LBFGS)


def test_get_forwards_keyword_arguments():
    opt = optim.get("sgd", make_params("vector", initial_values()), lr=0.3, momentum=0.5)
    assert (opt.lr, opt.momentum) == (0.3, 0.5)


@pytest.mark.parametrize("name", ["adamax", "", 3])
def test_get_unknown_name_lists_the_valid_ones(name):
    with pytest.raises(ValueError) as info:
        optim.get(name, make_params("vector", initial_values()))
    for valid in ("'sgd'", "'adam'", "'adamw'", "'rmsprop'", "'adagrad'", "'lbfgs'"):
        assert valid in str(info.value)


# -- L-BFGS -------------------------------------------------------------------------------


class LinearModel:
    """pred = X w + b on parameters laid out as a θ vector [w, b] (or separately)."""

    def __init__(self, n_features: int, dtype=np.float64, layout: str = "vector"):
        self.theta = np.zeros(n_features + 1, dtype=dtype)
        self.theta_grad = np.zeros(n_features + 1, dtype=dtype)
        if layout == "vector":
            self.w = Parameter(self.theta[:n_features], "w")
            self.w.grad = self.theta_grad[:n_features]
            self.b = Parameter(self.theta[n_features:], "b")
            self.b.grad = self.theta_grad[n_features:]
        else:
            self.w = Parameter(np.zeros(2 * n_features, dtype=dtype)[::2], "w")
            self.b = Parameter(np.zeros(1, dtype=dtype), "b")

    def parameters(self) -> list[Parameter]:
        return [self.w, self.b]


def ridge_closure(model: LinearModel, X, y, lam):
    """L = 1/(2N)‖Xw + b − y‖² + λ/2‖w‖²."""
    n = len(X)
    X = X.astype(model.w.data.dtype)
    y = y.astype(model.w.data.dtype)

    def closure() -> float:
        model.w.grad[...] = 0
        model.b.grad[...] = 0
        r = X @ model.w.data + model.b.data[0] - y
        model.w.grad[...] += X.T @ r / n + lam * model.w.data
        model.b.grad[...] += r.sum() / n
        return float(r @ r / (2 * n) + lam / 2 * model.w.data @ model.w.data)

    return closure


def logistic_closure(model: LinearModel, X, y, lam):
    """L = mean(softplus(z) − y z) + λ/2‖w‖², z = Xw + b."""
    n = len(X)

    def closure() -> float:
        z = X @ model.w.data + model.b.data[0]
        p = 0.5 * (1 + np.tanh(z / 2))  # sigmoid
        r = p - y
        model.w.grad[...] = X.T @ r / n + lam * model.w.data
        model.b.grad[...] = r.sum() / n
        softplus = np.logaddexp(0, z)
        return float(np.mean(softplus - y * z) + lam / 2 * model.w.data @ model.w.data)

    return closure


def _regression_data(seed=0, n=80, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.7 + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("layout", ["vector", "separate"])
def test_lbfgs_reaches_the_ridge_regression_closed_form(layout):
    X, y = _regression_data()
    lam = 0.1
    n, d = X.shape
    # Normal equations of the augmented problem [X 1] θ ≈ y with no penalty on the bias.
    A = np.hstack([X, np.ones((n, 1))])
    penalty = np.diag([lam] * d + [0.0])
    exact = np.linalg.solve(A.T @ A / n + penalty, A.T @ y / n)

    model = LinearModel(d, layout=layout)
    opt = optim.LBFGS(model.parameters(), max_iter=200, tol=1e-14)
    assert len(opt.vectors) == (1 if layout == "vector" else 2)
    final = opt.step(ridge_closure(model, X, y, lam))
    theta = np.concatenate([model.w.data, model.b.data])
    np.testing.assert_allclose(theta, exact, rtol=1e-8, atol=1e-9)
    assert final == pytest.approx(ridge_closure(model, X, y, lam)(), rel=1e-12)
    assert opt.result.nit <= 200 and opt.result.nfev >= opt.result.nit
    assert opt.steps == 1


def test_lbfgs_reaches_the_l2_logistic_regression_minimum_found_by_newton():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-(X @ [1.5, -2.0, 0.5] - 0.3)))).astype(float)
    lam = 1e-2
    # Newton's method on [w, b]: an independent solver, iterated to machine precision.
    A = np.hstack([X, np.ones((300, 1))])
    reg = np.diag([lam, lam, lam, 0.0])
    theta = np.zeros(4)
    for _ in range(50):
        p = 1 / (1 + np.exp(-A @ theta))
        g = A.T @ (p - y) / 300 + reg @ theta
        H = (A.T * (p * (1 - p))) @ A / 300 + reg
        theta -= np.linalg.solve(H, g)
    assert np.max(np.abs(g)) < 1e-14

    model = LinearModel(3)
    opt = optim.LBFGS(model.parameters(), max_iter=500, tol=1e-15)
    opt.step(logistic_closure(model, X, y, lam))
    np.testing.assert_allclose(model.theta, theta, rtol=1e-7, atol=1e-8)
    assert np.max(np.abs(model.theta_grad)) < 1e-7


def test_lbfgs_reports_convergence_and_the_iteration_limit():
    X, y = _regression_data()
    model = LinearModel(X.shape[1])
    opt = optim.LBFGS(model.parameters(), max_iter=100, tol=1e-6)
    assert opt.result is None and opt.stop_reason == "not run yet"
    opt.step(ridge_closure(model, X, y, 0.1))
    assert opt.result.success
    assert "converged" in opt.stop_reason and str(opt.result.message) in opt.stop_reason

    limited = LinearModel(X.shape[1])
    opt = optim.LBFGS(limited.parameters(), max_iter=2, tol=1e-12)
    opt.step(ridge_closure(limited, X, y, 0.1))
    assert not opt.result.success and opt.result.nit == 2
    assert "ITERATIONS" in str(opt.result.message).upper()
    assert "stopped after 2 iterations" in opt.stop_reason


def test_lbfgs_keeps_float32_parameters_float32():
    X, y = _regression_data()
    lam = 0.1
    model64 = LinearModel(X.shape[1])
    best = optim.LBFGS(model64.parameters(), tol=1e-14).step(ridge_closure(model64, X, y, lam))

    model = LinearModel(X.shape[1], dtype=np.float32)
    opt = optim.LBFGS(model.parameters(), tol=1e-6)
    final = opt.step(ridge_closure(model, X, y, lam))
    assert model.theta.dtype == np.float32 and model.w.data.dtype == np.float32
    assert final == pytest.approx(best, rel=1e-5)
    np.testing.assert_allclose(model.theta, model64.theta, rtol=1e-3, atol=1e-3)


def test_lbfgs_continues_from_the_current_parameters():
    X, y = _regression_data()
    model = LinearModel(X.shape[1])
    opt = optim.LBFGS(model.parameters(), max_iter=3)
    first = opt.step(ridge_closure(model, X, y, 0.1))
    second = opt.step(ridge_closure(model, X, y, 0.1))
    assert second < first and opt.steps == 2


def test_lbfgs_step_needs_a_closure():
    model = LinearModel(2)
    opt = optim.LBFGS(model.parameters())
    with pytest.raises(TypeError, match="closure"):
        opt.step(None)


# -- clipping -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["vector", "separate"])
def test_clip_grad_norm_scales_by_the_global_norm(layout):
    params = make_params(layout, initial_values())
    g = np.random.default_rng(5).normal(size=N)
    set_grads(params, g)
    total = optim.clip_grad_norm(params, 1.0)
    assert isinstance(total, float)
    assert total == pytest.approx(math.sqrt(math.fsum(x * x for x in g)), rel=1e-14)
    clipped = np.concatenate([p.grad.reshape(-1) for p in params])
    np.testing.assert_allclose(clipped, g * (1.0 / (total + 1e-6)), rtol=1e-14)
    assert np.linalg.norm(clipped) <= 1.0


def test_clip_grad_norm_leaves_small_gradients_alone():
    params = make_params("vector", initial_values())
    g = np.full(N, 0.01)
    set_grads(params, g)
    total = optim.clip_grad_norm(params, 10.0)
    assert total == pytest.approx(0.01 * math.sqrt(N))
    np.testing.assert_array_equal(flat_grads := np.concatenate([p.grad.ravel() for p in params]), g)
    assert flat_grads.dtype == np.float64


def test_clip_grad_norm_float32_stays_float32_and_survives_huge_values():
    theta, theta_grad, params = vector_layout(initial_values(), np.float32)
    theta_grad[...] = 1e30  # the squares overflow float32
    total = optim.clip_grad_norm(params, 1.0)
    assert total == pytest.approx(1e30 * math.sqrt(N), rel=1e-5)
    assert theta_grad.dtype == np.float32
    assert np.linalg.norm(theta_grad.astype(np.float64)) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_value_bounds_every_component():
    for layout in ("vector", "separate"):
        params = make_params(layout, initial_values())
        g = np.random.default_rng(6).normal(size=N) * 2
        set_grads(params, g)
        assert optim.clip_grad_value(params, 0.5) is None
        clipped = np.concatenate([p.grad.reshape(-1) for p in params])
        np.testing.assert_array_equal(clipped, np.minimum(np.maximum(g, -0.5), 0.5))


def test_clipping_matches_pytorch():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(7).normal(size=N) * 3
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for t, part in zip(tensors, split(g), strict=True):
        t.grad = torch.tensor(part)
    expected_norm = float(torch.nn.utils.clip_grad_norm_(tensors, 2.0))
    params = make_params("vector", initial_values())
    set_grads(params, g)
    assert optim.clip_grad_norm(params, 2.0) == pytest.approx(expected_norm, rel=1e-14)
    np.testing.assert_allclose(
        np.concatenate([p.grad.reshape(-1) for p in params]),
        np.concatenate([t.grad.numpy().reshape(-1) for t in tensors]),
        rtol=1e-14,
    )
    for t, part in zip(tensors, split(g), strict=True):
        t.grad = torch.tensor(part)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    set_grads(params, g)
    optim.clip_grad_value(params, 0.7)
    np.testing.assert_array_equal(
        np.concatenate([p.grad.reshape(-1) for p in params]),
        np.concatenate([t.grad.numpy().reshape(-1) for t in tensors]),
    )


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_clipping_bounds_are_checked(value):
    params = make_params("vector", initial_values())
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm(params, value)
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value(params, value)
