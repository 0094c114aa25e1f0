"""Data loading and splitting, checked against values the tests write themselves."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nn.data import (
    load_csv,
    load_dataset,
    load_digits,
    load_npy,
    load_npz,
    train_test_split,
)

# -- digits ----------------------------------------------------------------------------------


def test_digits_shape_dtype_and_values():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16
    assert np.array_equal(X, np.round(X))
    assert set(np.unique(y)) == set(range(10))
    counts = np.bincount(y)
    assert counts.sum() == 1797
    assert np.all((counts >= 170) & (counts <= 190))  # about 180 of each digit


def test_digits_dtype_and_fresh_arrays():
    X64, y = load_digits(dtype=np.float64)
    assert X64.dtype == np.float64
    X64[0, 0] = -1.0  # the caller owns what it gets
    assert load_digits()[0][0, 0] == 0


def test_digits_first_row_matches_the_bundled_file():
    root = Path(__file__).resolve().parents[1]
    with gzip.open(root / "nn" / "datasets" / "digits.csv.gz", "rt") as f:
        first = [int(v) for v in f.readline().split(",")]
    X, y = load_digits()
    assert X[0].tolist() == first[:64] and y[0] == first[64]


def test_digits_load_from_an_installed_copy(tmp_path):
    """A plain (non-editable) install must ship the CSV and find it via importlib.resources."""
    root = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-cache-dir",
            "--quiet",
            "--target",
            str(target),
            str(root),
        ],
        capture_output=True,
        text=True,
    )
    # pip builds in an isolated environment (setuptools from PyPI, as any install does): a
    # failure here is a packaging defect, not a reason to skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    code = (
        "import nn.data, numpy as np; X, y = nn.data.load_digits(); "
        "print(nn.data.__file__); print(X.shape, np.bincount(y).sum())"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(target))  # the installed copy, not the checkout
    assert out[1] == "(1797, 64) 1797"


# -- train_test_split --------------------------------------------------------------------------


def _toy(n=100, classes=(0, 1, 2), weights=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(123)
    y = np.repeat(np.array(classes), (np.array(weights) * n).astype(int))
    X = np.arange(len(y) * 2, dtype=np.float64).reshape(len(y), 2)
    return X, rng.permutation(y)


@pytest.mark.parametrize(("test_size", "n_test"), [(0.2, 20), (0.25, 25), (0.333, 34), (7, 7)])
def test_split_sizes(test_size, n_test):
    X, y = _toy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, seed=0)
    assert len(X_te) == len(y_te) == n_test
    assert len(X_tr) == len(y_tr) == 100 - n_test


def test_split_is_a_disjoint_partition_with_rows_kept_together():
    X, y = _toy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, seed=1)
    rows = np.concatenate([X_tr[:, 0], X_te[:, 0]]) / 2
    assert sorted(rows.astype(int)) == list(range(100))  # every row once
    # labels travel with their rows
    assert np.array_equal(y[(X_tr[:, 0] / 2).astype(int)], y_tr)
    assert np.array_equal(y[(X_te[:, 0] / 2).astype(int)], y_te)


def test_split_is_deterministic_in_the_seed_and_ignores_global_state():
    X, y = _toy()
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it is left alone
    a = train_test_split(X, y, seed=42)
    b = train_test_split(X, y, seed=42)
    c = train_test_split(X, y, seed=43)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_split_accepts_a_generator():
    X, y = _toy()
    a = train_test_split(X, y, seed=np.random.default_rng(5))
    b = train_test_split(X, y, seed=np.random.default_rng(5))
    assert np.array_equal(a[1], b[1])


def test_stratified_split_keeps_class_proportions():
    X, y = _toy(n=1000)
    for seed in range(5):
        _, _, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=True, seed=seed)
        assert np.array_equal(np.bincount(y_te), [100, 60, 40])
        assert np.array_equal(np.bincount(y_tr), [400, 240, 160])


def test_stratified_split_rounding_adds_up():
    # 3 classes of 7 samples, test_size 10: 10 * 7 / 21 = 3.33 each -> 3, 3, 4 in some order
    y = np.repeat([0, 1, 2], 7)
    X = np.zeros((21, 1))
    for seed in range(10):
        _, X_te, _, y_te = train_test_split(X, y, test_size=10, stratify=True, seed=seed)
        counts = np.bincount(y_te, minlength=3)
        assert len(X_te) == 10 and sorted(counts) == [3, 3, 4]


def test_stratified_split_on_digits():
    X, y = load_digits()
    _, _, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=True, seed=0)
    assert len(y_te) == 360 and len(y_tr) == 1437
    expected = np.bincount(y) * 360 / 1797
    assert np.all(np.abs(np.bincount(y_te) - expected) < 1)


def test_stratified_split_mixes_classes():
    X, y = _toy()
    _, _, y_tr, _ = train_test_split(X, y, stratify=True, seed=0)
    assert not np.all(np.diff(y_tr) >= 0)  # not sorted by class


def test_split_without_labels():
    X = np.arange(10.0).reshape(5, 2)
    X_tr, X_te, y_tr, y_te = train_test_split(X, None, test_size=2, seed=0)
    assert X_tr.shape == (3, 2) and X_te.shape == (2, 2) and y_tr is None and y_te is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"test_size": 0.0}, ValueError, r"test_size.*\(0, 1\).*0\.0"),
        ({"test_size": 1.0}, ValueError, r"\(0, 1\)"),
        ({"test_size": -0.5}, ValueError, "test_size"),
        ({"test_size": 0}, ValueError, r"\[1, 99\]"),
        ({"test_size": 100}, ValueError, r"\[1, 99\].*test_size=100"),
        ({"test_size": True}, TypeError, "test_size"),
        ({"test_size": "0.2"}, TypeError, "test_size"),
    ],
)
def test_split_rejects_bad_test_size(kwargs, error, match):
    X, y = _toy()
    with pytest.raises(error, match=match):
        train_test_split(X, y, **kwargs)


def test_split_rejects_mismatched_lengths_and_bad_stratify():
    X, y = _toy()
    with pytest.raises(ValueError, match=r"same number of samples.*\(100, 2\).*\(99,\)"):
        train_test_split(X, y[:-1])
    with pytest.raises(ValueError, match="class labels"):
        train_test_split(X, y + 0.5, stratify=True)
    with pytest.raises(ValueError, match="class labels"):
        train_test_split(X, None, stratify=True)
    with pytest.raises(ValueError, match="at least 2"):
        train_test_split(X[:1], y[:1])


# -- CSV round trips --------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def _csv_text(X, y, header=None):
    lines = [",".join(header)] if header else []
    lines += [
        ",".join([*(repr(float(v)) for v in row), str(label)])
        for row, label in zip(X, y, strict=True)
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz"])
@pytest.mark.parametrize("header", [None, ["a", "b", "c", "label"]])
def test_csv_round_trip(tmp_path, name, header):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    y = np.array([0, 2, 1, 1, 0, 2])
    path = _write(tmp_path / name, _csv_text(X, y, header))
    for loader in (load_csv, load_dataset):
        X_got, y_got = loader(path, dtype=np.float64)
        assert X_got.dtype == np.float64 and y_got.dtype == np.int64
        assert np.array_equal(X_got, X) and np.array_equal(y_got, y)
    X32, _ = load_csv(str(path))
    assert X32.dtype == np.float32 and np.array_equal(X32, X.astype(np.float32))


def test_csv_explicit_header_flag(tmp_path):
    path = _write(tmp_path / "d.csv", "1,2,3\n4,5,6\n")
    X, y = load_csv(path, header=True)  # the first row is taken as names
    assert X.tolist() == [[4, 5]] and y.tolist() == [6]
    X, y = load_csv(path, header=False)
    assert X.tolist() == [[1, 2], [4, 5]] and y.tolist() == [3, 6]


def test_csv_float_labels_are_regression_targets(tmp_path):
    path = _write(tmp_path / "r.csv", "1,0.5\n2,1.25\n3,-3\n")
    X, y = load_csv(path)
    assert y.dtype == np.float32 and y.tolist() == [0.5, 1.25, -3.0]
    _, y = load_csv(path, dtype=np.float64)
    assert y.dtype == np.float64


def test_csv_labels_written_as_integers_are_classes(tmp_path):
    path = _write(tmp_path / "c.csv", "1,0\n2,3\n3,-1\n")
    _, y = load_csv(path)
    assert y.dtype == np.int64 and y.tolist() == [0, 3, -1]


@pytest.mark.parametrize(
    "cells", [("151.0", "75.0", "-1.0"), ("151", "75.0", "-1"), ("1.51e2", "75", "-1")]
)
def test_csv_labels_written_with_a_decimal_point_or_exponent_are_targets(tmp_path, cells):
    """pandas writes a float column as 151.0: whole values, but not class labels."""
    path = _write(tmp_path / "t.csv", "".join(f"{i},{c}\n" for i, c in enumerate(cells)))
    _, y = load_csv(path)
    assert y.dtype == np.float32 and y.tolist() == [151.0, 75.0, -1.0]


def test_csv_blank_lines_windows_newlines_and_bom(tmp_path):
    path = tmp_path / "w.csv"
    path.write_bytes(b"\xef\xbb\xbfx,label\r\n\r\n1.5,1\r\n   \r\n2.5,0\r\n")
    X, y = load_csv(path)
    assert X.tolist() == [[1.5], [2.5]] and y.tolist() == [1, 0]


# -- CSV errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1,2,3\n4,5,6\n7,8\n", r"bad\.csv, line 3: expected 3 columns, found 2"),
        ("1,2,3\n\n4,5,6,7\n", r"bad\.csv, line 3: expected 3 columns, found 4"),
        ("1,2,3\n4,x,6\n", r"bad\.csv, line 2, column 2: expected a number, found 'x'"),
        ("1,2,3\n4,,6\n", r"bad\.csv, line 2, column 2: expected a number, found ''"),
        (
            "a,b,c\n1,2,3\n4,5,nan\n",
            r"bad\.csv, line 3, column 3: expected a finite number, "
            r"found 'nan'",
        ),
        ("1,inf,3\n", r"bad\.csv, line 1, column 2: expected a finite number, found 'inf'"),
        ("1\n2\n", r"bad\.csv, line 1: expected at least 2 columns .* found 1"),
        ("a,b,c\n", r"bad\.csv, line 1: expected data rows after the header, found none"),
        ("\n  \n\n", r"bad\.csv: expected rows of comma-separated numbers, found only blank"),
        ("a,b\n1,2,3\n", r"bad\.csv, line 1: expected a header of 3 names .* found 2"),
        ("1,2\n1_0,3\n", r"bad\.csv, line 2, column 1: expected a number, found '1_0'"),
    ],
)
def test_csv_errors_name_file_line_and_problem(tmp_path, text, match):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=match):
        load_csv(path)


def test_csv_error_in_gzip_file(tmp_path):
    path = _write(tmp_path / "bad.csv.gz", "1,2\n3,4\n5\n")
    with pytest.raises(ValueError, match=r"bad\.csv\.gz, line 3: expected 2 columns, found 1"):
        load_dataset(path)


def test_csv_header_false_on_named_columns_hints_at_header(tmp_path):
    path = _write(tmp_path / "h.csv", "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"h\.csv, line 1, column 1: .*'a'.*header=True"):
        load_csv(path, header=False)


def test_csv_missing_empty_and_undecodable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: .*no such file"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"nope\.npz"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: expected data, found an empty file"):
        load_csv(tmp_path / "empty.csv")
    (tmp_path / "bin.csv").write_bytes(b"1,2\n\xff\xfe,3\n")
    with pytest.raises(ValueError, match=r"bin\.csv: expected UTF-8 text"):
        load_csv(tmp_path / "bin.csv")
    (tmp_path / "fake.csv.gz").write_bytes(b"1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"fake\.csv\.gz: expected gzip-compressed CSV"):
        load_csv(tmp_path / "fake.csv.gz")
    with pytest.raises(ValueError, match="found a directory"):
        load_csv(tmp_path)


def test_csv_bad_arguments(tmp_path):
    path = _write(tmp_path / "d.csv", "1,2\n")
    with pytest.raises(ValueError, match="dtype"):
        load_csv(path, dtype=np.int32)
    with pytest.raises(TypeError, match="header"):
        load_csv(path, header="yes")


# -- NPZ and NPY ---------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    y = np.array([1, 0, 1, 1], dtype=np.int32)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    for loader in (load_npz, load_dataset):
        X_got, y_got = loader(tmp_path / "d.npz", dtype=np.float64)
        assert np.array_equal(X_got, X)
        assert y_got.dtype == np.int64 and y_got.tolist() == [1, 0, 1, 1]
    X32, _ = load_npz(tmp_path / "d.npz")
    assert X32.dtype == np.float32


def test_npz_regression_and_two_dimensional_targets(tmp_path):
    X = np.ones((3, 2))
    np.savez(tmp_path / "r.npz", X=X, y=np.array([0.5, 1.0, 2.0]))
    assert load_npz(tmp_path / "r.npz")[1].dtype == np.float32
    np.savez(tmp_path / "w.npz", X=X, y=np.array([151.0, 75.0, 2.0]))  # whole, stored as floats
    assert load_npz(tmp_path / "w.npz")[1].dtype == np.float32
    onehot = np.eye(3)
    np.savez(tmp_path / "p.npz", X=X, y=onehot)
    y = load_npz(tmp_path / "p.npz", dtype=np.float64)[1]
    assert y.dtype == np.float64 and np.array_equal(y, onehot)  # probabilities stay floats


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"X": np.ones((3, 2))}, r"d\.npz: expected arrays `X` and `y`, found \['X'\] .*`y`"),
        ({"data": np.ones(3)}, r"d\.npz: expected arrays `X` and `y`.*missing `X`, `y`"),
        (
            {"X": np.ones((3, 2)), "y": np.ones(2)},
            r"d\.npz: expected array `y` of shape \(3,\)"
            r".*found shape \(2,\)",
        ),
        (
            {"X": np.ones(3), "y": np.ones(3)},
            r"d\.npz: expected array `X` of shape "
            r"\(n_samples, n_features\).*found shape \(3,\)",
        ),
        (
            {"X": np.array([[1.0, np.nan]]), "y": np.ones(1)},
            r"d\.npz: array `X`: expected finite"
            r".*index \(0, 1\)",
        ),
        (
            {"X": np.ones((2, 2)), "y": np.array([0.0, np.inf])},
            r"d\.npz: array `y`: expected "
            r"finite",
        ),
        ({"X": np.array([["a", "b"]]), "y": np.ones(1)}, r"d\.npz: array `X`: expected numbers"),
        (
            {"X": np.array([[1, None]], dtype=object), "y": np.ones(1)},
            r"d\.npz: expected array "
            r"`X` of numbers.*pickle",
        ),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        load_npz(path)


def test_npz_files_that_are_not_archives(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.npz: expected an \.npz archive"):
        load_npz(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.ones((2, 2)))
    os.replace(tmp_path / "single.npy", tmp_path / "single.npz")
    with pytest.raises(ValueError, match=r"single\.npz: .*found a single \.npy array"):
        load_npz(tmp_path / "single.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz: expected data, found an empty file"):
        load_npz(tmp_path / "empty.npz")


def test_npy_gives_features_only(tmp_path):
    X = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "x.npy", X)
    X_got, y = load_dataset(tmp_path / "x.npy", dtype=np.float64)
    assert y is None and np.array_equal(X_got, X)
    mapped = load_npy(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, X)


def test_npy_errors(tmp_path):
    np.save(tmp_path / "v.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"v\.npy: expected an array of shape .*shape \(3,\)"):
        load_npy(tmp_path / "v.npy")
    np.save(tmp_path / "n.npy", np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match=r"n\.npy: expected finite numbers, found 1 .*\(1, 0\)"):
        load_npy(tmp_path / "n.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="mmap_mode"):
        load_npy(tmp_path / "n.npy", mmap_mode="w")


def test_dataset_rejects_unknown_suffix(tmp_path):
    path = _write(tmp_path / "d.txt", "1,2\n")
    with pytest.raises(
        ValueError,
        match=r"d\.txt: expected a file ending in one of .csv, "
        r".csv.gz, .npz, .npy, found suffix '.txt'",
    ):
        load_dataset(path)


def test_csv_bad_bytes_after_a_ragged_row(tmp_path):
    """The line-by-line rescan may meet undecodable bytes first: still a one-line ValueError."""
    (tmp_path / "mixed.csv").write_bytes(b"1,2\n3\n\xff,4\n")
    with pytest.raises(ValueError, match=r"mixed\.csv: expected UTF-8 text"):
        load_csv(tmp_path / "mixed.csv")


def test_a_first_row_with_numbers_and_a_stray_word_is_bad_data_not_a_header(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("1,2,abc,4,0\n1,2,3,4,1\n5,6,7,8,0\n")
    with pytest.raises(ValueError, match=r"line 1, column 3: expected a number, found 'abc'"):
        load_csv(path)


def test_a_semicolon_separated_file_gets_a_hint(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("1;2;3\n4;5;6\n")
    with pytest.raises(ValueError, match=r"separated by ';'; use commas"):
        load_csv(path)


@pytest.mark.parametrize("write", ["csv_features", "csv_labels", "npz", "npy"])
def test_values_beyond_float32_are_refused_not_turned_into_inf(tmp_path, write):
    path = tmp_path / ("d.npz" if write == "npz" else "d.npy" if write == "npy" else "d.csv")
    if write == "csv_features":
        path.write_text("1e39,2,0\n3,4,1\n")
    elif write == "csv_labels":
        path.write_text("1,2,0.5\n3,4,1.5e39\n")
    elif write == "npz":
        np.savez(path, X=[[1e39, 1.0]], y=[0.5])
    else:
        np.save(path, np.array([[1e39, 1.0]]))
    with pytest.raises(ValueError, match=r"too large for the model's float32"):
        load_dataset(path)
    loaded = load_dataset(path, dtype=np.float64)  # float64 holds them
    assert all(np.isfinite(a).all() for a in loaded if a is not None)


@pytest.mark.parametrize("seed", range(30))
def test_a_stratified_split_keeps_every_class_in_the_training_set(seed):
    """Rounding gave a one-sample class to the test set (scikit-learn refuses such classes)."""
    y = np.array([0] * 9 + [1])
    _, _, y_train, y_test = train_test_split(
        np.arange(10)[:, None], y, 0.5, stratify=True, seed=seed
    )
    assert 1 in y_train and len(y_test) == 5
    y = np.array([0] * 4 + [1])
    _, _, y_train, y_test = train_test_split(
        np.arange(5)[:, None], y, 0.6, stratify=True, seed=seed
    )
    assert 1 in y_train and len(y_test) == 3


def test_nn_data_is_reachable_after_import_nn_alone():
    """The README writes nn.data.load_digits() after a plain `import nn`."""
    code = "import nn; X, y = nn.data.load_digits(); print(X.shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1797, 64)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.1,,0\n0.2,0.3,1\n", r"line 1, column 2: expected a number, found '' \(a missing value"),
        ("0.1,0.2,cat\n0.2,0.3,dog\n", r"column 3: .*'cat' \(labels must be numbers: encode"),
        ("1,2,x3\n", r"line 1, column 3: .*'x3' \(labels must be numbers"),
        ("f1,2024,label\n1,2,0\n", r"line 1, column 1: .*'f1' \(pass header=True"),
    ],
)
def test_csv_errors_give_the_hint_that_fits_the_cell(tmp_path, text, message):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_csv(path)


def test_a_stratified_split_keeps_every_class_whenever_the_counts_allow_it():
    """Every split of 3 classes of 1-6 samples where training can hold each class does."""
    for counts in np.ndindex(6, 6, 6):
        y = np.repeat([0, 1, 2], np.array(counts) + 1)
        for n_test in range(1, len(y) - 2):  # leaves at least 3 training samples
            for seed in range(3):
                _, _, y_train, y_test = train_test_split(
                    y[:, None], y, n_test, stratify=True, seed=seed
                )
                assert len(y_test) == n_test
                assert set(y_train) == {0, 1, 2}, (counts, n_test, seed)


def test_a_stratified_split_of_one_big_class_and_many_singletons_keeps_every_class():
    """Only the big class can give test samples without emptying a class: it gives them all."""
    k = 4000
    y = np.r_[np.zeros(k, np.int64), np.arange(1, k + 1)]
    _, _, y_train, y_test = train_test_split(np.zeros((2 * k, 1)), y, k - 1, stratify=True, seed=0)
    assert len(y_test) == k - 1 and set(y_test) == {0}
    assert len(set(y_train)) == k + 1  # every class keeps a training sample


def test_a_stratified_split_spreads_extras_evenly_and_within_each_class_share():
    # two equal classes must take the extras the singletons cannot give, half each
    y = np.r_[np.zeros(10, np.int64), np.ones(10, np.int64), np.arange(2, 12)]
    for seed in range(4):
        y_test = train_test_split(np.zeros((30, 1)), y, 15, stratify=True, seed=seed)[3]
        assert sorted(np.bincount(y_test, minlength=12)[:2]) == [7, 8]
    # when a class must give its last sample, it is the one still due the most (class 1,
    # exact share 3.59), not one already at its rounded-up share (class 2, 8.98 → 9)
    y = np.repeat(np.arange(6), [11, 4, 10, 9, 9, 6])
    y_test = train_test_split(np.zeros((49, 1)), y, 44, stratify=True, seed=0)[3]
    assert np.bincount(y_test).tolist() == [10, 4, 9, 8, 8, 5]


def test_load_csv_without_labels_reads_every_column_as_a_feature(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("1.5\n2\n-3\n")
    X, y = load_csv(path, labels=False)
    assert y is None and X.dtype == np.float32 and X.tolist() == [[1.5], [2.0], [-3.0]]
    path.write_text("1,2\n1,cat\n")
    with pytest.raises(ValueError, match=r"line 2, column 2: expected a number, found 'cat'$"):
        load_csv(path, labels=False)  # no label hint: the column is a feature here
    with pytest.raises(TypeError, match=r"`labels`, expected True or False"):
        load_csv(path, labels="no")


# -- the row index pandas writes -----------------------------------------------------------------


def _class_sorted_frame(n_per_class=30):
    """Noise features with labels 0 then 1: only the row number tells the classes apart."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2 * n_per_class, 3)), columns=["a", "b", "c"])
    frame["label"] = np.repeat([0, 1], n_per_class)
    return frame


@pytest.mark.parametrize("labels", [True, False])
def test_the_index_column_of_pandas_to_csv_is_dropped_with_a_warning(tmp_path, labels):
    frame = _class_sorted_frame()
    frame.to_csv(tmp_path / "d.csv")  # the default writes the index under an empty header cell
    assert (tmp_path / "d.csv").read_text().startswith(",a,b,c,label\n0,")
    with pytest.warns(
        UserWarning,
        match=r"d\.csv: dropped column 1, which has no name and "
        r"counts the rows 0\.\.59: .*index=False",
    ):
        X, y = load_csv(tmp_path / "d.csv", dtype=np.float64, labels=labels)
    features = frame[["a", "b", "c"]].to_numpy()
    if labels:
        assert np.array_equal(X, features) and y.tolist() == frame["label"].tolist()
    else:
        assert np.array_equal(X, frame.to_numpy(dtype=np.float64)) and y is None


def test_a_shuffled_index_column_is_dropped_too(tmp_path):
    frame = _class_sorted_frame().sample(frac=1.0, random_state=0)  # the index keeps row numbers
    frame.to_csv(tmp_path / "s.csv")
    with pytest.warns(
        UserWarning,
        match=r"s\.csv: dropped column 1, which has no name and "
        r"holds distinct whole numbers",
    ):
        X, y = load_csv(tmp_path / "s.csv", dtype=np.float64)
    assert np.array_equal(X, frame[["a", "b", "c"]].to_numpy()) and np.array_equal(y, frame.label)


def test_an_unnamed_first_column_of_values_is_kept_with_a_warning(tmp_path):
    path = _write(tmp_path / "u.csv", ",b,label\n0.5,1,0\n0.5,2,1\n1.5,3,1\n")
    with pytest.warns(
        UserWarning,
        match=r"u\.csv: column 1 has no name in the header; "
        r"it is read as a feature",
    ):
        X, y = load_csv(path)
    assert X.tolist() == [[0.5, 1], [0.5, 2], [1.5, 3]] and y.tolist() == [0, 1, 1]


def test_named_columns_and_files_without_a_header_give_no_warning(tmp_path, recwarn):
    _write(tmp_path / "n.csv", "i,b,label\n0,1,0\n1,2,1\n")
    _write(tmp_path / "h.csv", "0,1,0\n1,2,1\n")
    assert load_csv(tmp_path / "n.csv")[0].tolist() == [[0, 1], [1, 2]]
    assert load_csv(tmp_path / "h.csv")[0].tolist() == [[0, 1], [1, 2]]
    assert len(recwarn) == 0
