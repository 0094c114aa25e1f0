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
import re
import secrets
import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

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
_MAX_JSON_DEPTH = 64
_MAX_LAYERS = 4096
_MAX_MEMBERS = 16384
_MAX_NDIM = 8
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

#: The only layer types a model file may name.
LAYER_TYPES: dict[str, type[Layer]] = {
    "Dense": Dense,
    "Standardize": Standardize,
    "Dropout": Dropout,
    "BatchNorm1d": BatchNorm1d,
    "LayerNorm": LayerNorm,
    **{cls.__name__: cls for cls in activations.ACTIVATIONS.values()},
}

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


class ModelFileError(ValueError):
    """A model file is unreadable, damaged, foreign or inconsistent with its description.

    The message names the file and the reason. Raised by :func:`load` for every defect of a
    file's content; a missing path raises ``FileNotFoundError`` instead.
    """


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
    path = _as_path(path)
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
    if len(text) > _MAX_DESCRIPTION_BYTES:
        raise ValueError(
            f"The model's description is {len(text)} bytes of JSON; model files allow at most "
            f"{_MAX_DESCRIPTION_BYTES} (fewer layers or a smaller `state['json']`)"
        )
    if len(layers) > _MAX_LAYERS:
        raise ValueError(
            f"Model files hold at most {_MAX_LAYERS} layers; this model has {len(layers)}"
        )
    _write_atomically(path, {"description": np.frombuffer(text, dtype=np.uint8), **arrays})


def _as_path(path: object) -> Path:
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise TypeError(
            "Received an invalid value for `path`, expected a str or os.PathLike. "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    fspath = os.fspath(path)
    if not isinstance(fspath, str) or not fspath:
        raise TypeError(
            f"Received an invalid value for `path`, expected a file name. Received: {path!r}"
        )
    return Path(fspath)


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
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                "Received an invalid key in `state['arrays']`, expected letters, digits, "
                f"'_', '.' and '-' (no path separators). Received: {key!r}"
            )
        array = np.asarray(value)
        if array.dtype.name not in STATE_DTYPES or array.ndim > _MAX_NDIM:
            raise TypeError(
                f"Received an invalid value for `state['arrays'][{key!r}]`, expected a "
                f"numeric array of at most {_MAX_NDIM} dimensions with a dtype from "
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


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed zip next to ``path``, then ``os.replace`` it."""

    def write_zip(raw: BinaryIO) -> None:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, array in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(
                        member, np.ascontiguousarray(array), allow_pickle=False
                    )

    write_atomically(path, write_zip)


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a new file next to ``path``, fsync it, then ``os.replace`` it.

    Readers of ``path`` see the old file or the complete new one, never a part; if ``write``
    raises, the temporary file is removed and ``path`` is left as it was. Temporaries that
    killed writers left behind are removed first (see the module documentation).
    """
    path = Path(path)
    directory = path.parent
    remove_stale_temporaries(path)
    while True:
        tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:  # O_EXCL: never follow or reuse an existing name; 0o666 & ~umask as a new file
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as raw:
            write(raw)
            raw.flush()
            os.fsync(raw.fileno())
        try:  # keep the permissions of the file being replaced
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed saves to ``path`` left behind.

    Those are the files ``.<name>.<pid>.<random>.tmp`` next to ``path`` whose process ``pid``
    no longer runs on this host. :func:`save` calls this before it writes. On systems without
    POSIX process ids nothing is removed.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = _as_path(path)
    if os.name != "posix":
        return []
    pattern = re.compile(re.escape(f".{path.name}.") + r"([0-9]+)\.[0-9a-f]{8}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # it exists under another user, or we cannot tell: keep its file
    return True


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
    path = _as_path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {str(path)!r}")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a chainrule model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: is not a regular file, not a chainrule model file")
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            capped = _CappedReader(raw, size)
            _check_end_record(capped, size, path)
            with zipfile.ZipFile(capped) as zf:
                return _Reader(zf, path, size).read()
        except ModelFileError:
            raise
        except Exception as err:  # any other defect of the bytes: one documented error type
            raise ModelFileError(
                f"{path}: damaged or not a chainrule model file ({type(err).__name__}: {err})"
            ) from err


class _CappedReader:
    """A read-only, seekable view of a file that never reads past the size it had at open.

    ``zipfile`` trusts the sizes written in the archive; reading through this wrapper means
    a forged size can at most make it read (and allocate) what the file actually holds.
    """

    def __init__(self, raw, size: int) -> None:
        self._raw, self._size = raw, size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._raw.tell())
        if n is None or n < 0 or n > left:
            n = left
        return self._raw.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


def _fail(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(f"{path}: {reason}")


def _check_end_record(f: _CappedReader, size: int, path: Path) -> None:
    """Refuse archives that declare more members than a model file has, before zipfile
    builds one object per member."""
    if size == 0:
        raise _fail(path, "the file is empty; not a chainrule model file")
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _fail(
            path,
            "not a zip archive (no end-of-central-directory record); not a chainrule model file",
        )
    _, _, _, _, n_members, cd_size, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    if n_members == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        (offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        if offset + 56 > size:
            raise _fail(path, "the zip64 end record lies outside the file")
        f.seek(offset)
        record = f.read(56)
        if record[:4] != b"PK\x06\x06":
            raise _fail(path, "the zip64 end record is damaged")
        n_members, cd_size = struct.unpack("<QQ", record[32:48])
    if n_members > _MAX_MEMBERS:
        raise _fail(
            path,
            f"the archive declares {n_members} members; model files have at most {_MAX_MEMBERS}",
        )
    if cd_size > size:
        raise _fail(
            path, f"the zip directory declares {cd_size} bytes, more than the file's {size}"
        )
    f.seek(0)


class _Reader:
    """Checks one opened archive against its description, then reads it."""

    def __init__(self, zf: zipfile.ZipFile, path: Path, size: int) -> None:
        self.zf, self.path, self.size = zf, path, size

    def fail(self, reason: str) -> ModelFileError:
        return _fail(self.path, reason)

    # -- the container ----------------------------------------------------------------------
    def _members(self) -> dict[str, zipfile.ZipInfo]:
        infos = self.zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise self.fail(f"the archive holds {len(infos)} members; at most {_MAX_MEMBERS}")
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if "/" in name or "\\" in name:
                raise self.fail(
                    f"member {name!r} has a path separator; model files hold only flat members"
                )
            if name != info.orig_filename:
                raise self.fail(f"member name {info.orig_filename!r} is malformed")
            if name in members:
                raise self.fail(f"member {name!r} appears twice; not a file written by chainrule")
            if not name.endswith(".npy") or not _KEY.fullmatch(name[:-4]):
                raise self.fail(f"unexpected member {name!r}; not a chainrule model file?")
            if info.flag_bits & 0x1:
                raise self.fail(f"member {name!r} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                raise self.fail(
                    f"member {name!r} is compressed; model files store arrays uncompressed"
                )
            if info.compress_size != info.file_size:
                raise self.fail(
                    f"member {name!r} declares {info.file_size} bytes but stores "
                    f"{info.compress_size}; the file is damaged"
                )
            if info.header_offset + info.compress_size > self.size:
                raise self.fail(
                    f"member {name!r} declares {info.file_size} bytes at offset "
                    f"{info.header_offset}, beyond the end of the {self.size}-byte file "
                    "(truncated or damaged)"
                )
            members[name] = info
        return members

    def _header(self, name: str, dtype: np.dtype, shape: tuple[int, ...] | None):
        """Check member ``name``'s .npy header; return (info, dtype, shape, offset, nbytes).

        ``shape=None`` accepts any 1-D length. Reads only the header.
        """
        info = self.members.get(f"{name}.npy")
        if info is None:
            raise self.fail(f"missing array {name!r}; not a chainrule model file?")
        with self.zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                found_shape, fortran, found_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                found_shape, fortran, found_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise self.fail(f"array {name!r} has an unsupported .npy version {version}")
            offset = f.tell()
        found_shape = tuple(found_shape)
        if shape is None and len(found_shape) == 1:
            shape = found_shape
        if found_dtype != dtype or found_shape != shape or fortran:
            declared = "a 1-D array" if shape is None else f"{dtype}{list(shape)}"
            raise self.fail(
                f"array {name!r} is {found_dtype}{list(found_shape)}"
                f"{' (Fortran order)' if fortran else ''}, but the description declares "
                f"{declared}"
            )
        nbytes = dtype.itemsize * math.prod(shape)
        if info.file_size != offset + nbytes:
            raise self.fail(
                f"array {name!r} declares {math.prod(shape)} elements ({nbytes} bytes), but its "
                f"member holds {info.file_size - offset} bytes of data"
            )
        return info, dtype, shape, offset, nbytes

    def _data(self, name: str, checked) -> np.ndarray:
        """Read the array whose header ``checked`` verified; the zip CRC is checked too."""
        info, dtype, shape, offset, nbytes = checked
        with self.zf.open(info) as f:
            f.read(offset)
            data = f.read(nbytes)
            if len(data) != nbytes or f.read(1):
                raise self.fail(f"array {name!r} is truncated or has trailing bytes")
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    # -- the whole file -----------------------------------------------------------------------
    def read(self) -> tuple[Sequential, dict]:
        self.members = self._members()

        # 1. The description: size, strict JSON, schema.
        info = self.members.get("description.npy")
        if info is None:
            raise self.fail("no description; not a chainrule model file")
        if info.file_size > _MAX_DESCRIPTION_BYTES + 128:
            raise self.fail(f"the description is {info.file_size} bytes; at most 1 MiB")
        raw = self._data("description", self._header("description", np.dtype(np.uint8), None))
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
            checked[name] = self._header(name, dt, shape)

        # 4. Build the model: allocation is bounded by the sizes checked above.
        try:
            layers = [cls(**config) for _, _, (cls, config) in entries]
            model = Sequential(*layers, seed=0, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise self.fail(f"the described architecture is invalid: {err}") from None

        # 5. The data.
        theta = self._data("theta", checked["theta"])
        if not np.isfinite(theta).all():
            raise self.fail("θ holds NaN or infinity; refusing a model with non-finite weights")
        model.theta[...] = theta
        for i, layer in enumerate(model.layers):
            for name in layer.buffers():
                key = f"buffer.{i}.{name}"
                array = self._data(key, checked[key])
                if not np.isfinite(array).all():
                    raise self.fail(f"buffer {name!r} of layer {i} holds NaN or infinity")
                getattr(layer, name)[...] = array
        model.eval()
        state_arrays = {
            key: self._data(f"state.{key}", checked[f"state.{key}"]).copy() for key in state_specs
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
        if len(layers) > _MAX_LAYERS:
            raise self.fail(f"the description lists {len(layers)} layers; at most {_MAX_LAYERS}")
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
            if not _KEY.fullmatch(key):
                raise self.fail(f"state array name {key!r} is not a plain name")
            ok = isinstance(spec, dict) and set(spec) == {"dtype", "shape"}
            shape = spec.get("shape") if ok else None
            ok = ok and spec["dtype"] in STATE_DTYPES and isinstance(shape, list)
            ok = ok and len(shape) <= _MAX_NDIM
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
        if depth > _MAX_JSON_DEPTH:
            raise fail(f"JSON nested more than {_MAX_JSON_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
