"""The benchmark runner works end to end and reports what it promises (no timing asserts).

Speed is judged by reading the runner's output, never here: these tests only check the
structure of the Markdown table and of the JSON, that every system of a configuration runs on
the same samples, that the GEMM floor performs exactly one training step's matrix products,
and that a peer that cannot be imported is reported as skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAINRULE_SYSTEMS = ("fit", "by_hand", "floor")
TABLE_HEADER = "| config | system | ms/epoch | µs/step | samples/s | × floor | peer ÷ fit |"


@pytest.fixture
def bench(monkeypatch):
    """The runner module, importable from the repository root."""
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.run

    return benchmarks.run


@pytest.fixture
def no_peers(monkeypatch):
    """Make ``import torch`` and ``import sklearn`` fail, as on a machine without them.

    Submodules that other tests imported already (``sklearn.neural_network``) are blocked too:
    ``from sklearn.neural_network import ...`` would otherwise find them in ``sys.modules``.
    """
    for package in ("torch", "sklearn"):
        loaded = [name for name in sys.modules if name.startswith(package + ".")]
        for name in [package, *loaded]:
            monkeypatch.setitem(sys.modules, name, None)


def table_rows(text: str) -> list[list[str]]:
    """The cells of the body rows of the table that starts with TABLE_HEADER."""
    lines = text.splitlines()
    start = lines.index(TABLE_HEADER)
    assert lines[start + 1].startswith("|---")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def check_machine_fields(report: dict) -> None:
    assert report["machine"]["platform"]
    assert report["machine"]["cpu_count"] >= 1
    assert report["numpy"] == np.__version__
    assert report["blas"]["source"] in ("threadpoolctl", "numpy.show_config")
    assert report["blas"]["summary"]
    assert report["threads"] >= 1
    assert isinstance(report["env"], dict)
    assert report["seed"] == 0
    assert report["run"]["quick"] is True


def test_quick_tiny_reports_skipped_peers(bench, no_peers, tmp_path, capsys):
    out_json = tmp_path / "results.json"
    assert bench.main(["--quick", "--config", "tiny", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out

    rows = table_rows(text)
    assert [r[1] for r in rows] == [
        "chainrule fit",
        "chainrule by hand",
        "GEMM floor",
        "PyTorch eager",
        "scikit-learn",
    ]
    assert all(len(r) == 7 for r in rows)
    assert rows[0][0].startswith("tiny (2-16-16-2, float32, batch 32)")
    for row in rows[:3]:
        assert row[2].lstrip("~").replace(",", "").replace(".", "").isdigit()
        assert re.fullmatch(r"\d+\.\d\d×( \(\d+\.\d\d–\d+\.\d\d\))?", row[5])
    assert rows[2][5] == "1.00×"
    assert rows[3][2].startswith("skipped") and "torch" in rows[3][2]
    assert rows[4][2].startswith("skipped") and "scikit-learn" in rows[4][2]
    assert "torch not installed" in text and "scikit-learn not installed" in text

    report = json.loads(out_json.read_text())
    check_machine_fields(report)
    assert report["peers"] == {"torch": None, "scikit-learn": None}
    (cfg,) = report["configs"]
    assert cfg["name"] == "tiny" and cfg["architecture"] == "2-16-16-2"
    systems = cfg["systems"]
    assert systems["torch"]["status"] == "skipped" and systems["torch"]["reason"]
    assert systems["sklearn"]["status"] == "skipped" and systems["sklearn"]["reason"]
    for key in CHAINRULE_SYSTEMS:
        result = systems[key]
        assert result["status"] == "ok"
        assert len(result["times_s"]) == report["run"]["repeat"] == 2
        # the same samples for every system: steps × batch
        assert result["timed_samples"] == cfg["timed_samples"] == cfg["timed_steps"] * 32
        for name in ("median_s", "us_per_step", "ms_per_epoch", "samples_per_s", "vs_floor"):
            assert np.isfinite(result[name])
    assert systems["floor"]["vs_floor"] == 1.0
    assert report["markdown"] == text


def test_config_lists_and_repeat(bench, no_peers, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    args = ["--quick", "--config", "sigmoid,tiny", "--config", "tiny", "--repeat", "1"]
    assert bench.main([*args, "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    assert [c["name"] for c in report["configs"]] == ["sigmoid", "tiny"]
    assert report["configs"][0]["dtype"] == "float64"
    assert report["run"]["repeat"] == 1
    assert len(report["configs"][0]["systems"]["fit"]["times_s"]) == 1


def test_budget_cuts_steps_for_every_system_alike(bench, no_peers, tmp_path, capsys):
    out_json = tmp_path / "b.json"
    args = ["--quick", "--config", "tiny", "--repeat", "1", "--budget", "0.001"]
    assert bench.main([*args, "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    (cfg,) = json.loads(out_json.read_text())["configs"]
    assert cfg["planned_steps"] == 20 and cfg["timed_steps"] == bench.MIN_STEPS
    for key in CHAINRULE_SYSTEMS:
        assert cfg["systems"][key]["steps"] == bench.MIN_STEPS
        assert cfg["systems"][key]["extrapolated"] is True
    assert "cut from 20 to fit --budget 0.001 s" in text


def test_ratios_pair_the_systems_round_by_round(bench):
    """The median of per-round ratios, not the ratio of medians (which mixes rounds)."""
    fit = {"steps": 2, "times_s": [4.0, 8.0, 12.0]}  # 2, 4 and 6 s per step
    floor = {"steps": 1, "times_s": [1.0, 4.0, 3.0]}  # ratios 2, 1 and 2
    ratio, spread = bench.paired_ratio(fit, floor)
    assert ratio == 2.0 and spread == [1.0, 2.0]
    assert bench._ratio(ratio, spread) == "2.00× (1.00–2.00)"
    assert bench._ratio(1.0, [1.0, 1.0]) == "1.00×"  # (the ratio of medians would say 4/3)


def test_blas_report_without_threadpoolctl(bench, monkeypatch):
    """Without threadpoolctl the BLAS comes from numpy's build information."""
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    info = bench.blas_info()
    assert info["source"] == "numpy.show_config"
    assert info["summary"].startswith("numpy: ")
    assert bench.blas_threads() >= 1
    assert bench.blas_warnings(info) == []


def test_unknown_config_is_a_usage_error(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--config", "mnist,huge"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'huge'" in err and "tiny, mnist, wide, sigmoid, memmap" in err


def test_quick_memmap_reports_memory_and_scaling(bench, no_peers, tmp_path, capsys):
    out_json = tmp_path / "m.json"
    args = ["--quick", "--config", "memmap", "--repeat", "1", "--memmap-samples", "1024"]
    assert bench.main([*args, "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    report = json.loads(out_json.read_text())
    (cfg,) = report["configs"]
    assert cfg["data_bytes"] == cfg["timed_samples"] * 784 * 4
    scaling = cfg["scaling"]
    assert scaling["samples"][1] == 2 * scaling["samples"][0] == cfg["timed_samples"]
    assert scaling["samples_ratio"] == 2.0
    assert cfg["systems"]["fit"]["status"] == cfg["systems"]["fit_half"]["status"] == "ok"
    assert cfg["systems"]["torch"]["status"] == "not run"
    memory = cfg["memory"]
    if Path("/proc/self/status").exists():
        assert memory["available"]
        assert set(memory["peak_growth_bytes"]) == {"VmRSS", "RssAnon", "RssFile"}
        assert "anonymous memory (RssAnon)" in text
    assert "the time for 2.00× the samples" in text


def test_gemm_floor_is_exactly_one_steps_products(bench, monkeypatch):
    """Per layer x·W forward, xᵀ·dz backward and dz·Wᵀ except for the first layer."""
    from benchmarks.configs import CONFIGS

    config = CONFIGS["mnist"]
    b = config.batch_size
    X, y = bench.make_data(config, 2 * b, seed=0)
    floor = bench.GemmFloor()
    floor.setup(bench.Workload(config, X, y, seed=0, threads=1))

    calls = []

    class CountingNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def matmul(a, b, out):
            calls.append((a.shape, b.shape, out.shape))
            return np.matmul(a, b, out=out)

    monkeypatch.setattr(bench, "np", CountingNumpy())
    floor.run(1)
    assert calls == [
        ((b, 784), (784, 256), (b, 256)),  # forward
        ((b, 256), (256, 256), (b, 256)),
        ((b, 256), (256, 10), (b, 10)),
        ((256, b), (b, 10), (256, 10)),  # backward, last layer first
        ((b, 10), (10, 256), (b, 256)),
        ((256, b), (b, 256), (256, 256)),
        ((b, 256), (256, 256), (b, 256)),
        ((784, b), (b, 256), (784, 256)),  # the first layer: no ∂L/∂x
    ]


def test_script_entry_point_runs(tmp_path):
    """``python benchmarks/run.py`` works from a fresh interpreter, with whatever peers exist."""
    out_json = tmp_path / "s.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--config", "tiny", "--repeat", "1"]
        + ["--json", str(out_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert TABLE_HEADER in proc.stdout
    report = json.loads(out_json.read_text())
    systems = report["configs"][0]["systems"]
    for key in ("torch", "sklearn"):
        assert systems[key]["status"] in ("ok", "skipped")
        if systems[key]["status"] == "ok":
            assert np.isfinite(systems[key]["peer_over_fit"])


def test_module_entry_point_help():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for option in ("--config", "--repeat", "--quick", "--json"):
        assert option in proc.stdout
