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
  hyperparameters, and its moment vectors, with the spans of θ it updates (all of θ, or the
  parameters it was given), which a resuming optimizer must match;
* the number of epochs completed;
* the state of ``model.rng`` (``model.rng.bit_generator.state``), which draws the shuffling
  permutations and the dropout masks;
* the :class:`~nn.training.History` so far;
* the state of callbacks that have one (learning-rate schedules, early stopping, best-only
  checkpoints), matched on resume by position and class.

The file is a model file (``nn.load(PATH)`` reads the model alone), written atomically by
:func:`nn.files.save`: its ``training`` section is this JSON::

    {"kind": "chainrule.checkpoint", "version": 1, "epoch": int,
     "rng": {...}, "optimizer": {scalars of state_dict()},
     "optimizer_coverage": [[start, stop], ...],  (optional)
     "history": {"epoch": [...], "history": {name: [...]}},
     "callbacks": {"<position>.<class>": {"json": {...}, "arrays": [names]}},
     "arrays": {key: {"dtype": str, "shape": [...]}}}

and the arrays are stored as ``state.optimizer.<name>`` and ``state.callback.<position>.<name>``.

A checkpoint may come from anyone. Reading one checks every entry of that JSON (types,
shapes, each declared array present and claimed) and raises
:class:`~nn.files.ModelFileError` naming the file for anything malformed, including
callback states their callback rejects. Resuming is all or nothing: the states are loaded
into copies first, and the model, optimizer, callbacks and generator are written only once
everything has loaded. Objects that do not match the saved ones (architecture, optimizer
class or hyperparameters, a schedule's hyperparameters) raise ``ValueError`` instead.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nn.files import ModelFileError, load_with_state, save
from nn.layer import LAYER_TYPES
from nn.training.history import History, StateMismatchError
from optim import Optimizer
from optim._vectors import address

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
        "optimizer_coverage": _coverage(model, optimizer),
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
    path: str | os.PathLike,
    optimizer: Callable | None = None,
    *,
    custom_layers: dict | None = None,
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
    custom_layers : dict, optional
        ``{type name: Layer subclass}`` for layers of your own, as for :func:`nn.load`.

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
    model, state = load_with_state(path, custom_layers=custom_layers)
    info = _parse(state, path, model)
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
        _check_coverage(info, model, opt, path)
        _load_optimizer(opt, info["optimizer"], path)
    return Checkpoint(
        model, opt, info["epoch"], info["history"], info["optimizer"], info["callbacks"]
    )


def restore_checkpoint(
    path: str | os.PathLike, model, optimizer, callbacks: Sequence = ()
) -> Checkpoint:
    """Restore a checkpoint into an existing model, optimizer and callbacks (for resuming).

    The model must have the saved architecture and dtype. Its θ and buffers, its generator
    state, the optimizer's state and the state of each callback whose position and class
    match a saved one are overwritten, all or nothing: every state is first loaded into a
    deep copy of its object (sharing the model, which is not written then), and the live
    objects are written only once all of them have loaded.

    Returns
    -------
    Checkpoint
        With ``model`` and ``optimizer`` the objects passed in.

    Raises
    ------
    ModelFileError
        If the file is damaged or crafted: not a checkpoint, malformed JSON entries, arrays
        that do not fit, callback states their callbacks reject as malformed.
    ValueError
        If the objects passed in do not match the saved ones: another architecture, another
        optimizer class or hyperparameters, a schedule saved with other hyperparameters
        (:class:`~nn.training.StateMismatchError`).
    """
    own = {type(la).__name__: type(la) for la in model.layers}  # the model's own layer classes
    custom = {name: cls for name, cls in own.items() if name not in LAYER_TYPES}
    saved, state = load_with_state(path, custom_layers=custom)
    info = _parse(state, path, saved)
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
    _check_coverage(info, model, optimizer, path)

    _load_states(path, info, model, optimizer, callbacks)
    model.theta[...] = saved.theta
    for layer, saved_layer in zip(model.layers, saved.layers, strict=True):
        for name, array in saved_layer.buffers().items():
            getattr(layer, name)[...] = array
    model.rng.bit_generator.state = probe.state
    return Checkpoint(
        model, optimizer, info["epoch"], info["history"], info["optimizer"], info["callbacks"]
    )


def _load_states(path, info: dict, model, optimizer, callbacks: Sequence) -> None:
    """Load the optimizer's and the callbacks' saved states, all or nothing.

    Every state is loaded into a deep copy first; the live objects are written only once all
    of them have loaded.
    """
    # The copies share the model and the parameters (never written by load_state_dict) and
    # a callback's copy refers to the optimizer's copy.
    shared = {id(model): model}
    shared.update({id(p): p for p in optimizer.params})
    shared.update({id(a): a for pair in optimizer.vectors for a in pair})
    to_load = [(optimizer, info["optimizer"], None)]
    for i, cb in enumerate(callbacks):
        key = f"{i}.{type(cb).__name__}"
        if key in info["callbacks"]:
            to_load.append((cb, info["callbacks"][key], key))
    trials, in_place = {}, []
    for obj, obj_state, key in to_load:
        memo = dict(shared)
        if key is not None:  # a callback: fit's params are shared, the optimizer is the copy
            params = getattr(obj, "params", None)
            memo[id(params)] = params
            memo[id(optimizer)] = trials.get(id(optimizer), optimizer)
        try:
            trial = copy.deepcopy(obj, memo)
        except Exception:  # e.g. a callback holding a lock or an open file
            in_place.append((obj, obj_state, key))
            continue
        _load_state(trial, obj_state, key, path)
        trials[id(obj)] = trial
    # Objects that cannot be copied are loaded last, in place, and put back if one fails.
    undo = []
    try:
        for obj, obj_state, key in in_place:
            previous = obj.state_dict()
            _load_state(obj, obj_state, key, path)
            undo.append((obj, previous))
    except BaseException:
        for obj, previous in reversed(undo):
            obj.load_state_dict(previous)
        raise

    # Everything loaded: write.
    for obj, obj_state, _ in to_load:
        if id(obj) in trials:
            obj.load_state_dict(obj_state)


def _load_state(obj, state: dict, key: str | None, path) -> None:
    """``obj.load_state_dict(state)`` for the optimizer (``key`` None) or callback ``key``.

    A callback's :class:`~nn.training.StateMismatchError` stays one (a user error); its
    other errors mean the saved state is malformed (ModelFileError).
    """
    if key is None:
        _load_optimizer(obj, state, path)
        return
    try:
        obj.load_state_dict(state)
    except StateMismatchError as err:
        raise StateMismatchError(f"{path}: callback {key}: {err}") from err
    except (LookupError, TypeError, ValueError) as err:
        raise ModelFileError(
            f"{path}: the saved state of callback {key!r} is malformed: {err}"
        ) from err


def _load_optimizer(optimizer, state: dict, path) -> None:
    """Load the optimizer state checked by :func:`_parse`: what fails now is a mismatch."""
    try:
        optimizer.load_state_dict(state)
    except ValueError as err:
        raise ValueError(f"{path}: the optimizer does not match the checkpoint's: {err}") from err


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


_TOP_KEYS = {"kind", "version", "epoch", "rng", "optimizer", "history", "callbacks", "arrays"}
_OPTIONAL_KEYS = {"optimizer_coverage"}  # without it, resuming skips the coverage check
_CALLBACK_KEY = re.compile(r"(0|[1-9][0-9]*)\.[A-Za-z_][A-Za-z0-9_]*")
_SCALAR = (bool, int, float, str, type(None))


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse(state: dict, path, model) -> dict:
    """The checkpoint's contents, with every JSON entry checked and arrays put back in place.

    ``model`` is the model read from the same file; the optimizer's buffers must be vectors
    in its dtype, of equal length, at most one entry per parameter.
    """

    def fail(reason: str) -> ModelFileError:
        return ModelFileError(f"{path}: {reason}")

    info, epoch, coverage = _parse_header(state, model, fail)
    arrays = _parse_arrays(state, info, fail)
    unclaimed = set(arrays)
    optimizer_state = _parse_optimizer(info["optimizer"], arrays, unclaimed, model, fail)
    callbacks = _parse_callbacks(info["callbacks"], arrays, unclaimed, fail)
    if unclaimed:
        raise fail(f"the arrays {sorted(unclaimed)} belong to no optimizer or callback state")
    return {
        "epoch": epoch,
        "rng": info["rng"],
        "optimizer": optimizer_state,
        "optimizer_coverage": coverage,
        "callbacks": callbacks,
        "history": _parse_history(info["history"], fail),
    }


def _parse_header(state: dict, model, fail) -> tuple[dict, int, list | None]:
    """The training section, its epoch and the optimizer's coverage of θ, checked."""
    info = state.get("json")
    if not isinstance(info, dict) or info.get("kind") != KIND:
        raise fail(
            "not a training checkpoint (a model file without training state? nn.load reads it)"
        )
    if info.get("version") != VERSION or isinstance(info.get("version"), bool):
        raise fail(f"checkpoint version {info.get('version')!r} is not supported (expected 1)")
    missing = sorted(_TOP_KEYS - set(info))
    unknown = sorted(set(info) - _TOP_KEYS - _OPTIONAL_KEYS)
    if missing or unknown:
        raise fail(f"the training section lacks the keys {missing} or has unknown keys {unknown}")
    epoch = info["epoch"]
    if not _is_count(epoch):
        raise fail(f"the epoch {epoch!r} is not a non-negative integer")
    coverage = info.get("optimizer_coverage")
    if coverage is not None and not (
        isinstance(coverage, list)
        and all(
            isinstance(span, list)
            and len(span) == 2
            and all(_is_count(v) for v in span)
            and span[0] < span[1] <= model.n_parameters
            for span in coverage
        )
    ):
        raise fail(f"the optimizer's coverage {coverage!r:.200} is not a list of [start, stop]")
    if not isinstance(info["rng"], dict):
        raise fail("the generator state is not an object")

    return info, epoch, coverage


def _parse_arrays(state: dict, info: dict, fail) -> dict[str, np.ndarray]:
    """The stored arrays, each as the training section declares it."""
    arrays = state.get("arrays") or {}
    declared = info["arrays"]
    if not isinstance(declared, dict) or set(declared) != set(arrays):
        raise fail(
            f"the arrays declared in the training section ({sorted(declared)!r:.300}) are not "
            f"the ones stored ({sorted(arrays)!r:.300})"
            if isinstance(declared, dict)
            else "the training section's arrays are not an object"
        )
    for key, array in arrays.items():
        spec = {"dtype": array.dtype.name, "shape": list(array.shape)}
        if declared[key] != spec:
            raise fail(f"the array {key!r} is declared as {declared[key]!r:.200}, stored as {spec}")

    return arrays


def _parse_optimizer(raw_optimizer, arrays: dict, unclaimed: set, model, fail) -> dict:
    """The optimizer's state: JSON scalars, a learning rate, a step count, vectors of θ."""
    if not isinstance(raw_optimizer, dict) or not isinstance(raw_optimizer.get("optimizer"), str):
        raise fail("the optimizer state is not an object naming the optimizer class")
    for key, value in raw_optimizer.items():
        if not isinstance(value, _SCALAR):
            raise fail(f"the optimizer state {key!r} is not a JSON scalar: {value!r:.200}")
    lr, step = raw_optimizer.get("lr"), raw_optimizer.get("step")
    if not (_is_number(lr) and math.isfinite(lr) and lr >= 0):
        raise fail(f"the optimizer's learning rate {lr!r} is not a finite number >= 0")
    if not _is_count(step):
        raise fail(f"the optimizer's step count {step!r} is not a non-negative integer")
    optimizer_state = dict(raw_optimizer)
    # a buffer has one entry per parameter the optimizer updates: all of θ, or the part it was
    # given, the same for every buffer (the optimizer's load_state_dict checks the exact size)
    size = max((a.size for k, a in arrays.items() if k.startswith("optimizer.")), default=0)
    for key, array in arrays.items():
        if not key.startswith("optimizer."):
            continue
        name = key[len("optimizer.") :]
        if name in optimizer_state:
            raise fail(f"the optimizer state {name!r} is both a JSON value and an array")
        if not (
            array.ndim == 1
            and array.size == size <= model.n_parameters
            and array.dtype == model.dtype
        ):
            raise fail(
                f"the optimizer buffer {name!r} has shape {array.shape} and dtype {array.dtype}; "
                f"expected a vector of dtype {model.dtype} with one entry per parameter the "
                f"optimizer updates (at most {model.n_parameters}), as long as its other buffers"
            )
        optimizer_state[name] = array
        unclaimed.discard(key)

    return optimizer_state


def _parse_callbacks(raw_callbacks, arrays: dict, unclaimed: set, fail) -> dict:
    """Callback states by ``"<position>.<class name>"``, their arrays put back in place."""
    if not isinstance(raw_callbacks, dict):
        raise fail("the callback states are not an object")
    callbacks, positions = {}, set()
    for key, entry in raw_callbacks.items():
        if not _CALLBACK_KEY.fullmatch(key):
            raise fail(f"the callback key {key!r:.100} is not '<position>.<class name>'")
        position = key.split(".", 1)[0]
        if position in positions:
            raise fail(f"two callback states are saved for position {position}")
        positions.add(position)
        if (
            not isinstance(entry, dict)
            or set(entry) != {"json", "arrays"}
            or not isinstance(entry["json"], dict)
            or not isinstance(entry["arrays"], list)
            or not all(isinstance(name, str) for name in entry["arrays"])
        ):
            raise fail(
                f"the state of callback {key!r} is malformed: expected "
                f'{{"json": {{...}}, "arrays": [names]}}, got {entry!r:.200}'
            )
        cb_state = dict(entry["json"])
        for name in entry["arrays"]:
            member = f"callback.{position}.{name}"
            if name in cb_state:
                raise fail(f"the state {name!r} of callback {key!r} is listed twice")
            if member not in arrays:
                raise fail(f"the array {member!r} of callback {key!r} is missing")
            cb_state[name] = arrays[member]
            unclaimed.discard(member)
        callbacks[key] = cb_state

    return callbacks


def _parse_history(raw_history, fail) -> History:
    """The History so far: ``{"epoch": [int], "history": {name: [number]}}``."""
    if (
        not isinstance(raw_history, dict)
        or set(raw_history) != {"epoch", "history"}
        or not isinstance(raw_history["epoch"], list)
        or not all(_is_count(e) for e in raw_history["epoch"])
        or not isinstance(raw_history["history"], dict)
        or not all(
            isinstance(values, list) and all(_is_number(v) for v in values)
            for values in raw_history["history"].values()
        )
    ):
        raise fail(
            'the history is malformed: expected {"epoch": [integers], "history": '
            f"{{name: [numbers]}}}}, got {raw_history!r:.200}"
        )
    return History(
        history={k: [float(v) for v in vs] for k, vs in raw_history["history"].items()},
        epoch=list(raw_history["epoch"]),
    )


def _check_coverage(info: dict, model, optimizer, path) -> None:
    """Raise ValueError unless ``optimizer`` updates the spans of θ the saved one did."""
    saved, mine = info["optimizer_coverage"], _coverage(model, optimizer)
    if saved is not None and saved != mine:
        raise ValueError(
            f"{path}: the checkpoint's optimizer updated the entries {saved} of θ, "
            f"this one updates {mine}; give it the same parameters"
        )


def _coverage(model, optimizer) -> list[list[int]]:
    """The ``[start, stop)`` spans of θ that the optimizer's vectors update, in order."""
    spans = []
    for data, _ in optimizer.vectors:
        start = (address(data) - address(model.theta)) // model.theta.itemsize
        spans.append([start, start + data.size])
    return spans


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
