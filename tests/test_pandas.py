"""pandas frames as model inputs: nullable dtypes (Float64, Int64) without missing values.

``np.asarray`` turns a frame of nullable columns into an object array, which the array
checks refused as ``dtype object (object)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nn


def _wine():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    return X, y


def _model():
    return nn.Sequential(nn.Standardize(13), nn.Dense(13, 3), seed=0)


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
def test_a_nullable_frame_without_missing_values_trains_and_predicts_as_numpy(dtype):
    X, y = _wine()
    nullable = (X * 100).round().astype(dtype)
    plain = nullable.to_numpy(dtype=np.float64)
    assert np.asarray(nullable).dtype == object  # what the checks used to receive
    results = []
    for X_in, y_in in ((nullable, y.astype("Int64")), (plain, y.to_numpy())):
        model = _model()
        model.layers[0].adapt(plain)
        model.fit(
            X_in, y_in, loss="cross_entropy", optimizer="adam", epochs=2, seed=0, progress=False
        )
        results.append((model.theta.copy(), model.predict(X_in)))
    assert np.array_equal(results[0][0], results[1][0])  # the same training, bit for bit
    assert np.array_equal(results[0][1], results[1][1])


def test_a_nullable_frame_with_missing_values_names_them():
    X, _ = _wine()
    X = X.astype("Float64")
    X.iloc[4, 2] = pd.NA
    with pytest.raises(ValueError, match=r"X has 1 missing value\(s\) \(pd\.NA\).*fill"):
        _model().predict(X)
