"""Training curves (plot_history) and the CSVLogger callback, checked against fit's History."""

from __future__ import annotations

import csv
import os
import sys

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import nn
from nn import CSVLogger
from nn.training.plot import plot_history


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def fit(data, epochs=6, **kwargs) -> nn.History:
    X, y = data
    model = nn.Sequential(nn.Dense(4, 8, activation="tanh"), nn.Dense(8, 2), seed=0)
    return model.fit(
        X, y, loss="cross_entropy", optimizer="adam", epochs=epochs, batch_size=16,
        metrics=["accuracy"], progress=False, seed=0, **kwargs,
    )  # fmt: skip


def panels(fig: Figure) -> dict:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}


def test_one_panel_per_quantity_with_training_and_validation(data):
    history = fit(data, validation_split=0.25)
    fig = plot_history(history)
    assert isinstance(fig, Figure)
    axes = panels(fig)
    assert sorted(axes) == ["accuracy", "loss"]
    for name, ax in axes.items():
        training, validation = ax.get_lines()
        assert training.get_label() == "training" and validation.get_label() == "validation"
        np.testing.assert_array_equal(training.get_xdata(), [1, 2, 3, 4, 5, 6])
        np.testing.assert_array_equal(training.get_ydata(), history.history[name])
        np.testing.assert_array_equal(validation.get_ydata(), history.history[f"val_{name}"])
        assert ax.get_xlabel() == "epoch"
        assert name in ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
    assert plt.get_fignums() == []  # not registered with pyplot: nothing to close


def test_without_validation_only_the_training_curve(data):
    fig = plot_history(fit(data, epochs=3), metrics=["loss"])
    (ax,) = panels(fig).values()
    assert [line.get_label() for line in ax.get_lines()] == ["training"]


@pytest.mark.parametrize(
    "loss, scale",
    [([5.0, 1.0, 0.2], "log"), ([0.5, 0.4, 0.3], "linear"), ([1.0, -1.0, -3.0], "linear")],
)
def test_log_scale_for_a_loss_spanning_more_than_a_factor_of_ten(loss, scale):
    fig = plot_history({"loss": loss, "mae": [3.0, 2.0, 0.01]})
    axes = panels(fig)
    assert axes["loss"].get_yscale() == scale
    assert axes["mae"].get_yscale() == "linear"


def test_saves_a_png_of_600_pixels_per_panel(data, tmp_path):
    path = tmp_path / "curves.png"
    fig = plot_history(fit(data, epochs=3), path, metrics=["loss"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert (width, height) == (600, 432)
    assert isinstance(fig, Figure)
    assert os.listdir(tmp_path) == ["curves.png"]


def test_a_failing_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")

    def fail(self, f, **kwargs):
        f.write(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        plot_history({"loss": [1.0, 0.5]}, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["curves.png"]


@pytest.mark.parametrize(
    "history, metrics, error, match",
    [
        ({"loss": [1.0]}, ["accuracy"], ValueError, "accuracy"),
        ({"loss": [1.0]}, "loss", TypeError, "metrics"),
        ({"loss": []}, None, ValueError, "empty"),
        ([1.0, 0.5], None, TypeError, "history"),
    ],
)
def test_bad_arguments(history, metrics, error, match):
    with pytest.raises(error, match=match):
        plot_history(history, metrics=metrics)


def test_without_matplotlib_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"chainrule\[plot\]"):
        plot_history({"loss": [1.0]})


# -- CSVLogger ----------------------------------------------------------------------------------


def read(path, separator=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


def test_csv_logger_writes_what_history_records(data, tmp_path):
    path = tmp_path / "history.csv"
    history = fit(data, validation_split=0.25, callbacks=[CSVLogger(path)])
    header, *rows = read(path)
    keys = sorted(history.history)
    assert (
        header
        == ["epoch", *keys]
        == ["epoch", "accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    )
    assert [int(r[0]) for r in rows] == history.epoch == [0, 1, 2, 3, 4, 5]
    for column, key in enumerate(keys, start=1):
        assert [float(r[column]) for r in rows] == history.history[key]  # exact round trip


def test_csv_logger_appends_or_starts_over(data, tmp_path):
    path = tmp_path / "history.csv"
    fit(data, epochs=2, callbacks=[CSVLogger(path)])
    fit(data, epochs=3, callbacks=[CSVLogger(path, append=True)])
    header, *rows = read(path)
    assert header[0] == "epoch" and [r[0] for r in rows] == ["0", "1", "0", "1", "2"]
    fit(data, epochs=1, callbacks=[CSVLogger(path)])
    assert len(read(path)) == 2


def test_csv_logger_separator_and_missing_values(tmp_path):
    path = tmp_path / "history.csv"
    logger = CSVLogger(path, separator=";")
    logger.on_train_begin({})
    logger.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.25})
    logger.on_epoch_end(1, {"loss": float("nan")})
    assert read(path, ";") == [
        ["epoch", "loss", "val_loss"],
        ["0", "0.5", "0.25"],
        ["1", "nan", "NA"],
    ]


@pytest.mark.parametrize(
    "kwargs, error",
    [({"path": 3}, TypeError), ({"separator": "\n"}, ValueError), ({"separator": ""}, ValueError),
     ({"append": 1}, TypeError)],
)  # fmt: skip
def test_csv_logger_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        CSVLogger(**{"path": tmp_path / "h.csv", **kwargs})


def test_chainrule_train_plot_and_history(tmp_path):
    from nn.cli import main

    plot, log = tmp_path / "curves.png", tmp_path / "history.csv"
    argv = ["train", "--epochs", "3", "--hidden", "8", "--quiet", "--out", str(tmp_path / "m.npz")]
    assert main([*argv, "--plot", str(plot), "--history", str(log)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header, *rows = read(log)
    assert header == ["epoch", "accuracy", "loss", "lr"] and len(rows) == 3
