"""Training checkpoints: 2 epochs + save + load + 2 epochs is bitwise 4 epochs in one run.

Each case trains a reference run of 4 epochs and an interrupted run (2 epochs writing a
checkpoint, then fresh objects resuming from it to epoch 4) with shuffling, Dropout (whose
masks come from model.rng), a schedule and early stopping, and compares θ, the layer
buffers and the whole history bit for bit.
"""

from __future__ import annotations

import json
import re
import threading
import zipfile

import numpy as np
import pytest

import nn
import optim
from nn.files import ModelFileError, load_with_state, save
from nn.training import (
    Checkpoint,
    StateMismatchError,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)


def data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def build(kind):
    """A fresh model, optimizer and callbacks (new objects every time)."""
    if kind == "dropout-adam":
        model = nn.Sequential(
            nn.Dense(4, 16, activation="relu"), nn.Dropout(0.3), nn.Dense(16, 2), seed=1
        )
        opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
        callbacks = [
            optim.StepLR(opt, step_size=1, gamma=0.7),
            nn.EarlyStopping("val_loss", patience=50, restore_best_weights=True),
        ]
    elif kind == "batchnorm-sgd":
        model = nn.Sequential(
            nn.Standardize(4),
            nn.Dense(4, 8),
            nn.BatchNorm1d(8),
            nn.Dense(8, 2, activation=None),
            seed=2,
        )
        model.layers[0].adapt(data()[0])
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        callbacks = [optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.2)]
    else:  # a float64 model with RMSprop and dropout
        model = nn.Sequential(
            nn.Dense(4, 8, activation="tanh"),
            nn.Dropout(0.2),
            nn.Dense(8, 2),
            seed=3,
            dtype=np.float64,
        )
        opt = optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.5, centered=True)
        callbacks = [optim.CosineAnnealingLR(opt, T_max=4)]
    return model, opt, callbacks


KINDS = ["dropout-adam", "batchnorm-sgd", "rmsprop-float64"]
FIT = {
    "loss": "cross_entropy",
    "batch_size": 16,
    "seed": 5,
    "metrics": ["accuracy"],
    "validation_split": 0.2,
    "progress": False,
}


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
    history = model.fit(X, y, optimizer=opt, epochs=4, callbacks=callbacks, resume_from=path, **FIT)
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
    history = model.fit(
        X,
        y,
        optimizer=opt,
        epochs=4,
        resume_from=path,
        **FIT,
        callbacks=[*callbacks, nn.ModelCheckpoint(path, save_training_state=True)],
    )
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
        history = model.fit(
            X,
            y,
            optimizer=opt,
            epochs=stop,
            callbacks=callbacks,
            checkpoint=path,
            resume_from=path,
            **kwargs,
        )
    assert_same_state(model, reference)
    assert history.history == ref_history.history


def test_the_checkpoint_holds_model_optimizer_epoch_rng_and_history(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    history = model.fit(X, y, optimizer=opt, epochs=3, callbacks=callbacks, checkpoint=path, **FIT)

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
    ckpt.model.fit(
        X, y, optimizer=ckpt.optimizer, epochs=3, callbacks=[plateau], resume_from=path, **FIT
    )
    assert_same_state(ckpt.model, reference)


def test_resume_when_the_epochs_are_already_done_trains_nothing(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=2, callbacks=callbacks, checkpoint=path, **FIT)
    fresh, opt, callbacks = build("dropout-adam")
    with pytest.warns(UserWarning, match=r"at epoch 2 already and epochs=2.*nothing was trained"):
        history = fresh.fit(
            X, y, optimizer=opt, epochs=2, callbacks=callbacks, resume_from=path, **FIT
        )
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
        other.fit(X, y, optimizer=optim.Adam(other.parameters()), epochs=2, resume_from=path, **FIT)
    assert np.array_equal(other.theta, before)


def test_resuming_with_another_optimizer_is_refused(tmp_path):
    X, y = data()
    model, opt, callbacks = build("dropout-adam")
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=1, callbacks=callbacks, checkpoint=path, **FIT)
    fresh, _, _ = build("dropout-adam")
    before = fresh.theta.copy()
    with pytest.raises(ValueError, match="'Adam'"):
        fresh.fit(
            X, y, optimizer=optim.SGD(fresh.parameters(), lr=0.1), epochs=2, resume_from=path, **FIT
        )
    with pytest.raises(ValueError, match="weight_decay"):
        fresh.fit(
            X,
            y,
            optimizer=optim.Adam(fresh.parameters(), lr=1e-2),
            epochs=2,
            resume_from=path,
            **FIT,
        )
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
        model.fit(
            X, y, optimizer=opt, epochs=3, callbacks=[*callbacks, Crash()], checkpoint=path, **FIT
        )
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
    assert training["arrays"]["optimizer.exp_avg"] == {
        "dtype": "float32",
        "shape": [model.n_parameters],
    }


# -- all or nothing, and crafted files ---------------------------------------------------------


def snapshot(model, opt, callbacks):
    """Deep copies of everything restore_checkpoint may write."""
    return {
        "model": model_state(model),
        "rng": model.rng.bit_generator.state,
        "optimizer": {k: np.copy(v) for k, v in opt.state_dict().items()},
        "callbacks": [{k: np.copy(v) for k, v in cb.state_dict().items()} for cb in callbacks],
    }


def assert_unchanged(before, model, opt, callbacks):
    after = snapshot(model, opt, callbacks)
    for x, y in zip(before["model"], after["model"], strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert after["rng"] == before["rng"]
    for old, new in [
        (before["optimizer"], after["optimizer"]),
        *zip(before["callbacks"], after["callbacks"], strict=True),
    ]:
        assert old.keys() == new.keys()
        for key in old:
            assert old[key].dtype == new[key].dtype and np.array_equal(old[key], new[key]), key


def stopper_then_schedule(gamma):
    """EarlyStopping (with best weights) at position 0, a StepLR at position 1."""
    model, opt, _ = build("dropout-adam")
    callbacks = [
        nn.EarlyStopping("val_loss", patience=50, restore_best_weights=True),
        nn.LearningRateScheduler(optim.StepLR(opt, step_size=1, gamma=gamma)),
    ]
    return model, opt, callbacks


@pytest.fixture
def saved_run(tmp_path):
    """A checkpoint after 2 epochs of stopper_then_schedule(gamma=0.5)."""
    X, y = data()
    model, opt, callbacks = stopper_then_schedule(0.5)
    path = tmp_path / "c.npz"
    model.fit(X, y, optimizer=opt, epochs=2, callbacks=callbacks, checkpoint=path, **FIT)
    return path


def test_a_schedule_mismatch_changes_nothing_not_even_the_optimizer(saved_run):
    X, y = data()
    # through fit: the callbacks have had on_train_begin, the optimizer is fresh
    model, opt, callbacks = stopper_then_schedule(0.9)
    model.rng.bit_generator.advance(12345)  # differs from the saved generator state
    before = snapshot(model, opt, callbacks)
    with pytest.raises(ValueError, match="gamma=0.5") as info:
        model.fit(X, y, optimizer=opt, epochs=4, callbacks=callbacks, resume_from=saved_run, **FIT)
    assert isinstance(info.value, StateMismatchError)
    assert not isinstance(info.value, ModelFileError)  # the user's mistake, not the file's
    assert str(saved_run) in str(info.value)
    assert_unchanged(before, model, opt, callbacks)

    # directly, on objects in the middle of a run (not the checkpoint's state)
    model, opt, callbacks = stopper_then_schedule(0.9)
    model.fit(X, y, optimizer=opt, epochs=3, callbacks=callbacks, **{**FIT, "seed": 11})
    before = snapshot(model, opt, callbacks)
    assert before["optimizer"]["step"] == 15 and before["callbacks"][0]["best_epoch"] is not None
    with pytest.raises(StateMismatchError, match="gamma"):
        restore_checkpoint(saved_run, model, opt, callbacks)
    assert_unchanged(before, model, opt, callbacks)

    # the same objects with the saved gamma restore everything
    callbacks[1] = nn.LearningRateScheduler(optim.StepLR(opt, step_size=1, gamma=0.5))
    restore_checkpoint(saved_run, model, opt, callbacks)
    assert opt.steps == 10 and callbacks[1].scheduler.last_epoch == 2


def test_another_schedule_class_is_a_mismatch_too(saved_run):
    model, opt, _ = build("dropout-adam")
    callbacks = [
        nn.EarlyStopping("val_loss", patience=50, restore_best_weights=True),
        nn.LearningRateScheduler(optim.ExponentialLR(opt, gamma=0.5)),
    ]
    before = snapshot(model, opt, callbacks)
    with pytest.raises(StateMismatchError, match="'StepLR'"):
        restore_checkpoint(saved_run, model, opt, callbacks)
    assert_unchanged(before, model, opt, callbacks)


def test_an_optimizer_mismatch_changes_nothing(saved_run):
    model, _, callbacks = stopper_then_schedule(0.5)
    opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=0.5)
    callbacks[1] = nn.LearningRateScheduler(optim.StepLR(opt, step_size=1, gamma=0.5))
    before = snapshot(model, opt, callbacks)
    with pytest.raises(ValueError, match="weight_decay") as info:
        restore_checkpoint(saved_run, model, opt, callbacks)
    assert not isinstance(info.value, ModelFileError) and str(saved_run) in str(info.value)
    assert_unchanged(before, model, opt, callbacks)


def craft(path, edit):
    """Rewrite the checkpoint with ``edit(training_json, arrays)`` applied, same layout."""
    model, state = load_with_state(path)
    edit(state["json"], state["arrays"])
    save(model, path, state=state)


def set_array(key, array):
    """An edit storing ``array`` as ``key`` and declaring it consistently."""

    def edit(training, arrays):
        arrays[key] = array
        training["arrays"][key] = {"dtype": array.dtype.name, "shape": list(array.shape)}

    return edit


def stopper(training):
    return training["callbacks"]["0.EarlyStopping"]


def schedule(training):
    return training["callbacks"]["1.LearningRateScheduler"]["json"]["scheduler"]


CRAFTED = {
    # the callback entries the reviewer found escaping as KeyError, TypeError, ValueError
    "wait missing": lambda t, a: stopper(t)["json"].pop("wait"),
    "arrays not a list": lambda t, a: stopper(t).update(arrays=5),
    "best not a number": lambda t, a: stopper(t)["json"].update(best="x"),
    # more of the same
    "arrays of non-strings": lambda t, a: stopper(t).update(arrays=[5]),
    "entry not an object": lambda t, a: t["callbacks"].update({"0.EarlyStopping": [1]}),
    "entry without json": lambda t, a: stopper(t).pop("json"),
    "callback key": lambda t, a: t["callbacks"].update({"x.y": stopper(t)}),
    "array listed but missing": lambda t, a: stopper(t)["arrays"].append("nope"),
    "best is NaN": lambda t, a: stopper(t)["json"].update(best=float("nan")),
    "wait negative": lambda t, a: stopper(t)["json"].update(wait=-1),
    "wait a float": lambda t, a: stopper(t)["json"].update(wait=1.5),
    "best_epoch a string": lambda t, a: stopper(t)["json"].update(best_epoch="1"),
    "unexpected stopper key": lambda t, a: stopper(t)["json"].update(extra=1),
    "best weights the wrong shape": set_array("callback.0.best_weights.0", np.zeros(3, "f4")),
    "best weights the wrong dtype": lambda t, a: set_array(
        "callback.0.best_weights.0", a["callback.0.best_weights.0"].astype("f8")
    )(t, a),
    "scheduler not an object": lambda t, a: t["callbacks"]["1.LearningRateScheduler"][
        "json"
    ].update(scheduler=3),
    "scheduler counter a string": lambda t, a: schedule(t).update(last_epoch="2"),
    "scheduler counter negative": lambda t, a: schedule(t).update(last_epoch=-2),
    "scheduler lr infinite": lambda t, a: schedule(t).update(base_lr=float("inf")),
    "scheduler key missing": lambda t, a: schedule(t).pop("base_lr"),
    "scheduler hyperparameter a string": lambda t, a: schedule(t).update(gamma="0.5"),
    # the rest of the training section
    "optimizer lr": lambda t, a: t["optimizer"].update(lr="x"),
    "optimizer lr negative": lambda t, a: t["optimizer"].update(lr=-1.0),
    "optimizer step": lambda t, a: t["optimizer"].update(step=2.5),
    "optimizer value a list": lambda t, a: t["optimizer"].update(eps=[1e-8]),
    "optimizer buffer shape": set_array("optimizer.exp_avg", np.zeros(3, "f4")),
    "optimizer buffer dtype": lambda t, a: set_array(
        "optimizer.exp_avg", a["optimizer.exp_avg"].astype("f8")
    )(t, a),
    "optimizer buffer also JSON": set_array("optimizer.lr", np.zeros(1, "f4")),
    "an array nobody claims": set_array("callback.7.x", np.zeros(1, "f4")),
    "arrays declared wrongly": lambda t, a: t["arrays"]["optimizer.exp_avg"].update(shape=[1]),
    "arrays undeclared": lambda t, a: t["arrays"].pop("optimizer.exp_avg"),
    "history epochs": lambda t, a: t["history"].update(epoch=["0", "1"]),
    "history values": lambda t, a: t["history"]["history"].update(loss=["x"]),
    "history missing": lambda t, a: t.pop("history"),
    "callbacks not an object": lambda t, a: t.update(callbacks=[]),
    "unknown key": lambda t, a: t.update(extra=1),
    "epoch a bool": lambda t, a: t.update(epoch=True),
    "coverage not a list": lambda t, a: t.update(optimizer_coverage="all"),
    "coverage beyond θ": lambda t, a: t.update(optimizer_coverage=[[0, 10**9]]),
    "coverage of floats": lambda t, a: t.update(optimizer_coverage=[[0.0, 5.0]]),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_checkpoints_raise_model_file_error_and_change_nothing(saved_run, case):
    craft(saved_run, CRAFTED[case])
    X, y = data()
    model, opt, callbacks = stopper_then_schedule(0.5)
    model.rng.bit_generator.advance(12345)
    before = snapshot(model, opt, callbacks)
    with pytest.raises(ModelFileError, match=re.escape(str(saved_run))):
        model.fit(X, y, optimizer=opt, epochs=4, callbacks=callbacks, resume_from=saved_run, **FIT)
    assert_unchanged(before, model, opt, callbacks)
    with pytest.raises(ModelFileError):
        restore_checkpoint(saved_run, model, opt, callbacks)
    assert_unchanged(before, model, opt, callbacks)


def test_crafting_itself_keeps_a_valid_checkpoint(saved_run):
    """The crafting round trip alone changes nothing that matters (the tests above are fair)."""
    craft(saved_run, lambda t, a: None)
    X, y = data()
    model, opt, callbacks = stopper_then_schedule(0.5)
    model.fit(X, y, optimizer=opt, epochs=3, callbacks=callbacks, resume_from=saved_run, **FIT)
    assert opt.steps == 15


def test_load_checkpoint_refuses_an_optimizer_of_other_parameters_too(tmp_path):
    X, y = data()
    model = nn.Sequential(nn.Dense(4, 4, activation="relu"), nn.Dense(4, 4), nn.Dense(4, 2), seed=0)
    path = tmp_path / "p.npz"
    model.fit(
        X,
        y,
        optimizer=optim.Adam(model.layers[1].parameters(), lr=1e-2),
        epochs=1,
        checkpoint=path,
        **{k: v for k, v in FIT.items() if k != "validation_split"},
    )
    with pytest.raises(ValueError, match=r"updated the entries \[\[20, 40\]\] of θ"):
        load_checkpoint(path, optimizer=lambda params: optim.Adam(params[0:2], lr=1e-2))
    loaded = load_checkpoint(path, optimizer=lambda params: optim.Adam(params[2:4], lr=1e-2))
    assert loaded.optimizer.steps == model_steps(path)


def model_steps(path):
    """The optimizer step count stored in a checkpoint."""
    return load_with_state(path)[1]["json"]["optimizer"]["step"]


def test_a_checkpoint_written_before_the_optimizer_coverage_existed_still_resumes(saved_run):
    craft(saved_run, lambda t, a: t.pop("optimizer_coverage"))
    X, y = data()
    model, opt, callbacks = stopper_then_schedule(0.5)
    model.fit(X, y, optimizer=opt, epochs=3, callbacks=callbacks, resume_from=saved_run, **FIT)
    assert opt.steps == 15


class Locked(nn.Callback):
    """A callback that cannot be deep-copied (it holds a lock), with a counter to resume."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0

    def on_epoch_end(self, epoch, logs):
        self.count += 1

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        if not isinstance(state["count"], int):
            raise TypeError(f"count must be an int, got {state['count']!r}")
        self.count = state["count"]


def test_callbacks_that_cannot_be_copied_are_loaded_in_place_and_put_back(tmp_path):
    X, y = data()
    path = tmp_path / "c.npz"
    model, opt, _ = build("dropout-adam")
    model.fit(X, y, optimizer=opt, epochs=2, callbacks=[Locked(), Locked()], checkpoint=path, **FIT)
    model, opt, _ = build("dropout-adam")
    callbacks = [Locked(), Locked()]
    restore_checkpoint(path, model, opt, callbacks)
    assert [cb.count for cb in callbacks] == [2, 2]

    craft(path, lambda t, a: t["callbacks"]["1.Locked"]["json"].update(count="2"))
    model, opt, _ = build("dropout-adam")
    callbacks = [Locked(), Locked()]
    before = snapshot(model, opt, callbacks)
    with pytest.raises(ModelFileError, match="count must be an int"):
        restore_checkpoint(path, model, opt, callbacks)
    assert_unchanged(before, model, opt, callbacks)  # the first Locked was put back


def test_callback_load_state_dict_checks_everything_before_writing():
    stopper = nn.EarlyStopping(patience=3)
    good = {"best": 0.5, "wait": 1, "best_epoch": 2, "stopped_epoch": None}
    for bad, error in [
        ({**good, "best": "x"}, TypeError),
        ({**good, "wait": None}, TypeError),
        ({"best": 0.5}, ValueError),
        ([], TypeError),
        ({**good, "best": float("nan")}, ValueError),
    ]:
        with pytest.raises(error):
            stopper.load_state_dict(bad)
        assert stopper.state_dict() == {
            "best": np.inf,
            "wait": 0,
            "best_epoch": None,
            "stopped_epoch": None,
        }
    stopper.load_state_dict(good)
    assert stopper.state_dict() == good

    saver = nn.ModelCheckpoint("m.npz", save_best_only=True)
    with pytest.raises(TypeError):
        saver.load_state_dict({"best": 0.1, "saved_epochs": [0, "1"]})
    assert saver.saved_epochs == [] and saver.state_dict()["best"] == np.inf
    saver.load_state_dict({"best": 0.1, "saved_epochs": [0, 1]})
    assert saver.state_dict() == {"best": 0.1, "saved_epochs": [0, 1]}

    opt = optim.SGD(nn.Sequential(nn.Dense(2, 1), seed=0).parameters(), lr=0.1)
    wrapper = nn.LearningRateScheduler(optim.StepLR(opt, step_size=2, gamma=0.5))
    state = wrapper.state_dict()
    with pytest.raises(StateMismatchError, match="step_size=3"):
        wrapper.load_state_dict({"scheduler": {**state["scheduler"], "step_size": 3}})
    with pytest.raises(TypeError, match="last_epoch"):
        wrapper.load_state_dict({"scheduler": {**state["scheduler"], "last_epoch": 1.5}})
    assert wrapper.state_dict() == state


def test_an_optimizer_of_some_parameters_resumes_bitwise_and_a_full_one_is_refused(tmp_path):
    """fit accepts an optimizer of part of θ (a frozen first layer); so must resuming."""
    X, y = data()

    def build_partial():
        model = nn.Sequential(nn.Dense(4, 6, activation="relu"), nn.Dense(6, 2), seed=0)
        return model, optim.Adam(model.layers[1].parameters(), lr=1e-2)

    fit = {k: v for k, v in FIT.items() if k != "validation_split"}
    reference, ref_opt = build_partial()
    reference.fit(X, y, optimizer=ref_opt, epochs=4, **fit)
    model, opt = build_partial()
    path = tmp_path / "partial.npz"
    model.fit(X, y, optimizer=opt, epochs=2, checkpoint=path, **fit)
    model, opt = build_partial()
    model.fit(X, y, optimizer=opt, epochs=4, resume_from=path, **fit)
    assert_same_state(model, reference)
    assert np.array_equal(opt.state_dict()["exp_avg"], ref_opt.state_dict()["exp_avg"])

    fresh = nn.Sequential(nn.Dense(4, 6, activation="relu"), nn.Dense(6, 2), seed=0)
    before = fresh.theta.copy()
    with pytest.raises(
        ValueError,
        match=r"updated the entries \[\[30, 44\]\] of θ, this one "
        r"updates \[\[0, 44\]\]",
    ):
        fresh.fit(
            X,
            y,
            optimizer=optim.Adam(fresh.parameters(), lr=1e-2),
            epochs=4,
            resume_from=path,
            **fit,
        )
    assert np.array_equal(fresh.theta, before)


def test_an_optimizer_of_other_parameters_of_the_same_size_is_refused(tmp_path):
    """Layer 1's moments must not be loaded into an optimizer of layer 0 (both 20 entries)."""
    X, y = data()
    model = nn.Sequential(nn.Dense(4, 4, activation="relu"), nn.Dense(4, 4), nn.Dense(4, 2), seed=0)
    path = tmp_path / "p.npz"
    model.fit(
        X,
        y,
        optimizer=optim.Adam(model.layers[1].parameters(), lr=1e-2),
        epochs=1,
        checkpoint=path,
        **{k: v for k, v in FIT.items() if k != "validation_split"},
    )
    fresh = nn.Sequential(nn.Dense(4, 4, activation="relu"), nn.Dense(4, 4), nn.Dense(4, 2), seed=0)
    with pytest.raises(
        ValueError,
        match=r"updated the entries \[\[20, 40\]\] of θ, this one "
        r"updates \[\[0, 20\]\]; give it the same",
    ):
        fresh.fit(
            X,
            y,
            optimizer=optim.Adam(fresh.layers[0].parameters(), lr=1e-2),
            epochs=2,
            resume_from=path,
            **{k: v for k, v in FIT.items() if k != "validation_split"},
        )
