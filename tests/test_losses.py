"""Tests of the losses package against independent truths.

* float64 central finite differences of every loss (both reductions, several shapes,
  with and without sample weights, class weights, pos_weight, label smoothing and
  probability targets);
* small examples computed by hand with ``math.log`` / ``math.exp``;
* PyTorch's losses, when PyTorch is installed (those tests skip otherwise);
* the contracts: dtype preservation, owned and reused buffers, untouched caller arrays,
  and every validation error with its message.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

import losses
from losses import L1, MSE, BinaryCrossEntropy, CrossEntropy, Huber, Loss

# -- cases --------------------------------------------------------------------------------
# name -> (factory(reduction) -> Loss, kind of data). Class weights and pos_weight are
# fixed vectors of length 3, so those cases use C = 3 columns.
W3 = np.array([0.3, 1.7, 1.0])
PW3 = np.array([2.0, 0.5, 1.5])

CASES = {
    "mse": (lambda r: MSE(reduction=r), "regression"),
    "l1": (lambda r: L1(reduction=r), "l1"),
    "huber": (lambda r: Huber(delta=0.7, reduction=r), "huber"),
    "bce_logits": (lambda r: BinaryCrossEntropy(reduction=r), "bce_logits"),
    "bce_logits_soft": (lambda r: BinaryCrossEntropy(reduction=r), "bce_logits_soft"),
    "bce_logits_pos_weight": (
        lambda r: BinaryCrossEntropy(pos_weight=PW3, reduction=r),
        "bce_logits_c3",
    ),
    "bce_logits_pos_weight_scalar": (
        lambda r: BinaryCrossEntropy(pos_weight=2.5, reduction=r),
        "bce_logits",
    ),
    "bce_probs": (lambda r: BinaryCrossEntropy(from_logits=False, reduction=r), "bce_probs"),
    "bce_probs_pos_weight": (
        lambda r: BinaryCrossEntropy(from_logits=False, pos_weight=PW3, reduction=r),
        "bce_probs_c3",
    ),
    "ce_labels": (lambda r: CrossEntropy(reduction=r), "ce_labels"),
    "ce_float_labels": (lambda r: CrossEntropy(reduction=r), "ce_float_labels"),
    "ce_labels_smooth": (lambda r: CrossEntropy(label_smoothing=0.2, reduction=r), "ce_labels"),
    "ce_labels_weight": (lambda r: CrossEntropy(weight=W3, reduction=r), "ce_labels_c3"),
    "ce_labels_weight_smooth": (
        lambda r: CrossEntropy(weight=W3, label_smoothing=0.3, reduction=r),
        "ce_labels_c3",
    ),
    "ce_probs": (lambda r: CrossEntropy(reduction=r), "ce_probs"),
    "ce_probs_smooth": (lambda r: CrossEntropy(label_smoothing=0.1, reduction=r), "ce_probs"),
    "ce_probs_weight_smooth": (
        lambda r: CrossEntropy(weight=W3, label_smoothing=0.25, reduction=r),
        "ce_probs_c3",
    ),
}

POINTWISE_SHAPES = [(1,), (1, 3), (6,), (4, 5), (3, 2, 2)]
C3_SHAPES = [(1, 3), (5, 3), (2, 3)]
CE_SHAPES = [(1, 3), (4, 5), (7, 2)]


def shapes_for(kind: str) -> list[tuple[int, ...]]:
    if kind.endswith("_c3"):
        return C3_SHAPES
    if kind.startswith("ce_"):
        return CE_SHAPES
    return POINTWISE_SHAPES


def make_data(kind: str, shape: tuple[int, ...], rng: np.random.Generator):
    """``(pred, target)`` in float64 for a kind of loss, away from kinks and clamps."""
    pred = rng.normal(size=shape)
    if kind in ("regression", "l1", "huber"):
        target = rng.normal(size=shape)
        d = pred - target
        if kind == "l1":  # keep |d| >= 0.05: L1 has a kink at d = 0
            pred = np.where(np.abs(d) < 0.05, pred + 0.1 * np.sign(d + 1e-12), pred)
        if kind == "huber":  # keep |d| away from delta = 0.7 (second derivative jumps)
            pred = np.where(np.abs(np.abs(d) - 0.7) < 0.01, pred + 0.05, pred)
        return pred, target
    if kind.startswith("bce_logits"):
        pred = 2.0 * pred
        if kind == "bce_logits_soft":
            return pred, rng.random(shape)
        return pred, (rng.random(shape) < 0.5).astype(np.float64)
    if kind.startswith("bce_probs"):
        return rng.uniform(0.05, 0.95, size=shape), (rng.random(shape) < 0.5).astype(float)
    n, c = shape
    if kind.startswith("ce_labels"):
        return pred, rng.integers(0, c, size=n)
    if kind == "ce_float_labels":
        return pred, rng.integers(0, c, size=n).astype(np.float64)
    probs = rng.random(shape) + 0.05
    return pred, probs / probs.sum(axis=1, keepdims=True)


def all_cases():
    for name, (_, kind) in CASES.items():
        for shape in shapes_for(kind):
            yield pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape))}")


def numeric_grad(loss: Loss, pred, target, sample_weight, h: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``loss(pred, target, sample_weight)`` in float64."""
    grad = np.zeros_like(pred)
    x = pred.copy()
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = loss(x, target, sample_weight)
        x[i] = old - h
        down = loss(x, target, sample_weight)
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12))


# -- finite differences -------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(("name", "shape"), list(all_cases()))
def test_gradient_matches_finite_differences(name, shape, reduction, weighted):
    factory, kind = CASES[name]
    rng = np.random.default_rng(zlib.crc32(f"{name}{shape}{reduction}{weighted}".encode()))
    pred, target = make_data(kind, shape, rng)
    sw = rng.uniform(0.2, 2.0, size=shape[0]) if weighted else None
    loss = factory(reduction)

    value = loss(pred, target, sw)
    grad = loss.backward().copy()
    assert math.isfinite(value)
    assert grad.shape == pred.shape and grad.dtype == np.float64
    assert rel_error(grad, numeric_grad(loss, pred, target, sw)) < 1e-6


# -- worked examples by hand --------------------------------------------------------------
def test_cross_entropy_2x3_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    labels = np.array([2, 0])
    sm0 = [math.exp(v) / (math.exp(1) + math.exp(2) + math.exp(3)) for v in (1, 2, 3)]
    sm1 = [math.exp(v) / (math.exp(1) + math.exp(0) + math.exp(-1)) for v in (1, 0, -1)]
    l0, l1 = -math.log(sm0[2]), -math.log(sm1[0])

    loss = CrossEntropy()
    assert loss(z, labels) == pytest.approx((l0 + l1) / 2, rel=1e-14)
    expected = np.array([[sm0[0], sm0[1], sm0[2] - 1], [sm1[0] - 1, sm1[1], sm1[2]]]) / 2
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-13, atol=1e-15)

    loss = CrossEntropy(reduction="sum")
    assert loss(z, labels) == pytest.approx(l0 + l1, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), 2 * expected, rtol=1e-13, atol=1e-15)


def test_cross_entropy_weight_and_smoothing_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    labels = np.array([2, 0])
    w = [0.5, 2.0, 4.0]
    eps, c = 0.3, 3
    logp = [
        [v - math.log(math.exp(1) + math.exp(2) + math.exp(3)) for v in (1, 2, 3)],
        [v - math.log(math.exp(1) + math.exp(0) + math.exp(-1)) for v in (1, 0, -1)],
    ]
    total = 0.0
    for n, label in enumerate(labels):
        for k in range(c):
            y = (1 - eps) * (k == label) + eps / c
            total -= w[k] * y * logp[n][k]
    # PyTorch's normalisation: divide by the weights of the targets, w[2] + w[0].
    loss = CrossEntropy(label_smoothing=eps, weight=w)
    assert loss(z, labels) == pytest.approx(total / (w[2] + w[0]), rel=1e-14)
    assert CrossEntropy(label_smoothing=eps, weight=w, reduction="sum")(z, labels) == (
        pytest.approx(total, rel=1e-14)
    )


def test_cross_entropy_probability_targets_by_hand():
    z = np.array([[0.0, math.log(3.0)]])  # softmax = [1/4, 3/4]
    y = np.array([[0.5, 0.5]])
    loss = CrossEntropy()
    assert loss(z, y) == pytest.approx(-0.5 * math.log(0.25) - 0.5 * math.log(0.75))
    np.testing.assert_allclose(loss.backward(), [[0.25 - 0.5, 0.75 - 0.5]], atol=1e-15)


def test_regression_losses_by_hand():
    pred = np.array([[1.0, -2.0], [0.5, 3.0]])
    target = np.array([[0.0, 0.0], [0.5, 1.0]])  # d = [[1, -2], [0, 2]]
    mse = MSE()
    assert mse(pred, target) == pytest.approx((1 + 4 + 0 + 4) / 4)
    np.testing.assert_allclose(mse.backward(), [[0.5, -1.0], [0.0, 1.0]])

    l1 = L1(reduction="sum")
    assert l1(pred, target) == pytest.approx(5.0)
    np.testing.assert_array_equal(l1.backward(), [[1.0, -1.0], [0.0, 1.0]])  # sign(0) = 0

    huber = Huber(delta=1.5)  # |d| = 1 quadratic, 2 linear, 0, 2 linear
    expected = (0.5 * 1 + 1.5 * (2 - 0.75) + 0 + 1.5 * (2 - 0.75)) / 4
    assert huber(pred, target) == pytest.approx(expected)
    np.testing.assert_allclose(huber.backward(), [[0.25, -0.375], [0.0, 0.375]])


def test_huber_is_continuous_at_delta():
    huber = Huber(delta=2.0, reduction="sum")
    assert huber(np.array([2.0]), np.array([0.0])) == pytest.approx(0.5 * 4)
    assert huber.backward()[0] == pytest.approx(2.0)


def test_binary_cross_entropy_by_hand():
    x = np.array([[0.0, 2.0], [-1.0, 3.0]])
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    sig = [[1 / (1 + math.exp(-v)) for v in row] for row in x.tolist()]
    terms = [
        -math.log(sig[0][0]),
        -math.log(1 - sig[0][1]),
        -math.log(sig[1][0]),
        -math.log(sig[1][1]),
    ]
    loss = BinaryCrossEntropy()
    assert loss(x, y) == pytest.approx(sum(terms) / 4, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), (np.array(sig) - y) / 4, rtol=1e-13)

    # pos_weight p_c multiplies the positive term of column c.
    loss = BinaryCrossEntropy(pos_weight=[3.0, 0.5], reduction="sum")
    expected = 3 * terms[0] + terms[1] + 3 * terms[2] + 0.5 * terms[3]
    assert loss(x, y) == pytest.approx(expected, rel=1e-14)

    # Probabilities: the same values from sigmoid(x).
    probs = BinaryCrossEntropy(from_logits=False)
    assert probs(np.array(sig), y) == pytest.approx(sum(terms) / 4, rel=1e-12)


def test_binary_cross_entropy_clamps_log_at_minus_100():
    q = np.array([0.0, 1.0, 0.0, 1.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = BinaryCrossEntropy(from_logits=False, reduction="sum")
    assert loss(q, y) == pytest.approx(200.0)
    # PyTorch's gradient (q - y) / max(q (1 - q), 1e-12).
    np.testing.assert_allclose(loss.backward(), [-1e12, 1e12, 0.0, 0.0])


def test_sample_weight_follows_keras_sum_over_batch_size():
    pred = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])
    target = np.zeros_like(pred)
    sw = np.array([2.0, 0.0, 0.5])
    per_sample = [1 + 4, 9 + 16, 0 + 1]
    weighted = sum(s * v for s, v in zip(sw, per_sample, strict=True))
    assert MSE()(pred, target, sw) == pytest.approx(weighted / 6)  # / number of elements
    assert MSE(reduction="sum")(pred, target, sw) == pytest.approx(weighted)
    loss = MSE()
    loss(pred, target, sw)
    np.testing.assert_allclose(loss.backward(), 2 * pred * sw[:, None] / 6)


def test_cross_entropy_sample_weight_keeps_pytorch_denominator():
    rng = np.random.default_rng(1)
    z, labels = rng.normal(size=(4, 3)), np.array([0, 2, 2, 1])
    sw = np.array([1.0, 2.0, 0.0, 0.5])
    w = np.array([0.5, 1.0, 3.0])
    per_sample = CrossEntropy(weight=w, reduction="sum")
    terms = [per_sample(z[i : i + 1], labels[i : i + 1]) for i in range(4)]
    expected = sum(s * t for s, t in zip(sw, terms, strict=True)) / w[labels].sum()
    assert CrossEntropy(weight=w)(z, labels, sw) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("name", list(CASES))
def test_unit_sample_weights_change_nothing(name):
    factory, kind = CASES[name]
    rng = np.random.default_rng(2)
    pred, target = make_data(kind, shapes_for(kind)[1], rng)
    loss = factory("mean")
    value, grad = loss(pred, target), loss.backward().copy()
    assert loss(pred, target, np.ones(pred.shape[0])) == pytest.approx(value, rel=1e-15)
    np.testing.assert_allclose(loss.backward(), grad, rtol=1e-15)


# -- equivalences and numerical stability -------------------------------------------------
@pytest.mark.parametrize("eps", [0.0, 0.15])
def test_cross_entropy_labels_equal_one_hot_probabilities(eps):
    rng = np.random.default_rng(3)
    z, labels = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
    a, b = CrossEntropy(label_smoothing=eps), CrossEntropy(label_smoothing=eps)
    assert a(z, labels) == pytest.approx(b(z, np.eye(4)[labels]), rel=1e-14)
    np.testing.assert_allclose(a.backward(), b.backward(), atol=1e-16)


def test_bce_probabilities_match_logits():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 2)), rng.random((6, 2))
    q = 1 / (1 + np.exp(-x))
    a, b = BinaryCrossEntropy(), BinaryCrossEntropy(from_logits=False)
    assert a(x, y) == pytest.approx(b(q, y), rel=1e-12)
    # dL/dq · dq/dx = dL/dx
    np.testing.assert_allclose(b.backward() * q * (1 - q), a.backward(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@np.errstate(all="raise")  # benign under/overflow inside the losses must not warn or raise
def test_extreme_logits_stay_finite(dtype):
    x = np.array([[-1000.0, 1000.0], [-50.0, 50.0]], dtype=dtype)
    y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    bce = BinaryCrossEntropy(reduction="sum")
    assert bce(x, y) == pytest.approx(2000.0, rel=1e-6)
    np.testing.assert_allclose(bce.backward(), [[-1.0, 1.0], [0.0, 0.0]], atol=1e-6)

    z = np.array([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0]], dtype=dtype)
    ce = CrossEntropy(reduction="sum")
    assert ce(z, np.array([2, 1])) == pytest.approx(2e4 + math.log(3), rel=1e-6)
    grad = ce.backward()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[0], [1.0, 0.0, -1.0], atol=1e-6)


def test_all_zero_target_weights_give_nan_like_pytorch():
    loss = CrossEntropy(weight=[0.0, 1.0])
    assert math.isnan(loss(np.zeros((2, 2)), np.array([0, 0])))


# -- PyTorch ------------------------------------------------------------------------------
def _torch_loss(torch, name, reduction):
    """PyTorch's loss for a case, with reduction="none" to apply sample weights by hand."""
    nn = torch.nn
    pw3, w3 = torch.tensor(PW3), torch.tensor(W3)
    return {
        "mse": lambda: nn.MSELoss(reduction=reduction),
        "l1": lambda: nn.L1Loss(reduction=reduction),
        "huber": lambda: nn.HuberLoss(reduction=reduction, delta=0.7),
        "bce_logits": lambda: nn.BCEWithLogitsLoss(reduction=reduction),
        "bce_logits_soft": lambda: nn.BCEWithLogitsLoss(reduction=reduction),
        "bce_logits_pos_weight": lambda: nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=pw3),
        "bce_logits_pos_weight_scalar": lambda: nn.BCEWithLogitsLoss(
            reduction=reduction, pos_weight=torch.tensor(2.5, dtype=torch.float64)
        ),
        "bce_probs": lambda: nn.BCELoss(reduction=reduction),
        "ce_labels": lambda: nn.CrossEntropyLoss(reduction=reduction),
        "ce_float_labels": lambda: nn.CrossEntropyLoss(reduction=reduction),
        "ce_labels_smooth": lambda: nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.2),
        "ce_labels_weight": lambda: nn.CrossEntropyLoss(reduction=reduction, weight=w3),
        "ce_labels_weight_smooth": lambda: nn.CrossEntropyLoss(
            reduction=reduction, weight=w3, label_smoothing=0.3
        ),
        "ce_probs": lambda: nn.CrossEntropyLoss(reduction=reduction),
        "ce_probs_smooth": lambda: nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1),
        "ce_probs_weight_smooth": lambda: nn.CrossEntropyLoss(
            reduction=reduction, weight=w3, label_smoothing=0.25
        ),
    }[name]()


TORCH_CASES = [n for n in CASES if n != "bce_probs_pos_weight"]  # BCELoss has no pos_weight


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", TORCH_CASES)
def test_matches_pytorch(name, reduction):
    torch = pytest.importorskip("torch")
    factory, kind = CASES[name]
    rng = np.random.default_rng(5)
    for shape in shapes_for(kind):
        pred, target = make_data(kind, shape, rng)
        loss = factory(reduction)
        value, grad = loss(pred, target), loss.backward()

        p = torch.tensor(pred, requires_grad=True)
        t = torch.tensor(target.astype(np.int64) if kind == "ce_float_labels" else target)
        expected = _torch_loss(torch, name, reduction)(p, t)
        expected.backward()
        assert value == pytest.approx(expected.item(), rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "huber", "bce_logits_pos_weight", "ce_probs_smooth"])
def test_sample_weight_matches_pytorch_unreduced(name, reduction):
    """Keras convention from PyTorch's reduction="none": Σ s_n ℓ_n (/ number of elements)."""
    torch = pytest.importorskip("torch")
    factory, kind = CASES[name]
    rng = np.random.default_rng(6)
    pred, target = make_data(kind, shapes_for(kind)[1], rng)
    sw = rng.uniform(0.0, 2.0, size=pred.shape[0])
    loss = factory(reduction)
    value, grad = loss(pred, target, sw), loss.backward()

    p = torch.tensor(pred, requires_grad=True)
    unreduced = _torch_loss(torch, name, "none")(p, torch.tensor(target))
    s = torch.tensor(sw).reshape((-1,) + (1,) * (unreduced.dim() - 1))
    expected = (unreduced * s).sum()
    if reduction == "mean":
        expected = expected / unreduced.numel()
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-10, atol=1e-14)


# -- contracts: dtype, buffers, caller's arrays -------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("name", list(CASES))
def test_float32_in_float32_out(name, weighted):
    factory, kind = CASES[name]
    rng = np.random.default_rng(7)
    pred64, target = make_data(kind, shapes_for(kind)[1], rng)
    sw = rng.uniform(0.5, 1.5, size=pred64.shape[0]) if weighted else None  # float64
    ref = factory("mean")
    ref_value, ref_grad = ref(pred64, target, sw), ref.backward()

    loss = factory("mean")
    value = loss(pred64.astype(np.float32), target, sw)  # float64 target and weights
    grad = loss.backward()
    assert isinstance(value, float)
    assert grad.dtype == np.float32 and grad.shape == pred64.shape
    assert value == pytest.approx(ref_value, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)
    # Every buffer the loss allocated for this call is float32 (or an integer index).
    for buf in loss._buffers.values():
        assert buf.dtype == np.float32 or np.issubdtype(buf.dtype, np.integer)


@pytest.mark.parametrize("name", list(CASES))
def test_caller_arrays_are_not_modified(name):
    factory, kind = CASES[name]
    rng = np.random.default_rng(8)
    for dtype in (np.float64, np.float32):
        pred, target = make_data(kind, shapes_for(kind)[1], rng)
        pred = pred.astype(dtype)
        if np.issubdtype(target.dtype, np.floating):
            target = target.astype(dtype)
        sw = rng.uniform(0.5, 1.5, size=pred.shape[0]).astype(dtype)
        copies = pred.copy(), target.copy(), sw.copy()
        loss = factory("sum")
        loss(pred, target, sw)
        grad = loss.backward()
        grad *= 7.0  # a caller may scale the returned buffer in place
        loss.backward()
        for original, copy in zip((pred, target, sw), copies, strict=True):
            np.testing.assert_array_equal(original, copy)
        assert not np.shares_memory(grad, pred)


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_buffer_is_owned_and_reused(name):
    factory, kind = CASES[name]
    rng = np.random.default_rng(9)
    shape = shapes_for(kind)[1]
    loss = factory("mean")
    loss(*make_data(kind, shape, rng))
    first = loss.backward()
    kept = first.copy()
    assert loss.backward() is first  # same buffer, same values: backward is repeatable
    np.testing.assert_array_equal(first, kept)
    buffers = {k: id(v) for k, v in loss._buffers.items()}
    loss(*make_data(kind, shape, rng))
    assert loss.backward() is first
    assert {k: id(v) for k, v in loss._buffers.items()} == buffers  # nothing reallocated


def test_new_shape_gets_new_buffer():
    loss = MSE()
    loss(np.ones((2, 3)), np.zeros((2, 3)))
    a = loss.backward()
    loss(np.ones((4, 3)), np.zeros((4, 3)))
    assert loss.backward().shape == (4, 3) and a.shape == (2, 3)


def test_rejected_forward_keeps_previous_state():
    loss = CrossEntropy()
    z = np.array([[1.0, 2.0, 0.5]])
    loss(z, np.array([1]))
    expected = loss.backward().copy()
    with pytest.raises(ValueError):
        loss(np.zeros((1, 3)), np.array([3]))
    np.testing.assert_array_equal(loss.backward(), expected)


def test_forward_accepts_lists():
    assert MSE()([[1.0, 2.0]], [[1.0, 0.0]]) == pytest.approx(2.0)
    assert CrossEntropy()([[0.0, 0.0]], [1]) == pytest.approx(math.log(2))


# -- config, repr, registry ---------------------------------------------------------------
def test_repr_and_config_are_readable_and_json():
    assert repr(MSE()) == "MSE(reduction='mean')"
    assert repr(Huber(delta=0.5, reduction="sum")) == "Huber(delta=0.5, reduction='sum')"
    assert repr(CrossEntropy(label_smoothing=0.1)) == (
        "CrossEntropy(label_smoothing=0.1, weight=None, reduction='mean')"
    )
    assert repr(BinaryCrossEntropy(pos_weight=2)) == (
        "BinaryCrossEntropy(from_logits=True, pos_weight=2.0, reduction='mean')"
    )
    for name in CASES:
        loss = CASES[name][0]("sum")
        cfg = json.loads(json.dumps(loss.config()))
        rebuilt = losses.get(type(loss).__name__, **cfg)
        assert type(rebuilt) is type(loss) and rebuilt.config() == loss.config()


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("mse", MSE),
        ("l1", L1),
        ("huber", Huber),
        ("bce", BinaryCrossEntropy),
        ("binary_crossentropy", BinaryCrossEntropy),
        ("cross_entropy", CrossEntropy),
        ("crossentropy", CrossEntropy),
        ("MSE", MSE),
        ("CrossEntropy", CrossEntropy),
    ],
)
def test_get_maps_names_to_instances(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls and loss.reduction == "mean"


def test_get_passes_instances_and_arguments():
    loss = Huber(delta=2.0)
    assert losses.get(loss) is loss
    assert losses.get("huber", delta=0.25).delta == 0.25
    with pytest.raises(ValueError, match="together with a Loss instance"):
        losses.get(loss, delta=1.0)


def test_get_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"expected one of \(.*'cross_entropy'.*'mse'.*\)"):
        losses.get("hinge")
    with pytest.raises(ValueError, match=r"Received: loss='hinge'"):
        losses.get("hinge")
    with pytest.raises(TypeError, match=r"expected a loss name or a Loss instance"):
        losses.get(3)


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MSE, L1, Huber, BinaryCrossEntropy, CrossEntropy])
def test_unknown_reduction(cls):
    msg = (
        r"Received an invalid value for `reduction`, expected one of 'mean', 'sum'\. "
        r"Received: reduction='avg'"
    )
    with pytest.raises(ValueError, match=msg):
        cls(reduction="avg")
    with pytest.raises(ValueError, match=r"Received: reduction='none'"):
        cls(reduction="none")


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: Huber(delta=-1.0), ValueError, r"`delta`, expected a positive .*delta=-1\.0"),
        (lambda: Huber(delta=0), ValueError, r"`delta`, expected a positive finite number"),
        (lambda: Huber(delta=float("nan")), ValueError, r"`delta`, expected a positive finite"),
        (
            lambda: Huber(delta="1"),
            TypeError,
            r"invalid type for `delta`, expected a positive finite number",
        ),
        (
            lambda: CrossEntropy(label_smoothing=1.0),
            ValueError,
            r"`label_smoothing`, expected a number in \[0, 1\)\. Received: label_smoothing=1\.0",
        ),
        (lambda: CrossEntropy(label_smoothing=-0.1), ValueError, r"label_smoothing=-0\.1"),
        (lambda: CrossEntropy(weight=[1.0, -1.0]), ValueError, r"`weight`, expected finite non"),
        (lambda: CrossEntropy(weight=[[1.0]]), ValueError, r"`weight`, expected a non-empty 1-D"),
        (lambda: CrossEntropy(weight=["a"]), TypeError, r"`weight`, expected a 1-D array"),
        (lambda: BinaryCrossEntropy(pos_weight=-2), ValueError, r"`pos_weight`, expected a non"),
        (lambda: BinaryCrossEntropy(from_logits="yes"), TypeError, r"`from_logits`, expected"),
    ],
)
def test_constructor_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


Z = np.zeros((4, 3))


@pytest.mark.parametrize(
    ("loss", "args", "exc", "match"),
    [
        # shapes
        (
            MSE(),
            (np.zeros((4, 1)), np.zeros(4)),
            ValueError,
            r"`target`, expected the shape of `pred` \(4, 1\)\. Received: target with shape \(4,\)",
        ),
        (L1(), (np.zeros((4, 2)), np.zeros((2, 4))), ValueError, r"shape of `pred`"),
        (
            CrossEntropy(),
            (Z, np.zeros((4, 3, 1))),
            ValueError,
            r"`target`, expected integer labels of shape \(N,\) = \(4,\) or class probabilities "
            r"of shape \(N, C\) = \(4, 3\)\. Received: target with shape \(4, 3, 1\)",
        ),
        (CrossEntropy(), (Z, np.zeros(5, dtype=int)), ValueError, r"shape \(5,\)"),
        (
            CrossEntropy(),
            (np.zeros(4), np.zeros(4, dtype=int)),
            ValueError,
            r"`pred`, expected logits of shape \(N, C\)",
        ),
        (
            CrossEntropy(weight=[1.0, 2.0]),
            (Z, np.zeros(4, dtype=int)),
            ValueError,
            r"expected C = 2 columns to match `weight`",
        ),
        (
            BinaryCrossEntropy(pos_weight=[1.0, 2.0]),
            (Z, Z),
            ValueError,
            r"last axis of length 2 to match `pos_weight`",
        ),
        (MSE(), (np.zeros((0, 2)), np.zeros((0, 2))), ValueError, r"expected a non-empty"),
        # labels
        (
            CrossEntropy(),
            (Z, np.array([0, 1, 3, 2])),
            ValueError,
            r"expected integer class labels in \[0, 3\)\. Received: target\[2\]=3",
        ),
        (
            CrossEntropy(),
            (Z, np.array([0, -1, 1, 2])),
            ValueError,
            r"integer class labels in \[0, 3\)\. Received: target\[1\]=-1",
        ),
        (
            CrossEntropy(),
            (Z, np.array([0.0, 1.0, 1.5, 2.0])),
            ValueError,
            r"integer class labels in \[0, 3\)\. Received: target\[2\]=1\.5",
        ),
        (
            CrossEntropy(),
            (Z, np.array([0.0, np.nan, 1.0, 2.0])),
            ValueError,
            r"Received: target\[1\]=nan",
        ),
        (
            CrossEntropy(),
            (Z, np.array([0.0, np.inf, 1.0, 2.0])),
            ValueError,
            r"`target\[1\]`, expected integer class labels.*target\[1\]=inf",
        ),
        # NaN and inf in targets
        (
            MSE(),
            (Z, np.array([[0, 0, 0], [0, np.nan, 0], [0] * 3, [0] * 3])),
            ValueError,
            r"target contains NaN or infinity \(first at row 1\)",
        ),
        (
            Huber(),
            (Z, np.full((4, 3), np.inf)),
            ValueError,
            r"target contains NaN or infinity \(first at row 0\)",
        ),
        (
            CrossEntropy(),
            (Z, np.full((4, 3), np.nan)),
            ValueError,
            r"target contains NaN or infinity",
        ),
        (
            BinaryCrossEntropy(),
            (Z, np.full((4, 3), np.nan)),
            ValueError,
            r"target contains NaN or infinity",
        ),
        # probabilities
        (
            BinaryCrossEntropy(from_logits=False),
            (Z + 1.5, Z),
            ValueError,
            r"`pred`, expected probabilities in \[0, 1\] with from_logits=False .*max=1\.5",
        ),
        (BinaryCrossEntropy(from_logits=False), (Z - 0.1, Z), ValueError, r"min=-0\.1"),
        (BinaryCrossEntropy(from_logits=False), (Z + np.nan, Z), ValueError, r"min=nan"),
        # dtypes
        (
            MSE(),
            (np.zeros((4, 3), dtype=int), Z),
            TypeError,
            r"`pred`, expected a floating-point array\. Received: pred with dtype int64",
        ),
        (MSE(), (Z, np.full((4, 3), "a")), TypeError, r"`target`, expected an array of real"),
        (CrossEntropy(), (Z, np.zeros(4, dtype=bool)), TypeError, r"dtype bool"),
    ],
)
def test_forward_validation(loss, args, exc, match):
    with pytest.raises(exc, match=match):
        loss(*args)


@pytest.mark.parametrize(
    ("sw", "exc", "match"),
    [
        (
            np.ones(3),
            ValueError,
            r"`sample_weight`, expected shape \(4,\), one weight per sample\. "
            r"Received: sample_weight with shape \(3,\)",
        ),
        (np.ones((4, 1)), ValueError, r"shape \(4, 1\)"),
        (np.array([1.0, np.nan, 1.0, 1.0]), ValueError, r"sample_weight contains NaN or infinity"),
        (np.array(["a"] * 4), TypeError, r"`sample_weight`, expected an array of real"),
    ],
)
@pytest.mark.parametrize("loss", [MSE(), CrossEntropy()], ids=["mse", "cross_entropy"])
def test_sample_weight_validation(loss, sw, exc, match):
    target = Z if isinstance(loss, MSE) else np.zeros(4, dtype=int)
    with pytest.raises(exc, match=match):
        loss(Z, target, sw)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"MSE\.backward\(\) was called before forward\(\)"):
        MSE().backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_unit_sample_weights_is_exactly_the_unweighted_loss(dtype):
    """losses/base.py promises exactness: both paths sum s_n ℓ_n in the same order."""
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(255, 8)) * 3).astype(dtype)
    y = rng.integers(0, 8, 255)
    ce = CrossEntropy()
    assert ce(z, y) == ce(z, y, np.ones(255))


def test_denominator_is_what_the_last_forward_divided_by():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    mse = MSE()
    assert mse.denominator() is None  # no forward yet
    mse(pred, target)
    assert mse.denominator() == 18  # every element
    summed = MSE(reduction="sum")
    summed(pred, target)
    assert summed.denominator() == 1
    ce = CrossEntropy(weight=[1.0, 2.0, 5.0])
    labels = np.array([0, 2, 2, 1, 0, 2])
    value = ce(pred, labels)
    assert ce.denominator() == 1 + 5 + 5 + 2 + 1 + 5  # Σ_n w_label_n, as PyTorch divides
    assert value * ce.denominator() == pytest.approx(
        CrossEntropy(weight=[1.0, 2.0, 5.0], reduction="sum")(pred, labels)
    )
