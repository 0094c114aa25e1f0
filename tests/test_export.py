"""ONNX export, checked against two independent runtimes: onnxruntime and onnx's reference one.

Every exported graph must give ``model.predict``'s output: within 1e-5 (float32) or 1e-12
(float64) relative to the largest output, element by element.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

import nn
from nn.export import export_onnx, to_onnx

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]


def run_both(proto: onnx.ModelProto, X: np.ndarray) -> list[np.ndarray]:
    """The outputs of onnxruntime (all graph optimizations on) and of the reference evaluator."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return [
        session.run(None, {"input": X})[0],
        ReferenceEvaluator(proto).run(None, {"input": X})[0],
    ]


def assert_exports(model: nn.Sequential, X: np.ndarray, opset: int | None = None, atol=None):
    """Both runtimes reproduce predict, in the model's dtype."""
    X = X.astype(model.dtype)
    expected = model.predict(X)
    rtol = RTOL[model.dtype.type]
    atol = rtol * np.abs(expected).max() if atol is None else atol
    for got in run_both(to_onnx(model, opset), X):
        assert got.dtype == model.dtype
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def randomize(model: nn.Sequential, rng: np.random.Generator) -> nn.Sequential:
    """Statistics and affine parameters away from their identity values."""
    for layer in model.layers:
        if isinstance(layer, nn.Standardize):
            layer.adapt(rng.normal(2.0, 3.0, size=(64, layer.n_features)))
        if isinstance(layer, nn.BatchNorm1d):
            layer.running_mean[...] = rng.normal(size=layer.n_features)
            layer.running_var[...] = rng.uniform(0.2, 3.0, size=layer.n_features)
        if isinstance(layer, (nn.BatchNorm1d, nn.LayerNorm)):
            layer.gamma.data[...] = rng.normal(size=layer.n_features)
            layer.beta.data[...] = rng.normal(size=layer.n_features)
        if isinstance(layer, nn.Dense) and layer.b is not None:
            layer.b.data[...] = rng.normal(size=layer.n_out)
    return model


ACTIVATION_CASES = [
    *sorted(nn.ACTIVATIONS),
    nn.LeakyReLU(0.2),
    nn.LeakyReLU(1.5),
    nn.ELU(0.7),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=repr)
def test_dense_with_each_activation_and_the_standalone_layer(dtype, activation):
    rng = np.random.default_rng(0)
    standalone = nn.get_activation(activation)
    model = nn.Sequential(
        nn.Dense(5, 7, activation=activation), nn.Dense(7, 4), standalone, seed=1, dtype=dtype
    )
    randomize(model, rng)
    assert_exports(model, 2 * rng.normal(size=(40, 5)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [13, 17, 21])
def test_every_layer_type_in_one_model(dtype, opset):
    rng = np.random.default_rng(1)
    model = nn.Sequential(
        nn.Standardize(6),
        nn.Dense(6, 8, activation="gelu"),
        nn.BatchNorm1d(8),
        nn.Dropout(0.5),
        nn.Dense(8, 8, activation="tanh", bias=False),
        nn.LayerNorm(8),
        nn.Dense(8, 3),
        nn.Softmax(),
        seed=2,
        dtype=dtype,
    )
    randomize(model, rng)
    assert_exports(model, rng.normal(2.0, 3.0, size=(33, 6)), opset=opset)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_statistics_from_training(dtype):
    """Running statistics as fit leaves them (not set by hand), in evaluation mode."""
    rng = np.random.default_rng(2)
    X = rng.normal(1.0, 4.0, size=(128, 4))
    y = X @ rng.normal(size=(4, 2))
    model = nn.Sequential(
        nn.Dense(4, 16, activation="relu"), nn.BatchNorm1d(16), nn.Dense(16, 2), seed=0, dtype=dtype
    )
    model.fit(X, y, loss="mse", optimizer="adam", epochs=2, batch_size=16, progress=False)
    assert not np.allclose(model.layers[1].running_var, 1)
    assert_exports(model, X)


@pytest.mark.parametrize(
    "activation, X",
    [
        ("elu", -np.logspace(-12, -3, 20)),  # eˣ − 1 for tiny x: no cancellation
        ("elu", -np.linspace(5, 700, 20)),  # eˣ underflows
        ("softplus", -np.linspace(1, 700, 20)),  # log(1 + tiny)
        ("softplus", np.linspace(1, 700, 20)),  # no overflow
        ("gelu", np.linspace(-2.5, 6, 20)),  # below, 1 + erf cancels in both
        ("leaky_relu", np.linspace(-1, 1, 20)),
    ],
)
def test_float64_is_accurate_element_by_element(activation, X):
    """Relative to each element, not to the largest: the float64 formulas avoid cancellation."""
    model = nn.Sequential(nn.get_activation(activation), dtype=np.float64)
    assert_exports(model, X.reshape(-1, 1), atol=1e-300)


def test_the_batch_dimension_is_dynamic(tmp_path):
    model = randomize(
        nn.Sequential(nn.Dense(3, 2, activation="sigmoid"), seed=0), np.random.default_rng(3)
    )
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 100):
        X = np.random.default_rng(batch).normal(size=(batch, 3)).astype(np.float32)
        (out,) = session.run(None, {"input": X})
        np.testing.assert_allclose(out, model.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "dtype, elem", [(np.float32, onnx.TensorProto.FLOAT), (np.float64, onnx.TensorProto.DOUBLE)]
)
def test_the_graph_is_in_the_model_dtype(dtype, elem):
    proto = to_onnx(nn.Sequential(nn.Standardize(2), nn.Dense(2, 1), dtype=dtype))
    assert proto.graph.input[0].type.tensor_type.elem_type == elem
    assert proto.graph.output[0].type.tensor_type.elem_type == elem
    assert {t.data_type for t in proto.graph.initializer} == {elem}


def test_a_loaded_model_file_exports(tmp_path):
    model = randomize(
        nn.Sequential(
            nn.Standardize(4),
            nn.Dense(4, 5, activation="elu"),
            nn.LayerNorm(5),
            nn.Dense(5, 2),
            seed=3,
        ),
        np.random.default_rng(4),
    )
    model.save(tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    assert_exports(loaded, np.random.default_rng(5).normal(size=(20, 4)))


class Doubler(nn.Layer):
    def forward(self, x):
        return 2 * x


class Cube(nn.Activation):
    name = "cube"

    def apply(self, z, out):
        return np.power(z, 3, out=out)


@pytest.mark.parametrize(
    "layers, named",
    [
        ([nn.Dense(2, 2), Doubler()], "layer 1, Doubler"),
        ([nn.Dense(2, 2, activation=Cube())], "Cube"),
    ],
)
def test_an_untranslatable_layer_is_named_and_nothing_is_written(tmp_path, layers, named):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the previous file")
    with pytest.raises(TypeError, match=named):
        export_onnx(nn.Sequential(*layers), path)
    assert path.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_a_failing_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the last step of the atomic write
    with pytest.raises(OSError, match="disk full"):
        export_onnx(nn.Sequential(nn.Dense(2, 1)), path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"opset": 12}, ValueError, "opset"),
        ({"opset": 10_000}, ValueError, "opset"),
        ({"opset": "17"}, TypeError, "opset"),
        ({"model": nn.Dense(2, 1)}, TypeError, "model"),
        ({"path": 3}, TypeError, "path"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    arguments = {"model": nn.Sequential(nn.Dense(2, 1)), "path": tmp_path / "m.onnx", **kwargs}
    with pytest.raises(error, match=match):
        export_onnx(**arguments)
    assert not (tmp_path / "m.onnx").exists()


def test_without_onnx_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"chainrule\[onnx\]"):
        export_onnx(nn.Sequential(nn.Dense(2, 1)), tmp_path / "m.onnx")


def test_chainrule_export(tmp_path, capsys):
    from nn.cli import main

    model = randomize(
        nn.Sequential(nn.Standardize(3), nn.Dense(3, 4, activation="relu"), nn.Dense(4, 2), seed=0),
        np.random.default_rng(6),
    )
    model.save(tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), "--out", str(tmp_path / "m.onnx")]) == 0
    X = np.random.default_rng(7).normal(size=(9, 3)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": X})[0], model.predict(X), rtol=1e-5, atol=1e-6
    )
    assert main(["export", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "missing.npz" in capsys.readouterr().err
