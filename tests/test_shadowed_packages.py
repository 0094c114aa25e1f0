"""A user's own losses.py or optim.py in the working folder is named in one ImportError,
instead of ``module 'losses' has no attribute 'get'`` deep inside fit."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
import nn

X = np.zeros((8, 2), np.float32)
y = np.zeros(8, np.int64)
model = nn.Sequential(nn.Dense(2, 2), seed=0)
model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, progress=False)
print("trained")
"""


def run(folder):
    (folder / "train.py").write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, "train.py"], cwd=folder, capture_output=True, text=True, timeout=120
    )


def test_the_script_trains_in_a_clean_folder(tmp_path):
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "trained"


@pytest.mark.parametrize("name", ["losses", "optim"])
def test_a_file_named_like_a_sibling_package_is_named(tmp_path, name):
    shadow = tmp_path / f"{name}.py"
    shadow.write_text("def my_loss(a, b):\n    return 0.0\n")
    result = run(tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: chainrule needs its own package"), result.stderr
    assert str(shadow) in last and f"rename that file, e.g. to my_{name}" in last


def test_a_folder_named_like_a_sibling_package_is_named(tmp_path):
    (tmp_path / "losses").mkdir()  # e.g. a folder of loss curves
    result = run(tmp_path)
    last = result.stderr.strip().splitlines()[-1]
    assert str(tmp_path / "losses") in last and "rename that folder" in last, result.stderr
