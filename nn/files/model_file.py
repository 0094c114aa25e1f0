"""Model files: one uncompressed ``.npz`` of plain arrays plus a JSON description.

Layout (format ``chainrule.model``, version 1)::

    description.npy        uint8 array: UTF-8 JSON {"format", "version", "dtype",
                           "n_parameters", "layers": [{"type", "config"}, ...],
                           "training", "arrays": {key: {"dtype", "shape"}}}
    theta.npy              θ, shape (n_parameters,), the model dtype
    buffer.<i>.<name>.npy  non-trainable state of layer i (e.g. Standardize mean/scale)
    state.<key>.npy        optional training state (optimizer moments), see ``save(..., state=)``

Opening a file from anyone
--------------------------
Loading never runs code from the file and never allocates more than the file holds:

* Only plain arrays and JSON: arrays are parsed from their ``.npy`` headers by this module
  (dtype, shape and order compared with the description, never ``allow_pickle``), and only
  the numeric dtypes of :data:`STATE_DTYPES` exist in a model file. Nothing is unpickled.
* Layer types come from the closed list :data:`LAYER_TYPES`; a layer's config may hold only
  the keyword arguments of that layer's constructor (unknown keys are refused) and every
  value is checked by the constructor.
* The description is at most 1 MiB, parsed as strict JSON (no duplicate keys, nesting at
  most 64 deep, no unknown top-level keys, at most 4096 layers).
* The zip container is checked before anything is read: at most 16384 members, each named
  from the description (no path separators, no duplicates, no extra members), stored
  uncompressed (so a tiny file cannot declare a huge array) and lying inside the file.
  Every read from the file is capped at the bytes the file actually has, so a forged size
  field cannot make the reader allocate more than the file's size.
* Every array's declared dtype and shape are checked against the description, and its
  byte count against the member's size, *before* any array data is read or any layer is
  built: a file declaring a 10**12-element θ is refused at once.
* The zip CRC of every member is verified as it is read, so a flipped bit in the data is
  caught. θ and the layer buffers must be finite: NaN or ±inf in them are refused (a model
  with non-finite weights predicts nothing useful, and ``save`` refuses to write one).

Every defect of a file raises :class:`ModelFileError` (a ``ValueError``) naming the file and
the reason: truncated, bit-flipped, junk, empty, foreign (a plain ``np.savez`` file, a zip of
text), wrong-version files and directories alike. A missing path raises
``FileNotFoundError``.

Saving atomically, and stale temporary files
--------------------------------------------
:func:`save` writes to a temporary file in the target's directory, named
``.<name>.<pid>.<random>.tmp`` (hidden, obviously temporary, and carrying the id of the
writing process), flushes and fsyncs it, and moves it over the target with ``os.replace``,
which is atomic: the target is always either the previous model or the new one. An
exception while writing removes the temporary file. A process killed outright (SIGKILL,
power loss) cannot clean up, so its temporary file stays behind; it is harmless (it is
never read) and the next :func:`save` to the same path removes every such file whose
writing process no longer runs (see :func:`remove_stale_temporaries`). Temporary files of
running processes, including concurrent saves, are left alone. The liveness check uses
process ids of this host (POSIX only); elsewhere no temporary file is removed.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from typing import Any

import numpy as np

from nn import activations
from nn.container import Sequential
from nn.files.archive import KEY, ArchiveReader, open_archive, write_archive
from nn.files.atomic import as_path
from nn.layer import LAYER_TYPES

FORMAT = "chainrule.model"
VERSION = 1
MAX_DESCRIPTION_BYTES = 1 << 20
MAX_JSON_DEPTH = 64
MAX_LAYERS = 4096
MAX_NDIM = 8

#: The dtypes an array of a model file may have (θ and buffers: the model's float dtype).
STATE_DTYPES = frozenset(
    [
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    ]
)

_TOP_LEVEL_KEYS = {"format", "version", "dtype", "n_parameters", "layers", "training", "arrays"}
_REQUIRED_KEYS = ("format", "version", "dtype", "n_parameters", "layers")


# -- saving ---------------------------------------------------------------------------------


def save(model: Sequential, path: str | os.PathLike, *, state: dict | None = None) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file, then ``os.replace``).

    A crash or exception mid-write leaves any previous file at ``path`` intact; an exception
    leaves no temporary file behind, and a killed process's temporary file is removed by the
    next save to the same path (see the module documentation).

    Parameters
    ----------
    model : Sequential
        Its θ and buffers must be finite.
    path : str or PathLike
        The file to write, used exactly as given.
    state : dict, optional
        Extra training state: ``{"json": {...}, "arrays": {key: ndarray}}`` (optimizer moments,
        epoch, RNG), restored by :func:`load_with_state`. Keys are names of letters, digits,
        ``_``, ``.`` and ``-``; arrays have a numeric dtype from :data:`STATE_DTYPES`.

    Raises
    ------
    TypeError
        If ``model`` is not a Sequential of layer types from :data:`LAYER_TYPES`, ``path`` is
        not a path, or ``state`` is malformed.
    ValueError
        If θ or a buffer holds NaN or ±inf, or ``state`` cannot be stored.
    """
    if not isinstance(model, Sequential):
        raise TypeError(
            "Received an invalid value for `model`, expected a Sequential. "
            f"Received: {type(model).__name__}"
        )
    path = as_path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot save to {str(path)!r}: the directory {str(path.parent)!r} does not exist"
        )
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save to {str(path)!r}: it is a directory")
    layers = []
    for layer in model.layers:
        name = type(layer).__name__
        if LAYER_TYPES.get(name) is not type(layer):
            raise TypeError(
                f"Cannot save layer {layer!r}: model files hold only the layer types "
                f"{sorted(LAYER_TYPES)}"
            )
        act = getattr(layer, "activation", None)
        if act is not None and activations.ACTIVATIONS.get(act.name) is not type(act):
            raise TypeError(
                f"Cannot save layer {layer!r}: its activation {type(act).__name__} is not one "
                f"of the activations model files hold, {sorted(activations.ACTIVATIONS)}"
            )
        layers.append({"type": name, "config": layer.config()})
    _require_finite("θ", model.theta)
    arrays: dict[str, np.ndarray] = {"theta": model.theta}
    for i, layer in enumerate(model.layers):
        for name, array in layer.buffers().items():
            _require_finite(f"buffer {name!r} of layer {i}", array)
            arrays[f"buffer.{i}.{name}"] = array
    training, state_arrays = _check_state(state)
    description = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": model.dtype.name,
        "n_parameters": int(model.theta.size),
        "layers": layers,
        "training": training,
        "arrays": {
            key: {"dtype": a.dtype.name, "shape": list(a.shape)} for key, a in state_arrays.items()
        },
    }
    for key, array in state_arrays.items():
        arrays[f"state.{key}"] = array
    text = json.dumps(description).encode()
    if len(text) > MAX_DESCRIPTION_BYTES:
        raise ValueError(
            f"The model's description is {len(text)} bytes of JSON; model files allow at most "
            f"{MAX_DESCRIPTION_BYTES} (fewer layers or a smaller `state['json']`)"
        )
    if len(layers) > MAX_LAYERS:
        raise ValueError(
            f"Model files hold at most {MAX_LAYERS} layers; this model has {len(layers)}"
        )
    write_archive(path, {"description": np.frombuffer(text, dtype=np.uint8), **arrays})


def _require_finite(what: str, array: np.ndarray) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(
            f"Cannot save a model whose {what} holds NaN or infinity; model files hold only "
            "finite weights (train with a lower learning rate or restore a checkpoint)"
        )


def _check_state(state: object) -> tuple[Any, dict[str, np.ndarray]]:
    """``state`` as (JSON value, {key: array}) after checking keys, dtypes and JSON."""
    if state is None:
        return None, {}
    if not isinstance(state, dict) or set(state) - {"json", "arrays"}:
        raise TypeError(
            "Received an invalid value for `state`, expected a dict with keys 'json' and "
            f"'arrays'. Received: {state!r:.200}"
        )
    arrays = state.get("arrays") or {}
    if not isinstance(arrays, dict):
        raise TypeError(
            "Received an invalid value for `state['arrays']`, expected a dict of arrays. "
            f"Received: {type(arrays).__name__}"
        )
    checked = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise ValueError(
                "Received an invalid key in `state['arrays']`, expected letters, digits, "
                f"'_', '.' and '-' (no path separators). Received: {key!r}"
            )
        array = np.asarray(value)
        if array.dtype.name not in STATE_DTYPES or array.ndim > MAX_NDIM:
            raise TypeError(
                f"Received an invalid value for `state['arrays'][{key!r}]`, expected a "
                f"numeric array of at most {MAX_NDIM} dimensions with a dtype from "
                f"{sorted(STATE_DTYPES)}. Received: dtype {array.dtype}, shape {array.shape}"
            )
        checked[key] = array
    training = state.get("json")
    try:
        json.dumps(training)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"Received an invalid value for `state['json']`, expected JSON data. Received: {err}"
        ) from None
    _check_depth(training, lambda reason: ValueError(f"`state['json']` is {reason}"))
    return training, checked


# -- loading --------------------------------------------------------------------------------


def load(path: str | os.PathLike) -> Sequential:
    """Read a model written by :func:`save`; predictions equal the saved model's bitwise.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a chainrule model file or is damaged (the message names the file
        and the reason). See the module documentation for what is checked.
    """
    model, _ = load_with_state(path)
    return model


def load_with_state(path: str | os.PathLike) -> tuple[Sequential, dict]:
    """Like :func:`load`, also returning the saved training state (``{"json", "arrays"}``)."""
    with open_archive(path) as archive:
        return _ModelReader(archive).read()


class _ModelReader:
    """Checks one opened archive against its description, then builds the model."""

    def __init__(self, archive: ArchiveReader) -> None:
        self.archive, self.members, self.fail = archive, archive.members, archive.fail

    # -- the whole file -----------------------------------------------------------------------
    def read(self) -> tuple[Sequential, dict]:

        # 1. The description: size, strict JSON, schema.
        info = self.members.get("description.npy")
        if info is None:
            raise self.fail("no description; not a chainrule model file")
        if info.file_size > MAX_DESCRIPTION_BYTES + 128:
            raise self.fail(f"the description is {info.file_size} bytes; at most 1 MiB")
        raw = self.archive.data(
            "description", self.archive.header("description", np.dtype(np.uint8), None)
        )
        description = self._parse(raw)
        dtype = np.dtype(description["dtype"])

        # 2. Layer entries: types from the closed list, configs with known keys, shapes.
        entries = [self._layer_entry(i, e) for i, e in enumerate(description["layers"])]
        n_parameters = description["n_parameters"]
        counted = sum(math.prod(s) for params, _, _ in entries for s in params.values())
        if counted != n_parameters:
            raise self.fail(
                f"the layers declare {counted} parameters, but n_parameters is {n_parameters}"
            )
        state_specs = self._state_specs(description.get("arrays", {}))

        # 3. Exactly the members the description implies, every header checked before data.
        wanted: dict[str, tuple[np.dtype, tuple[int, ...]]] = {"theta": (dtype, (n_parameters,))}
        for i, (_, buffers, _) in enumerate(entries):
            for name, shape in buffers.items():
                wanted[f"buffer.{i}.{name}"] = (dtype, shape)
        for key, spec in state_specs.items():
            wanted[f"state.{key}"] = spec
        extra = sorted(set(self.members) - {f"{n}.npy" for n in wanted} - {"description.npy"})
        if extra:
            raise self.fail(f"unexpected members {extra[:5]}; not written by this chainrule?")
        checked = {}
        for name, (dt, shape) in wanted.items():
            checked[name] = self.archive.header(name, dt, shape)

        # 4. Build the model: allocation is bounded by the sizes checked above.
        try:
            layers = [cls(**config) for _, _, (cls, config) in entries]
            model = Sequential(*layers, seed=0, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise self.fail(f"the described architecture is invalid: {err}") from None

        # 5. The data.
        theta = self.archive.data("theta", checked["theta"])
        if not np.isfinite(theta).all():
            raise self.fail("θ holds NaN or infinity; refusing a model with non-finite weights")
        model.theta[...] = theta
        for i, layer in enumerate(model.layers):
            for name in layer.buffers():
                key = f"buffer.{i}.{name}"
                array = self.archive.data(key, checked[key])
                if not np.isfinite(array).all():
                    raise self.fail(f"buffer {name!r} of layer {i} holds NaN or infinity")
                getattr(layer, name)[...] = array
        model.eval()
        state_arrays = {
            key: self.archive.data(f"state.{key}", checked[f"state.{key}"]).copy()
            for key in state_specs
        }
        return model, {"json": description.get("training"), "arrays": state_arrays}

    def _parse(self, raw: np.ndarray) -> dict:
        def no_duplicates(pairs):
            keys = [k for k, _ in pairs]
            if len(set(keys)) != len(keys):
                dup = next(k for k in keys if keys.count(k) > 1)
                raise self.fail(f"the description repeats the key {dup!r}")
            return dict(pairs)

        try:
            description = json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=no_duplicates)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise self.fail(f"the description is not valid JSON ({err})") from None
        except RecursionError:
            raise self.fail("the description's JSON is nested too deeply") from None
        if not isinstance(description, dict) or description.get("format") != FORMAT:
            raise self.fail("not a chainrule model file (no chainrule.model description)")
        version = description.get("version")
        if version != VERSION or isinstance(version, bool):
            raise self.fail(
                f"format version {version!r} is not supported; this chainrule reads version "
                f"{VERSION}"
            )
        unknown = sorted(set(description) - _TOP_LEVEL_KEYS)
        if unknown:
            raise self.fail(f"the description has unknown keys {unknown}")
        missing = [k for k in _REQUIRED_KEYS if k not in description]
        if missing:
            raise self.fail(f"the description lacks the keys {missing}")
        _check_depth(description, self.fail)
        if description["dtype"] not in ("float32", "float64"):
            raise self.fail(f"dtype {description['dtype']!r} is not float32 or float64")
        n = description["n_parameters"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise self.fail(f"n_parameters {n!r} is not a non-negative integer")
        layers = description["layers"]
        if not isinstance(layers, list) or not layers:
            raise self.fail("the description lists no layers")
        if len(layers) > MAX_LAYERS:
            raise self.fail(f"the description lists {len(layers)} layers; at most {MAX_LAYERS}")
        return description

    def _layer_entry(self, i: int, entry: object):
        """(parameter shapes, buffer shapes, (class, config)) of layer entry ``i``."""
        if not isinstance(entry, dict) or set(entry) != {"type", "config"}:
            raise self.fail(f"layer {i} is not an object with exactly a type and a config")
        kind, config = entry["type"], entry["config"]
        cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise self.fail(
                f"layer {i} has type {kind!r}, which is not one of {sorted(LAYER_TYPES)}"
            )
        if not isinstance(config, dict):
            raise self.fail(f"layer {i} ({kind}) has a config that is not an object")
        signature = inspect.signature(cls).parameters
        unknown = sorted(set(config) - set(signature))
        if unknown:
            raise self.fail(
                f"layer {i} ({kind}) has unknown config keys {unknown}; expected some of "
                f"{sorted(signature)}"
            )
        missing = [k for k, p in signature.items() if p.default is p.empty and k not in config]
        if missing:
            raise self.fail(f"layer {i} ({kind}) lacks the config keys {missing}")
        try:
            params, buffers = cls.state_shapes(config)
        except (TypeError, ValueError, KeyError) as err:
            raise self.fail(f"layer {i} ({kind}) has an invalid config: {err}") from None
        return params, buffers, (cls, config)

    def _state_specs(self, specs: object) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        if not isinstance(specs, dict):
            raise self.fail("the description's 'arrays' is not an object")
        out = {}
        for key, spec in specs.items():
            if not KEY.fullmatch(key):
                raise self.fail(f"state array name {key!r} is not a plain name")
            ok = isinstance(spec, dict) and set(spec) == {"dtype", "shape"}
            shape = spec.get("shape") if ok else None
            ok = ok and spec["dtype"] in STATE_DTYPES and isinstance(shape, list)
            ok = ok and len(shape) <= MAX_NDIM
            ok = ok and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            )
            if not ok:
                raise self.fail(
                    f"state array {key!r} is described as {spec!r:.200}; expected "
                    f"{{'dtype': one of {sorted(STATE_DTYPES)}, 'shape': [non-negative ints]}}"
                )
            out[key] = (np.dtype(spec["dtype"]), tuple(shape))
        return out


def _check_depth(value: object, fail) -> None:
    """Raise ``fail(reason)`` if the JSON ``value`` nests more than 64 levels deep."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise fail(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
