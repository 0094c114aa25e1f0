"""Data-parallel fit over MPI: real multi-process runs under the venv's mpiexec.

Each launch runs several scenarios of ``tests/mpi_worker.py`` on 2 or 3 ranks; the reference is
the same scenario in this process with ``comm=None``. In float64, θ must agree within 1e-9
relative (the ranks only change the order of sums) and be bitwise the same on every rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mpi_worker
import numpy as np
import pytest

import nn

TESTS = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
TIMEOUT = 120  # seconds per launch: a hang fails the test instead of CI


def mpi_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    # mpiexec's own libmpi, for a venv layered on the one that holds mpich
    lib = MPIEXEC.resolve().parent.parent / "lib"
    if "MPI4PY_LIBMPI" not in env and (lib / "libmpi.so.12").exists():
        env["MPI4PY_LIBMPI"] = str(lib / "libmpi.so.12")
    return env


def launch(n: int, *args: str, cwd=None) -> subprocess.CompletedProcess:
    command = [str(MPIEXEC), "-n", str(n), sys.executable, "-m", "mpi4py", *args]
    return subprocess.run(
        command, env=mpi_env(), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )


def run_scenarios(tmp_path_factory, n: int, names: list[str]) -> Path:
    out = tmp_path_factory.mktemp(f"mpi{n}")
    result = launch(n, str(TESTS / "mpi_worker.py"), str(out), *names)
    assert result.returncode == 0, result.stderr[-3000:]
    (out / "stderr.txt").write_text(result.stderr)
    return out


SCENARIOS = ["weighted", "early_stopping", "full_batch", "diverges", "fails_on_one_rank"]


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """One launch per rank count, made on first use; 2 ranks also resume and loop by hand."""
    done = {}

    def get(n: int) -> Path:
        if n not in done:
            extra = ["checkpoint_resume", "by_hand"] if n == 2 else []
            done[n] = run_scenarios(tmp_path_factory, n, SCENARIOS + extra)
        return done[n]

    return get


@pytest.fixture(params=[2, 3], ids=["2ranks", "3ranks"])
def ranks(request, launches):
    return request.param, launches(request.param)


def load(out: Path, name: str) -> dict:
    with np.load(out / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def assert_close(found, expected, rtol=1e-9):
    assert found.shape == expected.shape
    scale = np.max(np.abs(expected), initial=0.0)
    assert np.max(np.abs(found - expected), initial=0.0) <= rtol * scale, (found, expected)


def assert_history_close(found: str, expected: str):
    found, expected = json.loads(str(found)), json.loads(str(expected))
    assert found.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(found[key], expected[key], rtol=1e-9, atol=0, err_msg=key)


@pytest.mark.parametrize("name", ["weighted", "early_stopping", "full_batch"])
def test_n_ranks_compute_what_one_process_computes(ranks, name, tmp_path):
    _, out = ranks
    found, expected = load(out, name), mpi_worker.SCENARIOS[name](None, tmp_path)
    assert found["same"], "θ differs between the ranks"
    assert_close(found["theta"], expected["theta"])
    assert_close(found["buffers"], expected["buffers"])  # BatchNorm1d's running statistics
    assert_history_close(found["history"], expected["history"])
    if name == "early_stopping":
        assert found["stopped"] == expected["stopped"] < 30


def test_divergence_raises_on_every_rank_at_the_same_step(ranks, tmp_path):
    _, out = ranks
    found, expected = load(out, "diverges"), mpi_worker.diverges(None, tmp_path)
    assert found["same"]
    assert np.array_equal(found["where"], expected["where"])
    assert str(found["quantity"]) == expected["quantity"]
    assert_close(found["theta"], expected["theta"])  # the last finite θ, restored


def test_an_error_on_one_rank_raises_on_every_rank(ranks):
    n, out = ranks
    errors = [str(e) for e in load(out, "fails_on_one_rank")["errors"]]
    last = n - 1
    assert errors[last] == f"OSError: disk full on rank {last}"
    for error in errors[:last]:
        assert error.startswith(f"RankError: rank {last} of {n} failed at the end of epoch 2")
        assert f"OSError: disk full on rank {last}" in error


def test_resume_on_two_ranks_continues_as_one_process_and_rank_0_alone_prints(launches, tmp_path):
    out = launches(2)
    found = load(out, "checkpoint_resume")
    expected = mpi_worker.checkpoint_resume(None, tmp_path)
    assert found["same"]
    assert_close(found["theta"], expected["theta"])
    assert_history_close(found["history"], expected["history"])
    stderr = (out / "stderr.txt").read_text()
    assert stderr.count("Epoch 4/4  loss=") == 1  # rank 0's progress lines only


def test_helpers_sum_gradients_and_broadcast_parameters_in_a_loop_by_hand(launches, tmp_path):
    out = launches(2)
    found = load(out, "by_hand")
    np.save(tmp_path / "by_hand_start.npy", found["start"])
    expected = mpi_worker.by_hand(None, tmp_path)
    assert found["same"]
    assert_close(found["theta"], expected["theta"])
    assert not np.array_equal(found["theta"], found["start"])


def test_an_error_mid_step_on_one_rank_ends_the_job_under_python_m_mpi4py(tmp_path):
    """A batch callback raising on rank 1 while rank 0 waits in the all-reduce."""
    script = tmp_path / "fail.py"
    script.write_text(
        "import numpy as np, nn\n"
        "from mpi4py import MPI\n"
        "class Fail(nn.Callback):\n"
        "    def on_batch_end(self, batch, logs):\n"
        "        if batch == 2 and MPI.COMM_WORLD.rank == 1:\n"
        "            raise RuntimeError('bad batch on rank 1')\n"
        "m = nn.Sequential(nn.Dense(3, 2), seed=0)\n"
        "X = np.zeros((64, 3)); y = np.zeros((64, 2))\n"
        "m.fit(X, y, loss='mse', optimizer='sgd', epochs=50, batch_size=4,\n"
        "      callbacks=[Fail()], progress=False, comm=MPI.COMM_WORLD)\n"
    )
    result = launch(2, str(script), cwd=tmp_path)
    assert result.returncode != 0
    assert "RuntimeError: bad batch on rank 1" in result.stderr


def test_chainrule_train_under_mpiexec_matches_one_process(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", fmt="%.6f")
    args = ["--data", "d.csv", "--hidden", "8", "--epochs", "3", "--batch-size", "8"]
    result = launch(2, "-m", "nn", "train", *args, "--out", "mpi.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved the model") == 1  # rank 0 alone
    assert result.stderr.count("Epoch 3/3") == 1
    single = subprocess.run(
        [sys.executable, "-m", "nn", "train", *args, "--out", "one.npz", "--quiet"],
        cwd=tmp_path,
        env=mpi_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert single.returncode == 0, single.stderr
    found, expected = nn.load(tmp_path / "mpi.npz"), nn.load(tmp_path / "one.npz")
    assert_close(found.theta, expected.theta, rtol=1e-5)  # float32: summation order


def test_comm_must_be_a_communicator(monkeypatch):
    if "MPI4PY_LIBMPI" in mpi_env():
        monkeypatch.setenv("MPI4PY_LIBMPI", mpi_env()["MPI4PY_LIBMPI"])
    model = nn.Sequential(nn.Dense(2, 1), seed=0)
    with pytest.raises(TypeError, match=r"`comm`, expected an mpi4py communicator"):
        model.fit(np.zeros((4, 2)), np.zeros(4), loss="mse", optimizer="sgd", epochs=1, comm=4)


def test_without_mpi4py_comm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    model = nn.Sequential(nn.Dense(2, 1), seed=0)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[mpi\]'"):
        model.fit(np.zeros((4, 2)), np.zeros(4), loss="mse", optimizer="sgd", epochs=1, comm=4)
