"""The ``chainrule`` command end to end: train, evaluate, predict; user errors in one line.

The main runs go through a subprocess (``python -m nn``) exactly as a user starts it. The
error cases run ``nn.cli.main`` in-process (any uncaught exception would fail the test just
as a traceback would), and a few of them also in a subprocess.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nn
from nn import cli, data


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "nn", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """`chainrule train --epochs 2` on the bundled digits, run once for the module."""
    cwd = tmp_path_factory.mktemp("digits")
    result = run("train", "--epochs", 2, "--out", "digits.npz", cwd=cwd)
    return cwd, result


def test_train_on_the_bundled_digits(digits_model):
    cwd, result = digits_model
    assert_ok(result)
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.85  # two epochs already learn most of it
    assert "saved the model to digits.npz" in result.stdout
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("Epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]  # log lines, no tty
    model = nn.load(cwd / "digits.npz")
    assert model.n_features == 64 and model.predict(np.zeros((1, 64))).shape == (1, 10)
    assert isinstance(model.layers[0], nn.Standardize)  # predicts from raw pixels


def test_evaluate_and_predict_the_saved_model(digits_model):
    cwd, _ = digits_model
    X, y = data.load_digits()
    model = nn.load(cwd / "digits.npz")
    expected = model.evaluate(X, y, loss="cross_entropy", metrics=["accuracy"])

    result = run("evaluate", "digits.npz", cwd=cwd)
    assert_ok(result)
    reported = dict(re.findall(r"(\w+): ([0-9.]+)", result.stdout))
    assert float(reported["accuracy"]) == pytest.approx(expected["accuracy"], abs=1e-4)
    assert float(reported["loss"]) == pytest.approx(expected["loss"], abs=1e-4)
    assert "(1797 samples)" in result.stdout

    for out in ("pred.csv", "pred.npy"):
        result = run("predict", "digits.npz", "--out", out, cwd=cwd)
        assert_ok(result)
        assert f"wrote 1797 predictions to {out}" in result.stderr  # stdout stays data-only
        written = np.load(cwd / out) if out.endswith(".npy") else np.loadtxt(cwd / out)
        assert np.array_equal(written.reshape(-1), model.predict(X).argmax(axis=1))


def test_train_evaluate_predict_on_a_csv_the_test_writes(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)  # 3 classes
    rows = "\n".join(",".join(f"{v:.6f}" for v in x) + f",{c}" for x, c in zip(X, y, strict=True))
    (tmp_path / "train.csv").write_text("a,b,c,label\n" + rows + "\n")
    result = run(
        "train",
        "--data",
        "train.csv",
        "--hidden",
        "32,16",
        "--epochs",
        30,
        "--lr",
        "0.01",
        "--batch-size",
        16,
        "--seed",
        3,
        "--out",
        "m.npz",
        "--quiet",
        cwd=tmp_path,
    )
    assert_ok(result)
    assert result.stderr.count("Epoch") == 0  # --quiet
    assert float(re.search(r"test accuracy: ([0-9.]+)", result.stdout).group(1)) > 0.85
    model = nn.load(tmp_path / "m.npz")
    assert [type(la).__name__ for la in model.layers] == ["Standardize", "Dense", "Dense", "Dense"]

    result = run("evaluate", "m.npz", "--data", "train.csv", cwd=tmp_path)
    assert_ok(result)
    assert "accuracy:" in result.stdout and "(300 samples)" in result.stdout

    # a CSV of features only (no label column) predicts too
    features = "\n".join(",".join(f"{v:.6f}" for v in x) for x in X[:20])
    (tmp_path / "new.csv").write_text(features + "\n")
    result = run("predict", "m.npz", "--data", "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert_ok(result)
    predicted = np.loadtxt(tmp_path / "p.csv", dtype=int)
    assert np.array_equal(predicted, model.predict(X[:20].astype(np.float32)).argmax(axis=1))


def test_regression_from_a_csv_with_float_targets(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = 2 * X[:, 0] - X[:, 1] + 0.5
    np.savetxt(tmp_path / "reg.csv", np.column_stack([X, y]), delimiter=",", fmt="%.6f")
    result = run(
        "train",
        "--data",
        "reg.csv",
        "--hidden",
        "16",
        "--epochs",
        40,
        "--lr",
        "0.01",
        "--out",
        "r.npz",
        "--quiet",
        cwd=tmp_path,
    )
    assert_ok(result)
    assert float(re.search(r"test mae: ([0-9.]+)", result.stdout).group(1)) < 0.3
    result = run("predict", "r.npz", "--data", "reg.csv", "--out", "p.csv", cwd=tmp_path)
    assert_ok(result)
    predicted = np.loadtxt(tmp_path / "p.csv")
    assert predicted.shape == (200,) and np.abs(predicted - y).mean() < 0.3


# -- user errors -------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A small digits-shaped model and data files with mistakes, in a tmp cwd."""
    monkeypatch.chdir(tmp_path)
    model = cli.build_mlp(64, [8], 10, "relu", 0)
    model.save("model.npz")
    (tmp_path / "bad.csv").write_text("1,2,3\n4,oops,6\n")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "three.csv").write_text("1,2,3,0\n4,5,6,1\n")
    row = ",".join(["1"] * 64)
    (tmp_path / "label12.csv").write_text(f"{row},3\n{row},12\n")
    (tmp_path / "junk.npz").write_bytes(b"not a model file at all")
    (tmp_path / "ones.csv").write_text("1,2,0\n3,4,0\n5,6,0\n")
    return tmp_path


ERRORS = [
    (["train", "--data", "missing.csv"], r"missing\.csv: expected a data file, found no such"),
    (["evaluate", "missing.npz"], r"No model file at 'missing\.npz'"),
    (["train", "--data", "bad.csv"], r"bad\.csv, line 2, column 2: expected a number.*'oops'"),
    (["train", "--data", "ragged.csv"], r"ragged\.csv, line 2: expected 3 columns, found 2"),
    (
        ["evaluate", "model.npz", "--data", "three.csv"],
        r"three.csv has 4 columns, but model.npz needs 64 feature columns plus a label",
    ),
    (
        ["predict", "model.npz", "--data", "three.csv", "--out", "p.csv"],
        r"needs 64 feature columns \(a label column after them is optional\)",
    ),
    (["evaluate", "model.npz", "--data", "label12.csv"], r"labels must be integers in 0\.\.9.*12"),
    (["evaluate", "junk.npz"], r"junk\.npz: .*not a .*model file"),
    (["train", "--data", "ones.csv", "--task", "classify"], r"at least two classes"),
    (["train", "--epochs", "0"], r"--epochs: expected a positive integer, received '0'"),
    (["train", "--lr", "-1"], r"--lr: expected a positive number"),
    (["train", "--optimizer", "nope"], r"invalid choice: 'nope'"),
    (["train", "--bogus"], r"unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_user_errors_print_one_line_and_exit_2(files, capsys, argv, message):
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("chainrule") and "error:" in err
    assert re.search(message, err), err
    assert not (files / "p.csv").exists()


@pytest.mark.parametrize(
    "argv", [["train", "--data", "bad.csv"], ["evaluate", "junk.npz"], ["train", "--hidden", "0"]]
)
def test_user_errors_in_a_subprocess_have_no_traceback(files, argv):
    result = run(*argv, cwd=files)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_console_script_is_installed():
    exe = shutil.which("chainrule")
    if exe is None:
        pytest.skip("the chainrule console script is not on PATH")
    result = subprocess.run([exe, "train", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--hidden" in result.stdout


@pytest.mark.slow
def test_default_train_reaches_98_percent_averaged_over_seeds_0_to_4(tmp_path, monkeypatch, capsys):
    """Issue 3's promise for `chainrule train` with no options (40 epochs, 512 hidden, Adam)."""
    monkeypatch.chdir(tmp_path)
    accuracies = []
    for seed in range(5):
        assert cli.main(["train", "--seed", str(seed), "--quiet", "--out", f"m{seed}.npz"]) == 0
        out = capsys.readouterr().out
        accuracies.append(float(re.search(r"test accuracy: ([0-9.]+)", out).group(1)))
    assert np.mean(accuracies) >= 0.98, accuracies


def test_hidden_sizes_with_an_empty_part_are_refused(files, capsys):
    assert cli.main(["train", "--hidden", "128,,64", "--epochs", "1", "--quiet"]) == 2
    assert "--hidden expects sizes such as 128,64" in capsys.readouterr().err


def test_a_learning_rate_that_makes_the_loss_grow_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    np.savetxt("reg.csv", np.column_stack([X, X @ [1.0, 2.0, 3.0]]), delimiter=",")
    common = ["train", "--data", "reg.csv", "--epochs", "3", "--quiet"]
    assert cli.main([*common, "--lr", "1e6", "--out", "bad.npz"]) == 0  # finite, so it saves
    assert "warning: the training loss grew from" in capsys.readouterr().err
    assert cli.main([*common, "--out", "good.npz"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_diverging_run_names_the_flag_to_change_and_saves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    np.savetxt("reg.csv", np.column_stack([X, X @ [1.0, 2.0, 3.0]]), delimiter=",")
    args = ["train", "--data", "reg.csv", "--optimizer", "sgd", "--lr", "1e6", "--quiet"]
    assert cli.main([*args, "--epochs", "3", "--out", "m.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error: training diverged at epoch 1, batch ")
    assert "Try a smaller --lr than 1e+06" in err and "clip_grad_norm" not in err
    assert not (tmp_path / "m.npz").exists()


def test_predict_and_evaluate_follow_the_task_the_model_was_trained_for(
    tmp_path, monkeypatch, capsys
):
    """Three regression targets are not three logits: no arg-max for a regressor."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    Y = X @ rng.normal(size=(3, 3)).astype(np.float32)
    np.savez("multi.npz", X=X, y=Y)
    np.save("X.npy", X)
    assert (
        cli.main(
            [
                "train",
                "--data",
                "multi.npz",
                "--hidden",
                "16",
                "--epochs",
                "5",
                "--quiet",
                "--out",
                "reg.npz",
            ]
        )
        == 0
    )
    assert cli.main(["predict", "reg.npz", "--data", "X.npy", "--out", "pred.npy"]) == 0
    predicted = np.load("pred.npy")
    assert predicted.shape == (200, 3)
    np.testing.assert_allclose(predicted, nn.load("reg.npz").predict(X), rtol=1e-6)
    assert cli.main(["evaluate", "reg.npz", "--data", "multi.npz"]) == 0
    assert "mae:" in capsys.readouterr().out


def test_labels_that_look_like_numbers_are_not_taken_as_a_trillion_classes(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    Path("big.csv").write_text("1,2,0\n3,4,1000000000000\n5,6,0\n7,8,1\n9,9,1\n")
    assert (
        cli.main(
            [
                "train",
                "--data",
                "big.csv",
                "--hidden",
                "4",
                "--epochs",
                "2",
                "--quiet",
                "--out",
                "r.npz",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "look like numeric targets (3 distinct values up to 1000000000000 for 5 samples" in err
    assert "--task classify" in err
    assert nn.load("r.npz").predict(np.zeros((1, 2))).shape == (1, 1)  # one output


def test_regression_on_large_targets_learns_them_and_predicts_in_their_units(
    tmp_path, monkeypatch, capsys
):
    """Prices around 50,000: trained on standardized targets, saved to predict raw ones."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = 50000 + 8000 * (X @ [1.0, -2.0, 0.5]) + rng.normal(size=500) * 500
    np.savetxt("houses.csv", np.column_stack([X, np.round(y)]), delimiter=",")
    assert (
        cli.main(
            ["train", "--data", "houses.csv", "--task", "regress", "--quiet", "--out", "h.npz"]
        )
        == 0
    )
    mae = float(re.search(r"test mae: ([0-9.e+]+)", capsys.readouterr().out).group(1))
    assert mae < 0.1 * y.std()  # always guessing the mean would be about 0.8 std
    predicted = nn.load("h.npz").predict(X.astype(np.float32))[:, 0]
    assert np.mean(np.abs(predicted - y)) < 0.1 * y.std()


def test_one_column_of_integer_labels_in_an_npz_is_classification(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    X, y = data.load_digits()
    np.savez("d.npz", X=X, y=y[:, None])
    assert cli.main(["train", "--data", "d.npz", "--epochs", "2", "--quiet"]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    assert cli.main(["evaluate", "model.npz", "--data", "d.npz"]) == 0  # read the same way
    assert "accuracy:" in capsys.readouterr().out


def test_huge_regression_targets_in_one_npz_column_train(tmp_path, monkeypatch, capsys):
    """Whole numbers beyond int64 stay floats; their spread is computed without overflow."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.round(1e19 * (1 + 0.05 * X[:, :1]))
    np.savez("big.npz", X=X, y=y)
    assert (
        cli.main(
            [
                "train",
                "--data",
                "big.npz",
                "--task",
                "regress",
                "--epochs",
                "20",
                "--quiet",
                "--out",
                "big_model.npz",
            ]
        )
        == 0
    )
    mae = float(re.search(r"test mae: ([0-9.e+]+)", capsys.readouterr().out).group(1))
    assert mae < 0.2 * y.std()


def test_a_model_file_with_foreign_training_state_is_read_as_a_plain_model(files, capsys):
    nn.save(cli.build_mlp(64, [8], 10, "relu", 0), "odd.npz", state={"json": ["classify"]})
    assert cli.main(["predict", "odd.npz", "--out", "-"]) == 0  # 10 outputs: a classifier
    assert capsys.readouterr().out.split()[0].isdigit()


def test_a_missing_output_directory_is_reported_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--epochs", "1", "--out", "no/such/dir/m.npz"]) == 2
    err = capsys.readouterr().err
    assert "--out no/such/dir/m.npz: the directory 'no/such/dir' does not exist" in err
    assert "training" not in err.split("error:")[0]  # refused before the model was built


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "learning rate (default: 0.001)",
        "(default: 40)",
        "(default: adam)",
        "(default: 512)",
        "(default: model.npz)",
    ):
        assert default in text


def test_predict_writes_to_stdout_with_a_dash_and_atomically_to_files(files, capsys, monkeypatch):
    assert cli.main(["predict", "model.npz", "--out", "-"]) == 0  # the bundled digits
    lines = capsys.readouterr().out.split()
    assert len(lines) == 1797 and all(s.isdigit() for s in lines)
    assert not Path("-").exists()

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    Path("old.csv").write_text("kept\n")
    monkeypatch.setattr(np, "savetxt", lambda f, *a, **k: interrupted(f))
    assert cli.main(["predict", "model.npz", "--out", "old.csv"]) == 130
    assert Path("old.csv").read_text() == "kept\n"
    assert [p.name for p in Path().iterdir() if p.name.endswith(".tmp")] == []


def test_predict_writes_through_fifos_and_symlinks_and_stops_quietly_on_a_closed_pipe(files):
    import os

    os.mkfifo("fifo.csv")
    reader = subprocess.Popen(["cat", "fifo.csv"], stdout=subprocess.PIPE, text=True)
    assert cli.main(["predict", "model.npz", "--out", "fifo.csv"]) == 0
    assert len(reader.communicate(timeout=30)[0].split()) == 1797
    assert not Path("fifo.csv").is_file()  # still the FIFO, not replaced by a file
    Path("target.csv").write_text("")
    os.symlink("target.csv", "link.csv")
    assert cli.main(["predict", "model.npz", "--out", "link.csv"]) == 0
    assert Path("link.csv").is_symlink() and len(Path("target.csv").read_text().split()) == 1797
    code = (
        "import sys; from nn import cli; sys.exit(cli.main(['predict', 'model.npz', '--out', '-']))"
    )
    pipe = subprocess.run(
        f'{sys.executable} -c "{code}" | head -2', shell=True, capture_output=True, text=True
    )
    assert len(pipe.stdout.split()) == 2 and "Broken pipe" not in pipe.stderr


def test_predict_never_takes_an_npz_label_column_for_a_feature(files, capsys):
    X, y = data.load_digits()
    np.savez("short.npz", X=X[:, :63], y=y[:, None])
    nn.save(cli.build_mlp(64, [8], 10, "relu", 0), "m64.npz")
    assert cli.main(["predict", "m64.npz", "--data", "short.npz", "--out", "p.csv"]) == 2
    assert "needs 64 feature columns" in capsys.readouterr().err


def test_predict_to_dev_stdout_writes_only_the_predictions(files):
    code = (
        "import sys; from nn import cli; "
        "sys.exit(cli.main(['predict', 'model.npz', '--out', '/dev/stdout']))"
    )
    with open("p.csv", "w") as out:
        result = subprocess.run(
            [sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE, text=True
        )
    assert result.returncode == 0 and "wrote 1797 predictions" in result.stderr
    lines = Path("p.csv").read_text().split()
    assert len(lines) == 1797 and all(s.isdigit() for s in lines)


def test_a_one_feature_model_predicts_from_a_csv_of_features_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = np.linspace(-1, 1, 50)
    np.savetxt("one.csv", np.column_stack([x, 3 * x + 1]), delimiter=",")
    np.savetxt("feat.csv", x[:, None], delimiter=",")
    assert (
        cli.main(
            [
                "train",
                "--data",
                "one.csv",
                "--task",
                "regress",
                "--epochs",
                "2",
                "--quiet",
                "--out",
                "m1.npz",
            ]
        )
        == 0
    )
    for data_file in ("feat.csv", "one.csv"):  # a label column after the feature is optional
        assert cli.main(["predict", "m1.npz", "--data", data_file, "--out", "p.npy"]) == 0
        np.testing.assert_allclose(
            np.load("p.npy")[:, 0],
            nn.load("m1.npz").predict(x[:, None].astype(np.float32))[:, 0],
            rtol=1e-6,
        )


# -- labels that are not classes, pandas files, validation, probabilities ----------------------


def _diabetes_frame():
    """scikit-learn's diabetes set as a user exports it: 442 rows, targets 25..346."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame  # the target column is float64
    assert frame["target"].dtype == np.float64
    return frame


def test_diabetes_written_by_pandas_trains_a_regression_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    frame = _diabetes_frame()
    frame.to_csv("diabetes.csv", index=False)  # targets written as 151.0
    assert "151.0" in Path("diabetes.csv").read_text().splitlines()[1]
    common = ["train", "--data", "diabetes.csv", "--hidden", "16", "--epochs", "2", "--quiet"]
    assert cli.main([*common, "--out", "r.npz"]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if "regression" in line]
    assert len(notes) == 1 and "--task classify" in notes[0], err
    assert "test mae:" in out and "accuracy" not in out
    assert nn.load("r.npz").predict(np.zeros((1, 10))).shape == (1, 1)  # one output, not 347
    assert cli.main([*common, "--task", "classify", "--out", "c.npz"]) == 0  # the override
    out, err = capsys.readouterr()
    assert "test accuracy:" in out and "regression" not in err
    assert cli.main(["evaluate", "c.npz", "--data", "diabetes.csv"]) == 0  # labels as 151.0
    assert "accuracy:" in capsys.readouterr().out


def test_integer_labels_with_one_or_two_samples_per_class_train_a_regression(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    frame = _diabetes_frame()
    frame["target"] = frame["target"].astype(int)  # written as 151: still no classes
    frame.to_csv("diabetes.csv", index=False)
    counts = np.unique(frame["target"], return_counts=True)[1]
    assert np.mean(counts < 3) > 0.5 and len(counts) < len(frame)  # mostly 1 or 2 each
    common = ["train", "--data", "diabetes.csv", "--hidden", "16", "--epochs", "2", "--quiet"]
    assert cli.main([*common, "--out", "r.npz"]) == 0
    out, err = capsys.readouterr()
    assert "test mae:" in out and "look like numeric targets" in err and "--task classify" in err
    assert cli.main([*common, "--task", "regress", "--out", "r2.npz"]) == 0
    assert "look like numeric targets" not in capsys.readouterr().err  # asked for: no notice


def test_labels_1_to_3_say_that_class_0_is_unused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    np.savetxt(
        "c.csv",
        np.column_stack([X, np.repeat([1, 2, 3], 30)]),
        delimiter=",",
        fmt=["%.6f", "%.6f", "%d"],
    )
    assert (
        cli.main(
            [
                "train",
                "--data",
                "c.csv",
                "--hidden",
                "4",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                "m.npz",
            ]
        )
        == 0
    )
    notes = [line for line in capsys.readouterr().err.splitlines() if "label 0" in line]
    assert notes == [
        "chainrule: note: no sample has label 0 (the labels run 1..3): the model "
        "gets 4 outputs and never predicts 0; relabel as 0..2 to drop it"
    ]
    assert nn.load("m.npz").predict(X[:1]).shape == (1, 4)


def test_the_index_column_pandas_writes_is_dropped_and_named(tmp_path, monkeypatch, capsys):
    """Class-sorted noise: the index alone would give a test accuracy of 1.0."""
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    frame["label"] = np.repeat([0, 1], 100)
    frame.to_csv("sorted.csv")
    assert (
        cli.main(
            [
                "train",
                "--data",
                "sorted.csv",
                "--hidden",
                "32",
                "--epochs",
                "30",
                "--quiet",
                "--out",
                "m.npz",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert (
        "chainrule: sorted.csv: dropped column 1, which has no name and counts the rows "
        "0..199" in err
    )
    assert len(err.strip().splitlines()) == 1, err  # one line, no warning source lines
    assert nn.load("m.npz").n_features == 3
    assert float(re.search(r"test accuracy: ([0-9.]+)", out).group(1)) < 0.8  # noise: no leak
    assert cli.main(["predict", "m.npz", "--data", "sorted.csv", "--out", "p.csv"]) == 0
    assert "dropped column 1" in capsys.readouterr().err


def test_early_stopping_restores_the_weights_of_the_best_validation_epoch(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 10))
    y = (X[:, 0] + rng.normal(size=150) > 0).astype(int)  # noisy: a wide MLP soon overfits
    np.savetxt("noisy.csv", np.column_stack([X, y]), delimiter=",", fmt="%.6f")
    Path("noisy.csv").write_text(Path("noisy.csv").read_text().replace(".000000\n", "\n"))
    assert (
        cli.main(
            [
                "train",
                "--data",
                "noisy.csv",
                "--hidden",
                "256",
                "--lr",
                "0.01",
                "--epochs",
                "200",
                "--validation-split",
                "0.25",
                "--patience",
                "3",
                "--out",
                "m.npz",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    logged = [float(v) for v in re.findall(r"val_loss=([0-9.e+-]+)", err)]
    assert 4 <= len(logged) < 200  # stopped early, 3 epochs after the best one
    best = int(np.argmin(logged))
    assert len(logged) == best + 4
    assert f"restored the weights of epoch {best + 1}" in err
    # the validation set: a stratified quarter of the training part, as --seed 0 draws it
    X_train, _, y_train, _ = data.train_test_split(X, y, 0.2, stratify=True, seed=0)
    _, X_val, _, y_val = data.train_test_split(X_train, y_train, 0.25, stratify=True, seed=0)
    val_loss = nn.load("m.npz").evaluate(X_val, y_val, loss="cross_entropy")["loss"]
    assert val_loss == pytest.approx(logged[best], rel=1e-3)


def test_patience_needs_a_validation_split(files, capsys):
    assert cli.main(["train", "--patience", "3", "--quiet"]) == 2
    assert "--patience needs --validation-split" in capsys.readouterr().err


def test_predict_proba_writes_the_softmax_of_the_logits(files, capsys):
    from scipy.special import softmax

    assert cli.main(["predict", "model.npz", "--proba", "--out", "p.csv"]) == 0
    written = np.loadtxt("p.csv", delimiter=",")
    X, _ = data.load_digits()
    logits = nn.load("model.npz").predict(X).astype(np.float64)
    assert written.shape == (1797, 10)
    np.testing.assert_allclose(written, softmax(logits, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(written.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_proba_refuses_a_regressor(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = np.linspace(-1, 1, 50)
    np.savetxt("one.csv", np.column_stack([x, 3 * x + 0.5]), delimiter=",")
    assert (
        cli.main(["train", "--data", "one.csv", "--epochs", "1", "--quiet", "--out", "r.npz"]) == 0
    )
    capsys.readouterr()
    assert cli.main(["predict", "r.npz", "--data", "one.csv", "--proba", "--out", "p.csv"]) == 2
    err = capsys.readouterr().err
    assert "--proba needs a classifier; r.npz predicts values (regression)" in err
    assert not Path("p.csv").exists()


def test_the_optimizer_choices_are_the_optim_registry(tmp_path, monkeypatch, capsys):
    import optim

    train = next(
        a
        for a in cli.make_parser()._subparsers._group_actions[0].choices.values()
        if a.prog.endswith("train")
    )
    choices = next(a.choices for a in train._actions if a.dest == "optimizer")
    assert sorted(choices) == sorted(optim.OPTIMIZERS)
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(
            [
                "train",
                "--optimizer",
                "lbfgs",
                "--hidden",
                "16",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                "l.npz",
            ]
        )
        == 0
    )  # no learning rate to pass to L-BFGS
    assert float(re.search(r"test accuracy: ([0-9.]+)", capsys.readouterr().out).group(1)) > 0.8


def test_a_missing_extra_is_one_line_and_plot_is_checked_before_training(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    assert cli.main(["train", "--plot", "c.png", "--epochs", "1", "--quiet"]) == 2
    assert "chainrule[plot]" in capsys.readouterr().err
    assert not Path("model.npz").exists()  # refused before training, nothing saved
    monkeypatch.undo()
    assert cli.main(["train", "--hidden", "4", "--epochs", "1", "--quiet"]) == 0
    monkeypatch.setitem(sys.modules, "onnx", None)  # onnx not installed
    assert cli.main(["export", "model.npz", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert "chainrule[onnx]" in err and "Traceback" not in err and not Path("m.onnx").exists()
