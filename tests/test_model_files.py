"""Model files opened from anyone: every defect is one ModelFileError, nothing runs, nothing huge.

The files here are crafted by the tests themselves, byte by byte where needed: foreign and
damaged files, zip-level tricks (compressed, duplicate, path-like and forged-size members),
JSON bombs, shape bombs and a pickle payload that would create a file if it were ever
unpickled. Random mutations (truncation, bit flips) are property tests in
``test_properties.py``.
"""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import re
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nn
import optim
from nn import LAYER_TYPES
from nn.files import FORMAT, VERSION, ModelFileError

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20


# -- helpers -----------------------------------------------------------------------------------


def small_model(dtype=np.float32) -> nn.Sequential:
    return nn.Sequential(
        nn.Standardize(3),
        nn.Dense(3, 5, activation={"name": "leaky_relu", "negative_slope": 0.2}),
        nn.BatchNorm1d(5),
        nn.Dropout(0.1),
        nn.Dense(5, 2, activation="elu"),
        nn.LayerNorm(2),
        seed=3,
        dtype=dtype,
    )


def npy_bytes(array: np.ndarray | None = None, *, header: dict | None = None, data=b"") -> bytes:
    """The bytes of a .npy member: a real array, or a hand-written header and data."""
    buf = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(buf, array, allow_pickle=True)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(data)
    return buf.getvalue()


def description(**overrides) -> dict:
    """The description of ``Dense(2, 1)`` in float32, with fields overridden."""
    desc = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": "float32",
        "n_parameters": 3,
        "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 1, "activation": "identity"}}],
        "training": None,
        "arrays": {},
    }
    desc.update(overrides)
    return desc


def write_zip(path: Path, members: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def crafted(path: Path, desc: dict | bytes | None = None, arrays=None, extra=()) -> Path:
    """A model file assembled from a description and arrays (default: a valid Dense(2, 1))."""
    if desc is None:
        desc = description()
    text = desc if isinstance(desc, bytes) else json.dumps(desc).encode()
    if arrays is None:
        arrays = {"theta": np.arange(3, dtype=np.float32)}
    members = [("description.npy", npy_bytes(np.frombuffer(text, dtype=np.uint8)))]
    for name, value in arrays.items():
        members.append((f"{name}.npy", value if isinstance(value, bytes) else npy_bytes(value)))
    return write_zip(path, members + list(extra))


def load_fails(path, pattern: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=pattern) as info:
        nn.load(path)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


def within_budget(fn, *, seconds: float = 1.0, peak_bytes: int = 4 * MiB):
    """Run ``fn`` (which must raise ModelFileError); return its error, checking time and memory.

    The budget is what "refused at once, without allocating it" means for a tiny file that
    declares terabytes: loading a real file of that size would take minutes and fail.
    """
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError) as info:
            fn()
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < peak_bytes, f"allocated {peak / MiB:.1f} MiB"
    return info.value


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bitwise_for_every_layer_type(tmp_path, dtype):
    activations = [cls() for cls in nn.ACTIVATIONS.values()]
    model = nn.Sequential(
        small_model().layers[0],
        *[nn.Dense(3, 3, a) for a in activations],
        nn.Dense(3, 3),
        *activations,
        seed=1,
        dtype=dtype,
    )
    model.layers[0].adapt(np.random.default_rng(0).normal(2.0, 3.0, size=(50, 3)))
    used = {type(layer).__name__ for layer in model.layers}
    assert used | {"Dropout", "BatchNorm1d", "LayerNorm"} == set(LAYER_TYPES)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = nn.load(path)
    X = np.random.default_rng(1).normal(size=(7, 3))
    assert loaded.predict(X).tobytes() == model.predict(X).tobytes()
    assert [la.config() for la in loaded.layers] == [la.config() for la in model.layers]


def test_training_state_round_trips_with_json_and_arrays(tmp_path):
    model = small_model()
    state = {
        "json": {"epoch": 3, "best": float("inf"), "nested": {"a": [1, 2, {"b": None}]}},
        "arrays": {"optimizer.exp_avg": np.arange(5.0), "callback.0.mask": np.array([True])},
    }
    path = tmp_path / "ckpt.npz"
    nn.save(model, path, state=state)
    loaded, got = nn.files.load_with_state(path)
    assert got["json"] == state["json"]
    assert set(got["arrays"]) == set(state["arrays"])
    for key, array in state["arrays"].items():
        assert got["arrays"][key].dtype == array.dtype
        np.testing.assert_array_equal(got["arrays"][key], array)
    np.testing.assert_array_equal(loaded.theta, model.theta)


# -- foreign, empty, junk and damaged files ----------------------------------------------------


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.npz"):
        nn.load(tmp_path / "no-such.npz")


def test_foreign_and_junk_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    load_fails(tmp_path / "empty.npz", "empty")
    (tmp_path / "junk.npz").write_bytes(bytes(range(256)) * 40)
    load_fails(tmp_path / "junk.npz", "not a zip archive")
    (tmp_path / "text.npz").write_text("θ = [1, 2, 3]\n")
    load_fails(tmp_path / "text.npz", "not a zip archive")
    np.savez(tmp_path / "plain.npz", theta=np.arange(3.0), W=np.ones((2, 2)))
    load_fails(tmp_path / "plain.npz", "no description")
    np.savez_compressed(tmp_path / "packed.npz", description=np.zeros(3, np.uint8))
    load_fails(tmp_path / "packed.npz", "compressed")
    write_zip(tmp_path / "text.zip", [("README.txt", b"hello")])
    load_fails(tmp_path / "text.zip", "unexpected member 'README.txt'")
    write_zip(tmp_path / "nothing.zip", [])
    load_fails(tmp_path / "nothing.zip", "no description")
    (tmp_path / "a-directory.npz").mkdir()
    load_fails(tmp_path / "a-directory.npz", "is a directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")
    load_fails(tmp_path / "pipe.npz", "not a regular file")


def test_a_valid_file_loads_and_every_truncation_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    small_model().save(path)
    data = path.read_bytes()
    nn.load(path)
    cut = tmp_path / "cut.npz"
    for n in sorted({0, 1, 4, 21, 22, 30, 100, len(data) // 2, len(data) - 23, len(data) - 1}):
        cut.write_bytes(data[:n])
        with pytest.raises(ModelFileError, match=re.escape(str(cut))):
            nn.load(cut)


def test_description_checks(tmp_path):
    p = tmp_path / "m.npz"
    load_fails(crafted(p, description(version=2)), "format version 2 is not supported")
    load_fails(crafted(p, description(version=True)), "format version True")
    load_fails(crafted(p, description(format="keras")), "not a chainrule model file")
    load_fails(crafted(p, b"not json {"), "not valid JSON")
    load_fails(crafted(p, b"\xff\xfe\x00"), "not valid JSON")
    load_fails(crafted(p, b"[1, 2]"), "not a chainrule model file")
    load_fails(crafted(p, description(dtype="float16")), "float16")
    load_fails(crafted(p, description(n_parameters=-3)), "n_parameters")
    load_fails(crafted(p, description(n_parameters=4)), "declare 3 parameters")
    load_fails(crafted(p, description(layers=[])), "no layers")
    load_fails(crafted(p, description(extra="x")), r"unknown keys \['extra'\]")
    desc = description()
    del desc["n_parameters"]
    load_fails(crafted(p, desc), "lacks the keys")
    # a description of the wrong dtype or shape
    bad = {"description": np.zeros(3, np.float32), "theta": np.zeros(3, np.float32)}
    write_zip(p, [(f"{k}.npy", npy_bytes(v)) for k, v in bad.items()])
    load_fails(p, "array 'description' is float32")


def test_duplicate_json_keys_are_refused(tmp_path):
    text = json.dumps(description())[:-1] + ', "dtype": "float64"}'
    load_fails(crafted(tmp_path / "m.npz", text.encode()), "repeats the key 'dtype'")


def test_layer_entries(tmp_path):
    p = tmp_path / "m.npz"

    def dense(**config):
        return description(layers=[{"type": "Dense", "config": config}])

    load_fails(crafted(p, description(layers=[{"type": "Lambda", "config": {}}])), "'Lambda'")
    load_fails(crafted(p, description(layers=[{"type": "os.system", "config": {}}])), "built-in")
    load_fails(crafted(p, description(layers=[["Dense"]])), "layer 0 is not an object")
    entry = {"type": "Dense", "config": {"n_in": 2, "n_out": 1}, "code": "x"}
    load_fails(crafted(p, description(layers=[entry])), "exactly a type and a config")
    load_fails(crafted(p, dense(n_in=2, n_out=1, eval="1")), r"unknown config keys \['eval'\]")
    load_fails(crafted(p, dense(n_in=2)), r"lacks the config keys \['n_out'\]")
    load_fails(crafted(p, dense(n_in=2, n_out=0)), "invalid config.*n_out")
    load_fails(crafted(p, dense(n_in=2.5, n_out=1)), "invalid config.*n_in")
    load_fails(crafted(p, dense(n_in=2, n_out=1, bias="no")), "invalid config.*bias")
    load_fails(crafted(p, dense(n_in=2, n_out=1, activation="bogus")), "architecture is invalid")
    act = {"name": "leaky_relu", "negative_slope": float("nan")}
    load_fails(crafted(p, dense(n_in=2, n_out=1, activation=act)), "negative_slope")
    act = {"name": "leaky_relu", "__class__": 1}
    load_fails(crafted(p, dense(n_in=2, n_out=1, activation=act)), "unknown")
    relu = description(layers=[{"type": "ReLU", "config": {"inplace": True}}], n_parameters=0)
    load_fails(crafted(p, relu, {"theta": np.zeros(0, np.float32)}), "unknown config keys")
    # two layers that do not fit together
    layers = [{"type": "Dense", "config": {"n_in": 2, "n_out": 1}}] * 2
    load_fails(
        crafted(p, description(layers=layers, n_parameters=6), {"theta": np.zeros(6, np.float32)}),
        "architecture is invalid.*expects 2",
    )


def test_members_must_be_exactly_the_described_arrays(tmp_path):
    p = tmp_path / "m.npz"
    load_fails(crafted(p, arrays={}), "missing array 'theta'")
    load_fails(crafted(p, arrays={"theta": np.zeros(4, np.float32)}), r"float32\[4\]")
    load_fails(crafted(p, arrays={"theta": np.zeros(3, np.float64)}), "float64")
    load_fails(crafted(p, arrays={"theta": np.zeros((3, 1), np.float32)}), r"\[3, 1\]")
    header = {"descr": "<f4", "fortran_order": True, "shape": (3,)}
    load_fails(crafted(p, arrays={"theta": npy_bytes(header=header, data=bytes(12))}), "Fortran")
    header = {"descr": "<f4", "fortran_order": False, "shape": (3,)}
    load_fails(
        crafted(p, arrays={"theta": npy_bytes(header=header, data=bytes(8))}),
        "member holds 8 bytes",
    )
    load_fails(
        crafted(p, arrays={"theta": npy_bytes(header=header, data=bytes(16))}),
        "member holds 16 bytes",
    )
    load_fails(crafted(p, arrays={"theta": b"\x93NUMPY\x03\x00" + bytes(20)}), "version")
    extra = [("notes.npy", npy_bytes(np.zeros(1)))]
    load_fails(crafted(p, extra=extra), r"unexpected members \['notes.npy'\]")


def test_zip_tricks_are_refused(tmp_path):
    p = tmp_path / "m.npz"
    good = crafted(tmp_path / "good.npz")
    with zipfile.ZipFile(good) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    # duplicate member names (zipfile warns, but writes them)
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(p, members + [members[1]])
    load_fails(p, "appears twice")
    # path separators and traversal
    for name in ("../theta.npy", "sub/theta.npy", "..\\theta.npy", "/theta.npy"):
        write_zip(p, [members[0], (name, members[1][1])])
        load_fails(p, "path separator")
    # compressed members: a small file could then declare a huge array
    write_zip(p, members, compression=zipfile.ZIP_DEFLATED)
    load_fails(p, "compressed; model files store arrays uncompressed")
    # an encrypted flag
    data = bytearray(good.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last central-directory entry (theta)
    data[central + 8] |= 0x1
    p.write_bytes(bytes(data))
    load_fails(p, "encrypted")


def _central_entries(data: bytes):
    """Offsets of the central-directory entries of a zip written without zip64."""
    offset = 0
    while (offset := data.find(b"PK\x01\x02", offset)) >= 0:
        yield offset
        offset += 4


def test_forged_sizes_are_refused_without_allocating(tmp_path):
    good = crafted(tmp_path / "good.npz", arrays={"theta": np.arange(3, dtype=np.float32)})
    data = good.read_bytes()
    p = tmp_path / "m.npz"
    for field, value in (("both sizes", (0x7FFFFFFF, 0x7FFFFFFF)), ("size", (60, 0x7FFFFFFF))):
        forged = bytearray(data)
        entry = list(_central_entries(data))[-1]
        compressed, plain = struct.unpack("<LL", forged[entry + 20 : entry + 28])
        new = value if field == "both sizes" else (compressed, value[1])
        forged[entry + 20 : entry + 28] = struct.pack("<LL", *new)
        p.write_bytes(bytes(forged))
        error = within_budget(lambda: nn.load(p))
        assert re.search("declares|damaged|stores", str(error)), error
    # the end record declares a central directory larger than the file
    forged = bytearray(data)
    end = forged.rfind(b"PK\x05\x06")
    forged[end + 12 : end + 16] = struct.pack("<L", 0x7FFFFFF0)
    p.write_bytes(bytes(forged))
    within_budget(lambda: nn.load(p))
    # ... or 65535 members in a file of a few hundred bytes
    forged = bytearray(data)
    forged[end + 8 : end + 12] = struct.pack("<HH", 0xFFFE, 0xFFFE)
    p.write_bytes(bytes(forged))
    within_budget(lambda: nn.load(p))


def test_too_many_members_are_refused_before_zipfile_reads_them(tmp_path):
    members = [(f"state.k{i}.npy", b"") for i in range(nn.files.archive.MAX_MEMBERS + 1)]
    p = write_zip(tmp_path / "m.npz", members)
    load_fails(p, "declares 16385 members")


# -- bombs -------------------------------------------------------------------------------------


def test_a_tiny_file_declaring_a_huge_theta_is_refused_at_once(tmp_path):
    """Dense(10**6, 10**6): θ of 10**12 float32 (4 TB) declared in a file of a few hundred bytes."""
    n = 10**6
    desc = description(
        n_parameters=n * n + n,
        layers=[{"type": "Dense", "config": {"n_in": n, "n_out": n}}],
    )
    header = {"descr": "<f4", "fortran_order": False, "shape": (n * n + n,)}
    p = crafted(tmp_path / "bomb.npz", desc, {"theta": npy_bytes(header=header, data=b"\0" * 64)})
    assert p.stat().st_size < 2000
    error = within_budget(lambda: nn.load(p), seconds=0.5)
    assert "declares 1000001000000 elements" in str(error)


def test_absurd_layer_sizes_are_refused_by_the_shape_check(tmp_path):
    """n_in=10**12 without a matching θ: refused by counting, nothing allocated."""
    desc = description(layers=[{"type": "Dense", "config": {"n_in": 10**12, "n_out": 3}}])
    p = crafted(tmp_path / "bomb.npz", desc)
    error = within_budget(lambda: nn.load(p), seconds=0.5)
    assert "declare 3000000000003 parameters" in str(error)
    # and with n_parameters forged to match, the θ header no longer fits the file
    desc["n_parameters"] = 3 * 10**12 + 3
    header = {"descr": "<f4", "fortran_order": False, "shape": (3 * 10**12 + 3,)}
    p = crafted(tmp_path / "bomb.npz", desc, {"theta": npy_bytes(header=header)})
    within_budget(lambda: nn.load(p), seconds=0.5)


def test_a_huge_state_array_declared_in_json_is_refused(tmp_path):
    desc = description(arrays={"opt.m": {"dtype": "float64", "shape": [10**6, 10**6]}})
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    arrays = {"theta": np.zeros(3, np.float32), "state.opt.m": npy_bytes(header=header)}
    p = crafted(tmp_path / "bomb.npz", desc, arrays)
    within_budget(lambda: nn.load(p), seconds=0.5)
    for spec in (
        {"dtype": "object", "shape": [1]},
        {"dtype": "float64", "shape": [-1]},
        {"dtype": "float64", "shape": [1], "pickle": True},
        ["float64", [1]],
    ):
        p = crafted(tmp_path / "m.npz", description(arrays={"k": spec}))
        load_fails(p, "state array 'k' is described as")
    load_fails(
        crafted(p, description(arrays={"../k": {"dtype": "int8", "shape": [1]}})),
        "not a plain name",
    )


def test_json_bombs_are_refused(tmp_path):
    p = tmp_path / "m.npz"
    deep = description(training=json.loads("[" * 60 + "]" * 60))
    nn.load(crafted(p, deep))  # 60 levels (61 with the top level) are fine
    deeper = description(training=json.loads("[" * 70 + "]" * 70))
    load_fails(crafted(p, deeper), "nested more than 64")
    text = json.dumps(description())[:-1] + ', "training": ' + "[" * 200_000 + "]" * 200_000 + "}"
    load_fails(crafted(p, text.encode()), "nested too deeply")
    big = description(training={"pad": "x" * (MiB + 10)})
    load_fails(crafted(p, big), "at most 1 MiB")
    digits = json.dumps(description())[:-1] + ', "training": ' + "9" * 5000 + "}"
    load_fails(crafted(p, digits.encode()), "not valid JSON|damaged")
    layers = [{"type": "ReLU", "config": {}}] * (nn.files.model_file.MAX_LAYERS + 1)
    load_fails(
        crafted(p, description(layers=layers, n_parameters=0), {"theta": np.zeros(0, np.float32)}),
        "4097 layers",
    )


def test_non_finite_weights_are_refused_on_load_and_on_save(tmp_path):
    p = tmp_path / "m.npz"
    for value in (np.nan, np.inf, -np.inf):
        load_fails(
            crafted(p, arrays={"theta": np.array([0, value, 1], np.float32)}),
            "θ holds NaN or infinity",
        )
    model = small_model()
    model.save(p)
    model.theta[0] = np.nan
    with pytest.raises(ValueError, match="θ holds NaN or infinity"):
        model.save(p)
    np.testing.assert_array_equal(nn.load(p).theta[1:], model.theta[1:])  # the old file stays
    model = small_model()
    model.layers[2].running_var[1] = np.inf
    with pytest.raises(ValueError, match="buffer 'running_var' of layer 2"):
        model.save(p)


# -- pickle ------------------------------------------------------------------------------------


def _touch(path: str) -> None:
    Path(path).write_text("the payload ran")


class Payload:
    """Unpickling this calls ``_touch(marker)``: it creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


def test_a_pickle_payload_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.array([Payload(marker), 1.0], dtype=object)
    as_theta = tmp_path / "theta-object.npz"
    crafted(as_theta, arrays={"theta": payload})
    as_description = tmp_path / "description-object.npz"
    write_zip(
        as_description,
        [
            ("description.npy", npy_bytes(payload)),
            ("theta.npy", npy_bytes(np.zeros(3, np.float32))),
        ],
    )
    as_state = tmp_path / "state-object.npz"
    crafted(
        as_state,
        description(arrays={"k": {"dtype": "float64", "shape": [2]}}),
        {"theta": np.zeros(3, np.float32), "state.k": payload},
    )
    as_raw_pickle = tmp_path / "raw.npz"
    crafted(as_raw_pickle, arrays={"theta": pickle.dumps(Payload(marker))})
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, payload=payload)

    for path in (as_theta, as_description, as_state, as_raw_pickle, foreign):
        with pytest.raises(ModelFileError, match=re.escape(str(path))):
            nn.load(path)
        assert not marker.exists(), f"loading {path.name} ran the payload"

    # The payload is live: numpy with allow_pickle=True would have run it.
    np.load(foreign, allow_pickle=True)["payload"]
    assert marker.exists()


FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "dill", "cloudpickle", "shelve"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _code_running_constructs(source: Path) -> list[str]:
    """Imports of pickle-like modules, calls of eval/exec/compile/__import__ and
    ``allow_pickle=`` anything but False, found in the syntax tree of ``source``."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [f"import {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                name = func.attr if func.value.id == "builtins" else None
            if name in FORBIDDEN_CALLS:
                found.append(f"{name}(...) at line {node.lineno}")
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"allow_pickle=... at line {node.lineno}")
    return found


def test_no_pickle_marshal_eval_or_exec_in_the_runtime_packages():
    """The no-code-execution lint of .ci/run, runnable locally, on the syntax tree.

    The CI step greps; this reads the syntax tree, so a method named ``eval`` (``Layer.eval``)
    is not a call of the builtin, while ``builtins.eval(...)``, ``__import__("pickle")`` and
    ``np.load(..., allow_pickle=True)`` are caught.
    """
    offenders = {}
    for package in ("nn", "optim", "losses"):
        for source in sorted((ROOT / package).rglob("*.py")):
            found = _code_running_constructs(source)
            if found:
                offenders[str(source.relative_to(ROOT))] = found
    assert not offenders, offenders


def test_the_lint_catches_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom marshal import loads\nimport builtins\n"
        "x = eval('1')\nexec('y = 1')\nbuiltins.exec('z = 1')\n__import__('dill')\n"
        "import numpy as np\nnp.load('f', allow_pickle=True)\n"
        "class M:\n    def eval(self):\n        return self\nM().eval()\n"
    )
    assert sorted(_code_running_constructs(bad)) == sorted(
        [
            "import pickle",
            "import marshal",
            "eval(...) at line 4",
            "exec(...) at line 5",
            "exec(...) at line 6",
            "__import__(...) at line 7",
            "allow_pickle=... at line 9",
        ]
    )  # and not the method M.eval


# -- save's own checks -------------------------------------------------------------------------


def test_save_validates_its_arguments(tmp_path):
    model = small_model()
    with pytest.raises(TypeError, match="`model`, expected a Sequential"):
        nn.save(model.layers[1], tmp_path / "m.npz")
    with pytest.raises(TypeError, match="`path`, expected a str or os.PathLike"):
        nn.save(model, 3)
    with pytest.raises(ValueError, match=r"invalid key in `state\['arrays'\]`.*'\.\./x'"):
        nn.save(model, tmp_path / "m.npz", state={"json": None, "arrays": {"../x": np.ones(1)}})
    with pytest.raises(TypeError, match="dtype object"):
        nn.save(
            model,
            tmp_path / "m.npz",
            state={"json": None, "arrays": {"x": np.array([None], dtype=object)}},
        )
    with pytest.raises(TypeError, match=r"`state\['json'\]`, expected JSON"):
        nn.save(model, tmp_path / "m.npz", state={"json": {"f": print}, "arrays": {}})
    with pytest.raises(TypeError, match="`state`, expected a dict"):
        nn.save(model, tmp_path / "m.npz", state={"pickle": 1})
    assert not list(tmp_path.iterdir())  # nothing was written


def test_save_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    p = tmp_path / "m.npz"
    small_model().save(p)
    os.chmod(p, 0o640)
    small_model().save(p)
    assert p.stat().st_mode & 0o777 == 0o640


def test_a_custom_activation_is_refused_at_save_not_at_load(tmp_path):
    class Swish(nn.Activation):
        name = "swish"

        def apply(self, z, out):
            return np.multiply(z, 1 / (1 + np.exp(-z)), out=out)

    model = nn.Sequential(nn.Dense(3, 2, activation=Swish()), seed=0)
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="activation Swish is not one of"):
        model.save(path)
    assert not path.exists()


# -- files written by earlier versions -----------------------------------------------------------

DATA = Path(__file__).parent / "data"


def test_a_model_file_written_before_the_package_layout_changed_still_loads():
    """Written at commit cc302f7 (format 1): every built-in layer kind, predictions saved too."""
    expected = np.load(DATA / "model-format1-cc302f7-expected.npz")
    model = nn.load(DATA / "model-format1-cc302f7.npz")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Standardize", "Dense", "BatchNorm1d", "Dropout", "Dense", "LayerNorm", "Softmax"
    ]  # fmt: skip
    assert np.array_equal(model.predict(expected["X"]), expected["pred"])


def test_a_checkpoint_written_before_the_package_layout_changed_still_resumes():
    checkpoint = nn.load_checkpoint(
        DATA / "checkpoint-format1-cc302f7.npz", optimizer=lambda params: optim.Adam(params)
    )
    assert checkpoint.epoch == 2 and len(checkpoint.history.history["loss"]) == 2
    assert checkpoint.optimizer.state_dict()["step"] > 0
