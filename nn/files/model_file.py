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
* Layer types come from the closed list :data:`LAYER_TYPES` (the built-in layers and classes
  registered with :func:`nn.register_layer`) and the classes the caller passes as
  ``custom_layers``; nothing named by the file is imported. A layer's config may hold only
  the keyword arguments of that layer's constructor (unknown keys are refused) and every
  value is checked by the constructor. The parameter and buffer shapes come from the
  class's ``state_shapes(config)``, or, for a class that declares none (a layer of your
  own), from a layer built from the config, before any array data is read.
* The description is at most 1 MiB, parsed as strict JSON (no duplicate keys, nesting at
  most 64 deep, no unknown top-level keys, at most 4096 layers).
* The zip container is checked by :mod:`nn.files.archive` before anything is read, and every
  read is capped at the bytes the file actually has.
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

``save`` writes atomically (:mod:`nn.files.atomic`): the target is always either the previous
file or the complete new one.
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
from nn.layer import LAYER_TYPES, Layer

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
        Its layers pass :func:`check_saveable`; its θ and buffers must be finite.
    path : str or PathLike
        The file to write, used exactly as given.
    state : dict, optional
        Extra training state: ``{"json": {...}, "arrays": {key: ndarray}}`` (optimizer moments,
        epoch, RNG), restored by :func:`load_with_state`. Keys are names of letters, digits,
        ``_``, ``.`` and ``-``; arrays have a numeric dtype from :data:`STATE_DTYPES`.

    Raises
    ------
    TypeError
        If ``model`` cannot be saved (see :func:`check_saveable`), ``path`` is not a path, or
        ``state`` is malformed.
    ValueError
        If θ or a buffer holds NaN or ±inf, or ``state`` cannot be stored.
    """
    layers = check_saveable(model)
    path = _check_target(path)
    arrays = _model_arrays(model)
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
    arrays.update({f"state.{key}": array for key, array in state_arrays.items()})
    text = json.dumps(description).encode()
    if len(text) > MAX_DESCRIPTION_BYTES:
        raise ValueError(
            f"The model's description is {len(text)} bytes of JSON; model files allow at most "
            f"{MAX_DESCRIPTION_BYTES} (fewer layers or a smaller `state['json']`)"
        )
    write_archive(path, {"description": np.frombuffer(text, dtype=np.uint8), **arrays})


def check_saveable(model: object) -> list[dict]:
    """Check that ``model`` can be written to a model file; return its layer entries.

    Every layer is either a built-in type, a class registered with :func:`nn.register_layer`,
    or a ``Layer`` subclass of your own whose ``config()`` returns its constructor arguments
    as JSON values. A layer is recorded by its class name and config, so the config must
    rebuild a layer with the same parameter and buffer shapes (checked here, once, by
    ``state_shapes(config)`` or by building a layer from the config). ``fit`` calls this
    before training when it is to write checkpoints.

    Returns
    -------
    list of dict
        ``[{"type": class name, "config": {...}}, ...]``, one per layer.

    Raises
    ------
    TypeError
        Naming the first layer that cannot be saved and why.
    ValueError
        If the model has more than :data:`MAX_LAYERS` layers.
    """
    if not isinstance(model, Sequential):
        raise TypeError(
            "Received an invalid value for `model`, expected a Sequential. "
            f"Received: {type(model).__name__}"
        )
    if len(model.layers) > MAX_LAYERS:
        raise ValueError(
            f"Model files hold at most {MAX_LAYERS} layers; this model has {len(model.layers)}"
        )
    return [_layer_to_save(i, layer) for i, layer in enumerate(model.layers)]


def _layer_to_save(i: int, layer: Layer) -> dict:
    """The entry ``{"type", "config"}`` of ``model.layers[i]``, checked to load back."""
    cls, where = type(layer), f"Cannot save model.layers[{i}], {layer!r}"
    name = cls.__name__
    known = LAYER_TYPES.get(name)
    if known is not None and known is not cls:
        raise TypeError(
            f"{where}: its class name {name!r} is the name of the layer type "
            f"{known.__module__}.{known.__qualname__}, and files record layers by class name; "
            "give the class another name"
        )
    act = getattr(layer, "activation", None)
    if isinstance(act, activations.Activation) and activations.ACTIVATIONS.get(act.name) is not (
        type(act)
    ):
        raise TypeError(
            f"{where}: its activation {type(act).__name__} is not one of the activations "
            f"model files hold by name, {sorted(activations.ACTIVATIONS)}; use activation=None "
            "and put the activation after it as a layer of your own (with config())"
        )
    config = layer.config()
    try:
        config = json.loads(json.dumps(config, allow_nan=False))  # as loading will see it
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{where}: its config() must return the constructor arguments as JSON values "
            f"({err}). Received: {config!r:.200}"
        ) from None
    reason = _config_mismatch(cls, config)
    if reason is not None:
        raise TypeError(
            f"{where}: its config() {config!r:.200} {reason}; config() must return the "
            "constructor arguments as JSON values, e.g. {'factor': 2.0}"
        )
    try:
        params, buffers, _ = _layer_shapes(cls, config)
    except (TypeError, ValueError, KeyError) as err:
        raise TypeError(f"{where}: {name}(**config()) fails: {err}") from None
    actual = (
        {p.name: tuple(p.data.shape) for p in layer.parameters()},
        {key: tuple(np.shape(a)) for key, a in layer.buffers().items()},
    )
    if (params, buffers) != actual:
        raise TypeError(
            f"{where}: a layer built from its config() {config!r:.200} has parameter and "
            f"buffer shapes {(params, buffers)}, but the layer has {actual}; config() must "
            "return every constructor argument that sets a shape"
        )
    return {"type": name, "config": config}


def _layer_shapes(cls: type[Layer], config: dict) -> tuple[dict, dict, Layer | None]:
    """(parameter shapes, buffer shapes, the layer built, or None) of ``cls(**config)``.

    ``cls.state_shapes(config)`` when the class declares them, so nothing is allocated;
    otherwise a layer is built from the config and returned with the shapes it has.
    """
    shapes = cls.state_shapes(config)
    if shapes is not None:
        params, buffers = shapes
        return _shape_dict(params), _shape_dict(buffers), None
    layer = cls(**config)
    params = _shape_dict({p.name: p.data.shape for p in layer.parameters()})
    buffers = _shape_dict({key: np.shape(a) for key, a in layer.buffers().items()})
    return params, buffers, layer


def _shape_dict(shapes: object) -> dict[str, tuple[int, ...]]:
    """``shapes`` as ``{name: tuple of ints}``; ValueError if it is not one."""
    ok = isinstance(shapes, dict) and all(
        isinstance(k, str) and KEY.fullmatch(k) and isinstance(s, (tuple, list))
        for k, s in shapes.items()
    )
    ok = ok and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
        for s in shapes.values()
        for d in s
    )
    if not ok or any(len(s) > MAX_NDIM for s in shapes.values()):
        raise ValueError(
            f"shapes must be a dict of plain names to tuples of at most {MAX_NDIM} "
            f"non-negative ints. Received: {shapes!r:.200}"
        )
    return {k: tuple(int(d) for d in s) for k, s in shapes.items()}


def _config_mismatch(cls: type[Layer], config: dict) -> str | None:
    """Why ``cls(**config)`` does not match the constructor's signature, or None."""
    signature = inspect.signature(cls).parameters
    named = {
        k: p for k, p in signature.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.values())
    unknown = sorted(set(config) - set(named))
    if unknown and not takes_any:
        return f"has unknown config keys {unknown}; expected some of {sorted(named)}"
    missing = [k for k, p in named.items() if p.default is p.empty and k not in config]
    if missing:
        return f"lacks the config keys {missing}"
    return None


def _check_target(path: object):
    """``path`` as a Path whose directory exists and which is not a directory."""
    path = as_path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot save to {str(path)!r}: the directory {str(path.parent)!r} does not exist"
        )
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save to {str(path)!r}: it is a directory")
    return path


def _model_arrays(model: Sequential) -> dict[str, np.ndarray]:
    """θ and the layers' buffers by member name, checked to be finite."""
    _require_finite("θ", model.theta)
    arrays = {"theta": model.theta}
    for i, layer in enumerate(model.layers):
        for name, array in layer.buffers().items():
            _require_finite(f"buffer {name!r} of layer {i}", array)
            arrays[f"buffer.{i}.{name}"] = array
    return arrays


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


def load(path: str | os.PathLike, *, custom_layers: dict | None = None) -> Sequential:
    """Read a model written by :func:`save`; predictions equal the saved model's bitwise.

    Parameters
    ----------
    path : str or PathLike
    custom_layers : dict, optional
        ``{type name: Layer subclass}``: the classes of your own layers the file names
        (Keras's ``custom_objects``), e.g. ``{"Scale": Scale}``. Loading builds only these,
        the built-in layer types and classes registered with :func:`nn.register_layer`;
        nothing named by the file is imported.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a chainrule model file or is damaged (the message names the file
        and the reason), or names a layer type that is neither built in nor given in
        ``custom_layers``. See the module documentation for what is checked.
    """
    model, _ = load_with_state(path, custom_layers=custom_layers)
    return model


def load_with_state(
    path: str | os.PathLike, *, custom_layers: dict | None = None
) -> tuple[Sequential, dict]:
    """Like :func:`load`, also returning the saved training state (``{"json", "arrays"}``)."""
    layer_types = _layer_types(custom_layers)
    with open_archive(path) as archive:
        return _ModelReader(archive, layer_types).read()


def _layer_types(custom_layers: object) -> dict[str, type[Layer]]:
    """The layer types a file may name: the registered ones and ``custom_layers``."""
    if custom_layers is None:
        return dict(LAYER_TYPES)
    if not isinstance(custom_layers, dict):
        raise TypeError(
            "Received an invalid value for `custom_layers`, expected a dict of type names to "
            f"Layer subclasses, e.g. {{'Scale': Scale}}. Received: {custom_layers!r:.200}"
        )
    for name, cls in custom_layers.items():
        if not (isinstance(name, str) and isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(
                "Received an invalid entry in `custom_layers`, expected a type name mapped to "
                f"a Layer subclass. Received: {name!r}: {cls!r}"
            )
        known = LAYER_TYPES.get(name)
        if known is not None and known is not cls:
            raise ValueError(
                f"Received an invalid entry in `custom_layers`: {name!r} is the layer type "
                f"{known.__module__}.{known.__qualname__}, so it cannot name {cls!r}"
            )
    return {**LAYER_TYPES, **custom_layers}


class _ModelReader:
    """Checks one opened archive against its description, then builds the model."""

    def __init__(self, archive: ArchiveReader, layer_types: dict[str, type[Layer]]) -> None:
        self.archive, self.members, self.fail = archive, archive.members, archive.fail
        self.layer_types = layer_types

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
            layers = [
                cls(**config) if layer is None else layer for _, _, (cls, config, layer) in entries
            ]
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
        """(parameter shapes, buffer shapes, (class, config, layer or None)) of entry ``i``.

        The layer is built here only when its class declares no ``state_shapes``.
        """
        if not isinstance(entry, dict) or set(entry) != {"type", "config"}:
            raise self.fail(f"layer {i} is not an object with exactly a type and a config")
        kind, config = entry["type"], entry["config"]
        if not isinstance(kind, str):
            raise self.fail(f"layer {i} has type {kind!r:.100}, which is not a name")
        cls = self.layer_types.get(kind)
        if cls is None:
            name = kind if kind.isidentifier() else "MyLayer"
            raise self.fail(
                f"layer {i} has type {kind!r:.100}, which is not a built-in layer type; if it "
                "is a layer of your own, pass its class: "
                f"nn.load(path, custom_layers={{{kind!r:.100}: {name:.100}}}) "
                "(or register the class with nn.register_layer before loading)"
            )
        if not isinstance(config, dict):
            raise self.fail(f"layer {i} ({kind}) has a config that is not an object")
        reason = _config_mismatch(cls, config)
        if reason is not None:
            raise self.fail(f"layer {i} ({kind}) {reason}")
        try:
            params, buffers, layer = _layer_shapes(cls, config)
        except (TypeError, ValueError, KeyError) as err:
            raise self.fail(f"layer {i} ({kind}) has an invalid config: {err}") from None
        return params, buffers, (cls, config, layer)

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
