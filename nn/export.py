"""ONNX export: a Sequential as an ONNX graph that onnxruntime and other runtimes can run.

Each built-in layer becomes a few standard ONNX operators on a ``(batch, features)`` tensor
with a dynamic batch dimension, in the model's dtype:

* ``Dense`` is ``Gemm(x, W, b)`` (W is stored ``(n_in, n_out)``, so ``transB=0``), followed
  by its activation; ``Dropout`` is ``Identity`` (inference); ``Standardize`` is
  ``(x − mean) / scale``; ``BatchNorm1d`` uses its running statistics.
* float32 models use the dedicated operators (``LeakyRelu``, ``Elu``, ``Softplus``, ``Erf``
  or ``Gelu``, ``BatchNormalization``, ``LayerNormalization``). Their attributes are float32
  and onnxruntime has no float64 kernels for some of them, so float64 models spell these
  layers out with elementary operators that mirror the numpy code to rounding.
"""

from __future__ import annotations

import math
import os

import numpy as np

import nn
from nn.activations import (
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from nn.dropout import Dropout
from nn.files import write_atomically
from nn.linear import Dense
from nn.normalization import BatchNorm1d, LayerNorm
from nn.preprocessing import Standardize

__all__ = ["export_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

#: The default ONNX opset: 17 has LayerNormalization and runs on onnxruntime 1.14 and later.
DEFAULT_OPSET = 17
#: The oldest opset supported (Softmax over the last axis only, as in opset 13).
MIN_OPSET = 13
#: Terms of the series of erf used by float64 GELU (enough for |u| ≤ 6, where erf(u) = ±1).
_ERF_TERMS = 100


class _Graph:
    """The nodes and constants of an ONNX graph being built, with fresh value names."""

    def __init__(self, onnx, dtype: np.dtype, opset: int) -> None:
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.dtype, self.opset = dtype, opset
        self.nodes: list = []
        self.constants: list = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value) -> str:
        """A constant tensor in the model's dtype; returns its name."""
        name = self._name(stem)
        array = np.asarray(value, dtype=self.dtype)
        self.constants.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        """Append one node; returns the name of its output."""
        out = self._name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attributes))
        return out

    @property
    def double(self) -> bool:
        return self.dtype == np.float64


# -- activations ------------------------------------------------------------------------------


def _kahan(g: _Graph, u: str, exact: str, ratio_of) -> str:
    """``exact`` where u = 1, else ``ratio_of(denominator)``, with no 0/0 in either branch."""
    one = g.const("one", 1.0)
    is_one = g.op("Equal", u, one)
    return g.op("Where", is_one, exact, ratio_of(is_one, one))


def _expm1(g: _Graph, x: str) -> str:
    """eˣ − 1 for x ≤ 0 without cancellation (Kahan: (u − 1)·x / log u with u = eˣ)."""
    x = g.op("Max", x, g.const("floor", -60.0))  # e⁻⁶⁰ − 1 = −1 in float64, and u > 0
    u = g.op("Exp", x)

    def ratio(is_one: str, one: str) -> str:
        log_u = g.op("Where", is_one, one, g.op("Log", u))
        return g.op("Div", g.op("Mul", g.op("Sub", u, one), x), log_u)

    return _kahan(g, u, x, ratio)


def _log1p(g: _Graph, v: str) -> str:
    """log(1 + v) for v ≥ 0 without cancellation (Kahan: log u · v / (u − 1) with u = 1 + v)."""
    u = g.op("Add", v, g.const("one", 1.0))

    def ratio(is_one: str, one: str) -> str:
        u_minus_1 = g.op("Where", is_one, one, g.op("Sub", u, one))
        return g.op("Div", g.op("Mul", g.op("Log", u), v), u_minus_1)

    return _kahan(g, u, v, ratio)


def _erf(g: _Graph, u: str) -> str:
    """erf(u) = 2/√π · u·e^{−u²} · Σₙ 2ⁿu²ⁿ/(2n+1)!!, a series of positive terms (float64).

    onnxruntime has no float64 ``Erf``; |u| is capped at 6, where erf(u) = ±1 in float64.
    The sum is a polynomial in t = u²/36 ∈ [0, 1], whose coefficients stay far from float32's
    underflow (onnxruntime's graph optimizer drops additions of constants that are 0 in float32).
    """
    c = g.op("Min", g.op("Max", u, g.const("low", -6.0)), g.const("high", 6.0))
    s = g.op("Mul", c, c)
    t = g.op("Mul", s, g.const("inv_36", 1 / 36))
    coefficients = [1.0]  # aₙ·36ⁿ with aₙ = 2ⁿ/(2n+1)!!
    for n in range(1, _ERF_TERMS):
        coefficients.append(coefficients[-1] * 72 / (2 * n + 1))
    total = g.const("a", coefficients[-1])
    for a in reversed(coefficients[:-1]):  # Horner
        total = g.op("Add", g.op("Mul", total, t), g.const("a", a))
    scale = g.op("Mul", c, g.op("Exp", g.op("Neg", s)))
    two_over_sqrt_pi = g.const("two_over_sqrt_pi", 2 / math.sqrt(math.pi))
    return g.op("Mul", g.op("Mul", total, scale), two_over_sqrt_pi)


def _gelu(g: _Graph, x: str) -> str:
    """x·Φ(x) with Φ(x) = (1 + erf(x/√2)) / 2, as GELU.apply computes it."""
    if g.opset >= 20 and not g.double:
        return g.op("Gelu", x)
    u = g.op("Mul", x, g.const("inv_sqrt2", 1 / math.sqrt(2)))
    erf = _erf(g, u) if g.double else g.op("Erf", u)
    cdf = g.op("Mul", g.op("Add", erf, g.const("one", 1.0)), g.const("half", 0.5))
    return g.op("Mul", x, cdf)


def _leaky_relu(g: _Graph, x: str, act: LeakyReLU) -> str:
    if not g.double:
        return g.op("LeakyRelu", x, alpha=act.negative_slope)
    positive = g.op("Greater", x, g.const("zero", 0.0))
    return g.op("Where", positive, x, g.op("Mul", x, g.const("slope", act.negative_slope)))


def _elu(g: _Graph, x: str, act: ELU) -> str:
    if not g.double:
        return g.op("Elu", x, alpha=act.alpha)
    negative = g.op(
        "Mul", _expm1(g, g.op("Min", x, g.const("zero", 0.0))), g.const("alpha", act.alpha)
    )
    return g.op("Where", g.op("Greater", x, g.const("zero", 0.0)), x, negative)


def _softplus(g: _Graph, x: str) -> str:
    if not g.double:
        return g.op("Softplus", x)
    # log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}), as numpy's logaddexp(0, x)
    return g.op("Add", g.op("Relu", x), _log1p(g, g.op("Exp", g.op("Neg", g.op("Abs", x)))))


def _activation(g: _Graph, act: Activation, x: str) -> str | None:
    """The output of σ(x), or None when ``act`` is not a built-in activation."""
    kind = type(act)
    if kind is Identity:
        return g.op("Identity", x)
    simple = {Sigmoid: "Sigmoid", Tanh: "Tanh", ReLU: "Relu"}
    if kind in simple:
        return g.op(simple[kind], x)
    if kind is Softmax:
        return g.op("Softmax", x, axis=-1)
    if kind is LeakyReLU:
        return _leaky_relu(g, x, act)
    if kind is ELU:
        return _elu(g, x, act)
    if kind is Softplus:
        return _softplus(g, x)
    if kind is GELU:
        return _gelu(g, x)
    return None


# -- layers -----------------------------------------------------------------------------------


def _dense(g: _Graph, layer: Dense, x: str) -> str | None:
    W = g.const("W", layer.W.data)
    z = g.op("Gemm", x, W) if layer.b is None else g.op("Gemm", x, W, g.const("b", layer.b.data))
    return _activation(g, layer.activation, z)


def _standardize(g: _Graph, layer: Standardize, x: str) -> str:
    centred = g.op("Sub", x, g.const("mean", layer.mean))
    return g.op("Div", centred, g.const("scale", layer.scale))


def _batch_norm(g: _Graph, layer: BatchNorm1d, x: str) -> str:
    gamma, beta = g.const("gamma", layer.gamma.data), g.const("beta", layer.beta.data)
    if g.opset >= 15 and not g.double:  # onnx's reference runtime misreads the older versions
        mean, var = (
            g.const("running_mean", layer.running_mean),
            g.const("running_var", layer.running_var),
        )
        return g.op("BatchNormalization", x, gamma, beta, mean, var, epsilon=layer.eps)
    # 1/σ computed here, as BatchNorm1d.forward does in evaluation mode
    inv_std = np.reciprocal(np.sqrt(layer.running_var + layer.eps))
    xhat = g.op(
        "Mul",
        g.op("Sub", x, g.const("running_mean", layer.running_mean)),
        g.const("inv_std", inv_std),
    )
    return g.op("Add", g.op("Mul", xhat, gamma), beta)


def _layer_norm(g: _Graph, layer: LayerNorm, x: str) -> str:
    gamma, beta = g.const("gamma", layer.gamma.data), g.const("beta", layer.beta.data)
    if g.opset >= 17 and not g.double:
        return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=layer.eps)
    # row means as a product with a column of 1/n (works in every opset)
    average = g.const("average", np.full((layer.n_features, 1), 1 / layer.n_features))
    centred = g.op("Sub", x, g.op("MatMul", x, average))
    var = g.op("MatMul", g.op("Mul", centred, centred), average)
    inv_std = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.const("eps", layer.eps))))
    return g.op("Add", g.op("Mul", g.op("Mul", centred, inv_std), gamma), beta)


_LAYERS = {
    Dense: _dense,
    Standardize: _standardize,
    BatchNorm1d: _batch_norm,
    LayerNorm: _layer_norm,
    Dropout: lambda g, layer, x: g.op("Identity", x),
}


def _translate(g: _Graph, index: int, layer: nn.Layer, x: str) -> str:
    """The output of ``layer`` applied to ``x``; TypeError naming a layer with no translation."""
    translate = _LAYERS.get(type(layer))
    if translate is not None:
        out = translate(g, layer, x)
    elif isinstance(layer, Activation):
        out = _activation(g, layer, x)
    else:
        out = None
    if out is None:
        culprit = layer.activation if isinstance(layer, Dense) else layer
        raise TypeError(
            f"export_onnx cannot translate layer {index}, {layer!r}: {type(culprit).__name__} "
            "is not a built-in chainrule layer or activation. Export translates Dense, "
            "Standardize, Dropout, BatchNorm1d, LayerNorm and the activations of "
            "nn.ACTIVATIONS only"
        )
    return out


def _check_opset(onnx, opset: object) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(
            f"Received an invalid type for `opset`, expected an integer from {MIN_OPSET} to "
            f"{newest} or None. Received: opset={opset!r} of type {type(opset).__name__}"
        )
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"Received an invalid value for `opset`, expected an integer from {MIN_OPSET} to "
            f"{newest} (the newest this onnx knows) or None. Received: opset={opset}"
        )
    return int(opset)


def _import_onnx():
    try:
        import onnx  # optional dependency: the [onnx] extra (it loads helper, defs, ...)
    except ImportError as err:
        raise ImportError(
            "export_onnx needs the onnx package: pip install 'chainrule[onnx]'"
        ) from err
    return onnx


def to_onnx(model: nn.Sequential, opset: int | None = None):
    """The ONNX ``ModelProto`` of ``model``, checked by ``onnx.checker`` (full check).

    Parameters
    ----------
    model : Sequential
        Built from chainrule's layers; evaluation-mode behaviour is exported.
    opset : int or None
        The ONNX opset (default :data:`DEFAULT_OPSET`).

    Returns
    -------
    onnx.ModelProto
        Input ``"input"`` of shape ``(batch, n_features)`` and output ``"output"`` of shape
        ``(batch, n_outputs)`` in the model's dtype; ``batch`` is dynamic.
    """
    onnx = _import_onnx()
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            "Received an invalid value for `model`, expected an nn.Sequential. "
            f"Received: model={model!r} of type {type(model).__name__}"
        )
    opset = _check_opset(onnx, opset)
    g = _Graph(onnx, model.dtype, opset)
    x = "input"
    n_in = n = model.n_features
    for index, layer in enumerate(model.layers):
        x = _translate(g, index, layer, x)
        if n is not None:
            n = layer.output_features(n)
    g.nodes.append(onnx.helper.make_node("Identity", [x], ["output"]))
    elem = onnx.helper.np_dtype_to_tensor_dtype(model.dtype)
    graph = onnx.helper.make_graph(
        g.nodes,
        "chainrule",
        [onnx.helper.make_tensor_value_info("input", elem, ["batch", n_in or "features"])],
        [onnx.helper.make_tensor_value_info("output", elem, ["batch", n or "outputs"])],
        g.constants,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(
        graph, opset_imports=opsets, producer_name="chainrule", doc_string=repr(model)
    )
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: nn.Sequential, path: str | os.PathLike, opset: int | None = None) -> None:
    """Write ``model`` as an ONNX file that runtimes without Python can run.

    The file is written atomically (a temporary file in the same folder, then
    ``os.replace``): ``path`` holds the old file or the complete new one, never a part.

    Parameters
    ----------
    model : Sequential
        Built from chainrule's layers; evaluation-mode behaviour is exported (Dropout is
        the identity, BatchNorm1d uses its running statistics).
    path : str or os.PathLike
        The ``.onnx`` file to write.
    opset : int or None
        The ONNX opset, from 13 to the newest the installed onnx knows; default 17.

    Raises
    ------
    TypeError
        For a layer (or a Dense activation) that is not built in; the message names it.
    ImportError
        Without the onnx package (``pip install 'chainrule[onnx]'``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "Received an invalid value for `path`, expected a str or os.PathLike. "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    data = to_onnx(model, opset).SerializeToString()
    write_atomically(path, lambda f: f.write(data))
