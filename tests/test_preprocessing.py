"""Standardize: statistics against numpy on the whole array, gradients by finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from nn.layer import Layer
from nn.preprocessing import Standardize


def _data(n=2000, d=6, seed=0):
    """Features with very different means and spreads, one of them constant."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.geomspace(1e-3, 1e3, d) + np.linspace(-500, 500, d)
    X[:, 2] = 0.1  # constant, and not exactly representable
    return X


# -- construction ----------------------------------------------------------------------------


def test_initial_state_is_the_identity():
    layer = Standardize(3)
    assert isinstance(layer, Layer)
    assert layer.mean.shape == (3,) and np.all(layer.mean == 0)
    assert layer.scale.shape == (3,) and np.all(layer.scale == 1)
    assert layer.parameters() == []
    assert layer.buffers() == {"mean": layer.mean, "scale": layer.scale}
    assert layer.buffers()["mean"] is layer.mean
    assert layer.config() == {"n_features": 3}
    assert layer.n_features_in == 3
    assert repr(layer) == "Standardize(n_features=3)"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-2, ValueError),
        (2.0, TypeError),
        (True, TypeError),
        ("3", TypeError),
        (None, TypeError),
    ],
)
def test_constructor_rejects_non_positive_integers(value, error):
    with pytest.raises(error, match=r"n_features.*positive integer"):
        Standardize(value)


def test_output_features():
    layer = Standardize(5)
    assert layer.output_features(5) == 5
    with pytest.raises(ValueError, match=r"expected 5 input features, received 4"):
        layer.output_features(4)


# -- adapt -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adapt_on_a_memmap_matches_numpy_on_the_whole_array(tmp_path, dtype):
    X = _data()
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=dtype, shape=X.shape)
    mm[...] = X
    mm.flush()
    del mm
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")  # read-only: any write would raise
    layer = Standardize(6).adapt(mapped, batch_size=333)

    truth = np.asarray(mapped, dtype=np.float64)
    mean, std = truth.mean(axis=0), truth.std(axis=0)
    varying = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(layer.mean[varying], mean[varying], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.scale[varying], std[varying], rtol=1e-10, atol=1e-10)
    # the constant feature: its exact value, and scale 1 instead of (a rounding error of) 0
    assert layer.mean[2] == truth[0, 2] and layer.scale[2] == 1.0
    assert layer.mean.dtype == np.float64


def test_adapt_reads_a_memmap_chunk_by_chunk(tmp_path):
    rows_read = []

    class Spy(np.memmap):
        def __getitem__(self, key):
            item = super().__getitem__(key)
            rows_read.append(len(np.atleast_1d(item)))
            return item

    X = _data(n=1000)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r").view(Spy)
    Standardize(6).adapt(mapped, batch_size=128)
    assert rows_read and max(rows_read) <= 128 and sum(rows_read) == 1000


@pytest.mark.parametrize("batch_size", [1, 7, 100, 1999, 2000, 10_000])
def test_chunking_does_not_change_the_result(batch_size):
    X = _data()
    whole = Standardize(6).adapt(X, batch_size=len(X))
    chunked = Standardize(6).adapt(X, batch_size=batch_size)
    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked.scale, whole.scale, rtol=1e-12, atol=1e-12)


def test_adapt_is_stable_for_a_large_offset():
    """Σx² − n·mean² would lose every digit here; the chunked merge of deviations keeps them."""
    rng = np.random.default_rng(1)
    X = 1e8 + rng.normal(size=(10_000, 2))
    layer = Standardize(2).adapt(X, batch_size=97)
    np.testing.assert_allclose(layer.scale, X.std(axis=0), rtol=1e-7)
    np.testing.assert_allclose(layer.mean, X.mean(axis=0), rtol=1e-14)


def test_adapt_hand_computed_and_integer_input():
    # feature 0: mean 2, deviations -2, 0, 2 -> variance 8/3; feature 1 constant 7
    X = np.array([[0, 7], [2, 7], [4, 7]], dtype=np.uint8)
    layer = Standardize(2).adapt(X, batch_size=2)
    assert layer.mean.tolist() == [2.0, 7.0]
    assert layer.scale[0] == pytest.approx(np.sqrt(8 / 3), rel=1e-15)
    assert layer.scale[1] == 1.0
    assert np.array_equal(X, [[0, 7], [2, 7], [4, 7]])  # input untouched


def test_adapt_single_row_and_lists():
    layer = Standardize(3).adapt([[1.0, -2.0, 3.5]])
    assert layer.mean.tolist() == [1.0, -2.0, 3.5] and layer.scale.tolist() == [1, 1, 1]


def test_adapt_does_not_modify_a_float64_input():
    X = _data(n=300)
    before = X.copy()
    Standardize(6).adapt(X, batch_size=64)
    assert np.array_equal(X, before)


def test_adapt_writes_in_place_keeping_the_model_dtype():
    layer = Standardize(6)
    # what a model does: rebind the buffers to its dtype
    layer.mean, layer.scale = layer.mean.astype(np.float32), layer.scale.astype(np.float32)
    mean_before, scale_before = layer.mean, layer.scale
    X = _data()
    layer.adapt(X)
    assert layer.mean is mean_before and layer.scale is scale_before
    assert layer.mean.dtype == np.float32
    np.testing.assert_allclose(layer.mean, X.mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.ones((4, 3)), ValueError, r"expected shape \(n_samples, 6\).*\(4, 3\)"),
        (np.ones(6), ValueError, r"expected shape \(n_samples, 6\).*\(6,\)"),
        (np.ones((0, 6)), ValueError, r"n_samples >= 1.*\(0, 6\)"),
        (np.array([["a"] * 6]), TypeError, r"expected real numbers.*<U1"),
    ],
)
def test_adapt_rejects_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        Standardize(6).adapt(X)


def test_adapt_names_the_row_with_nan_and_leaves_state_unchanged():
    X = _data(n=50)
    X[37, 4] = np.nan
    layer = Standardize(6)
    with pytest.raises(ValueError, match=r"finite.*row 37"):
        layer.adapt(X, batch_size=10)
    assert np.all(layer.mean == 0) and np.all(layer.scale == 1)


def test_adapt_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        Standardize(6).adapt(_data(n=10), batch_size=0)


# -- forward and backward ----------------------------------------------------------------------


def _adapted(seed=0):
    return Standardize(6).adapt(_data(n=500, seed=seed))


def test_forward_against_the_formula():
    layer = _adapted()
    x = _data(n=8, seed=3)
    out = layer.forward(x)
    expected = np.empty_like(x)
    for j in range(6):  # feature by feature, written out
        expected[:, j] = (x[:, j] - layer.mean[j]) / layer.scale[j]
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0)
    assert np.all(out[:, 2] == 0)  # the constant feature maps to exactly 0


def test_forward_standardizes_the_training_data():
    X = _data(n=500)
    out = Standardize(6).adapt(X).forward(X)
    varying = [0, 1, 3, 4, 5]
    # feature 0 has offset -500 and spread 1e-3: x − mean rounds at 500·eps, /1e-3 -> ~1e-10
    np.testing.assert_allclose(out.mean(axis=0)[varying], 0, atol=1e-9)
    np.testing.assert_allclose(out.std(axis=0)[varying], 1, rtol=1e-12)


def test_forward_and_backward_against_finite_differences():
    """L = Σ w ⊙ forward(x): backward(w) must equal the central difference of L in each x."""
    layer = _adapted()
    rng = np.random.default_rng(7)
    x = _data(n=4, seed=11)
    w = rng.normal(size=x.shape)

    def loss(x_):
        return float(np.sum(w * layer.forward(x_)))

    layer.forward(x)
    analytic = layer.backward(w).copy()
    numeric = np.empty_like(x)
    for i in np.ndindex(x.shape):
        h = 1e-6 * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        numeric[i] = (loss(xp) - loss(xm)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_backward_computes_the_input_gradient_even_when_not_needed():
    """needs_input_grad is a hint a layer may ignore: the result is ∂L/∂x all the same."""
    layer = _adapted()
    layer.forward(_data(n=3))
    layer.needs_input_grad = False
    np.testing.assert_allclose(layer.backward(np.ones((3, 6))), np.ones((3, 6)) / layer.scale)


def test_outputs_are_owned_buffers_and_inputs_untouched():
    layer = _adapted()
    x = _data(n=5, seed=2)
    x_before = x.copy()
    out1 = layer.forward(x)
    out2 = layer.forward(x)
    assert out1 is out2 and not np.shares_memory(out1, x)
    assert np.array_equal(x, x_before)
    g = np.ones((5, 6))
    grad = layer.backward(g)
    assert not np.shares_memory(grad, g) and np.all(g == 1)


def test_dtype_follows_the_buffers():
    layer = _adapted()
    layer.mean, layer.scale = layer.mean.astype(np.float32), layer.scale.astype(np.float32)
    out = layer.forward(_data(n=3))  # float64 input, float32 model
    assert out.dtype == np.float32
    assert layer.backward(np.ones((3, 6))).dtype == np.float32


def test_forward_rejects_the_wrong_width():
    with pytest.raises(ValueError, match=r"\(batch, 6\).*\(2, 5\)"):
        _adapted().forward(np.ones((2, 5)))


# -- inside a model -------------------------------------------------------------------------------


def test_inside_sequential():
    from nn import Dense, Sequential

    X = np.random.default_rng(4).normal(size=(200, 6)) * [1, 2, 3, 4, 5, 6] + [0, 1, 2, 3, 4, 5]
    scaler = Standardize(6).adapt(X)
    model = Sequential(scaler, Dense(6, 2), seed=0)
    assert model.layers[0].mean.dtype == np.float32  # cast by the model
    dense = model.layers[1]
    expected = ((X - scaler.mean) / scaler.scale) @ dense.W.data + dense.b.data
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="expected 4 input features, received 3"):
        Sequential(Dense(6, 3), Standardize(4))
