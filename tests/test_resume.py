"""Training checkpoints: 2 epochs + save + load + 2 epochs is bitwise 4 epochs in one run.

Each case trains a reference run of 4 epochs and an interrupted run (2 epochs writing a
checkpoint, then fresh objects resuming from it to epoch 4) with shuffling, Dropout (whose
masks come from model.rng), a schedule and early stopping, and compares θ, the layer
buffers and the whole history bit for bit.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import nn
import optim
from nn.checkpoint import Checkpoint, load_checkpoint, restore_checkpoint, save_checkpoint
from nn.serialization import ModelFileError


def data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def build(kind):
    """A fresh model, optimizer and callbacks (new objects every time)."""
    if kind == "dropout-adam":
        model = nn.Sequential(nn.Dense(4, 16, activation="relu"), nn.Dropout(0.3),
                              nn.Dense(16, 2), seed=1)
        opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
        callbacks = [optim.StepLR(opt, step_size=1, gamma=0.7),
                     nn.EarlyStopping("val_loss", patience=50, restore_best_weights=True)]
    elif kind == "batchnorm-sgd":
        model = nn.Sequential(nn.Standardize(4), nn.Dense(4, 8), nn.BatchNorm1d(8),
                              nn.Dense(8, 2, activation=None), seed=2)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        callbacks = [optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.2)]
    else:  # a float64 model with RMSprop and dropout
        model = nn.Sequential(nn.Dense(4, 8, activation="tanh"), nn.Dropout(0.2),
                              nn.Dense(8, 2), seed=3, dtype=np.float64)
        opt = optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.5, centered=True)
        callbacks = [optim.CosineAnnealingLR(opt, T_max=4)]
    return model, opt, callbacks


KINDS = ["dropout-adam", "batchnorm-sgd", "rmsprop-float64"]
FIT = {"loss": "cross_entropy", "batch_size": 16, "seed": 5, "metrics": ["accuracy"],
       "validation_split": 0.2, "progress": False}


def model_state(model):
    return [model.theta.copy()] + [a.copy() for la in model.layers for a in la.buffers().values()]


def assert_same_state(a, b):
    for x, y in zip(model_state(a), model_state(b), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def uninterrupted(kind, epochs=4):
    X, y = data()
    model, opt, callbacks = build(kind)
    history = model.fit(X, y, optimizer=opt, epochs=epochs, callbacks=callbacks, **FIT)
    return model, opt, history


@pytest.mark.parametrize("kind", KINDS)
def test_fit_checkpoint_then_resume_equals_one_run_bitwise(tmp_path, kind):
    X, y = data()
    reference, ref_opt, ref_history = uninterrupted(kind)

    path = tmp_path / "run.npz"
    model, opt, callbacks = build(kind)
    first = model.fit(X, y, optimizer=opt, epochs=2, callbacks=callbacks, checkpoint=path, **FIT)
    assert first.epoch == [0, 1]
    del model, opt, callbacks  # a new process would start from nothing

    model, opt, callbacks = build(kind)
    history = model.fit(X, y, optimizer=opt, epochs=4, callbacks=callbacks, resume_from=path,
                        **FIT)
    assert_same_state(model, reference)
    assert history.history == ref_history.history and history.epoch == [0, 1, 2, 3]
    assert opt.steps == ref_opt.steps and opt.lr == ref_opt.lr
    for key, value in ref_opt.state_dict().items():
        assert np.array_equal(opt.state_dict()[key], value)
    assert model.rng.bit_generator.state == reference.rng.bit_generator.state


def test_model_checkpoint_with_training_state_resumes_bitwise(tmp_path):
    X, y = data()
    reference, _, ref_history = uninterrupted("dropout-adam")
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "ckpt.npz"
    saver = nn.ModelCheckpoint(path, save_training_state=True)
    model.fit(X, y, optimizer=opt, epochs=2, callbacks=[*callbacks, saver], **FIT)
    model, opt, callbacks = build("dropout-adam")
    history = model.fit(X, y, optimizer=opt, epochs=4, resume_from=path, **FIT,
                        callbacks=[*callbacks, nn.ModelCheckpoint(path, save_training_state=True)])
    assert_same_state(model, reference)
    assert history.history == ref_history.history


def test_resuming_in_several_hops_and_with_another_seed(tmp_path):
    X, y = data()
    reference, _, ref_history = uninterrupted("rmsprop-float64", epochs=5)
    path = tmp_path / "c.npz"
    model, opt, callbacks = build("rmsprop-float64")
    model.fit(X, y, optimizer=opt, epochs=1, callbacks=callbacks, checkpoint=path, **FIT)
    for stop in (3, 5):
        model, opt, callbacks = build("rmsprop-float64")
        kwargs = {**FIT, "seed": 999}  # the checkpoint's generator state wins
        history = model.fit(X, y, optimizer=opt, epochs=stop, callbacks=callbacks,
                            checkpoint=path, resume_from=path, **kwargs)
    assert_same_state(model, reference)
    assert history.history == ref_history.history


def test_the_checkpoint_holds_model_optimizer_epoch_rng_and_history(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    history = model.fit(X, y, optimizer=opt, epochs=3, callbacks=callbacks, checkpoint=path,
                        **FIT)

    ckpt = load_checkpoint(path, lambda params: optim.Adam(params, lr=1e-2, weight_decay=1e-3))
    assert isinstance(ckpt, Checkpoint) and ckpt.epoch == 3
    assert ckpt.history.history == history.history and ckpt.history.epoch == [0, 1, 2]
    assert ckpt.model.rng.bit_generator.state == model.rng.bit_generator.state
    assert np.array_equal(ckpt.model.theta, model.theta)
    saved, live = ckpt.optimizer.state_dict(), opt.state_dict()
    assert saved.keys() == live.keys()
    for key in live:
        assert np.array_equal(saved[key], live[key]), key
    assert ckpt.optimizer.steps == 3 * 5  # 72 training samples in batches of 16
    assert set(ckpt.callback_states) == {"0.LearningRateScheduler", "1.EarlyStopping"}

    # the file is also a plain model file
    assert np.array_equal(nn.load(path).predict(X), model.predict(X))
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert {"state.optimizer.exp_avg.npy", "state.optimizer.exp_avg_sq.npy"} <= names


def test_load_checkpoint_then_continue_training_by_hand(tmp_path):
    X, y = data()
    reference, _, _ = uninterrupted("batchnorm-sgd", epochs=3)
    model, opt, callbacks = build("batchnorm-sgd")
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=2, callbacks=callbacks, checkpoint=path, **FIT)
    ckpt = load_checkpoint(path, lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True))
    plateau = optim.ReduceLROnPlateau(ckpt.optimizer, factor=0.5, patience=0, threshold=0.2)
    ckpt.model.fit(X, y, optimizer=ckpt.optimizer, epochs=3, callbacks=[plateau],
                   resume_from=path, **FIT)
    assert_same_state(ckpt.model, reference)


def test_resume_when_the_epochs_are_already_done_trains_nothing(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=2, callbacks=callbacks, checkpoint=path, **FIT)
    fresh, opt, callbacks = build("dropout-adam")
    history = fresh.fit(X, y, optimizer=opt, epochs=2, callbacks=callbacks, resume_from=path,
                        **FIT)
    assert history.epoch == [0, 1]
    assert np.array_equal(fresh.theta, model.theta)


# -- errors ------------------------------------------------------------------------------------


def test_resuming_another_architecture_is_refused_and_changes_nothing(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=1, callbacks=callbacks, checkpoint=path, **FIT)
    other = nn.Sequential(nn.Dense(4, 12, activation="relu"), nn.Dense(12, 2), seed=1)
    before = other.theta.copy()
    with pytest.raises(ValueError, match="build the same architecture"):
        other.fit(X, y, optimizer=optim.Adam(other.parameters()), epochs=2, resume_from=path,
                  **FIT)
    assert np.array_equal(other.theta, before)


def test_resuming_with_another_optimizer_is_refused(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=1, callbacks=callbacks, checkpoint=path, **FIT)
    fresh, _, _ = build("dropout-adam")
    before = fresh.theta.copy()
    with pytest.raises(ValueError, match="'Adam'"):
        fresh.fit(X, y, optimizer=optim.SGD(fresh.parameters(), lr=0.1), epochs=2,
                  resume_from=path, **FIT)
    with pytest.raises(ValueError, match="weight_decay"):
        fresh.fit(X, y, optimizer=optim.Adam(fresh.parameters(), lr=1e-2), epochs=2,
                  resume_from=path, **FIT)
    assert np.array_equal(fresh.theta, before)


def test_a_plain_model_file_is_not_a_checkpoint(tmp_path):
    model, opt, _ = build("dropout-adam")
    model.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="not a training checkpoint"):
        restore_checkpoint(tmp_path / "m.npz", model, opt)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.npz")


def test_load_checkpoint_wants_an_optimizer_factory(tmp_path):
    model, opt, _ = build("dropout-adam")
    save_checkpoint(tmp_path / "c.npz", model, opt, epoch=0)
    with pytest.raises(TypeError, match="callable"):
        load_checkpoint(tmp_path / "c.npz", opt)
    ckpt = load_checkpoint(tmp_path / "c.npz", lambda p: optim.Adam(p, weight_decay=1e-3))
    assert ckpt.optimizer.lr == 1e-2  # the saved learning rate
    assert ckpt.epoch == 0 and ckpt.history.epoch == []


def test_an_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    X, y = data()
    path = tmp_path / "c.npz"

    class Crash(nn.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:  # break the writer of the second checkpoint mid-file
                calls = {"n": 0}
                real = np.lib.format.write_array

                def failing(*args, **kwargs):
                    calls["n"] += 1
                    if calls["n"] == 3:
                        raise OSError("disk full")
                    return real(*args, **kwargs)

                monkeypatch.setattr(np.lib.format, "write_array", failing)

    model, opt, callbacks = build("dropout-adam")
    with pytest.raises(OSError, match="disk full"):
        model.fit(X, y, optimizer=opt, epochs=3, callbacks=[*callbacks, Crash()],
                  checkpoint=path, **FIT)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 1

    # and it still resumes to the uninterrupted result
    reference, _, _ = uninterrupted("dropout-adam", epochs=3)
    model, opt, callbacks = build("dropout-adam")
    model.fit(X, y, optimizer=opt, epochs=3, callbacks=callbacks, resume_from=path, **FIT)
    assert_same_state(model, reference)


def test_checkpoint_json_is_plain_and_documented(tmp_path):
    model, opt, _ = build("dropout-adam")
    save_checkpoint(tmp_path / "c.npz", model, opt, epoch=7)
    with zipfile.ZipFile(tmp_path / "c.npz") as zf, zf.open("description.npy") as f:
        raw = np.lib.format.read_array(f, allow_pickle=False)
    training = json.loads(raw.tobytes())["training"]
    assert training["kind"] == "chainrule.checkpoint" and training["version"] == 1
    assert training["epoch"] == 7 and training["rng"]["bit_generator"] == "PCG64"
    assert training["optimizer"]["optimizer"] == "Adam"
    assert training["arrays"]["optimizer.exp_avg"] == {"dtype": "float32",
                                                       "shape": [model.n_parameters]}
