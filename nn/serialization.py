"""Model files: one uncompressed ``.npz`` of plain arrays plus a JSON description.

Layout (format ``chainrule.model``, version 1)::

    description.npy        uint8 array: UTF-8 JSON {"format", "version", "dtype",
                           "n_parameters", "layers": [{"type", "config"}, ...], "training"}
    theta.npy              θ, shape (n_parameters,), the model dtype
    buffer.<i>.<name>.npy  non-trainable state of layer i (e.g. Standardize mean/scale)
    state.<key>.npy        optional training state (optimizer moments), see ``save(..., state=)``

Loading never runs code from the file: arrays are read with ``allow_pickle=False``; layer
types come from the closed list :data:`LAYER_TYPES`; members must be stored uncompressed (so
a tiny file cannot declare a huge array); and every member's dtype and shape, read from its
header, are checked against the description before any data is read. Every defect of a file
raises :class:`ModelFileError` naming the file and the reason.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from nn import activations
from nn.container import Sequential
from nn.dropout import Dropout
from nn.layer import Layer
from nn.linear import Dense
from nn.normalization import BatchNorm1d, LayerNorm
from nn.preprocessing import Standardize

FORMAT = "chainrule.model"
VERSION = 1
_MAX_DESCRIPTION_BYTES = 1 << 20

#: The only layer types a model file may name.
LAYER_TYPES: dict[str, type[Layer]] = {
    "Dense": Dense,
    "Standardize": Standardize,
    "Dropout": Dropout,
    "BatchNorm1d": BatchNorm1d,
    "LayerNorm": LayerNorm,
    **{cls.__name__: cls for cls in activations.ACTIVATIONS.values()},
}


class ModelFileError(ValueError):
    """A model file is unreadable, damaged, foreign or inconsistent with its description."""


def save(model: Sequential, path: str | os.PathLike, *, state: dict | None = None) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file, then ``os.replace``).

    A crash or exception mid-write leaves any previous file at ``path`` intact and no
    temporary file behind.

    Parameters
    ----------
    model : Sequential
    path : str or PathLike
        The file to write, used exactly as given.
    state : dict, optional
        Extra training state: ``{"json": {...}, "arrays": {key: ndarray}}`` (optimizer moments,
        epoch, RNG), restored by :func:`load_state`.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"save expects a Sequential model. Received: {type(model).__name__}")
    path = Path(path)
    layers = []
    for layer in model.layers:
        name = type(layer).__name__
        if LAYER_TYPES.get(name) is not type(layer):
            raise TypeError(
                f"Cannot save layer {layer!r}: model files hold only the layer types "
                f"{sorted(LAYER_TYPES)}"
            )
        layers.append({"type": name, "config": layer.config()})
    state = state or {"json": None, "arrays": {}}
    description = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": model.dtype.name,
        "n_parameters": int(model.theta.size),
        "layers": layers,
        "training": state["json"],
    }
    arrays = {
        "description": np.frombuffer(json.dumps(description).encode(), dtype=np.uint8),
        "theta": model.theta,
    }
    for i, layer in enumerate(model.layers):
        for name, array in layer.buffers().items():
            arrays[f"buffer.{i}.{name}"] = array
    for key, array in state["arrays"].items():
        arrays[f"state.{key}"] = np.asarray(array)
    _write_atomically(path, arrays)


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, array in arrays.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(
                            member, np.ascontiguousarray(array), allow_pickle=False
                        )
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def load(path: str | os.PathLike) -> Sequential:
    """Read a model written by :func:`save`; predictions equal the saved model's bitwise.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a chainrule model file or is damaged (the message names the file
        and the reason).
    """
    model, _ = load_with_state(path)
    return model


def load_with_state(path: str | os.PathLike) -> tuple[Sequential, dict]:
    """Like :func:`load`, also returning the saved training state (``{"json", "arrays"}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read(zf, path)
    except ModelFileError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        RuntimeError,
        NotImplementedError,
    ) as err:
        raise ModelFileError(f"{path}: not a readable chainrule model file ({err})") from None


def _read(zf: zipfile.ZipFile, path: Path) -> tuple[Sequential, dict]:
    members = {info.filename: info for info in zf.infolist()}

    def fail(reason: str) -> ModelFileError:
        return ModelFileError(f"{path}: {reason}")

    def member(name: str) -> zipfile.ZipInfo:
        info = members.get(f"{name}.npy")
        if info is None:
            raise fail(f"missing array {name!r}; not a chainrule model file?")
        if info.compress_type != zipfile.ZIP_STORED:
            raise fail(f"array {name!r} is compressed; model files store arrays uncompressed")
        return info

    def read(name: str, dtype: np.dtype, shape: tuple[int, ...] | None) -> np.ndarray:
        """Read array ``name`` after checking its header (``shape=None``: any 1-D length)."""
        info = member(name)
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(f)
            else:
                raise fail(f"array {name!r} has an unsupported .npy version {version}")
            found_shape, fortran, found_dtype = header
            if shape is None and len(found_shape) == 1:
                shape = tuple(found_shape)
            if found_dtype != dtype or tuple(found_shape) != shape or fortran:
                raise fail(
                    f"array {name!r} is {found_dtype}{list(found_shape)}, but the description "
                    f"declares {dtype}{list(shape)}"
                )
            if info.file_size < f.tell() + dtype.itemsize * int(np.prod(shape, dtype=object)):
                raise fail(f"array {name!r} is shorter than its header declares")
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    if member("description").file_size > _MAX_DESCRIPTION_BYTES:
        raise fail("the description is larger than 1 MiB")
    description = _parse_description(read("description", np.dtype(np.uint8), None), fail)
    dtype = np.dtype(description["dtype"])
    declared = []
    for i, entry in enumerate(description["layers"]):
        declared.append(_check_layer_entry(i, entry, fail))
    n_parameters = description["n_parameters"]
    counted = sum(int(np.prod(s, dtype=object)) for shapes, _ in declared for s in shapes.values())
    if counted != n_parameters:
        raise fail(f"the layers declare {counted} parameters, but n_parameters is {n_parameters}")
    theta = read("theta", dtype, (n_parameters,))
    buffers = [
        {name: read(f"buffer.{i}.{name}", dtype, shape) for name, shape in buffer_shapes.items()}
        for i, (_, buffer_shapes) in enumerate(declared)
    ]
    try:
        layers = [LAYER_TYPES[e["type"]](**e["config"]) for e in description["layers"]]
        model = Sequential(*layers, seed=0, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise fail(f"the described architecture is invalid: {err}") from None
    model.theta[...] = theta
    for layer, saved in zip(model.layers, buffers, strict=True):
        for name, array in saved.items():
            getattr(layer, name)[...] = array
    model.eval()
    training = description.get("training")
    state_arrays = {}
    if training is not None:
        for key, spec in training.get("arrays", {}).items():
            state_arrays[key] = read(f"state.{key}", np.dtype(spec["dtype"]), tuple(spec["shape"]))
    return model, {"json": training, "arrays": state_arrays}


def _parse_description(raw: np.ndarray, fail) -> dict:
    try:
        description = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise fail(f"the description is not valid JSON ({err})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise fail("not a chainrule model file (no chainrule.model description)")
    if description.get("version") != VERSION:
        raise fail(
            f"format version {description.get('version')!r} is not supported; this chainrule "
            f"reads version {VERSION}"
        )
    if description.get("dtype") not in ("float32", "float64"):
        raise fail(f"dtype {description.get('dtype')!r} is not float32 or float64")
    n = description.get("n_parameters")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise fail(f"n_parameters {n!r} is not a non-negative integer")
    if not isinstance(description.get("layers"), list) or not description["layers"]:
        raise fail("the description lists no layers")
    return description


def _check_layer_entry(i: int, entry: object, fail) -> tuple[dict, dict]:
    """The parameter and buffer shapes that layer entry ``i`` implies, without building it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise fail(f"layer {i} is not an object with a config")
    kind = entry.get("type")
    cls = LAYER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise fail(f"layer {i} has type {kind!r}, which is not one of {sorted(LAYER_TYPES)}")
    try:
        return cls.state_shapes(entry["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise fail(f"layer {i} ({kind}) has an invalid config: {err}") from None
