"""Metrics accumulated batch by batch: accuracy, mean absolute error, mean squared error."""

from __future__ import annotations

import numpy as np


class Metric:
    """A streaming metric: ``reset()``, ``update(pred, target)`` per batch, ``result()``."""

    name = ""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        raise NotImplementedError

    def result(self) -> float:
        return self._total / self._count if self._count else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Accuracy(Metric):
    """Fraction of correctly classified samples.

    With C ≥ 2 output columns the predicted class is the arg-max (of logits or probabilities)
    and targets are integer labels ``(N,)`` or one-hot / probability rows ``(N, C)``. With one
    output column the model's output is taken as a logit: class 1 where it is above
    ``threshold`` (0; use 0.5 for a model that outputs probabilities).
    """

    name = "accuracy"

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold
        super().__init__()

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        target = np.asarray(target)
        if pred.ndim != 2 or target.shape not in ((len(pred),), pred.shape):
            raise ValueError(
                f"accuracy needs predictions of shape (N, C) and targets of shape (N,) (labels) "
                f"or (N, C) (one-hot rows); received predictions of shape {pred.shape} and "
                f"targets of shape {target.shape}"
            )
        if pred.shape[1] == 1:
            predicted = pred[:, 0] > self.threshold
            labels = target.reshape(len(pred)) > 0.5
        else:
            predicted = pred.argmax(axis=1)
            labels = target.argmax(axis=1) if target.ndim == 2 else target
        self._total += int(np.count_nonzero(predicted == labels))
        self._count += len(pred)


class MeanAbsoluteError(Metric):
    """mean |pred − target| over all elements."""

    name = "mae"

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        diff = _difference(self.name, pred, target)
        self._total += float(np.abs(diff, out=diff).sum())
        self._count += diff.size


class MeanSquaredError(Metric):
    """mean (pred − target)² over all elements."""

    name = "mse"

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        diff = _difference(self.name, pred, target).ravel()
        self._total += float(np.dot(diff, diff))
        self._count += diff.size


def _difference(name: str, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``pred − target`` in float64 (sums of many float32 terms lose digits).

    ``target`` has ``pred``'s shape, or ``(N,)`` against predictions ``(N, 1)``.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    single_column = pred.ndim == 2 and pred.shape[1] == 1 and target.shape == (len(pred),)
    if target.shape != pred.shape and not single_column:
        raise ValueError(
            f"{name} needs targets of the predictions' shape {pred.shape}"
            + (f" or ({len(pred)},)" if pred.ndim == 2 and pred.shape[1] == 1 else "")
            + f"; received targets of shape {target.shape}"
        )
    return np.subtract(pred, target.reshape(pred.shape), dtype=np.float64)


METRICS: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


def get_metric(metric: str | Metric) -> Metric:
    """A fresh metric for a name, or the given instance; ValueError lists valid names."""
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str):
        raise TypeError(
            f"Received an invalid value for `metrics`, expected names from {sorted(METRICS)} "
            f"or Metric instances. Received: {metric!r} of type {type(metric).__name__}"
        )
    if metric.lower() in METRICS:
        return METRICS[metric.lower()]()
    raise ValueError(
        f"Received an invalid value for `metrics`, expected names from {sorted(METRICS)} "
        f"or Metric instances. Received: {metric!r}"
    )
