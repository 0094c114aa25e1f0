"""Layers of your own in model files and checkpoints: saved by name and config, loaded only
from classes the caller passes (or registers), their shapes checked against the file."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import nn
import optim
from nn.files import ModelFileError


class Scale(nn.Layer):
    """out = x ⊙ s, one learnable factor per feature."""

    def __init__(self, n_features: int, init: float = 1.0) -> None:
        super().__init__()
        self.n_features, self.init = n_features, init
        self.n_features_in = n_features
        self.s = nn.Parameter(np.full(n_features, init, dtype=np.float32), "s")

    def parameters(self):
        return [self.s]

    def reset_parameters(self, rng):
        self.s.data[...] = self.init

    def forward(self, x):
        self._x = x
        return x * self.s.data

    def backward(self, grad_out):
        self.s.grad += (grad_out * self._x).sum(axis=0)
        return grad_out * self.s.data

    def config(self):
        return {"n_features": self.n_features, "init": self.init}


class Duplicate(nn.Layer):
    """out = [x, x]: twice the features; no arguments, so no config() is needed."""

    def forward(self, x):
        return np.concatenate([x, x], axis=1)

    def backward(self, grad_out):
        half = grad_out.shape[1] // 2
        return grad_out[:, :half] + grad_out[:, half:]

    def output_features(self, n_in):
        return 2 * n_in


class Shift(nn.Layer):
    """out = x − offset, with a non-trainable offset (a buffer); declares no state_shapes."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.offset = np.zeros(n_features, dtype=np.float32)

    def buffers(self):
        return {"offset": self.offset}

    def forward(self, x):
        return x - self.offset

    def backward(self, grad_out):
        return grad_out

    def config(self):
        return {"n_features": self.n_features}


class NoConfig(nn.Layer):
    """A layer with a constructor argument but no config(): cannot be saved."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def backward(self, grad_out):
        return grad_out * self.factor


CUSTOM = {"Scale": Scale, "Duplicate": Duplicate, "Shift": Shift}


def custom_model(dtype=np.float32) -> nn.Sequential:
    model = nn.Sequential(
        Scale(3, init=0.5), Shift(3), Duplicate(), nn.Dense(6, 2), seed=0, dtype=dtype
    )
    model.layers[0].s.data[...] = [0.5, -2.0, 3.0]
    model.layers[1].offset[...] = [1.0, 2.0, -1.0]
    return model


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return X, (X.sum(axis=1) > 0).astype(np.int64)


def rewrite_description(path, edit) -> None:
    """Rewrite the JSON description of the model file at ``path`` with ``edit(dict)``."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    desc = json.loads(np.load(path)["description"].tobytes())
    edit(desc)
    text = np.frombuffer(json.dumps(desc).encode(), dtype=np.uint8)

    buf = io.BytesIO()
    np.lib.format.write_array(buf, text)
    members["description.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)


# -- saving and loading ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_custom_layer_round_trips_with_custom_layers(tmp_path, dtype):
    model = custom_model(dtype)
    X, _ = data()
    path = tmp_path / "m.npz"
    model.save(path)
    desc = json.loads(np.load(path)["description"].tobytes())
    assert [e["type"] for e in desc["layers"]] == ["Scale", "Shift", "Duplicate", "Dense"]
    assert desc["layers"][0]["config"] == {"n_features": 3, "init": 0.5}

    loaded = nn.load(path, custom_layers=CUSTOM)
    assert [type(la) for la in loaded.layers] == [Scale, Shift, Duplicate, nn.Dense]
    np.testing.assert_array_equal(loaded.layers[0].s.data, [0.5, -2.0, 3.0])
    np.testing.assert_array_equal(loaded.layers[1].offset, [1.0, 2.0, -1.0])
    assert np.array_equal(loaded.predict(X), model.predict(X))
    # the hand-computed forward of the first three layers: [(x ⊙ s − offset)] twice
    expected = X.astype(dtype) * [0.5, -2.0, 3.0] - [1.0, 2.0, -1.0]
    hidden = loaded.layers[2].forward(loaded.layers[1].forward(loaded.layers[0].forward(X)))
    np.testing.assert_allclose(hidden, np.hstack([expected, expected]), rtol=1e-6)


def test_loading_without_the_class_names_the_type_and_custom_layers(tmp_path):
    path = tmp_path / "m.npz"
    custom_model().save(path)
    with pytest.raises(ModelFileError, match=r"'Scale'.*custom_layers=\{'Scale': Scale\}"):
        nn.load(path)
    with pytest.raises(ModelFileError, match="'Shift'"):
        nn.load(path, custom_layers={"Scale": Scale})


def test_a_registered_layer_loads_without_custom_layers(tmp_path):
    class Doubled(nn.Layer):
        def forward(self, x):
            return 2 * x

        def backward(self, grad_out):
            return 2 * grad_out

    path = tmp_path / "m.npz"
    model = nn.Sequential(nn.Dense(3, 2), Doubled(), seed=0)
    model.save(path)
    with pytest.raises(ModelFileError, match="'Doubled'"):
        nn.load(path)
    nn.register_layer(Doubled)
    try:
        X, _ = data()
        assert np.array_equal(nn.load(path).predict(X), model.predict(X))
    finally:
        del nn.LAYER_TYPES["Doubled"]


def test_a_layer_without_config_is_refused_at_save_naming_config(tmp_path):
    path = tmp_path / "m.npz"
    model = nn.Sequential(nn.Dense(3, 2), NoConfig(2.0), seed=0)
    with pytest.raises(
        TypeError, match=r"NoConfig.*lacks the config keys \['factor'\].*config\(\)"
    ):
        model.save(path)
    assert list(tmp_path.iterdir()) == []


def test_a_config_that_is_not_json_is_refused_at_save(tmp_path):
    class Bad(Scale):
        def config(self):
            return {"n_features": np.int64(self.n_features), "init": self.init}

    with pytest.raises(TypeError, match="JSON"):
        nn.Sequential(Bad(3), seed=0).save(tmp_path / "m.npz")


def test_a_config_that_builds_other_shapes_is_refused_at_save(tmp_path):
    class Forgetful(Shift):  # the constructor's default hides the real width
        def __init__(self, n_features: int = 1) -> None:
            super().__init__(n_features)

        def config(self):
            return {}

    with pytest.raises(TypeError, match=r"shapes .*\(3,\).*config\(\) must return every"):
        nn.Sequential(Forgetful(3), seed=0).save(tmp_path / "m.npz")


def test_a_class_named_like_a_built_in_is_refused(tmp_path):
    class Dense(Scale):
        pass

    with pytest.raises(TypeError, match="give the class another name"):
        nn.Sequential(Dense(3), seed=0).save(tmp_path / "m.npz")
    path = tmp_path / "m.npz"
    custom_model().save(path)
    with pytest.raises(ValueError, match="'Dense' is the layer type"):
        nn.load(path, custom_layers={**CUSTOM, "Dense": Dense})


@pytest.mark.parametrize(
    "bad", [[Scale], {"Scale": "Scale"}, {"Scale": Scale(3)}, {1: Scale}, {"Scale": int}]
)
def test_custom_layers_must_map_names_to_layer_classes(tmp_path, bad):
    path = tmp_path / "m.npz"
    custom_model().save(path)
    with pytest.raises(TypeError, match="custom_layers"):
        nn.load(path, custom_layers=bad)


def test_shapes_of_a_layer_without_state_shapes_are_checked_against_the_file(tmp_path):
    path = tmp_path / "m.npz"
    custom_model().save(path)

    def widen(desc):  # Shift(5) declares a buffer of 5 but the file holds 3
        desc["layers"][1]["config"]["n_features"] = 5

    rewrite_description(path, widen)
    with pytest.raises(ModelFileError, match=r"buffer\.1\.offset"):
        nn.load(path, custom_layers=CUSTOM)


def test_shapes_from_state_shapes_are_checked_before_building(tmp_path):
    built = []

    class Declared(Scale):
        def __init__(self, n_features: int, init: float = 1.0) -> None:
            built.append(n_features)
            super().__init__(n_features, init)

        @classmethod
        def state_shapes(cls, config):
            return {"s": (config["n_features"],)}, {}

    path = tmp_path / "m.npz"
    nn.Sequential(Declared(3), seed=0).save(path)
    rewrite_description(path, lambda d: d["layers"][0]["config"].update(n_features=10**9))
    built.clear()
    with pytest.raises(ModelFileError, match="1000000000 parameters"):
        nn.load(path, custom_layers={"Declared": Declared})
    assert built == []  # refused from the declared shapes, nothing was built


def test_a_custom_activation_inside_dense_is_refused_with_the_way_out(tmp_path):
    class Swish(nn.Activation):
        name = "swish"

        def apply(self, z, out):
            return np.multiply(z, 1 / (1 + np.exp(-z)), out=out)

    with pytest.raises(TypeError, match="activation=None"):
        nn.Sequential(nn.Dense(3, 2, activation=Swish()), seed=0).save(tmp_path / "m.npz")


# -- training: checkpoints of custom layers, and refusing early --------------------------------


def train(epochs, **files):
    X, y = data()
    model = nn.Sequential(Scale(3), Duplicate(), nn.Dense(6, 2), seed=1)
    opt = optim.Adam(model.parameters(), lr=0.05)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=epochs, progress=False, **files)
    return model


def test_fit_resumes_a_checkpoint_of_custom_layers_bitwise(tmp_path):
    path = tmp_path / "run.npz"
    train(2, checkpoint=path)
    resumed = train(4, resume_from=path)
    assert np.array_equal(resumed.theta, train(4).theta)

    checkpoint = nn.load_checkpoint(
        path, optimizer=lambda p: optim.Adam(p, lr=0.05), custom_layers=CUSTOM
    )
    assert checkpoint.epoch == 2
    assert np.array_equal(checkpoint.model.theta, train(2).theta)


@pytest.mark.parametrize("how", ["checkpoint", "callback"])
def test_fit_refuses_to_checkpoint_an_unsaveable_model_before_training(tmp_path, how):
    X, y = data()
    model = nn.Sequential(nn.Dense(3, 2), NoConfig(2.0), seed=0)
    before = model.theta.copy()
    path = tmp_path / "run.npz"
    files = (
        {"checkpoint": path} if how == "checkpoint" else {"callbacks": [nn.ModelCheckpoint(path)]}
    )
    with pytest.raises(TypeError, match=r"NoConfig.*config\(\)"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, progress=False, **files)
    assert np.array_equal(model.theta, before)  # not one step was taken
    assert not path.exists()
