"""Training curves: loss and metrics per epoch, training beside validation."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from nn.files import write_atomically

__all__ = ["plot_history"]

_PANEL_SIZE = (5.0, 3.6)  # inches per quantity; at the saved dpi one panel is 600×432 pixels
_DPI = 120


def _quantities(history: Mapping[str, list], metrics: Sequence[str] | None) -> list[str]:
    """The names to draw: "loss" first, then each metric; validation values go with theirs."""
    available = [k for k in history if not k.startswith("val_") and k != "lr"]
    if metrics is None:
        return sorted(available, key=lambda k: k != "loss")  # stable: loss, then fit's order
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise TypeError(
            "Received an invalid value for `metrics`, expected a list of names such as "
            f"['loss', 'accuracy'] or None. Received: metrics={metrics!r}"
        )
    unknown = [m for m in metrics if m not in history]
    if unknown or not metrics:
        raise ValueError(
            f"Received an invalid value for `metrics`, expected names recorded in the history "
            f"({sorted(history)}). Received: metrics={list(metrics)!r}"
        )
    return list(metrics)


def _wants_log_scale(values: list[float]) -> bool:
    """Whether a positive quantity spans more than a factor of 10 (then log scale helps)."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) > 10 * min(finite)


def _draw(ax, epochs: list[int], history: Mapping[str, list], name: str, ticker) -> None:
    style = {"marker": "o", "markersize": 3} if len(epochs) <= 30 else {}
    ax.plot(epochs, history[name], label="training", **style)
    validation = history.get(f"val_{name}")
    if validation is not None:
        ax.plot(epochs, validation, label="validation", linestyle="--", **style)
    values = [*history[name], *(validation or [])]
    if name == "loss" and _wants_log_scale(values):
        ax.set_yscale("log")
        ax.set_ylabel(f"{name} (log scale)")
    else:
        ax.set_ylabel(name)
    ax.set_title(name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend()


def plot_history(history, path: str | os.PathLike | None = None, metrics=None):
    """Draw the loss and each metric per epoch, training and validation in one panel each.

    Parameters
    ----------
    history : History or mapping
        What ``model.fit`` returns (or its ``.history`` dict of name → per-epoch values).
        A ``val_<name>`` entry is drawn with ``<name>``.
    path : str, os.PathLike or None
        Where to save the figure, atomically; the format follows the suffix (PNG without one).
    metrics : list of str or None
        The quantities to draw; default ``"loss"`` and every metric (not ``"lr"``).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per quantity, side by side. The loss uses a log scale when it spans more
        than a factor of 10. The figure is not registered with pyplot (no display needed).
    """
    try:
        from matplotlib import figure, ticker  # optional dependency: the [plot] extra
    except ImportError as err:
        raise ImportError("plot_history needs matplotlib: pip install 'chainrule[plot]'") from err
    values = getattr(history, "history", history)
    if not isinstance(values, Mapping):
        raise TypeError(
            "Received an invalid value for `history`, expected the History returned by fit or "
            f"a dict of per-epoch values. Received: history of type {type(history).__name__}"
        )
    names = _quantities(values, metrics)
    lengths = {len(values[k]) for k in values}
    if not names or lengths == {0}:
        raise ValueError("Received an empty `history`: there is no epoch to plot")
    epochs = [e + 1 for e in getattr(history, "epoch", range(len(values[names[0]])))]

    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    fig = figure.Figure(
        figsize=(_PANEL_SIZE[0] * columns, _PANEL_SIZE[1] * rows), layout="constrained"
    )
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        _draw(ax, epochs, values, name, ticker)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if path is not None:
        fmt = Path(path).suffix[1:].lower() or "png"
        write_atomically(path, lambda f: fig.savefig(f, format=fmt, dpi=_DPI))
    return fig
