"""Argument checks shared by optimizers and schedules, with Keras-style error messages.

Every check returns the value converted to a plain Python ``float``, ``int`` or ``bool``: a
NumPy float64 scalar used as a hyperparameter would promote float32 updates to float64.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def invalid(name: str, expected: str, value: Any) -> ValueError:
    """The ValueError for ``name``: what was expected and what was received."""
    return ValueError(
        f"Received an invalid value for `{name}`, expected {expected}. Received: {name}={value!r}"
    )


def _real(name: str, value: Any, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Received an invalid value for `{name}`, expected {expected}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise invalid(name, expected, value)
    return value


def non_negative(name: str, value: Any) -> float:
    """A finite number ``>= 0`` (learning rates, weight decay, eps, ...)."""
    expected = "a non-negative finite number"
    out = _real(name, value, expected)
    if out < 0:
        raise invalid(name, expected, value)
    return out


def positive(name: str, value: Any) -> float:
    """A finite number ``> 0``."""
    expected = "a positive finite number"
    out = _real(name, value, expected)
    if out <= 0:
        raise invalid(name, expected, value)
    return out


def unit_interval(name: str, value: Any, *, closed: bool = False) -> float:
    """A number in ``[0, 1)``, or in ``[0, 1]`` when ``closed``."""
    expected = "a number in [0, 1]" if closed else "a number in [0, 1)"
    out = _real(name, value, expected)
    if not (0.0 <= out <= 1.0) or (out == 1.0 and not closed):
        raise invalid(name, expected, value)
    return out


def _integer(name: str, value: Any, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Received an invalid value for `{name}`, expected {expected}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    return int(value)


def positive_int(name: str, value: Any) -> int:
    """An integer ``>= 1``."""
    out = _integer(name, value, "a positive integer")
    if out < 1:
        raise invalid(name, "a positive integer", value)
    return out


def non_negative_int(name: str, value: Any) -> int:
    """An integer ``>= 0``."""
    out = _integer(name, value, "a non-negative integer")
    if out < 0:
        raise invalid(name, "a non-negative integer", value)
    return out


def boolean(name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy booleans accepted)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(
        f"Received an invalid value for `{name}`, expected True or False. "
        f"Received: {name}={value!r} of type {type(value).__name__}"
    )


def one_of(name: str, value: Any, options: Iterable[str]) -> str:
    """One of the strings ``options``."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise invalid(name, f"one of {listed}", value)
    return value


def plain(value: Any) -> Any:
    """A Python scalar from a 0-d array or NumPy scalar (as read back from an .npz file)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    return value


def state_dict_header(owner: object, state_dict: Any, keys: set[str], kind: str, noun: str) -> None:
    """Check a ``state_dict`` is a mapping with exactly ``keys``, saved from ``owner``'s class.

    ``kind`` is the key holding the class name (``"optimizer"`` or ``"scheduler"``) and
    ``noun`` names the owner in messages.
    """
    cls = type(owner).__name__
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"Received an invalid value for `state_dict`, expected a mapping from "
            f"{cls}.state_dict(). Received: {type(state_dict).__name__}"
        )
    missing = sorted(keys - set(state_dict))
    unexpected = sorted(set(state_dict) - keys)
    if missing or unexpected:
        raise ValueError(
            f"state_dict does not match {cls}: missing keys {missing}, unexpected keys {unexpected}"
        )
    name = plain(state_dict[kind])
    if name != cls:
        raise ValueError(f"state_dict was saved from {name!r}; this {noun} is {cls!r}")
