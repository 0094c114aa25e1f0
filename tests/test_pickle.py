"""A pickled, deep-copied or joblib-loaded Sequential is a working model of its own.

The truth is the original model: the copy predicts the same, its W and b are views into its
own θ (so an optimizer step on θ is what the layers compute with and what ``save`` writes),
and training the copy leaves the original alone.
"""

from __future__ import annotations

import copy
import pickle

import joblib
import numpy as np
import pytest

import nn


def _trained_model() -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    model = nn.Sequential(
        nn.Dense(4, 8, activation="relu"),
        nn.BatchNorm1d(8),
        nn.Dropout(0.1),
        nn.Dense(8, 3),
        seed=0,
    )
    model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, progress=False)
    return model, X, y


def _pickle(model, tmp_path):
    return pickle.loads(pickle.dumps(model))


def _deepcopy(model, tmp_path):
    return copy.deepcopy(model)


def _joblib_memmap(model, tmp_path):
    joblib.dump(model, tmp_path / "model.joblib")
    return joblib.load(tmp_path / "model.joblib", mmap_mode="r")


ROUND_TRIPS = [_pickle, _deepcopy, _joblib_memmap]


@pytest.mark.parametrize("round_trip", ROUND_TRIPS)
def test_copy_predicts_the_same_and_owns_its_theta(round_trip, tmp_path):
    model, X, _ = _trained_model()
    clone = round_trip(model, tmp_path)
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    np.testing.assert_array_equal(clone.theta, model.theta)
    assert clone.theta.flags.writeable and clone.theta_grad.flags.writeable
    assert not np.shares_memory(clone.theta, model.theta)
    for p in clone.parameters():
        assert np.shares_memory(p.data, clone.theta)
        assert np.shares_memory(p.grad, clone.theta_grad)
    np.testing.assert_array_equal(clone.layers[1].running_mean, model.layers[1].running_mean)
    assert clone.layers[1].running_mean.flags.writeable


@pytest.mark.parametrize("round_trip", ROUND_TRIPS)
def test_training_the_copy_changes_what_save_writes(round_trip, tmp_path):
    model, X, y = _trained_model()
    before = model.theta.copy()
    clone = round_trip(model, tmp_path)
    clone.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, progress=False)
    assert not np.array_equal(clone.theta, before)
    np.testing.assert_array_equal(model.theta, before)  # the original is untouched
    # the layers compute with the trained θ: a model loaded from θ predicts the same
    clone.save(tmp_path / "clone.npz")
    loaded = nn.load(tmp_path / "clone.npz")
    np.testing.assert_array_equal(loaded.theta, clone.theta)
    np.testing.assert_array_equal(loaded.predict(X), clone.predict(X))


@pytest.mark.parametrize("round_trip", ROUND_TRIPS)
def test_scratch_buffers_are_not_copied(round_trip, tmp_path):
    model, X, _ = _trained_model()
    model.predict(X)
    assert model.layers[0]._buffers  # forward made scratch buffers
    clone = round_trip(model, tmp_path)
    for layer in clone.layers:
        assert layer._buffers == {}
    # the pickle does not grow with the batch of the last forward
    size = len(pickle.dumps(model))
    model.predict(np.repeat(X, 100, axis=0), batch_size=6000)
    assert len(pickle.dumps(model)) == size
