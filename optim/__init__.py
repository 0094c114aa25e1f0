"""chainrule's optim package: optimizers, learning-rate schedules and gradient clipping.

Optimizers follow ``torch.optim``'s update rules and keyword names. For a model whose
parameters are views into one vector θ (every :class:`~nn.Sequential`) a step is a few
whole-vector operations on θ, in place and in θ's dtype.

>>> opt = optim.get("adam", model.parameters(), lr=1e-3)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from nn.parameter import Parameter
from optim.adagrad import Adagrad, adagrad_update
from optim.adam import Adam, adam_update
from optim.adamw import AdamW
from optim.clip import clip_grad_norm, clip_grad_value
from optim.lbfgs import LBFGS
from optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)
from optim.optimizer import Optimizer
from optim.rmsprop import RMSprop, rmsprop_update
from optim.sgd import SGD, sgd_update

#: Optimizer classes by the lower-case names :func:`get` accepts.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "lbfgs": LBFGS,
}


def get(optimizer: str, params: Iterable[Parameter], **kwargs: Any) -> Optimizer:
    """Build the optimizer called ``optimizer`` (case-insensitive) on ``params``.

    Parameters
    ----------
    optimizer : str
        One of ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, ``"lbfgs"``.
    params : iterable of Parameter
        E.g. ``model.parameters()``.
    **kwargs
        Passed to the optimizer's constructor (``lr=...``, ``momentum=...``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    key = optimizer.lower() if isinstance(optimizer, str) else None
    if key not in OPTIMIZERS:
        valid = ", ".join(repr(k) for k in OPTIMIZERS)
        raise ValueError(
            f"Received an invalid value for `optimizer`, expected one of {valid}. "
            f"Received: optimizer={optimizer!r}"
        )
    cls = OPTIMIZERS[key]
    accepted = set(inspect.signature(cls).parameters) - {"params"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(
            f"Received unexpected arguments for optimizer {optimizer!r}, expected some of "
            f"{sorted(accepted)}. Received: {unknown}"
        )
    return cls(params, **kwargs)


__all__ = [
    "OPTIMIZERS",
    "LBFGS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearWarmup",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "adagrad_update",
    "adam_update",
    "clip_grad_norm",
    "clip_grad_value",
    "get",
    "rmsprop_update",
    "sgd_update",
]
