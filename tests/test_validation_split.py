"""``fit(validation_split=...)`` holds out the last rows before shuffling (Keras's rule): on
class-sorted data it warns that the validation labels miss classes of the training part."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine

import nn


def wine():
    X, y = load_wine(return_X_y=True)
    return X.astype(np.float32), y.astype(np.int64)


def fit(X, y, loss="cross_entropy", n_out=3):
    model = nn.Sequential(nn.Standardize(13).adapt(X), nn.Dense(13, n_out), seed=0)
    return model.fit(
        X, y, loss=loss, optimizer="adam", epochs=1, validation_split=0.2, progress=False
    )


def test_class_sorted_wine_warns_and_names_the_fix():
    X, y = wine()
    assert np.all(np.diff(y) >= 0)  # load_wine is sorted by class: the last 20% are class 2
    with pytest.warns(UserWarning) as record:
        fit(X, y)
    found = [w for w in record if "validation_split" in str(w.message)]
    assert len(found) == 1, [str(w.message) for w in record]
    assert "classes [2], missing [0, 1]" in str(found[0].message)
    assert "shuffle X and y first, or pass validation_data" in str(found[0].message)
    assert found[0].filename == __file__  # points at the caller's fit


def test_shuffled_wine_does_not_warn():
    X, y = wine()
    order = np.random.default_rng(0).permutation(len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fit(X[order], y[order])
    assert "val_loss" in history.history


def test_targets_that_are_not_labels_do_not_warn():
    X, y = wine()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(X, y.astype(np.float32), loss="mse", n_out=1)
