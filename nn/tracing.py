"""Trace the chain rule through a model: every quantity of eqs. 5.8–5.13, with its value.

``trace(model, x, y, loss)`` runs one forward and one backward pass in float64 and returns a
:class:`TraceReport`; ``print(report)`` shows, layer by layer, z, σ(z), σ'(z), ∂L/∂a, ∂L/∂z,
∂L/∂W, ∂L/∂b and ∂L/∂x beside the equation of the reference notes each comes from. Every
gradient is compared with central finite differences on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import losses
import nn
from nn.activations import Activation, Softmax

__all__ = ["trace", "worked_example", "TraceReport", "LayerTrace", "Quantity"]

#: The worked example: x₁, x₂ → one sigmoid unit z (w₁, w₂, b) → two sigmoid units z′, z″
#: (w₃, w₄, b₃, b₄), trained towards the targets t₁, t₂.
WORKED_EXAMPLE = {
    "x": [[1.0, -2.0]],
    "t": [[1.0, 0.0]],
    "W1": [[0.3], [-0.7]],  # w₁, w₂
    "b1": [0.1],
    "W2": [[0.8, -1.2]],  # w₃, w₄
    "b2": [0.2, -0.4],  # b₃, b₄
}

#: σ'(z) of each activation, written from the cached values as the layers compute it.
DERIVATIVES = {
    "identity": "1",
    "sigmoid": "a(1 − a)",
    "tanh": "1 − a²",
    "relu": "1 where z > 0, else 0",
    "leaky_relu": "1 where z > 0, else the slope",
    "elu": "1 where z > 0, else a + α",
    "gelu": "Φ(z) + z·φ(z)",
    "softplus": "1 − e^(−a)",
}
_FULL = 12  # arrays up to this many entries are printed in full
_STEP = 1e-6  # central-difference step, relative to each entry


@dataclass
class Quantity:
    """One value of the trace: ``symbol = formula`` (from ``equation``) and its ``value``.

    ``error`` is the largest |analytic − numeric| over the entries checked, relative to the
    largest entry of either, for gradients checked by finite differences (else None).
    """

    symbol: str
    formula: str
    equation: str
    value: np.ndarray
    error: float | None = None
    checked: int = 0

    def render(self) -> str:
        head = f"{self.symbol} = {self.formula}" if self.formula else self.symbol
        lines = [f"    {head}" + (f"   [{self.equation}]" if self.equation else "")]
        lines.append(f"        {_show(self.value)}")
        if self.error is not None:
            part = "" if self.checked == self.value.size else f" ({self.checked} entries)"
            lines.append(f"        finite differences agree to {self.error:.1e}{part}")
        return "\n".join(lines)


@dataclass
class LayerTrace:
    """The forward and backward quantities of one layer, by key (``"z"``, ``"dL_dW"``, ...)."""

    index: int
    layer: str
    forward: dict[str, Quantity] = field(default_factory=dict)
    backward: dict[str, Quantity] = field(default_factory=dict)
    chain: str = ""  # eq. 5.13 written out with numbers, when it applies

    def __getitem__(self, key: str) -> np.ndarray:
        return {**self.forward, **self.backward}[key].value


@dataclass
class TraceReport:
    """What :func:`trace` found; ``str(report)`` is the lesson, the fields are for code."""

    model: str
    loss_name: str
    loss: float
    layers: list[LayerTrace]

    @property
    def max_error(self) -> float:
        """The largest finite-difference error of any gradient."""
        return max(
            q.error for lt in self.layers for q in lt.backward.values() if q.error is not None
        )

    def __str__(self) -> str:
        lines = [
            f"Chain-rule trace of {self.model.splitlines()[0]} with loss {self.loss_name}",
            "(float64, evaluation mode; each gradient is compared with central finite differences)",
            "",
            "FORWARD PASS: each layer computes its output from its input",
        ]
        for lt in self.layers:
            lines.append(f"  layer {lt.index}: {lt.layer}")
            lines += [q.render() for q in lt.forward.values()]
        lines += [
            f"  loss L = {self.loss:.6g}",
            "",
            "BACKWARD PASS: from the loss back to the input, each layer turns ∂L/∂(its output)",
            "into ∂L/∂(its parameters) and ∂L/∂(its input), which the layer before receives",
        ]
        for lt in reversed(self.layers):
            lines.append(f"  layer {lt.index}: {lt.layer}")
            lines += [q.render() for q in lt.backward.values()]
            if lt.chain:
                lines.append(lt.chain)
        lines.append(f"largest finite-difference error: {self.max_error:.1e}")
        return "\n".join(lines)


def _show(value: np.ndarray) -> str:
    if value.size <= _FULL:
        return np.array2string(value, precision=6, suppress_small=False, separator=", ").replace(
            "\n", "\n        "
        )
    return (
        f"shape {value.shape}: min {value.min():.4g}, mean {value.mean():.4g}, "
        f"max {value.max():.4g}, norm {np.linalg.norm(value):.4g}"
    )


def _check(analytic: np.ndarray, f: Callable[[], float], array: np.ndarray, rng, limit: int):
    """(error, entries checked): ∂f/∂array by central differences against ``analytic``.

    ``array`` is perturbed in place, one entry at a time, and restored.
    """
    flat = array.reshape(-1)
    picks = range(flat.size) if flat.size <= limit else rng.choice(flat.size, limit, replace=False)
    numeric, exact = [], analytic.reshape(-1)
    for i in picks:
        saved = flat[i]
        h = _STEP * max(1.0, abs(saved))
        flat[i] = saved + h
        up = f()
        flat[i] = saved - h
        down = f()
        flat[i] = saved
        numeric.append((up - down) / (2 * h))
    numeric = np.array(numeric)
    exact = exact[np.array(list(picks))]
    scale = max(np.abs(exact).max(), np.abs(numeric).max(), 1e-300)
    return float(np.abs(exact - numeric).max() / scale), len(numeric)


def trace(model: nn.Sequential, x, y, loss, *, max_checks: int = 64) -> TraceReport:
    """Run one forward and backward pass of ``model`` on ``(x, y)`` and record every step.

    Parameters
    ----------
    model : Sequential
        Left unchanged: the trace runs on a float64 copy, in evaluation mode.
    x : array_like, shape (batch, n_features)
        A few examples.
    y : array_like
        Their targets, as ``loss`` expects them.
    loss : str or losses.Loss
        For example ``"mse"`` or ``losses.MSE(reduction="sum")`` (eq. 5.8 sums the examples).
    max_checks : int
        At most this many entries of each gradient are checked by finite differences (chosen
        at random, seed 0); smaller gradients are checked whole.

    Returns
    -------
    TraceReport
        ``print(report)`` shows the chain rule; ``report.layers[i]["dL_dW"]`` etc. hold the
        values and ``report.max_error`` the largest finite-difference error.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            "Received an invalid value for `model`, expected an nn.Sequential. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )
    loss_fn = losses.get(loss)
    net = model.copy(dtype=np.float64).eval()
    x = np.array(x, dtype=np.float64, ndmin=2)
    y = np.asarray(y)
    rng = np.random.default_rng(0)

    def loss_from(start: int, h: np.ndarray) -> float:
        for layer in net.layers[start:]:
            h = layer.forward(h)
        return float(loss_fn.forward(h, y))

    inputs, traces = [], []
    h = x
    for i, layer in enumerate(net.layers):
        inputs.append(h)
        h = layer.forward(h).copy()
        traces.append(_forward_quantities(i, layer, inputs[-1], h))
    value = float(loss_fn.forward(h, y))
    grad = np.array(loss_fn.backward(), dtype=np.float64)
    net.zero_grad()
    for i in range(len(net.layers) - 1, -1, -1):
        layer, lt = net.layers[i], traces[i]
        source = "∂L/∂ŷ, from the loss" if i == len(net.layers) - 1 else f"∂L/∂x of layer {i + 1}"
        d_out = Quantity("∂L/∂a", source, "", grad)
        output = traces[i]["a"].copy()
        d_out.error, d_out.checked = _check(
            grad, lambda o=output, k=i: loss_from(k + 1, o), output, rng, max_checks
        )
        lt.backward["dL_da"] = d_out
        grad = np.array(layer.backward(grad), dtype=np.float64)
        _backward_quantities(lt, layer, i, loss_from, rng, max_checks)
        d_in = Quantity("∂L/∂x", *_INPUT_GRAD.get(type(layer), ("∂L/∂a·∂a/∂x", "")), grad)
        x_in = inputs[i].copy()
        d_in.error, d_in.checked = _check(
            grad, lambda v=x_in, k=i: loss_from(k, v), x_in, rng, max_checks
        )
        lt.backward["dL_dx"] = d_in
    _write_equation_5_13(traces, net)
    return TraceReport(repr(model), repr(loss_fn), value, traces)


_INPUT_GRAD = {
    nn.Dense: ("∂L/∂z·Wᵀ", "eq. 5.11: x feeds every z, the branch rule"),
    **{cls: ("∂L/∂z", "the input is z") for cls in nn.ACTIVATIONS.values()},
}


def _activation_copy(act: Activation, z: np.ndarray) -> tuple[Activation, np.ndarray]:
    """A fresh copy of ``act`` that has computed σ(z) (so its chain() may run); and σ(z)."""
    fresh = nn.get_activation(act)
    return fresh, fresh.apply(z, np.empty_like(z)).copy()


def _sigma_prime(act: Activation, z: np.ndarray) -> np.ndarray | None:
    """σ'(z) element by element, or None for softmax (whose derivative is a Jacobian)."""
    if isinstance(act, Softmax):
        return None
    fresh, a = _activation_copy(act, z)
    return fresh.chain(z, a, np.ones_like(z), np.empty_like(z)).copy()


def _forward_quantities(i: int, layer: nn.Layer, x: np.ndarray, out: np.ndarray) -> LayerTrace:
    lt = LayerTrace(i, repr(layer))
    lt.forward["x"] = Quantity("x", "input", "", x.copy())
    act = layer.activation if isinstance(layer, nn.Dense) else layer
    if isinstance(layer, nn.Dense):
        z = x @ layer.W.data + (0 if layer.b is None else layer.b.data)
        lt.forward["z"] = Quantity("z", "x·W + b", "eq. 5.9: z = Σᵢ wᵢxᵢ + b", z)
    elif isinstance(layer, Activation):
        z = x
    if isinstance(act, Activation):
        lt.forward["a"] = Quantity("a", f"σ(z), σ = {act.name}", "", out)
        sigma_prime = _sigma_prime(act, z)
        if sigma_prime is not None:
            formula = f"σ'(z) = {DERIVATIVES.get(act.name, 'dσ/dz')}"
            lt.forward["sigma_prime"] = Quantity(formula, "", "eq. 5.12", sigma_prime)
    else:
        lt.forward["a"] = Quantity("a", "output", "", out)
    return lt


def _backward_quantities(lt: LayerTrace, layer, i: int, loss_from, rng, max_checks: int) -> None:
    """∂L/∂z for layers with an activation, and ∂L/∂p for each parameter, each checked."""
    act = layer.activation if isinstance(layer, nn.Dense) else layer
    if isinstance(act, Activation):
        z = lt["z"] if "z" in lt.forward else lt["x"]
        fresh, a = _activation_copy(act, z)
        dz = fresh.chain(z, a, lt.backward["dL_da"].value, np.empty_like(z)).copy()
        formula = "a ⊙ (∂L/∂a − Σⱼ aⱼ·∂L/∂aⱼ)" if isinstance(act, Softmax) else "σ'(z) ⊙ ∂L/∂a"
        q = Quantity("∂L/∂z", formula, "eq. 5.12", dz)
        z_in = z.copy()

        def after_z(v=z_in):
            h = _activation_copy(act, v)[1]
            return loss_from(i + 1, h)

        q.error, q.checked = _check(dz, after_z, z_in, rng, max_checks)
        lt.backward["dL_dz"] = q
    described = {
        "W": ("xᵀ·∂L/∂z", "eqs. 5.9–5.10: ∂z/∂wᵢ = xᵢ; 5.8: summed over the examples"),
        "b": ("Σ_batch ∂L/∂z", "∂z/∂b = 1"),
    }
    for p in layer.parameters():
        formula, equation = (
            described[p.name] if isinstance(layer, nn.Dense) else ("from the layer's backward", "")
        )
        q = Quantity(f"∂L/∂{p.name}", formula, equation, p.grad.copy())
        # the layers before this one do not depend on p: start from this layer's input
        q.error, q.checked = _check(q.value, lambda: loss_from(i, lt["x"]), p.data, rng, max_checks)
        lt.backward[f"dL_d{p.name}"] = q


def _write_equation_5_13(traces: list[LayerTrace], net: nn.Sequential) -> None:
    """Eq. 5.13 with numbers for W[0, 0] of each Dense layer followed by a Dense layer.

    ∂L/∂w = x₀ · σ'(z₀) · [Σⱼ w′ⱼ · ∂L/∂z′ⱼ], with w′ⱼ the weights from this unit to the next
    layer's units and ∂L/∂z′ⱼ theirs; for one example (the notes' setting).
    """
    for lt, layer, after in zip(traces, net.layers, net.layers[1:], strict=False):
        nxt = traces[lt.index + 1]
        if not (isinstance(layer, nn.Dense) and isinstance(after, nn.Dense)):
            continue
        if lt["x"].shape[0] != 1 or "sigma_prime" not in lt.forward:
            continue
        x0, s0 = lt["x"][0, 0], lt["sigma_prime"][0, 0]
        w, dz = after.W.data[0], nxt["dL_dz"][0]
        terms = " + ".join(f"({a:.6g})·({b:.6g})" for a, b in zip(w, dz, strict=True))
        value = x0 * s0 * float(w @ dz)
        lt.chain = (
            "    5.13 for W[0, 0]: ∂L/∂w = x₀·σ'(z₀)·[Σⱼ w′ⱼ·∂L/∂z′ⱼ] (w′, z′: the next layer)\n"
            f"        = ({x0:.6g})·({s0:.6g})·[{terms}]\n"
            f"        = {value:.6g}   (∂L/∂W[0, 0] above: {lt['dL_dW'][0, 0]:.6g})"
        )


def worked_example() -> tuple[nn.Sequential, np.ndarray, np.ndarray, losses.Loss]:
    """The network of eqs. 5.11–5.13 with :data:`WORKED_EXAMPLE`'s numbers.

    Returns ``(model, x, t, loss)`` for :func:`trace`: ``Dense(2, 1, sigmoid)`` (z = w₁x₁ +
    w₂x₂ + b) feeding ``Dense(1, 2, sigmoid)`` (z′ = w₃a + b₃, z″ = w₄a + b₄), float64, and
    the loss L = Σ (a − t)² (``MSE(reduction="sum")``, a sum as in eq. 5.8).
    """
    first = nn.Dense(2, 1, activation="sigmoid")
    second = nn.Dense(1, 2, activation="sigmoid")
    model = nn.Sequential(first, second, dtype=np.float64)
    first.W.data[...] = WORKED_EXAMPLE["W1"]
    first.b.data[...] = WORKED_EXAMPLE["b1"]
    second.W.data[...] = WORKED_EXAMPLE["W2"]
    second.b.data[...] = WORKED_EXAMPLE["b2"]
    x, t = np.array(WORKED_EXAMPLE["x"]), np.array(WORKED_EXAMPLE["t"])
    return model, x, t, losses.MSE(reduction="sum")
