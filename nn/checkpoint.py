"""Training checkpoints: everything needed to continue a run exactly where it stopped.

Write one every epoch with ``fit(..., checkpoint=PATH)`` or
``ModelCheckpoint(PATH, save_training_state=True)``, and continue with
``fit(..., resume_from=PATH)`` (same model architecture, a fresh optimizer of the same kind
and hyperparameters, the same data and callbacks) or inspect it with :func:`load_checkpoint`.
Two epochs, a checkpoint, and two more epochs from it give bitwise the θ and history of four
epochs in one run, with shuffling and dropout, because the checkpoint holds every piece of
state the next epoch reads:

* the model: θ and the layers' buffers (e.g. batch-norm running statistics);
* the optimizer's :meth:`~optim.Optimizer.state_dict`: learning rate, step count and
  hyperparameters, and its moment vectors;
* the number of epochs completed;
* the state of ``model.rng`` (``model.rng.bit_generator.state``), which draws the shuffling
  permutations and the dropout masks;
* the :class:`~nn.training.History` so far;
* the state of callbacks that have one (learning-rate schedules, early stopping, best-only
  checkpoints), matched on resume by position and class.

The file is a model file (``nn.load(PATH)`` reads the model alone), written atomically by
:func:`nn.serialization.save`: its ``training`` section is this JSON::

    {"kind": "chainrule.checkpoint", "version": 1, "epoch": int,
     "rng": {...}, "optimizer": {scalars of state_dict()},
     "history": {"epoch": [...], "history": {name: [...]}},
     "callbacks": {"<position>.<class>": {"json": {...}, "arrays": [names]}},
     "arrays": {key: {"dtype": str, "shape": [...]}}}

and the arrays are stored as ``state.optimizer.<name>`` and ``state.callback.<position>.<name>``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nn.serialization import ModelFileError, load_with_state, save
from nn.training import History

KIND = "chainrule.checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A training checkpoint as read by :func:`load_checkpoint` or :func:`restore_checkpoint`.

    Attributes
    ----------
    model : Sequential
        The model, with ``model.rng`` in the saved state.
    optimizer : Optimizer or None
        The optimizer with the saved state loaded (None when none was asked for).
    epoch : int
        The number of epochs completed; training resumes with epoch index ``epoch``.
    history : History
    optimizer_state : dict
        The optimizer's saved ``state_dict()``.
    callback_states : dict
        Saved callback states by ``"<position>.<class name>"``.
    """

    model: object
    optimizer: object
    epoch: int
    history: History
    optimizer_state: dict = field(default_factory=dict)
    callback_states: dict = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike,
    model,
    optimizer,
    *,
    epoch: int,
    history: History | None = None,
    callbacks: Sequence = (),
) -> None:
    """Write a training checkpoint to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
    model : Sequential
    optimizer : Optimizer
        Its ``state_dict()`` is saved (scalars as JSON, buffers as arrays).
    epoch : int
        The number of epochs completed.
    history : History, optional
    callbacks : sequence of Callback
        Those whose ``state_dict()`` is not empty are saved, keyed by position and class.
    """
    arrays: dict[str, np.ndarray] = {}
    optimizer_json = {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, np.ndarray):
            arrays[f"optimizer.{key}"] = value
        else:
            optimizer_json[key] = _json_value(value, f"optimizer state {key!r}")
    callback_json = {}
    for i, cb in enumerate(callbacks):
        state = cb.state_dict()
        if not state:
            continue
        key = f"{i}.{type(cb).__name__}"
        entry = {"json": {}, "arrays": []}
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"callback.{i}.{name}"] = value
                entry["arrays"].append(name)
            else:
                entry["json"][name] = _json_value(value, f"state {name!r} of {type(cb).__name__}")
        callback_json[key] = entry
    history = history if history is not None else History()
    description = {
        "kind": KIND,
        "version": VERSION,
        "epoch": int(epoch),
        "rng": _json_value(model.rng.bit_generator.state, "the generator state"),
        "optimizer": optimizer_json,
        "history": {
            "epoch": [int(e) for e in history.epoch],
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        },
        "callbacks": callback_json,
        "arrays": {
            key: {"dtype": a.dtype.name, "shape": list(a.shape)} for key, a in arrays.items()
        },
    }
    save(model, path, state={"json": description, "arrays": arrays})


def load_checkpoint(
    path: str | os.PathLike, optimizer: Callable | None = None
) -> Checkpoint:
    """Read a training checkpoint into a new model (and optimizer).

    Parameters
    ----------
    path : str or PathLike
    optimizer : callable, optional
        ``optimizer(params) -> Optimizer``, called with the loaded model's parameters, for
        example ``lambda params: optim.Adam(params, lr=1e-3)`` or ``optim.SGD`` with default
        hyperparameters; the saved state is loaded into it (its class and hyperparameters
        must match the saved ones; the learning rate is the saved one).

    Returns
    -------
    Checkpoint
        To continue training, pass ``checkpoint.model`` and ``checkpoint.optimizer`` to
        ``fit(..., resume_from=path)``, or use them directly.

    Raises
    ------
    ModelFileError
        If the file is damaged or holds no training state (a plain model file).
    ValueError, TypeError
        If the optimizer does not match the saved state.
    """
    from optim import Optimizer

    model, state = load_with_state(path)
    info = _parse(state, path)
    _set_rng(model, info["rng"], path)
    opt = None
    if optimizer is not None:
        if isinstance(optimizer, Optimizer) or not callable(optimizer):
            raise TypeError(
                "Received an invalid value for `optimizer`, expected a callable building an "
                "optimizer on the loaded model's parameters, e.g. "
                f"lambda params: optim.Adam(params, lr=1e-3). Received: {optimizer!r}"
            )
        opt = optimizer(model.parameters())
        if not isinstance(opt, Optimizer):
            raise TypeError(f"`optimizer(params)` must return an optim.Optimizer; got {opt!r}")
        opt.load_state_dict(info["optimizer"])
    return Checkpoint(
        model, opt, info["epoch"], info["history"], info["optimizer"], info["callbacks"]
    )


def restore_checkpoint(
    path: str | os.PathLike, model, optimizer, callbacks: Sequence = ()
) -> Checkpoint:
    """Restore a checkpoint into an existing model, optimizer and callbacks (for resuming).

    The model must have the saved architecture and dtype. Its θ and buffers, its generator
    state, the optimizer's state and the state of each callback whose position and class
    match a saved one are overwritten; everything is checked before the model is touched.

    Returns
    -------
    Checkpoint
        With ``model`` and ``optimizer`` the objects passed in.
    """
    saved, state = load_with_state(path)
    info = _parse(state, path)
    mine, theirs = _architecture(model), _architecture(saved)
    if mine != theirs:
        raise ValueError(
            f"{path}: the checkpoint holds a model {_describe(saved)}, but the model to resume "
            f"is {_describe(model)}; build the same architecture"
        )
    probe = copy.deepcopy(model.rng.bit_generator)
    _set_rng_of(probe, info["rng"], path)
    saved_kind = info["optimizer"]["optimizer"]
    if saved_kind != type(optimizer).__name__:
        raise ValueError(
            f"{path}: the checkpoint was saved with optimizer {saved_kind!r}; resume with a new "
            f"{saved_kind} of the same hyperparameters, not {type(optimizer).__name__}"
        )
    optimizer.load_state_dict(info["optimizer"])
    for i, cb in enumerate(callbacks):
        saved_state = info["callbacks"].get(f"{i}.{type(cb).__name__}")
        if saved_state is not None:
            cb.load_state_dict(saved_state)
    model.theta[...] = saved.theta
    for layer, saved_layer in zip(model.layers, saved.layers, strict=True):
        for name, array in saved_layer.buffers().items():
            getattr(layer, name)[...] = array
    model.rng.bit_generator.state = probe.state
    return Checkpoint(
        model, optimizer, info["epoch"], info["history"], info["optimizer"], info["callbacks"]
    )


# -- helpers ---------------------------------------------------------------------------------


def _json_value(value, what: str):
    """``value`` as plain JSON data (NumPy scalars become Python numbers, tuples lists)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, what) for k, v in value.items()}
    raise TypeError(f"Cannot save {what} in a checkpoint: {type(value).__name__} is not JSON")


def _parse(state: dict, path) -> dict:
    """The checkpoint's contents, checked, with arrays put back in place."""

    def fail(reason: str) -> ModelFileError:
        return ModelFileError(f"{path}: {reason}")

    info = state.get("json")
    if not isinstance(info, dict) or info.get("kind") != KIND:
        raise fail(
            "not a training checkpoint (a model file without training state? nn.load reads it)"
        )
    if info.get("version") != VERSION:
        raise fail(f"checkpoint version {info.get('version')!r} is not supported (expected 1)")
    epoch = info.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise fail(f"the epoch {epoch!r} is not a non-negative integer")
    arrays = state.get("arrays", {})
    optimizer_state = info.get("optimizer")
    if not isinstance(optimizer_state, dict) or "optimizer" not in optimizer_state:
        raise fail("the optimizer state is missing")
    optimizer_state = dict(optimizer_state)
    for key, array in arrays.items():
        if key.startswith("optimizer."):
            optimizer_state[key[len("optimizer.") :]] = array
    callbacks = {}
    raw_callbacks = info.get("callbacks", {})
    if not isinstance(raw_callbacks, dict):
        raise fail("the callback states are not an object")
    for key, entry in raw_callbacks.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("json"), dict):
            raise fail(f"the state of callback {key!r} is malformed")
        position = key.split(".", 1)[0]
        cb_state = dict(entry["json"])
        for name in entry.get("arrays", []):
            member = f"callback.{position}.{name}"
            if member not in arrays:
                raise fail(f"the array {member!r} of callback {key!r} is missing")
            cb_state[name] = arrays[member]
        callbacks[key] = cb_state
    raw_history = info.get("history", {})
    try:
        history = History(
            history={str(k): [float(v) for v in vs] for k, vs in raw_history["history"].items()},
            epoch=[int(e) for e in raw_history["epoch"]],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise fail(f"the history is malformed ({err})") from None
    if not isinstance(info.get("rng"), dict):
        raise fail("the generator state is missing")
    return {
        "epoch": epoch,
        "rng": info["rng"],
        "optimizer": optimizer_state,
        "callbacks": callbacks,
        "history": history,
    }


def _set_rng_of(bit_generator, rng_state: dict, path) -> None:
    expected = type(bit_generator).__name__
    if rng_state.get("bit_generator") != expected:
        raise ModelFileError(
            f"{path}: the generator state is for {rng_state.get('bit_generator')!r}, but the "
            f"model's generator is {expected}"
        )
    try:
        bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ModelFileError(f"{path}: the generator state is invalid ({err})") from None


def _set_rng(model, rng_state: dict, path) -> None:
    _set_rng_of(model.rng.bit_generator, rng_state, path)


def _architecture(model) -> tuple:
    """The dtype and the layers' types and configs, as they read back from JSON."""
    layers = [(type(la).__name__, json.loads(json.dumps(la.config()))) for la in model.layers]
    return model.dtype.name, layers


def _describe(model) -> str:
    layers = ", ".join(repr(la) for la in model.layers)
    return f"[{layers}] ({model.dtype.name})"
