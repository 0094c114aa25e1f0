"""Atomic saves: a killed or failing save never damages the model file, and leaves nothing for good.

What ``nn.save`` promises (see ``nn/serialization.py``):

* the target always holds either the previous model or the new one, whatever happens;
* an exception while writing removes the temporary file;
* a process killed outright (SIGKILL cannot be caught) leaves its temporary file,
  ``.<name>.<pid>.<random>.tmp``: hidden, never read, and removed by the next save to the same
  path once its process is gone. Temporary files of running processes are left alone.

The tests kill real processes: a child saving two distinguishable models in turn is
SIGKILLed at random moments, and at chosen moments (mid-array, just before the rename).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import nn
from nn.files import remove_stale_temporaries

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and POSIX process ids")

# Two models told apart by their size and by θ: A is all 1, B is all 2.
CHILD = textwrap.dedent(
    """
    import os, shutil, signal, sys, tempfile
    import numpy as np
    import nn

    target, mode = sys.argv[1], sys.argv[2]

    def model(width, value):
        m = nn.Sequential(nn.Dense(64, width), nn.Dense(width, 16), seed=0)
        m.theta[...] = value
        return m

    A, B = model(2048, 1.0), model(1536, 2.0)
    warm_up = tempfile.mkdtemp()  # the first save imports and allocates: not what we test
    A.save(os.path.join(warm_up, "w.npz"))
    shutil.rmtree(warm_up)
    if mode == "kill-at-array-2":
        write, calls = np.lib.format.write_array, []
        def dying_write(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return write(*args, **kwargs)
        np.lib.format.write_array = dying_write
    if mode == "kill-before-rename":
        os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
    print("ready", flush=True)
    while True:
        B.save(target)
        A.save(target)
    """
)

SIZES = {1.0: 64 * 2048 + 2048 + 2048 * 16 + 16, 2.0: 64 * 1536 + 1536 + 1536 * 16 + 16}


def save_a(path) -> None:
    model = nn.Sequential(nn.Dense(64, 2048), nn.Dense(2048, 16), seed=0)
    model.theta[...] = 1.0
    model.save(path)


def which_model(path) -> float:
    """1.0 or 2.0: the model at ``path``, which must load and be exactly A or B."""
    theta = nn.load(path).theta
    value = float(theta[0])
    assert value in SIZES and theta.size == SIZES[value]
    assert np.all(theta == value)
    return value


def temporaries(directory, name="m.npz") -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != name)


def run_child(target, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line == "ready\n", proc.stderr.read()
    return proc


def test_sigkill_at_random_moments_leaves_the_old_or_the_new_model(tmp_path):
    """Several children killed at random moments (about 6 s in all)."""
    target = tmp_path / "m.npz"
    save_a(target)
    rng = np.random.default_rng(20261126)
    pids, seen, left_behind = set(), [], 0
    start = time.monotonic()
    while len(seen) < 3 or (len(seen) < 10 and time.monotonic() - start < 6.0):
        proc = run_child(target, "loop")
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        pids.add(proc.pid)
        seen.append(which_model(target))  # always exactly A or B
        # A kill may leave temporary files of the killed children, hidden, nothing else.
        for name in temporaries(tmp_path):
            match = re.fullmatch(r"\.m\.npz\.(\d+)\.[0-9a-f]{8}\.tmp", name)
            assert match and int(match.group(1)) in pids, name
            left_behind += 1
    save_a(target)  # the next save removes them
    assert temporaries(tmp_path) == []
    assert which_model(target) == 1.0
    print(f"{len(seen)} kills: models {seen}, {left_behind} temporary file(s) left behind")


def test_a_kill_in_the_middle_of_an_array_leaves_the_previous_model(tmp_path):
    target = tmp_path / "m.npz"
    save_a(target)
    proc = run_child(target, "kill-at-array-2")
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert which_model(target) == 1.0  # the save of B died: A is intact
    [leftover] = temporaries(tmp_path)
    assert re.fullmatch(rf"\.m\.npz\.{proc.pid}\.[0-9a-f]{{8}}\.tmp", leftover)
    with pytest.raises(nn.ModelFileError):  # a half-written temporary is not a model
        nn.load(tmp_path / leftover)
    assert remove_stale_temporaries(target) == [tmp_path / leftover]
    assert temporaries(tmp_path) == []


def test_a_kill_just_before_the_rename_leaves_the_previous_model(tmp_path):
    target = tmp_path / "m.npz"
    save_a(target)
    proc = run_child(target, "kill-before-rename")
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert which_model(target) == 1.0
    [leftover] = temporaries(tmp_path)
    assert which_model(tmp_path / leftover) == 2.0  # complete, but never renamed
    save_a(target)  # the next save cleans up
    assert temporaries(tmp_path) == []


def test_an_exception_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "m.npz"
    save_a(target)
    before = target.read_bytes()
    write, calls = np.lib.format.write_array, []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        return write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    model = nn.Sequential(nn.Dense(64, 8), seed=1)
    with pytest.raises(OSError, match="injected"):
        model.save(target)
    assert len(calls) == 2
    assert temporaries(tmp_path) == []
    assert target.read_bytes() == before
    assert which_model(target) == 1.0
    with pytest.raises(KeyboardInterrupt):  # also for exceptions that are not errors
        monkeypatch.setattr(
            np.lib.format, "write_array", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
        )
        model.save(target)
    assert temporaries(tmp_path) == []
    assert which_model(target) == 1.0


def test_only_temporaries_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "m.npz"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        "dead": f".m.npz.{dead.pid}.0123abcd.tmp",
        "this process": f".m.npz.{os.getpid()}.0123abcd.tmp",  # e.g. a save in another thread
        "init": ".m.npz.1.0123abcd.tmp",  # a running process (of another user, perhaps)
        "other target": f".other.npz.{dead.pid}.0123abcd.tmp",
        "not ours": f".m.npz.{dead.pid}.tmp",
        "backup": "m.npz.bak",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / f".m.npz.{dead.pid}.89abcdef.tmp").mkdir()  # a directory is never removed
    assert remove_stale_temporaries(target) == [tmp_path / names["dead"]]
    left = set(temporaries(tmp_path))
    assert left == set(names.values()) - {names["dead"]} | {f".m.npz.{dead.pid}.89abcdef.tmp"}
