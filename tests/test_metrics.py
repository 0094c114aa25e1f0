"""Metrics against hand computations: accuracy (labels, one-hot, one logit), MAE, MSE."""

from __future__ import annotations

import numpy as np
import pytest

import nn
from nn.training.metrics import METRICS, get_metric


def _stream(metric, pred, target, sizes):
    """Feed ``pred``/``target`` in consecutive batches of the given sizes; return result()."""
    metric.reset()
    start = 0
    for size in sizes:
        metric.update(pred[start : start + size], target[start : start + size])
        start += size
    assert start == len(pred)
    return metric.result()


PRED = np.array(
    [[2.0, 1.0, 0.0], [0.1, 0.3, 0.2], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0], [9.0, 1.0, 1.0]],
    dtype=np.float32,
)  # arg-max per row: 0, 1, 2, 2, 0


def test_accuracy_with_integer_labels_counts_argmax_hits():
    labels = np.array([0, 1, 1, 2, 2])  # hits: rows 0, 1, 3 -> 3 of 5
    assert _stream(nn.Accuracy(), PRED, labels, [5]) == pytest.approx(3 / 5)
    assert _stream(nn.Accuracy(), PRED, labels, [2, 2, 1]) == pytest.approx(3 / 5)


def test_accuracy_with_one_hot_rows_equals_the_label_version():
    labels = np.array([0, 1, 1, 2, 2])
    one_hot = np.eye(3)[labels]
    assert _stream(nn.Accuracy(), PRED, one_hot, [3, 2]) == pytest.approx(3 / 5)


def test_binary_accuracy_reads_one_column_as_a_logit():
    logits = np.array([[-2.0], [0.5], [3.0], [-0.1]], dtype=np.float32)  # classes 0, 1, 1, 0
    labels = np.array([0, 1, 0, 1])  # hits: rows 0, 1 -> 2 of 4
    assert _stream(nn.Accuracy(), logits, labels, [4]) == pytest.approx(0.5)
    assert _stream(nn.Accuracy(), logits, labels.reshape(-1, 1).astype(float), [1, 3]) == 0.5
    probabilities = np.array([[0.2], [0.7], [0.9], [0.4]])
    assert _stream(nn.Accuracy(threshold=0.5), probabilities, labels, [4]) == pytest.approx(0.5)


def test_accuracy_rejects_targets_of_another_shape():
    with pytest.raises(ValueError, match=r"accuracy needs predictions of shape \(N, C\)"):
        nn.Accuracy().update(PRED, np.zeros((5, 4)))


def test_mae_and_mse_match_hand_computations_over_uneven_batches():
    pred = np.array([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]], dtype=np.float32)
    target = np.array([[1.5, 2.0], [2.0, 6.0], [0.5, 1.0]])
    # |diffs| = 0.5, 0, 1, 2, 0, 2 -> sum 5.5 over 6 elements; squares 0.25, 0, 1, 4, 0, 4
    assert _stream(get_metric("mae"), pred, target, [1, 2]) == pytest.approx(5.5 / 6)
    assert _stream(get_metric("mse"), pred, target, [2, 1]) == pytest.approx(9.25 / 6)


def test_regression_metrics_accept_one_dimensional_targets_for_one_output():
    pred = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    target = np.array([0.0, 2.0, 1.0])
    assert _stream(get_metric("mae"), pred, target, [3]) == pytest.approx(4 / 3)
    assert _stream(get_metric("mse"), pred, target, [3]) == pytest.approx(10 / 3)


def test_result_is_nan_before_any_update_and_reset_forgets():
    metric = get_metric("accuracy")
    assert np.isnan(metric.result())
    metric.update(PRED, np.zeros(5, dtype=int))
    metric.reset()
    assert np.isnan(metric.result())


@pytest.mark.parametrize("name", ["accuracy", "ACC", "mae", "mean_absolute_error", "mse"])
def test_names_are_case_insensitive_and_give_fresh_instances(name):
    a, b = get_metric(name), get_metric(name)
    assert isinstance(a, METRICS[name.lower()]) and a is not b


def test_metric_instances_are_used_as_given():
    metric = nn.Accuracy(threshold=0.5)
    assert get_metric(metric) is metric


def test_unknown_metric_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="invalid value for `metrics`") as info:
        get_metric("f1")
    for name in ("accuracy", "mae", "mse"):
        assert name in str(info.value)
    assert "'f1'" in str(info.value)
    with pytest.raises(TypeError, match="`metrics`"):
        get_metric(3)


def test_fit_rejects_an_unknown_metric_before_training():
    model = nn.Sequential(nn.Dense(2, 2), seed=0)
    before = model.theta.copy()
    with pytest.raises(ValueError, match="accuracy"):
        model.fit(
            np.zeros((4, 2)),
            np.zeros(4, dtype=int),
            loss="cross_entropy",
            optimizer="sgd",
            epochs=1,
            metrics=["precision"],
            progress=False,
        )
    assert np.array_equal(model.theta, before)


def test_accuracy_rejects_one_dimensional_predictions_with_a_value_error():
    with pytest.raises(ValueError, match=r"predictions of shape \(N, C\).*\(2,\)"):
        nn.training.metrics.Accuracy().update(np.array([0.3, -1.0]), np.array([1, 0]))


@pytest.mark.parametrize("name", ["mae", "mse"])
def test_regression_metrics_refuse_targets_of_another_shape_and_keep_float_targets(name):
    metric = get_metric(name)
    pred = np.arange(6.0).reshape(3, 2)
    for target in (pred.T, pred.ravel()):
        with pytest.raises(ValueError, match=rf"{name} needs targets of the predictions' shape"):
            metric.update(pred, target)
    metric.update(np.array([[0], [0]]), np.array([0.5, 0.7]))  # integer predictions
    assert metric.result() == pytest.approx(0.6 if name == "mae" else (0.25 + 0.49) / 2)


def test_mse_sums_float32_errors_in_float64():
    diff = np.random.default_rng(0).normal(size=(10**6, 1)).astype(np.float32)
    metric = get_metric("mse")
    metric.update(diff, np.zeros(10**6, np.float32))
    exact = float(np.dot(diff.ravel().astype(np.float64), diff.ravel().astype(np.float64))) / 1e6
    assert metric.result() == pytest.approx(exact, rel=1e-12)
