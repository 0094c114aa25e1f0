"""Property tests (hypothesis): gradients of random models, random bad arrays, mutated files.

* Random architectures and shapes pass the gradient check: back-propagation against central
  finite differences in float64 (``nn.gradcheck``), with a loss written here.
* Randomly generated bad arrays only ever raise ValueError or TypeError from ``predict``,
  from the entry of ``fit`` and ``evaluate``, and from ``loss.forward`` — never another
  exception, never a silent result.
* Random mutations of a saved model file (truncation at any offset, bit flips, byte
  overwrites) only ever raise ModelFileError, or — when the mutation hit bytes that carry no
  meaning, such as a zip timestamp — load a model bitwise equal to the saved one; each load
  within a second (hypothesis's deadline).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losses
import nn
from nn.files import ModelFileError

# -- random architectures pass the gradient check -------------------------------------------------


class HalfSSE:
    """L = ½ Σ (pred − t)², ∂L/∂pred = pred − t: the independent loss of the gradient check."""

    def forward(self, pred, target):
        self._grad = pred - target
        return 0.5 * float(np.sum(self._grad * self._grad))

    def backward(self):
        return self._grad.copy()


SMOOTH = ["identity", "sigmoid", "tanh", "elu", "gelu", "softplus", "softmax"]
KINKED = ["relu", "leaky_relu"]  # kinks at 0: finite differences straddle them with prob ~1e-5


@st.composite
def architectures(draw):
    """(layers, n_features, batch): Dense stacks with activations, norms, dropout, standardize."""
    n_features = draw(st.integers(1, 4))
    layers: list[nn.Layer] = []
    if draw(st.booleans()):
        layers.append(nn.Standardize(n_features))
    width = n_features
    for _ in range(draw(st.integers(1, 3))):
        n_out = draw(st.integers(1, 4))
        activation = draw(st.sampled_from(SMOOTH + KINKED + [None]))
        if activation == "leaky_relu":
            activation = nn.LeakyReLU(draw(st.sampled_from([0.01, 0.3, 2.0])))
        if activation == "softmax" and n_out == 1:
            # softmax of one column is the constant 1: every gradient below it is exactly 0,
            # and a batch norm after it divides rounding noise by √ε, which finite differences
            # then report as a (spurious) error
            activation = "tanh"
        layers.append(nn.Dense(width, n_out, activation, bias=draw(st.booleans())))
        width = n_out
        extra = draw(st.sampled_from(["none", "layernorm", "batchnorm", "dropout", "act"]))
        if extra == "layernorm" and width > 2:
            # (two features: x̂ = ±d/√(d² + ε) for their difference d, a step of width √ε
            # whose curvature finite differences cannot resolve when d is small)
            layers.append(nn.LayerNorm(width))
        elif extra == "batchnorm" and width > 1:
            # (one feature: the normalised output ignores the scale and shift of its input, so
            # most gradients below it are 0 in exact arithmetic and finite differences measure
            # rounding noise, as with softmax of one column)
            layers.append(nn.BatchNorm1d(width))
        elif extra == "dropout":
            layers.append(nn.Dropout(draw(st.sampled_from([0.1, 0.5]))))
        elif extra == "act":
            layers.append(nn.ACTIVATIONS[draw(st.sampled_from(SMOOTH))]())
    return layers, n_features, draw(st.integers(3, 6))


@settings(max_examples=40, deadline=None)
@given(architectures(), st.integers(0, 2**32 - 1))
def test_random_architectures_pass_the_gradient_check(arch, seed):
    layers, n_features, batch = arch
    model = nn.Sequential(*layers, seed=seed % 1000, dtype=np.float64)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, n_features))
    standardize = model.layers[0]
    if isinstance(standardize, nn.Standardize):
        standardize.adapt(rng.normal(1.0, 2.0, size=(10, n_features)))
    model.theta[...] += rng.normal(scale=0.1, size=model.theta.size)  # γ, β, b away from 1, 0
    n_out = model.forward(X).shape[1]
    y = rng.normal(size=(batch, n_out))
    report = nn.gradcheck(model, HalfSSE(), X, y, rtol=1e-4, atol=1e-7)
    assert report.passed, str(report)


# -- random bad arrays only raise ValueError or TypeError -----------------------------------------

N_FEATURES = 3


def _model():
    return nn.Sequential(nn.Dense(N_FEATURES, 4, "tanh"), nn.Dense(4, 2), seed=0)


@st.composite
def bad_X(draw):
    """An X that predict/fit must refuse: why, and the array (or array-like)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n = draw(st.integers(1, 40))
    kind = draw(
        st.sampled_from(
            [
                "nan",
                "inf",
                "-inf",
                "0 samples",
                "0 features",
                "0-D",
                "1-D",
                "3-D",
                "complex",
                "str",
                "bytes",
                "object",
                "datetime",
                "features",
                "ragged",
                "None",
                "float16 nan",
                "memmap-like nan at the end",
            ]
        )
    )
    X = rng.normal(size=(n, N_FEATURES))
    if kind in ("nan", "inf", "-inf"):
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, N_FEATURES - 1))] = float(kind)
        return kind, X.astype(draw(st.sampled_from([np.float32, np.float64])))
    if kind == "float16 nan":
        X = X.astype(np.float16)
        X[-1, -1] = np.nan
        return kind, X
    if kind == "memmap-like nan at the end":
        X = np.zeros((draw(st.integers(70_000, 90_000)), N_FEATURES), np.float32)  # > one block
        X[-1, 0] = np.inf
        return kind, X
    if kind == "0 samples":
        return kind, np.zeros((0, N_FEATURES))
    if kind == "0 features":
        return kind, np.zeros((n, 0))
    if kind == "0-D":
        return kind, np.float64(draw(st.floats(allow_nan=True)))
    if kind == "1-D":
        return kind, X[:, 0]
    if kind == "3-D":
        return kind, X.reshape(n, N_FEATURES, 1)
    if kind == "complex":
        return kind, X + 1j
    if kind == "str":
        return kind, X.astype(str)
    if kind == "bytes":
        return kind, X.astype(bytes)
    if kind == "object":
        return kind, X.astype(object)
    if kind == "datetime":
        return kind, np.zeros((n, N_FEATURES), dtype="datetime64[s]")
    if kind == "features":
        return kind, rng.normal(size=(n, draw(st.sampled_from([1, 2, 4, 9]))))
    if kind == "ragged":
        return kind, [[1.0] * N_FEATURES, [1.0] * (N_FEATURES - 1)]
    return kind, None


@st.composite
def bad_labels(draw):
    """Class labels ``y`` for a 2-class CrossEntropy model that fit/evaluate must refuse."""
    n = 12
    y = np.asarray(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    kind = draw(
        st.sampled_from(
            ["out of range", "negative", "fractional", "nan", "length", "3-D", "str", "0-D"]
        )
    )
    i = draw(st.integers(0, n - 1))
    if kind == "out of range":
        y[i] = draw(st.integers(2, 10**6))
    elif kind == "negative":
        y[i] = draw(st.integers(-(10**6), -1))
    elif kind == "fractional":
        y = y.astype(float)
        y[i] += draw(st.sampled_from([0.5, 1e-3, 0.999]))
    elif kind == "nan":
        y = y.astype(float)
        y[i] = np.nan
    elif kind == "length":
        y = y[: draw(st.integers(1, n - 1))]
    elif kind == "3-D":
        y = y.reshape(n, 1, 1)
    elif kind == "str":
        y = y.astype(str)
    else:
        y = np.int64(1)
    return kind, y


GOOD_X = np.random.default_rng(0).normal(size=(12, N_FEATURES))
GOOD_Y = np.arange(12) % 2


def refused(call) -> Exception:
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert type(info.value).__name__ not in ("IndexError", "KeyError", "AttributeError")
    return info.value


FIT = {"loss": "cross_entropy", "optimizer": "sgd", "epochs": 1, "batch_size": 4, "progress": False}


@settings(max_examples=150, deadline=None)
@given(bad_X())
def test_bad_X_is_refused_by_predict_fit_and_evaluate(case):
    kind, X = case
    model = _model()
    theta = model.theta.copy()
    refused(lambda: model.predict(X))
    if kind == "memmap-like nan at the end":  # fit would need labels of the same length
        y = np.zeros(len(X), dtype=int)
    else:
        y = GOOD_Y
    refused(lambda: model.fit(X, y, **FIT))
    refused(lambda: model.evaluate(X, y, loss="cross_entropy"))
    assert model.theta.tobytes() == theta.tobytes()  # nothing trained


@settings(max_examples=100, deadline=None)
@given(bad_labels())
def test_bad_labels_are_refused_at_the_entry_of_fit_and_evaluate(case):
    _, y = case
    model = _model()
    theta = model.theta.copy()
    refused(lambda: model.fit(GOOD_X, y, **FIT))
    refused(lambda: model.evaluate(GOOD_X, y, loss="cross_entropy"))
    assert model.theta.tobytes() == theta.tobytes()


LOSSES = {
    "mse": losses.MSE,
    "l1": losses.L1,
    "huber": losses.Huber,
    "bce": losses.BinaryCrossEntropy,
    "bce_probs": lambda: losses.BinaryCrossEntropy(from_logits=False),
    "cross_entropy": losses.CrossEntropy,
}


@st.composite
def bad_loss_inputs(draw):
    """(loss name, pred, target, sample_weight) that loss.forward must refuse."""
    name = draw(st.sampled_from(sorted(LOSSES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n, c = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    pred = rng.uniform(0.1, 0.9, size=(n, c))
    if name == "cross_entropy":
        target = rng.integers(0, c, size=n)
    elif name.startswith("bce"):
        target = (rng.random((n, c)) < 0.5).astype(float)
    else:
        target = rng.normal(size=(n, c))
    sw = None
    what = draw(
        st.sampled_from(
            [
                "pred int",
                "pred complex",
                "pred str",
                "pred empty",
                "pred 0-D",
                "target nan",
                "target inf",
                "target shape",
                "target str",
                "target object",
                "target complex",
                "weights shape",
                "weights nan",
                "weights negative",
                "target range",
            ]
        )
    )
    if what == "pred int":
        pred = rng.integers(0, 3, size=(n, c))
    elif what == "pred complex":
        pred = pred + 0j
    elif what == "pred str":
        pred = pred.astype(str)
    elif what == "pred empty":
        pred, target = pred[:0], target[:0]
    elif what == "pred 0-D":
        pred = np.float64(0.5)
    elif what in ("target nan", "target inf"):
        target = target.astype(float)
        target.flat[draw(st.integers(0, target.size - 1))] = np.nan if "nan" in what else -np.inf
    elif what == "target shape":
        target = np.zeros(draw(st.sampled_from([(n + 1,), (n, c + 1), (n, c, 1), (c + n + 1,)])))
    elif what == "target str":
        target = target.astype(str)
    elif what == "target object":
        target = target.astype(object)
    elif what == "target complex":
        target = target + 1j
    elif what == "weights shape":
        sw = np.ones(draw(st.sampled_from([n + 1, 1 if n > 1 else 3])))
    elif what == "weights nan":
        sw = np.ones(n)
        sw[-1] = np.nan
    elif what == "weights negative":
        sw = np.ones(n)
        sw[0] = -draw(st.floats(1e-6, 1e6))
    elif name == "cross_entropy":  # target range
        target = target.copy()
        target[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, c, c + 7]))
    elif name.startswith("bce"):
        target.flat[0] = draw(st.sampled_from([-0.5, 1.5, 2.0, -1.0]))
    else:  # regression losses have no target range: refuse by shape instead
        target = target[:, :0]
    return name, pred, target, sw


@settings(max_examples=200, deadline=None)
@given(bad_loss_inputs())
def test_bad_arrays_are_refused_by_loss_forward(case):
    name, pred, target, sw = case
    refused(lambda: LOSSES[name]().forward(pred, target, sw))


# -- random mutations of a saved model file -------------------------------------------------------


def _saved_model_bytes() -> tuple[bytes, nn.Sequential]:
    import tempfile
    from pathlib import Path

    model = nn.Sequential(
        nn.Standardize(3), nn.Dense(3, 4, "relu"), nn.BatchNorm1d(4), nn.Dense(4, 2), seed=5
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.npz"
        nn.save(model, path, state={"json": {"epoch": 2}, "arrays": {"opt.m": np.arange(3.0)}})
        return path.read_bytes(), nn.load(path)


ORIGINAL, MODEL = _saved_model_bytes()
PROBE = np.random.default_rng(9).normal(size=(5, 3))


@pytest.fixture(scope="module")
def mutant_path(tmp_path_factory):
    return tmp_path_factory.mktemp("mutants") / "m.npz"


def check_mutant(path, data: bytes) -> str:
    """Load ``data``: a ModelFileError, or a model bitwise equal to the original."""
    path.write_bytes(data)
    try:
        model = nn.load(path)
    except ModelFileError as err:
        assert str(path) in str(err)
        return "refused"
    assert model.theta.tobytes() == MODEL.theta.tobytes()
    for mine, theirs in zip(model.layers, MODEL.layers, strict=True):
        for name, array in theirs.buffers().items():
            assert getattr(mine, name).tobytes() == array.tobytes()
    assert model.predict(PROBE).tobytes() == MODEL.predict(PROBE).tobytes()
    return "loaded"


MUTATION = settings(
    max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@MUTATION
@given(st.integers(0, len(ORIGINAL) - 1))
def test_truncation_at_any_offset_is_refused(mutant_path, n):
    assert check_mutant(mutant_path, ORIGINAL[:n]) == "refused"


@MUTATION
@given(
    st.lists(
        st.tuples(st.integers(0, len(ORIGINAL) - 1), st.integers(0, 7)), min_size=1, max_size=4
    )
)
def test_bit_flips_are_refused_or_harmless(mutant_path, flips):
    data = bytearray(ORIGINAL)
    for offset, bit in flips:
        data[offset] ^= 1 << bit
    check_mutant(mutant_path, bytes(data))


@MUTATION
@given(st.integers(0, len(ORIGINAL) - 1), st.binary(min_size=1, max_size=64))
def test_byte_overwrites_are_refused_or_harmless(mutant_path, offset, junk):
    data = bytearray(ORIGINAL)
    data[offset : offset + len(junk)] = junk
    check_mutant(mutant_path, bytes(data[: len(ORIGINAL)]))


def test_every_single_bit_flip_of_the_description_and_theta_is_caught(tmp_path):
    """Exhaustive over the data bytes: the zip CRC catches every flip that hypothesis samples."""
    path = tmp_path / "m.npz"
    start = ORIGINAL.find(b"\x93NUMPY")  # the description member's data
    outcomes = {"refused": 0, "loaded": 0}
    for offset in range(start, min(start + 600, len(ORIGINAL))):
        data = bytearray(ORIGINAL)
        data[offset] ^= 0x10
        outcomes[check_mutant(path, bytes(data))] += 1
    assert outcomes["loaded"] == 0, outcomes
