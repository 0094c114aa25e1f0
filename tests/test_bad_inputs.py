"""Every bad input at every public boundary gets a clear ValueError or TypeError.

One table, :data:`ROWS`: each row is a public entry point (a layer, ``Sequential``,
``predict``, ``fit``, ``evaluate``, a loss, an optimizer, a schedule, a model file, the
``chainrule`` command), one bad input, the error type, and a pattern the message must match —
the argument's name, what was expected and what was received. The classes of bad input are
those of issue 4 (``KINDS``): NaN/±inf, 0 samples, 0 features, 1-D/3-D X, complex/string/object
arrays, length mismatches, bad class labels, wrong target shapes, non-positive sizes,
out-of-range hyperparameters, unknown names, wrong Python types, damaged model files.

Rows whose fix belongs to a file another engineer owns (``nn/training.py``,
``nn/metrics.py``, ``nn/cli.py``) carry ``gap=``: they are strict xfails whose reason says
exactly what is missing, so they turn red the day the gap is closed (then drop the ``gap``).

``N_BAD_INPUTS``, ``N_HANDLED`` and ``N_GAPS`` count the table; ``test_summary`` prints them.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

import losses
import nn
import optim
from nn.cli import main as cli_main

KINDS = {
    "nonfinite": "NaN or ±inf in X, y or a target",
    "no samples": "0 samples",
    "no features": "0 features",
    "ndim": "X (or y, pred) with the wrong number of dimensions",
    "dtype": "complex, string, bytes, object or datetime arrays",
    "length": "X and y (or weights) of different lengths",
    "labels": "class labels out of range, negative or fractional",
    "target shape": "targets of the wrong shape for the loss or the model",
    "size": "non-positive (or absurd) sizes, batch sizes, epochs, counts",
    "hyperparameter": "negative or non-finite learning rates, other hyperparameters out of range",
    "name": "unknown activation, loss, metric, optimizer, initializer or reduction names",
    "type": "a value of the wrong Python type",
    "file": "damaged, foreign or missing model and data files",
}


class CLIError(Exception):
    """What the ``chainrule`` command answers to a bad input: exit status 2, one stderr line."""


@dataclass(frozen=True)
class Bad:
    entry: str  # the public entry point
    what: str  # the bad input
    kind: str  # a key of KINDS
    call: Callable  # call(ctx) must raise
    error: type | tuple[type, ...]
    match: str  # regex the message must match
    gap: str | None = None  # a strict xfail: what is missing, and where

    @property
    def id(self) -> str:
        return f"{self.entry} | {self.what}"


ROWS: list[Bad] = []


def row(entry, what, kind, call, error, match, gap=None):
    assert kind in KINDS, kind
    ROWS.append(Bad(entry, what, kind, call, error, match, gap))


# -- helpers ------------------------------------------------------------------------------------

RNG = np.random.default_rng(0)
X_OK = RNG.normal(size=(12, 3))
Y_LABELS = np.arange(12) % 2
Y_REG = RNG.normal(size=(12, 2))


def mlp(**kwargs):
    return nn.Sequential(nn.Dense(3, 4, "tanh"), nn.Dense(4, 2), seed=0, **kwargs)


def params():
    return mlp().parameters()


def fit(X=X_OK, y=Y_LABELS, **kwargs):
    args = {
        "loss": "cross_entropy",
        "optimizer": "sgd",
        "epochs": 1,
        "batch_size": 4,
        "progress": False,
    }
    args.update(kwargs)
    return mlp().fit(X, y, **args)


def evaluate(X=X_OK, y=Y_LABELS, **kwargs):
    kwargs.setdefault("loss", "cross_entropy")
    return mlp().evaluate(X, y, **kwargs)


def cli(*argv):
    """Run ``chainrule argv`` in-process; raise CLIError(stderr) on exit status 2."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli_main([str(a) for a in argv])
        except SystemExit as exit_:
            status = exit_.code
    if status == 2:
        raise CLIError(err.getvalue())
    return status


def with_nan_theta(model):
    model.theta[0] = np.nan
    return model


def with_nan(a, value=np.nan, at=(1, 2)):
    a = np.array(a, dtype=float)
    a[at] = value
    return a


# -- the bad arrays, for every entry point that takes X ----------------------------------------
# fmt: off

BAD_X = [
    # (what, kind, X, error, pattern)
    ("NaN", "nonfinite", with_nan(X_OK), ValueError, r"X contains NaN or infinity.*row 1"),
    ("+inf", "nonfinite", with_nan(X_OK, np.inf), ValueError, r"X contains NaN or infinity"),
    ("-inf in float32", "nonfinite", with_nan(X_OK, -np.inf).astype(np.float32), ValueError,
     r"X contains NaN or infinity"),
    ("0 samples", "no samples", np.zeros((0, 3)), ValueError, r"X has 0 samples"),
    ("0 features", "no features", np.zeros((12, 0)), ValueError, r"X has 0 features"),
    ("1-D", "ndim", X_OK[:, 0], ValueError, r"X must be 2-D.*shape \(12,\)"),
    ("3-D", "ndim", X_OK[..., None], ValueError, r"X must be 2-D.*shape \(12, 3, 1\)"),
    ("a scalar", "ndim", np.float64(1.0), ValueError, r"X must be 2-D.*shape \(\)"),
    ("complex", "dtype", X_OK + 1j, TypeError, r"X must hold real numbers.*complex"),
    ("strings", "dtype", X_OK.astype(str), TypeError, r"X must hold real numbers.*string"),
    ("bytes", "dtype", X_OK.astype(bytes), TypeError, r"X must hold real numbers.*bytes"),
    ("objects", "dtype", X_OK.astype(object), TypeError, r"X must hold real numbers.*object"),
    ("datetimes", "dtype", np.zeros((12, 3), "datetime64[s]"), TypeError, r"X.*datetime"),
    ("None", "type", None, TypeError, r"X must hold real numbers.*object"),
    ("a ragged list", "ndim", [[1.0, 2.0, 3.0], [1.0]], ValueError, r"X could not be read"),
    ("4 features for a 3-feature model", "no features", RNG.normal(size=(12, 4)), ValueError,
     r"X has 4 features, but the model expects 3"),
]

for what, kind, X, error, pattern in BAD_X:
    row("predict", f"X: {what}", kind, lambda c, X=X: mlp().predict(X), error, pattern)
    row("fit", f"X: {what}", kind, lambda c, X=X: fit(X), error, pattern)
    row("evaluate", f"X: {what}", kind, lambda c, X=X: evaluate(X), error, pattern)

row("predict", "a memory-mapped X with inf in its last row", "nonfinite",
    lambda c: mlp().predict(c.memmap_bad), ValueError, r"X contains NaN or infinity.*row 99999")
row("fit", "a memory-mapped X with inf in its last row", "nonfinite",
    lambda c: fit(c.memmap_bad, np.zeros(100_000, dtype=int)), ValueError, r"row 99999")
for value in (0, -1):
    row("predict", f"batch_size={value}", "size", lambda c, v=value: mlp().predict(X_OK, v),
        ValueError, rf"`batch_size`, expected a positive integer. Received: batch_size={value}")
row("predict", "batch_size=2.5", "type", lambda c: mlp().predict(X_OK, 2.5), TypeError,
    r"`batch_size`, expected a positive integer.*2\.5 of type float")
row("predict", "batch_size=None", "type", lambda c: mlp().predict(X_OK, None), TypeError,
    r"`batch_size`.*None")

# -- fit and evaluate: targets, sizes, names ---------------------------------------------------

BAD_LABELS = [
    ("NaN label", "nonfinite", with_nan(Y_LABELS, at=3), ValueError, r"y contains NaN.*row 3"),
    ("inf label", "nonfinite", with_nan(Y_LABELS, np.inf, at=3), ValueError, r"y contains NaN"),
    ("label 2 for 2 outputs", "labels", np.r_[Y_LABELS[:-1], 2], ValueError,
     r"`y\[11\]`, expected integer class labels in \[0, 2\)\. Received: y\[11\]=2"),
    ("label -1", "labels", np.r_[Y_LABELS[:-1], -1], ValueError, r"y\[11\]=-1"),
    ("label 0.5", "labels", np.r_[Y_LABELS[:-1], 0.5], ValueError,
     r"integer class labels.*y\[11\]=0\.5"),
    ("label 10**9", "labels", np.r_[Y_LABELS[:-1], 10**9], ValueError, r"y\[11\]=1000000000"),
    ("11 labels for 12 samples", "length", Y_LABELS[:-1], ValueError,
     r"X and y have different numbers of samples: X has 12, y has 11"),
    ("y as strings", "dtype", Y_LABELS.astype(str), TypeError, r"y must hold real numbers"),
    ("y as objects", "dtype", Y_LABELS.astype(object), TypeError, r"y must hold real numbers"),
    ("y complex", "dtype", Y_LABELS + 0j, TypeError, r"y must hold real numbers.*complex"),
    ("3-D y", "ndim", Y_LABELS.reshape(12, 1, 1), ValueError,
     r"y must be 1-D or 2-D.*\(12, 1, 1\)"),
    ("y a scalar", "ndim", np.int64(1), ValueError, r"y must be an array.*scalar"),
    ("one-hot rows with 3 classes for 2 outputs", "target shape", np.eye(3)[Y_LABELS],
     ValueError, r"y has shape \(12, 3\), but the model has 2 output"),
]
for what, kind, y, error, pattern in BAD_LABELS:
    row("fit", f"y: {what}", kind, lambda c, y=y: fit(y=y), error, pattern)
    row("evaluate", f"y: {what}", kind, lambda c, y=y: evaluate(y=y), error, pattern)

row("fit", "y (12, 3) for a 2-output model with MSE", "target shape",
    lambda c: fit(y=RNG.normal(size=(12, 3)), loss="mse"), ValueError,
    r"y has shape \(12, 3\), but the model has 2 output.*\(12, 2\)")
row("evaluate", "y (12, 3) for a 2-output model with MSE", "target shape",
    lambda c: evaluate(y=RNG.normal(size=(12, 3)), loss="mse"), ValueError,
    r"y has shape \(12, 3\), but the model has 2 output.*\(12, 2\)")
row("evaluate", "y (12, 3) for a 2-output model, metrics only", "target shape",
    lambda c: mlp().evaluate(X_OK, RNG.normal(size=(12, 3)), metrics=["mae"]), ValueError,
    r"y has shape \(12, 3\), but the model has 2 output")
row("evaluate", "label 5 for 2 outputs, accuracy only", "labels",
    lambda c: mlp().evaluate(X_OK, np.r_[Y_LABELS[:-1], 5], metrics=["accuracy"]), ValueError,
    r"`y\[11\]`, expected integer class labels.*y\[11\]=5")
row("evaluate", "neither loss= nor metrics=", "name",
    lambda c: mlp().evaluate(X_OK, Y_LABELS), ValueError,
    r"evaluate needs loss= or metrics= \(or both\)")
row("fit", "validation labels out of range", "labels",
    lambda c: fit(validation_data=(X_OK[:4], np.array([0, 1, 2, 0]))), ValueError,
    r"`y_val\[2\]`, expected integer class labels in \[0, 2\)")
row("fit", "validation X with 4 features", "no features",
    lambda c: fit(validation_data=(RNG.normal(size=(4, 4)), Y_LABELS[:4])), ValueError,
    r"X_val has 4 features, but the model expects 3")
row("fit", "validation y of another length", "length",
    lambda c: fit(validation_data=(X_OK[:4], Y_LABELS[:3])), ValueError,
    r"X_val and y_val have different numbers of samples")
row("fit", "validation_data not a pair", "type", lambda c: fit(validation_data=X_OK), ValueError,
    r"`validation_data` must be a tuple \(X_val, y_val\)")
for value in (1.0, -0.1, math.nan):
    row("fit", f"validation_split={value}", "hyperparameter",
        lambda c, v=value: fit(validation_split=v), ValueError,
        r"`validation_split`, expected a number in \[0, 1\)")
row("fit", "validation_split and validation_data together", "hyperparameter",
    lambda c: fit(validation_split=0.2, validation_data=(X_OK, Y_LABELS)), ValueError,
    r"both `validation_data` and `validation_split`; expected at most one")
for name, value, kind, error in (
    ("epochs", 0, "size", ValueError), ("epochs", -3, "size", ValueError),
    ("epochs", 1.5, "type", TypeError), ("epochs", None, "type", TypeError),
    ("batch_size", 0, "size", ValueError), ("batch_size", -1, "size", ValueError),
    ("batch_size", "32", "type", TypeError),
):
    row("fit", f"{name}={value!r}", kind, lambda c, n=name, v=value: fit(**{n: v}), error,
        rf"`{name}`, expected a positive integer\. Received: {name}={value!r}")
row("evaluate", "batch_size=0", "size", lambda c: evaluate(batch_size=0), ValueError,
    r"`batch_size`, expected a positive integer")
for value in (-1.0, math.nan, math.inf, 0.0):
    row("fit", f"clip_grad_norm={value}", "hyperparameter",
        lambda c, v=value: fit(clip_grad_norm=v), ValueError,
        r"`clip_grad_norm`, expected a positive finite number")
row("fit", "loss='bogus'", "name", lambda c: fit(loss="bogus"), ValueError,
    r"`loss`, expected one of .*'mse'.*Received: loss='bogus'")
row("fit", "loss=5", "type", lambda c: fit(loss=5), TypeError, r"`loss`.*int")
row("fit", "optimizer='bogus'", "name", lambda c: fit(optimizer="bogus"), ValueError,
    r"`optimizer`, expected one of 'sgd', 'adam'.*Received: optimizer='bogus'")
row("fit", "optimizer=0.1", "type", lambda c: fit(optimizer=0.1), TypeError,
    r"`optimizer`, expected an optim.Optimizer or a name")
row("fit", "an optimizer of another model's parameters", "type",
    lambda c: fit(optimizer=optim.SGD(params(), lr=0.1)), ValueError,
    r"`optimizer`.*not this model's")
row("fit", "metrics=['bogus']", "name", lambda c: fit(metrics=["bogus"]), ValueError,
    r"`metrics`, expected names from .*'accuracy'.*Received: 'bogus'")
row("evaluate", "metrics=['bogus']", "name", lambda c: evaluate(metrics=["bogus"]), ValueError,
    r"`metrics`.*'bogus'")
row("evaluate", "loss='bogus'", "name", lambda c: evaluate(loss="bogus"), ValueError,
    r"`loss`.*'bogus'")
row("fit", "metrics='accuracy' (a string, not a list)", "type",
    lambda c: fit(metrics="accuracy"), TypeError,
    r"`metrics`, expected a list.*\['accuracy'\]. Received: metrics='accuracy'")
row("fit", "callbacks=[1]", "type", lambda c: fit(callbacks=[1]), TypeError,
    r"`callbacks`, expected Callback.*Received: 1")
row("fit", "seed=-1", "hyperparameter", lambda c: fit(seed=-1), ValueError,
    r"`seed`, expected a non-negative integer. Received: seed=-1")
row("fit", "seed='a'", "type", lambda c: fit(seed="a"), TypeError,
    r"`seed`, expected a non-negative integer. Received: seed='a' of type str")
row("fit", "shuffle='yes'", "type", lambda c: fit(shuffle="yes"), TypeError,
    r"`shuffle`, expected True or False. Received: shuffle='yes'")
row("fit", "progress='x'", "type", lambda c: fit(progress="x"), TypeError,
    r"`progress`, expected True or False. Received: progress='x'")
X_HUGE = np.full((12, 3), 1e300)
row("predict", "X: 1e300 for a float32 model", "nonfinite", lambda c: mlp().predict(X_HUGE),
    ValueError, r"X has values too large for the model's float32 \(first at row 0")
row("fit", "X: 1e300 for a float32 model", "nonfinite", lambda c: fit(X_HUGE), ValueError,
    r"X has values too large for the model's float32")
row("evaluate", "X: 1e300 for a float32 model", "nonfinite", lambda c: evaluate(X_HUGE),
    ValueError, r"X has values too large for the model's float32")
row("fit", "validation X: 1e300 for a float32 model", "nonfinite",
    lambda c: fit(validation_data=(X_HUGE[:4], Y_LABELS[:4])), ValueError,
    r"X_val has values too large for the model's float32")
row("fit", "y: bool labels for CrossEntropy", "dtype", lambda c: fit(y=Y_LABELS.astype(bool)),
    (TypeError, ValueError), r"\by\b.*bool")
row("evaluate", "y: bool labels for CrossEntropy", "dtype",
    lambda c: evaluate(y=Y_LABELS.astype(bool)), (TypeError, ValueError), r"\by\b.*bool")
row("fit", "sample_weight of the wrong length", "length",
    lambda c: fit(sample_weight=np.ones(11)), ValueError, r"sample_weight.*\(11,\)")
row("fit", "negative sample weights", "hyperparameter",
    lambda c: fit(sample_weight=-np.ones(12)), ValueError, r"`sample_weight`, expected non-neg")
row("fit", "NaN sample weight", "nonfinite",
    lambda c: fit(sample_weight=with_nan(np.ones(12), at=2)), ValueError,
    r"sample_weight contains NaN")

# -- layers ------------------------------------------------------------------------------------

for name, args, kind, error, pattern in [
    ("n_in=0", (0, 2), "size", ValueError,
     r"`n_in`, expected a positive integer. Received: n_in=0"),
    ("n_out=-1", (2, -1), "size", ValueError, r"`n_out`, expected a positive integer.*n_out=-1"),
    ("n_in=1.5", (1.5, 2), "type", TypeError, r"`n_in`, expected a positive integer.*float"),
    ("n_in='3'", ("3", 2), "type", TypeError, r"`n_in`.*'3' of type str"),
    ("n_in=True", (True, 2), "type", TypeError, r"`n_in`.*True of type bool"),
    ("n_in=None", (None, 2), "type", TypeError, r"`n_in`.*None"),
    ("n_in=n_out=10**12", (10**12, 10**12), "size", ValueError,
     r"`n_in` and `n_out`.*n_in=1000000000000, n_out=1000000000000"),
    ("activation='bogus'", (2, 2, "bogus"), "name", ValueError,
     r"`activation`, expected one of \[.*'relu'.*\] or None. Received: activation='bogus'"),
    ("activation=5", (2, 2, 5), "type", TypeError, r"`activation`, expected a string.*int"),
    ("activation={'name': 'bogus'}", (2, 2, {"name": "bogus"}), "name", ValueError,
     r"`activation`.*'bogus'"),
    ("activation dict with an unknown key", (2, 2, {"name": "elu", "slope": 1}), "name",
     ValueError, r"activation 'elu', expected only \['alpha'\]. Received unknown: \['slope'\]"),
    ("activation dict with a NaN slope",
     (2, 2, {"name": "leaky_relu", "negative_slope": math.nan}), "hyperparameter", ValueError,
     r"`negative_slope`, expected a finite real number"),
    ("init='bogus'", (2, 2, None, "bogus"), "name", ValueError,
     r"`init`, expected one of \[.*'he'.*\] or None. Received: init='bogus'"),
    ("init=3", (2, 2, None, 3), "name", ValueError, r"`init`.*init=3"),
    ("bias='yes'", (2, 2, None, None, "yes"), "type", TypeError, r"`bias`, expected True or False"),
]:
    row("Dense()", name, kind, lambda c, a=args: nn.Dense(*a), error, pattern)

for cls, arg, value, kind, error, pattern in [
    (nn.LeakyReLU, "negative_slope", math.nan, "hyperparameter", ValueError, "finite real"),
    (nn.LeakyReLU, "negative_slope", math.inf, "hyperparameter", ValueError, "finite real"),
    (nn.LeakyReLU, "negative_slope", "0.1", "type", TypeError, "finite real.*str"),
    (nn.ELU, "alpha", -math.inf, "hyperparameter", ValueError, "finite real"),
    (nn.ELU, "alpha", None, "type", TypeError, "finite real.*NoneType"),
]:
    row(f"{cls.__name__}()", f"{arg}={value!r}", kind,
        lambda c, k=cls, a=arg, v=value: k(**{a: v}), error, rf"`{arg}`, expected a {pattern}")
row("get_activation()", "'swish'", "name", lambda c: nn.get_activation("swish"), ValueError,
    r"`activation`, expected one of .*'gelu'.*Received: activation='swish'")
for value, kind, error in ((1.0, "hyperparameter", ValueError),
                           (-0.1, "hyperparameter", ValueError),
                           (math.nan, "hyperparameter", ValueError), ("0.5", "type", TypeError)):
    row("Dropout()", f"p={value!r}", kind, lambda c, v=value: nn.Dropout(v), error,
        r"`p`, expected a number in \[0, 1\)")
for cls in (nn.BatchNorm1d, nn.LayerNorm, nn.Standardize):
    name = cls.__name__
    row(f"{name}()", "n_features=0", "size", lambda c, k=cls: k(0), ValueError,
        r"`n_features`, expected a positive integer. Received: n_features=0")
    row(f"{name}()", "n_features=2.0", "type", lambda c, k=cls: k(2.0), TypeError,
        r"`n_features`, expected a positive integer")
for cls in (nn.BatchNorm1d, nn.LayerNorm):
    for value in (0, -1e-5, math.nan, math.inf):
        row(f"{cls.__name__}()", f"eps={value}", "hyperparameter",
            lambda c, k=cls, v=value: k(3, eps=v), ValueError,
            r"`eps`, expected a positive finite number")
for value in (1.5, -0.1, math.nan):
    row("BatchNorm1d()", f"momentum={value}", "hyperparameter",
        lambda c, v=value: nn.BatchNorm1d(3, momentum=v), ValueError,
        r"`momentum`, expected a number in \[0, 1\]")
row("BatchNorm1d.forward (training)", "a batch of 1", "no samples",
    lambda c: nn.BatchNorm1d(3).forward(np.zeros((1, 3))), ValueError, r"batch of at least 2")
for what, X, kind, error, pattern in [
    ("NaN", with_nan(X_OK), "nonfinite", ValueError, r"`X`, expected finite numbers.*row 1"),
    ("0 samples", np.zeros((0, 3)), "no samples", ValueError, r"`X`, expected shape.*\(0, 3\)"),
    ("1-D", X_OK[:, 0], "ndim", ValueError, r"`X`, expected shape \(n_samples, 3\)"),
    ("4 features", RNG.normal(size=(5, 4)), "no features", ValueError, r"`X`.*\(5, 4\)"),
    ("complex", X_OK + 1j, "dtype", TypeError, r"`X`, expected real numbers.*complex"),
    ("strings", X_OK.astype(str), "dtype", TypeError, r"`X`, expected real numbers"),
]:
    row("Standardize.adapt", f"X: {what}", kind, lambda c, X=X: nn.Standardize(3).adapt(X),
        error, pattern)
row("Standardize.adapt", "batch_size=0", "size",
    lambda c: nn.Standardize(3).adapt(X_OK, batch_size=0), ValueError, r"`batch_size`")

# -- Sequential --------------------------------------------------------------------------------

row("Sequential()", "no layers", "size", lambda c: nn.Sequential(), ValueError,
    r"at least one layer")
row("Sequential()", "a function instead of a layer", "type",
    lambda c: nn.Sequential(nn.Dense(2, 2), np.tanh), TypeError,
    r"Sequential takes Layer instances, but argument 1 is")
row("Sequential()", "the same layer twice", "type",
    lambda c: (lambda d: nn.Sequential(d, d))(nn.Dense(2, 2)), ValueError,
    r"same layer object.*arguments 0 and 1")
row("Sequential()", "the same activation twice, once inside a nested Sequential", "type",
    lambda c: (lambda t: nn.Sequential(nn.Dense(3, 4), t, nn.Sequential(t), nn.Dense(4, 2)))(
        nn.Tanh()), ValueError, r"same layer object Tanh\(\) is used twice \(arguments 1 and 2\)")


def _tied_weights(c):
    first, second = nn.Dense(3, 3, activation="tanh"), nn.Dense(3, 3, activation="tanh")
    second.W = first.W
    return nn.Sequential(first, second, nn.Dense(3, 2))


row("Sequential()", "one Parameter in two layers (tied weights)", "type", _tied_weights,
    ValueError, r"Parameter 'W' of .* \(argument 1\) is also a parameter of argument 0: tied")
row("Sequential()", "layers that do not fit (3 -> 4 then 5 -> 1)", "no features",
    lambda c: nn.Sequential(nn.Dense(3, 4), nn.Dense(5, 1)), ValueError,
    r"expects 5 input features, but receives 4")
for value in (np.int32, np.float16, "float128", None, "bogus"):
    row("Sequential()", f"dtype={value!r}", "name", lambda c, v=value: mlp(dtype=v), ValueError,
        r"`dtype`, expected float32 or float64. Received: dtype=")
row("Sequential()", "seed=-1", "hyperparameter",
    lambda c: nn.Sequential(nn.Dense(2, 2), seed=-1), ValueError,
    r"`seed`, expected a non-negative integer")
row("Sequential()", "seed=1.5", "type", lambda c: nn.Sequential(nn.Dense(2, 2), seed=1.5),
    TypeError, r"`seed`.*1\.5 of type float")

# -- losses ------------------------------------------------------------------------------------

Z = RNG.normal(size=(4, 3))
LABELS = np.array([0, 2, 1, 0])
LOSS_CLASSES = {"MSE": losses.MSE, "L1": losses.L1, "Huber": losses.Huber,
                "BinaryCrossEntropy": losses.BinaryCrossEntropy,
                "CrossEntropy": losses.CrossEntropy}

for name, cls in LOSS_CLASSES.items():
    row(f"{name}()", "reduction='avg'", "name", lambda c, k=cls: k(reduction="avg"), ValueError,
        r"`reduction`, expected one of 'mean', 'sum'. Received: reduction='avg'")
    target = LABELS if name == "CrossEntropy" else (Z > 0).astype(float)
    forward = f"{name}.forward"
    row(forward, "pred of integers", "dtype",
        lambda c, k=cls, t=target: k().forward(np.zeros((4, 3), int), t), TypeError,
        r"`pred`, expected a floating-point array. Received: pred with dtype int64")
    row(forward, "pred complex", "dtype",
        lambda c, k=cls, t=target: k().forward(Z + 1j, t), TypeError, r"`pred`.*complex128")
    row(forward, "pred with 0 samples", "no samples",
        lambda c, k=cls, t=target: k().forward(Z[:0], t[:0]), ValueError,
        r"`pred`, expected a non-empty array.*\(0, 3\)")
    row(forward, "target of strings", "dtype",
        lambda c, k=cls, t=target: k().forward(Z, t.astype(str)), TypeError,
        r"`target`, expected an array of real numbers")
    row(forward, "target of objects", "dtype",
        lambda c, k=cls, t=target: k().forward(Z, t.astype(object)), TypeError,
        r"`target`, expected an array of real numbers")
    row(forward, "target with NaN", "nonfinite",
        lambda c, k=cls, t=target: k().forward(Z, with_nan(t, at=(1,) * t.ndim)), ValueError,
        r"target.*(NaN or infinity|=nan)")
    row(forward, "target with one sample too many", "length",
        lambda c, k=cls, t=target: k().forward(Z, np.concatenate([t, t[:1]])), ValueError,
        r"`target`, expected .*shape.*Received: target with shape \(5")
    row(forward, "sample_weight of the wrong length", "length",
        lambda c, k=cls, t=target: k().forward(Z, t, np.ones(3)), ValueError,
        r"`sample_weight`, expected shape \(4,\)")
    row(forward, "negative sample_weight", "hyperparameter",
        lambda c, k=cls, t=target: k().forward(Z, t, -np.ones(4)), ValueError,
        r"`sample_weight`, expected non-negative weights. Received: sample_weight\[0\]=-1\.0")
    row(forward, "sample_weight with inf", "nonfinite",
        lambda c, k=cls, t=target: k().forward(Z, t, with_nan(np.ones(4), np.inf, at=2)),
        ValueError, r"sample_weight contains NaN or infinity")
for name in ("MSE", "L1", "Huber"):
    row(f"{name}.forward", "target (4,) for pred (4, 3)", "target shape",
        lambda c, n=name: LOSS_CLASSES[n]().forward(Z, Z[:, 0]), ValueError,
        r"`target`, expected the shape of `pred` \(4, 3\). Received: target with shape \(4,\)")
row("BinaryCrossEntropy.forward", "target 2.0 (not in [0, 1])", "labels",
    lambda c: losses.BinaryCrossEntropy().forward(Z, np.full((4, 3), 2.0)), ValueError,
    r"`target`, expected binary targets .* in \[0, 1\]. Received: target.flat\[0\]=2\.0")
row("BinaryCrossEntropy.forward", "targets -1/+1", "labels",
    lambda c: losses.BinaryCrossEntropy().forward(Z, -np.ones((4, 3))), ValueError,
    r"`target`.*\[0, 1\]")
row("BinaryCrossEntropy.forward", "probabilities above 1 with from_logits=False",
    "hyperparameter",
    lambda c: losses.BinaryCrossEntropy(from_logits=False).forward(Z + 5, np.ones((4, 3))),
    ValueError, r"`pred`, expected probabilities in \[0, 1\]")
for what, target, kind, pattern in [
    ("label 3 for 3 classes", np.array([0, 3, 1, 0]), "labels",
     r"integer class labels in \[0, 3\).*target\[1\]=3"),
    ("label -1", np.array([0, -1, 1, 0]), "labels", r"integer class labels.*target\[1\]=-1"),
    ("label 1.5", np.array([0, 1.5, 1, 0]), "labels", r"integer class labels.*target\[1\]=1\.5"),
    ("label NaN", np.array([0, np.nan, 1, 0]), "nonfinite", r"target\[1\]=nan"),
    ("target (4, 1)", np.zeros((4, 1)), "target shape",
     r"labels of shape \(N,\) = \(4,\) or class probabilities of shape \(N, C\) = \(4, 3\)"),
    ("target (4, 3, 1)", np.zeros((4, 3, 1)), "target shape",
     r"Received: target with shape \(4, 3, 1\)"),
    ("probabilities outside [0, 1]", np.array([[1.2, -0.2, 0]] * 4), "labels",
     r"class probabilities in \[0, 1\]"),
    ("bool labels", np.zeros(4, bool), "dtype", r"dtype bool"),
]:
    error = TypeError if kind == "dtype" else ValueError
    row("CrossEntropy.forward", what, kind,
        lambda c, t=target: losses.CrossEntropy().forward(Z, t), error, pattern)
row("CrossEntropy.forward", "1-D logits", "ndim",
    lambda c: losses.CrossEntropy().forward(Z[:, 0], LABELS), ValueError,
    r"`pred`, expected logits of shape \(N, C\). Received: pred with shape \(4,\)")
for value, kind, error in ((1.0, "hyperparameter", ValueError),
                           (-0.1, "hyperparameter", ValueError),
                           (math.nan, "hyperparameter", ValueError), ("0.1", "type", TypeError)):
    row("CrossEntropy()", f"label_smoothing={value!r}", kind,
        lambda c, v=value: losses.CrossEntropy(label_smoothing=v), error, r"`label_smoothing`")
row("CrossEntropy()", "weight with a negative entry", "hyperparameter",
    lambda c: losses.CrossEntropy(weight=[1, -1, 1]), ValueError,
    r"`weight`, expected finite non-negative weights")
row("CrossEntropy()", "weight 2-D", "ndim",
    lambda c: losses.CrossEntropy(weight=np.ones((2, 2))), ValueError,
    r"`weight`, expected a non-empty 1-D array")
row("CrossEntropy.forward", "4 logits for 3 class weights", "target shape",
    lambda c: losses.CrossEntropy(weight=[1, 1, 1]).forward(RNG.normal(size=(4, 4)), LABELS),
    ValueError, r"`pred`, expected C = 3 columns to match `weight`")
for value, kind, error in ((0, "hyperparameter", ValueError), (-1, "hyperparameter", ValueError),
                           (math.nan, "hyperparameter", ValueError),
                           (math.inf, "hyperparameter", ValueError), ("1", "type", TypeError)):
    row("Huber()", f"delta={value!r}", kind, lambda c, v=value: losses.Huber(v), error,
        r"`delta`")
row("BinaryCrossEntropy()", "pos_weight=-1", "hyperparameter",
    lambda c: losses.BinaryCrossEntropy(pos_weight=-1.0), ValueError,
    r"`pos_weight`, expected a non-negative finite number")
row("BinaryCrossEntropy()", "from_logits='yes'", "type",
    lambda c: losses.BinaryCrossEntropy(from_logits="yes"), TypeError,
    r"`from_logits`, expected True or False")
row("BinaryCrossEntropy.forward", "3 columns for 2 pos_weights", "target shape",
    lambda c: losses.BinaryCrossEntropy(pos_weight=[1.0, 2.0]).forward(Z, np.ones((4, 3))),
    ValueError, r"`pred`, expected a last axis of length 2")
row("losses.get()", "'bogus'", "name", lambda c: losses.get("bogus"), ValueError,
    r"`loss`, expected one of \(.*'mse'.*\). Received: loss='bogus'")
row("losses.get()", "None", "type", lambda c: losses.get(None), TypeError, r"`loss`")
row("losses.get()", "'mse' with delta=1", "name", lambda c: losses.get("mse", delta=1),
    TypeError,
    r"unexpected arguments for loss 'mse', expected some of \['reduction'\]. Received: \['delta'\]")
row("losses.get()", "a Loss instance with arguments", "type",
    lambda c: losses.get(losses.MSE(), reduction="sum"), ValueError,
    r"constructor arguments together with a Loss instance")

# -- optimizers, schedules, clipping -----------------------------------------------------------

OPTIMIZERS = {"SGD": optim.SGD, "Adam": optim.Adam, "AdamW": optim.AdamW,
              "RMSprop": optim.RMSprop, "Adagrad": optim.Adagrad}
for name, cls in OPTIMIZERS.items():
    for value, kind, error in ((-0.1, "hyperparameter", ValueError),
                               (math.nan, "hyperparameter", ValueError),
                               (math.inf, "hyperparameter", ValueError),
                               ("0.1", "type", TypeError), (None, "type", TypeError)):
        row(f"{name}()", f"lr={value!r}", kind, lambda c, k=cls, v=value: k(params(), lr=v),
            error, rf"`lr`, expected a non-negative finite number. Received: lr={value!r}")
    row(f"{name}()", "params=[]", "size", lambda c, k=cls: k([], lr=0.1), ValueError,
        r"`params`, expected a non-empty iterable of Parameters")
    row(f"{name}()", "params=None", "type", lambda c, k=cls: k(None, lr=0.1), TypeError,
        r"`params`, expected an iterable of Parameters")
    row(f"{name}()", "params=[an ndarray]", "type", lambda c, k=cls: k([np.zeros(3)], lr=0.1),
        TypeError, r"`params\[0\]`, expected a Parameter")
    row(f"{name}()", "weight_decay=-1", "hyperparameter",
        lambda c, k=cls: k(params(), weight_decay=-1.0), ValueError, r"`weight_decay`")
for name, kwargs, kind, error, pattern in [
    ("SGD", {"momentum": 1.0}, "hyperparameter", ValueError,
     r"`momentum`, expected a number in \[0, 1\)"),
    ("SGD", {"momentum": -0.5}, "hyperparameter", ValueError, r"`momentum`"),
    ("SGD", {"dampening": 2.0}, "hyperparameter", ValueError, r"`dampening`.*\[0, 1\]"),
    ("SGD", {"nesterov": True}, "hyperparameter", ValueError,
     r"Nesterov momentum requires `momentum` > 0"),
    ("SGD", {"nesterov": "yes"}, "type", TypeError, r"`nesterov`, expected True or False"),
    ("Adam", {"betas": (1.0, 0.999)}, "hyperparameter", ValueError,
     r"`betas\[0\]`, expected a number in \[0, 1\)"),
    ("Adam", {"betas": (0.9, math.nan)}, "hyperparameter", ValueError, r"`betas\[1\]`"),
    ("Adam", {"betas": 0.9}, "type", ValueError, r"`betas`, expected a pair"),
    ("Adam", {"eps": -1e-8}, "hyperparameter", ValueError,
     r"`eps`, expected a non-negative finite"),
    ("Adam", {"amsgrad": 1}, "type", TypeError, r"`amsgrad`, expected True or False"),
    ("AdamW", {"weight_decay": math.inf}, "hyperparameter", ValueError, r"`weight_decay`"),
    ("RMSprop", {"alpha": 1.0}, "hyperparameter", ValueError,
     r"`alpha`, expected a number in \[0, 1\)"),
    ("RMSprop", {"momentum": math.nan}, "hyperparameter", ValueError, r"`momentum`"),
    ("RMSprop", {"centered": None}, "type", TypeError, r"`centered`"),
    ("Adagrad", {"eps": math.nan}, "hyperparameter", ValueError, r"`eps`"),
]:
    row(f"{name}()", ", ".join(f"{k}={v!r}" for k, v in kwargs.items()), kind,
        lambda c, n=name, kw=kwargs: OPTIMIZERS[n](params(), **kw), error, pattern)
for kwargs, kind, error, pattern in [
    ({"max_iter": 0}, "size", ValueError, r"`max_iter`, expected a positive integer"),
    ({"history_size": -1}, "size", ValueError, r"`history_size`"),
    ({"tol": -1.0}, "hyperparameter", ValueError, r"`tol`"),
    ({"max_iter": 10.0}, "type", TypeError, r"`max_iter`"),
]:
    row("LBFGS()", ", ".join(f"{k}={v!r}" for k, v in kwargs.items()), kind,
        lambda c, kw=kwargs: optim.LBFGS(params(), **kw), error, pattern)
row("LBFGS.step", "closure=None", "type", lambda c: optim.LBFGS(params()).step(None), TypeError,
    r"`closure`, expected a callable")
row("Optimizer.lr (setter)", "lr=-1", "hyperparameter",
    lambda c: setattr(optim.SGD(params(), lr=0.1), "lr", -1.0), ValueError, r"`lr`")
row("Optimizer.lr (setter)", "lr=NaN", "hyperparameter",
    lambda c: setattr(optim.Adam(params()), "lr", math.nan), ValueError, r"`lr`")
row("Optimizer.load_state_dict", "another optimizer's state", "type",
    lambda c: optim.SGD(params()).load_state_dict(optim.Adam(params()).state_dict()),
    ValueError, r"state_dict does not match SGD")
row("Optimizer.load_state_dict", "a list", "type",
    lambda c: optim.SGD(params()).load_state_dict([1]), TypeError,
    r"`state_dict`, expected a mapping")
row("optim.get()", "'bogus'", "name", lambda c: optim.get("bogus", params()), ValueError,
    r"`optimizer`, expected one of 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', 'lbfgs'")
row("optim.get()", "None", "name", lambda c: optim.get(None, params()), ValueError, r"`optimizer`")
row("optim.get()", "'adam' with momentum=0.9", "name",
    lambda c: optim.get("adam", params(), momentum=0.9), TypeError,
    r"unexpected arguments for optimizer 'adam'.*Received: \['momentum'\]")
for cls, kwargs, kind, error, pattern in [
    (optim.StepLR, {"step_size": 0}, "size", ValueError,
     r"`step_size`, expected a positive integer"),
    (optim.StepLR, {"step_size": 2, "gamma": -0.5}, "hyperparameter", ValueError, r"`gamma`"),
    (optim.ExponentialLR, {"gamma": math.nan}, "hyperparameter", ValueError, r"`gamma`"),
    (optim.CosineAnnealingLR, {"T_max": 0}, "size", ValueError, r"`T_max`"),
    (optim.CosineAnnealingLR, {"T_max": 5, "eta_min": -1.0}, "hyperparameter", ValueError,
     r"`eta_min`"),
    (optim.LinearWarmup, {"warmup_epochs": 0}, "size", ValueError, r"`warmup_epochs`"),
    (optim.ReduceLROnPlateau, {"factor": 1.0}, "hyperparameter", ValueError, r"`factor`"),
    (optim.ReduceLROnPlateau, {"mode": "minimum"}, "name", ValueError,
     r"`mode`, expected one of 'min', 'max'"),
    (optim.ReduceLROnPlateau, {"patience": -1}, "size", ValueError, r"`patience`"),
    (optim.ReduceLROnPlateau, {"threshold_mode": "pct"}, "name", ValueError,
     r"`threshold_mode`"),
]:
    row(f"{cls.__name__}()", ", ".join(f"{k}={v!r}" for k, v in kwargs.items()), kind,
        lambda c, k=cls, kw=kwargs: k(optim.SGD(params(), lr=0.1), **kw), error, pattern)
row("StepLR()", "optimizer=None", "type", lambda c: optim.StepLR(None, step_size=2), TypeError,
    r"`optimizer`, expected an optim.Optimizer")
row("ReduceLROnPlateau.step", "metric='low'", "type",
    lambda c: optim.ReduceLROnPlateau(optim.SGD(params(), lr=0.1)).step("low"), TypeError,
    r"`metric`, expected a real number")
row("clip_grad_norm()", "max_norm=-1", "hyperparameter",
    lambda c: optim.clip_grad_norm(params(), -1), ValueError,
    r"`max_norm`, expected a non-negative finite number")
row("clip_grad_value()", "clip_value=NaN", "hyperparameter",
    lambda c: optim.clip_grad_value(params(), math.nan), ValueError, r"`clip_value`")

# -- model files -------------------------------------------------------------------------------

for what, attr, file, reason in [
    ("an empty file", "empty_file", "empty.npz", "empty"),
    ("junk bytes", "junk_file", "junk.npz", "not a zip archive"),
    ("a plain np.savez file", "savez_file", "savez.npz", "no description"),
    ("a zip of text", "text_zip", "text.zip", "unexpected member 'notes.txt'"),
    ("a directory", "directory", "folder.npz", "is a directory"),
    ("a truncated model file", "truncated", "truncated.npz", "damaged|not a zip"),
    ("a bit-flipped model file", "flipped", "flipped.npz", "damaged.*CRC"),
    ("a newer format version", "version_2", "v2.npz", "format version 2 is not supported"),
    ("a Keras-like description", "foreign_json", "keras.npz", "not a chainrule model file"),
    ("an unknown layer type", "unknown_layer", "lambda.npz", "type 'Lambda', which is not a built"),
    ("a layer config with an unknown key", "extra_key", "extra.npz",
     r"unknown config keys \['code'\]"),
    ("NaN in θ", "nan_theta", "nan.npz", "θ holds NaN or infinity"),
    ("θ declared with 10**12 elements", "shape_bomb", "bomb.npz",
     "declares 1000000000000 elements"),
]:
    row("nn.load", what, "file", lambda c, a=attr: nn.load(getattr(c, a)), nn.ModelFileError,
        rf"^/.*/{re.escape(file)}: .*({reason})")
row("nn.load", "a path that does not exist", "file", lambda c: nn.load(c.dir / "missing.npz"),
    FileNotFoundError, r"No model file at '.*missing\.npz'")
row("nn.load", "path=3", "type", lambda c: nn.load(3), TypeError,
    r"`path`, expected a str or os.PathLike")
row("nn.save", "a Dense layer instead of a model", "type",
    lambda c: nn.save(nn.Dense(2, 2), c.dir / "x.npz"), TypeError,
    r"`model`, expected a Sequential")
row("nn.save", "a model with NaN in θ", "nonfinite",
    lambda c: nn.save(with_nan_theta(mlp()), c.dir / "x.npz"), ValueError,
    r"θ holds NaN or infinity")
row("nn.save", "a state array named '../x'", "name",
    lambda c: nn.save(mlp(), c.dir / "x.npz",
                      state={"json": None, "arrays": {"../x": np.ones(2)}}),
    ValueError, r"invalid key in `state\['arrays'\]`.*'\.\./x'")
row("nn.save", "an object state array", "dtype",
    lambda c: nn.save(mlp(), c.dir / "x.npz",
                      state={"json": None, "arrays": {"x": np.array([{}], dtype=object)}}),
    TypeError, r"`state\['arrays'\]\['x'\]`.*dtype object")
row("nn.save", "a path into a missing directory", "file",
    lambda c: nn.save(mlp(), c.dir / "no" / "such" / "x.npz"), FileNotFoundError,
    r"Cannot save to '.*x\.npz': the directory '.*such' does not exist")
row("nn.save", "a directory as the path", "file", lambda c: nn.save(mlp(), c.directory),
    IsADirectoryError, r"Cannot save to '.*folder\.npz': it is a directory")

# -- the chainrule command ---------------------------------------------------------------------


def train(c, *args):
    return cli("train", "--data", c.csv_ok, "--hidden", "4", "--epochs", "1", "--quiet",
               "--out", c.dir / "cli-model.npz", *args)


for args, kind, pattern in [
    (("--epochs", "0"), "size", r"--epochs.*positive integer.*'0'"),
    (("--epochs", "-3"), "size", r"--epochs.*'-3'"),
    (("--epochs", "2.5"), "type", r"--epochs.*'2.5'"),
    (("--batch-size", "0"), "size", r"--batch-size.*positive integer"),
    (("--lr", "-1"), "hyperparameter", r"--lr.*'-1'"),
    (("--lr", "nan"), "hyperparameter", r"--lr.*'nan'"),
    (("--lr", "inf"), "hyperparameter", r"--lr.*'inf'"),
    (("--lr", "fast"), "type", r"--lr.*'fast'"),
    (("--weight-decay", "-1"), "hyperparameter", r"--weight-decay.*'-1'"),
    (("--test-size", "2"), "hyperparameter", r"--test-size.*'2'"),
    (("--test-size", "nan"), "hyperparameter", r"--test-size.*'nan'"),
    (("--hidden", "0"), "size", r"--hidden.*'0'"),
    (("--hidden", "ten"), "type", r"--hidden.*'ten'"),
    (("--activation", "swish"), "name", r"--activation.*'swish'.*'relu'"),
    (("--optimizer", "adamax"), "name", r"--optimizer.*'adamax'.*'adam'"),
    (("--task", "cluster"), "name", r"--task.*'cluster'"),
]:
    row("chainrule train", " ".join(args), kind, lambda c, a=args: train(c, *a), CLIError,
        pattern)
for what, attr, kind, pattern in [
    ("a CSV with NaN", "csv_nan", "nonfinite", r"nan\.csv, line 4, column 2.*finite"),
    ("a CSV with a word", "csv_word", "dtype", r"word\.csv, line 2.*'x'"),
    ("an empty CSV", "csv_empty", "no samples", r"empty\.csv.*empty"),
    ("a missing CSV", "csv_missing", "file", r"missing\.csv.*no such file"),
    ("negative class labels", "csv_negative", "labels", r"class labels 0\.\.C-1"),
]:
    row("chainrule train", f"--data {what}", kind,
        lambda c, a=attr: cli("train", "--data", getattr(c, a), "--task", "classify",
                              "--hidden", "4", "--epochs", "1", "--quiet", "--out",
                              c.dir / "x.npz"),
        CLIError, pattern)
row("chainrule evaluate", "data with 4 features for a 3-feature model", "no features",
    lambda c: cli("evaluate", c.model_file, "--data", c.csv_4_features), CLIError,
    r"four.csv has 5 columns, but .*model.npz needs 3 feature columns plus a label column")
row("chainrule evaluate", "labels 0..2 for a 2-output model", "labels",
    lambda c: cli("evaluate", c.model_file, "--data", c.csv_3_classes), CLIError,
    r"labels must be integers in 0\.\.1")
row("chainrule evaluate", "a junk model file", "file",
    lambda c: cli("evaluate", c.junk_file, "--data", c.csv_ok), CLIError,
    r"junk\.npz.*not a zip archive")
row("chainrule evaluate", "a directory as the model", "file",
    lambda c: cli("evaluate", c.directory, "--data", c.csv_ok), CLIError, r"is a directory")
row("chainrule predict", "a CSV with NaN", "nonfinite",
    lambda c: cli("predict", c.model_file, "--data", c.csv_nan, "--out", c.dir / "p.csv"),
    CLIError, r"nan\.csv.*finite")
row("chainrule predict", "a missing model file", "file",
    lambda c: cli("predict", c.dir / "none.npz", "--data", c.csv_ok, "--out", c.dir / "p.csv"),
    CLIError, r"none\.npz")
row("chainrule", "an unknown command", "name", lambda c: cli("fit"), CLIError, r"'fit'")

# fmt: on


# -- the test -------------------------------------------------------------------------------------

N_BAD_INPUTS = len(ROWS)
N_GAPS = sum(r.gap is not None for r in ROWS)
N_HANDLED = N_BAD_INPUTS - N_GAPS


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return build_context(tmp_path_factory.mktemp("bad-inputs"))


def build_context(d):
    """The files the rows read: CSVs, a model file and damaged or foreign model files."""
    c = SimpleNamespace(dir=d)
    X = RNG.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)

    def csv(name, text):
        (d / name).write_text(text)
        return d / name

    def rows(X, y):
        lines = (",".join(f"{v:.6g}" for v in r) + f",{t}\n" for r, t in zip(X, y, strict=True))
        return "".join(lines)

    c.csv_ok = csv("ok.csv", rows(X, y))
    c.csv_nan = csv("nan.csv", rows(with_nan(X, at=(3, 1)), y))
    c.csv_word = csv("word.csv", "1,2,3,0\n1,2,x,1\n")
    c.csv_empty = csv("empty.csv", "")
    c.csv_missing = d / "missing.csv"
    c.csv_negative = csv("negative.csv", rows(X, y - 1))
    c.csv_4_features = csv("four.csv", rows(np.c_[X, X[:, 0]], y))
    c.csv_3_classes = csv("three.csv", rows(X, np.arange(40) % 3))
    model = nn.Sequential(nn.Standardize(3), nn.Dense(3, 4, "relu"), nn.Dense(4, 2), seed=0)
    c.model_file = d / "model.npz"
    model.save(c.model_file)
    data = c.model_file.read_bytes()
    c.empty_file = d / "empty.npz"
    c.empty_file.write_bytes(b"")
    c.junk_file = d / "junk.npz"
    c.junk_file.write_bytes(bytes(range(256)) * 8)
    c.savez_file = d / "savez.npz"
    np.savez(c.savez_file, W=np.ones((3, 4)), b=np.zeros(4))
    c.text_zip = d / "text.zip"
    with zipfile.ZipFile(c.text_zip, "w") as zf:
        zf.writestr("notes.txt", "θ is a vector")
    c.directory = d / "folder.npz"
    c.directory.mkdir()
    c.truncated = d / "truncated.npz"
    c.truncated.write_bytes(data[: len(data) // 2])
    c.flipped = d / "flipped.npz"
    flipped = bytearray(data)
    flipped[data.find(b"\x93NUMPY", data.find(b"theta.npy")) + 130] ^= 0x04  # in θ's data
    c.flipped.write_bytes(bytes(flipped))
    c.version_2 = _crafted(d / "v2.npz", version=2)
    c.foreign_json = _crafted(d / "keras.npz", format="keras", class_name="Sequential")
    c.unknown_layer = _crafted(d / "lambda.npz", layers=[{"type": "Lambda", "config": {}}])
    c.extra_key = _crafted(
        d / "extra.npz", layers=[{"type": "Dense", "config": {"n_in": 2, "n_out": 1, "code": 1}}]
    )
    c.nan_theta = _crafted(d / "nan.npz", theta=np.array([0, np.nan, 0], np.float32))
    c.shape_bomb = _crafted(
        d / "bomb.npz",
        n_parameters=10**12,
        layers=[{"type": "Dense", "config": {"n_in": 10**6 - 1, "n_out": 10**6, "bias": True}}],
        theta=_npy_header({"descr": "<f4", "fortran_order": False, "shape": (10**12,)}),
    )
    c.memmap_bad = np.lib.format.open_memmap(d / "big.npy", "w+", np.float32, (100_000, 3))
    c.memmap_bad[-1, 0] = np.inf
    c.memmap_bad.flush()
    c.memmap_bad = np.load(d / "big.npy", mmap_mode="r")
    return c


def _npy_header(header: dict) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _crafted(path, theta=None, **overrides):
    import json

    desc = {
        "format": nn.files.FORMAT,
        "version": nn.files.VERSION,
        "dtype": "float32",
        "n_parameters": 3,
        "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 1}}],
    }
    desc.update(overrides)
    if theta is None:
        theta = np.zeros(3, np.float32)
    with zipfile.ZipFile(path, "w") as zf:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(json.dumps(desc).encode(), np.uint8))
        zf.writestr("description.npy", buf.getvalue())
        if not isinstance(theta, bytes):
            out = io.BytesIO()
            np.lib.format.write_array(out, theta)
            theta = out.getvalue()
        zf.writestr("theta.npy", theta)
    return path


def _params():
    for r in ROWS:
        marks = [pytest.mark.xfail(strict=True, reason=r.gap)] if r.gap else []
        yield pytest.param(r, id=r.id, marks=marks)


@pytest.mark.parametrize("bad", list(_params()))
def test_bad_input_is_refused_with_a_clear_message(bad: Bad, ctx):
    with pytest.raises(bad.error, match=bad.match) as info:
        bad.call(ctx)
    message = str(info.value)
    assert message.strip(), "an empty message"
    if bad.error is CLIError:
        assert "Traceback" not in message
        assert len(message.strip().splitlines()) == 1, message  # one line on stderr
    else:
        assert len(message) < 2000, "an unreadable message"


def test_the_table_covers_every_class_at_every_array_boundary():
    """predict, fit and evaluate each meet every class of bad array; every class is used."""
    kinds = Counter(r.kind for r in ROWS)
    assert set(kinds) == set(KINDS), set(KINDS) - set(kinds)
    for entry in ("predict", "fit", "evaluate"):
        covered = {r.kind for r in ROWS if r.entry == entry}
        assert {"nonfinite", "no samples", "no features", "ndim", "dtype"} <= covered, entry
    for entry in ("fit", "evaluate"):
        covered = {r.kind for r in ROWS if r.entry == entry}
        assert {"length", "labels", "target shape", "name"} <= covered, entry
    assert len({r.id for r in ROWS}) == len(ROWS), "duplicate row ids"


def test_summary(summary_line):
    """How many bad inputs the table tries and how many are handled (the rest are xfail gaps).

    The counts go to pytest's terminal summary, after the results, not among the dots.
    """
    by_entry = Counter(r.entry.split(".")[0].split("(")[0] for r in ROWS)
    gaps = Counter(r.entry for r in ROWS if r.gap)
    lines = [
        f"bad inputs tried: {N_BAD_INPUTS}; handled: {N_HANDLED}; known gaps (strict xfail): "
        f"{N_GAPS} in {dict(gaps)}",
        "by entry point: " + ", ".join(f"{k} {v}" for k, v in sorted(by_entry.items())),
        "by class: " + ", ".join(f"{k} {v}" for k, v in Counter(r.kind for r in ROWS).items()),
    ]
    for line in lines:
        summary_line(line)
    assert N_GAPS == 0, f"bad inputs not handled yet: {dict(gaps)}"


def test_odd_but_valid_inputs_are_accepted():
    """The checks refuse nothing that is valid: a guard against over-validation."""
    model = mlp()
    assert model.predict(X_OK.astype(np.float16)).dtype == np.float32  # any real float dtype
    assert model.predict(X_OK.astype(int)).shape == (12, 2)  # integers
    assert model.predict(X_OK > 0).shape == (12, 2)  # booleans
    assert model.predict([[1.0, 2.0, 3.0]]).shape == (1, 2)  # nested lists
    assert model.predict(np.full((2, 3), 1e37)).shape == (2, 2)  # large, inside float32
    assert nn.Sequential(nn.Dense(3, 2), dtype=np.float64).predict(X_HUGE).shape == (12, 2)
    z = RNG.normal(size=(4, 3))
    bce = losses.BinaryCrossEntropy()
    assert bce.forward(z, z > 0) == bce.forward(z, (z > 0).astype(float))  # bool binary targets
    soft = losses.BinaryCrossEntropy().forward(z, np.full((4, 3), 0.3))  # soft labels in [0, 1]
    assert math.isfinite(soft)
    ce = losses.CrossEntropy()
    assert math.isfinite(ce.forward(z, np.array([0.0, 2.0, 1.0, 0.0])))  # whole float labels
    # NaN in pred is passed through, not refused: it comes from the model, and the non-finite
    # loss is how fit detects divergence (losses/base.py documents this).
    assert math.isnan(losses.MSE().forward(np.array([[np.nan]]), np.zeros((1, 1))))
    assert math.isnan(ce.forward(with_nan(z, at=(0, 0)), LABELS))
    assert losses.MSE().forward(z, z, np.zeros(4)) == 0.0  # zero sample weights
    nn.LeakyReLU(-0.5)
    nn.ELU(alpha=-1.0)  # unusual, finite, and differentiable: allowed as in PyTorch
    optim.SGD(params(), lr=0.0)  # lr = 0 freezes training; allowed as in PyTorch
