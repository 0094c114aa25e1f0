"""Loss functions: `forward(pred, target, sample_weight=None) -> float`, `backward()`.

``MSE``, ``L1`` and ``Huber`` live in :mod:`losses.regression`; ``BinaryCrossEntropy`` and
``CrossEntropy`` in :mod:`losses.classification`; the ``Loss`` base class and its
conventions (reductions, sample weights, owned buffers) in :mod:`losses.base`.
"""

from __future__ import annotations

import inspect
from typing import Any

from losses.base import REDUCTIONS, Loss
from losses.classification import BinaryCrossEntropy, CrossEntropy
from losses.regression import L1, MSE, Huber

__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Huber",
    "L1",
    "Loss",
    "MSE",
    "get",
]

#: The loss registry: the names `get` (and fit(loss=...)) accepts, matched case-insensitively.
LOSSES: dict[str, type[Loss]] = {
    "mse": MSE,
    "l1": L1,
    "huber": Huber,
    "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binarycrossentropy": BinaryCrossEntropy,
    "cross_entropy": CrossEntropy,
    "crossentropy": CrossEntropy,
}


def get(loss: str | Loss, **kwargs: Any) -> Loss:
    """Return a loss instance from a name such as ``"mse"``, or the given loss itself.

    Parameters
    ----------
    loss : str or Loss
        A registered name (case-insensitive): ``"mse"``, ``"l1"``, ``"huber"``, ``"bce"`` /
        ``"binary_crossentropy"``, ``"cross_entropy"`` / ``"crossentropy"``, or a class name
        such as ``"BinaryCrossEntropy"``. A ``Loss`` instance is returned unchanged.
    **kwargs
        Constructor arguments for a name, e.g. ``get("huber", delta=0.5)``. With a class
        name this rebuilds a saved loss: ``get(type(loss).__name__, **loss.config())``.

    Returns
    -------
    Loss
    """
    if isinstance(loss, Loss):
        if kwargs:
            raise ValueError(
                "Received constructor arguments together with a Loss instance, expected "
                f"either a name with arguments or an instance alone. Received: "
                f"{loss!r} with {sorted(kwargs)}"
            )
        return loss
    if not isinstance(loss, str):
        raise TypeError(
            "Received an invalid value for `loss`, expected a loss name or a Loss "
            f"instance. Received: loss={loss!r} of type "
            f"{type(loss).__name__}"
        )
    cls = LOSSES.get(loss.lower())
    if cls is None:
        raise ValueError(
            "Received an invalid value for `loss`, expected one of "
            f"{tuple(sorted(LOSSES))}. Received: loss={loss!r}"
        )
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(
            f"Received unexpected arguments for loss {loss!r}, expected some of "
            f"{sorted(accepted)}. Received: {unknown}"
        )
    return cls(**kwargs)
