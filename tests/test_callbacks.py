"""EarlyStopping, ModelCheckpoint and batch hooks: driven by hand-made loss sequences, then in fit.

Driving a callback directly with synthetic logs makes the expected epochs a matter of
reading the sequence: the best epoch, when patience runs out, which epochs get saved. The
model's θ is set to the epoch number before each epoch end, so restored or saved weights
name the epoch they come from.
"""

from __future__ import annotations

import numpy as np
import pytest

import nn
import optim


def tiny_model():
    return nn.Sequential(nn.Dense(2, 3), nn.BatchNorm1d(3), nn.Dense(3, 2), seed=0)


def drive(callback, values, monitor="val_loss", model=None):
    """Run the callback over epochs whose monitored value is ``values[e]``.

    Before each epoch end θ and the batch-norm buffers are set to the epoch number. Returns
    the model and the number of epochs run before stop_training was set.
    """
    model = model or tiny_model()
    model.stop_training = False
    callback.set_model(model)
    callback.on_train_begin({})
    epochs_run = 0
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch, {})
        model.theta[...] = epoch
        model.layers[1].running_mean[...] = epoch
        callback.on_epoch_end(epoch, {monitor: value, "loss": 100.0 - epoch})
        epochs_run += 1
        if model.stop_training:
            break
    callback.on_train_end({})
    return model, epochs_run


# -- EarlyStopping on synthetic sequences ------------------------------------------------------


def test_stops_after_patience_epochs_without_improvement():
    es = nn.EarlyStopping(patience=2)
    _, ran = drive(es, [1.0, 0.9, 0.95, 0.91, 0.5, 0.4])
    # best 0.9 at epoch 1; epochs 2, 3 do not improve -> stop at epoch 3
    assert ran == 4 and es.stopped_epoch == 3 and es.best_epoch == 1 and es.best == 0.9


def test_patience_zero_stops_at_the_first_epoch_that_does_not_improve():
    es = nn.EarlyStopping(patience=0)
    _, ran = drive(es, [3.0, 2.0, 2.0, 1.0])
    assert ran == 3 and es.stopped_epoch == 2


def test_min_delta_demands_a_larger_improvement():
    values = [1.0, 0.95, 0.93, 0.85, 0.84]
    es = nn.EarlyStopping(patience=2, min_delta=0.1)
    _, ran = drive(es, values)
    # 0.95, 0.93 are not below 1.0 - 0.1 -> wait reaches 2 at epoch 2
    assert ran == 3 and es.best == 1.0 and es.stopped_epoch == 2
    es = nn.EarlyStopping(patience=2, min_delta=0.0)
    _, ran = drive(es, values)
    assert ran == 5 and es.stopped_epoch is None and es.best == 0.84


def test_max_mode_and_auto_mode_for_accuracy_names():
    values = [0.5, 0.7, 0.6, 0.65, 0.9]
    for es in (
        nn.EarlyStopping("val_accuracy", patience=2),
        nn.EarlyStopping("score", patience=2, mode="max"),
    ):
        _, ran = drive(es, values, monitor=es.monitor)
        assert ran == 4 and es.best == 0.7 and es.best_epoch == 1
    es = nn.EarlyStopping("val_accuracy", patience=2, mode="min")
    _, ran = drive(es, values, monitor="val_accuracy")
    assert ran == 3 and es.best == 0.5


def test_nan_never_counts_as_an_improvement():
    es = nn.EarlyStopping(patience=1)
    _, ran = drive(es, [1.0, float("nan"), 0.5])
    assert ran == 2 and es.best == 1.0


@pytest.mark.parametrize("stop_early", [True, False])
def test_restore_best_weights_also_when_patience_never_runs_out(stop_early):
    values = [2.0, 1.0, 1.5, 1.4, 1.3] if stop_early else [2.0, 1.0, 1.5, 1.1, 1.2]
    es = nn.EarlyStopping(patience=3 if stop_early else 10, restore_best_weights=True)
    model, ran = drive(es, values)
    assert ran == 5
    assert (es.stopped_epoch is not None) == stop_early
    assert np.all(model.theta == 1) and np.all(model.layers[1].running_mean == 1)


def test_without_restore_the_last_weights_stay():
    es = nn.EarlyStopping(patience=10)
    model, _ = drive(es, [2.0, 1.0, 1.5])
    assert np.all(model.theta == 2)


def test_a_second_training_run_starts_afresh():
    es = nn.EarlyStopping(patience=1, restore_best_weights=True)
    drive(es, [0.1, 0.2, 0.3])
    model, ran = drive(es, [5.0, 4.0, 3.0])
    assert ran == 3 and es.best == 3.0 and np.all(model.theta == 2)


def test_missing_monitored_value_is_a_clear_error():
    es = nn.EarlyStopping("val_loss")
    es.set_model(tiny_model())
    es.on_train_begin({})
    with pytest.raises(ValueError, match=r"'val_loss' is not among the logged values \['loss'\]"):
        es.on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"patience": -1}, ValueError),
        ({"patience": 1.5}, TypeError),
        ({"mode": "up"}, ValueError),
        ({"min_delta": -0.1}, ValueError),
        ({"monitor": 3}, TypeError),
    ],
)
def test_bad_early_stopping_arguments(kwargs, error):
    with pytest.raises(error):
        nn.EarlyStopping(**kwargs)


# -- EarlyStopping in fit ----------------------------------------------------------------------


def noisy_regression(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = X @ [1.0, -1.0, 0.5, 0.0] + rng.normal(scale=1.0, size=n)
    return X, y


def test_early_stopping_in_fit_restores_the_best_validation_weights():
    X, y = noisy_regression()
    model = nn.Sequential(nn.Dense(4, 32, activation="relu"), nn.Dense(32, 1), seed=0)
    es = nn.EarlyStopping("val_loss", patience=3, restore_best_weights=True)
    h = model.fit(
        X[:30],
        y[:30],
        loss="mse",
        optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=200,
        batch_size=10,
        seed=0,
        validation_data=(X[30:], y[30:]),
        callbacks=[es],
        progress=False,
    )
    val = h.history["val_loss"]
    assert len(val) < 200 and es.stopped_epoch == len(val) - 1  # it overfits, then stops
    assert es.best_epoch == int(np.argmin(val)) and len(val) - 1 - es.best_epoch == 3
    restored = model.evaluate(X[30:], y[30:], loss="mse", batch_size=256)["loss"]
    assert restored == min(val)


def test_stop_training_from_a_batch_hook_ends_after_that_batch():
    class StopAt(nn.Callback):
        def __init__(self):
            self.seen = []

        def on_batch_end(self, batch, logs):
            self.seen.append((batch, logs["size"]))
            if len(self.seen) == 7:
                self.model.stop_training = True

    X, y = noisy_regression(25)  # batches of 10, 10, 5
    model = nn.Sequential(nn.Dense(4, 1), seed=0)
    hook = StopAt()
    h = model.fit(
        X, y, loss="mse", optimizer="sgd", epochs=5, batch_size=10, callbacks=[hook], progress=False
    )
    assert hook.seen == [(0, 10), (1, 10), (2, 5)] * 2 + [(0, 10)]
    assert len(h.history["loss"]) == 3


def test_callbacks_get_the_training_parameters():
    class Probe(nn.Callback):
        def on_train_begin(self, logs):
            self.got = dict(self.params)

    X, y = noisy_regression(25)
    model = nn.Sequential(nn.Dense(4, 1), seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    probe = Probe()
    h = model.fit(
        X, y, loss="mse", optimizer=opt, epochs=2, batch_size=10, callbacks=[probe], progress=False
    )
    assert probe.got["epochs"] == 2 and probe.got["steps"] == 3 and probe.got["batch_size"] == 10
    assert probe.got["optimizer"] is opt and probe.got["history"] is h
    assert probe.got["callbacks"] == [probe]


# -- ModelCheckpoint ---------------------------------------------------------------------------


def test_checkpoint_every_epoch_with_the_epoch_in_the_name(tmp_path):
    mc = nn.ModelCheckpoint(tmp_path / "m-{epoch}.npz")
    drive(mc, [3.0, 2.0, 2.5])
    assert mc.saved_epochs == [0, 1, 2]
    for epoch in range(3):
        assert np.all(nn.load(tmp_path / f"m-{epoch + 1}.npz").theta == epoch)


def test_checkpoint_names_are_format_strings_of_the_epoch_and_the_logs_as_in_keras(tmp_path):
    mc = nn.ModelCheckpoint(tmp_path / "ep{epoch:02d}-{val_loss:.2f}-{loss:.0f}.npz")
    drive(mc, [3.0, 2.25])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep01-3.00-100.npz", "ep02-2.25-99.npz"]
    with pytest.raises(
        ValueError,
        match=r"cannot fill in the path .*'val_acc'.*\{epoch\} and "
        r"the logs \['loss', 'val_loss'\]",
    ):
        drive(nn.ModelCheckpoint(tmp_path / "m-{val_acc}.npz"), [1.0])


def test_checkpoint_save_best_only_writes_only_improvements(tmp_path):
    path = tmp_path / "best.npz"
    mc = nn.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    drive(mc, [3.0, 2.0, 2.5, 1.0, 1.0])
    assert mc.saved_epochs == [0, 1, 3]
    loaded = nn.load(path)
    assert np.all(loaded.theta == 3) and np.all(loaded.layers[1].running_mean == 3)


def test_checkpoint_best_only_in_max_mode(tmp_path):
    mc = nn.ModelCheckpoint(tmp_path / "m-{epoch}.npz", monitor="val_accuracy", save_best_only=True)
    drive(mc, [0.5, 0.4, 0.8, 0.8], monitor="val_accuracy")
    assert mc.saved_epochs == [0, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1.npz", "m-3.npz"]


def test_checkpoint_in_fit_keeps_the_best_validation_model(tmp_path):
    X, y = noisy_regression()
    model = nn.Sequential(nn.Dense(4, 32, activation="relu"), nn.Dense(32, 1), seed=0)
    path = tmp_path / "best.npz"
    h = model.fit(
        X[:30],
        y[:30],
        loss="mse",
        optimizer=optim.Adam(model.parameters(), lr=0.05),
        epochs=25,
        batch_size=10,
        seed=0,
        validation_data=(X[30:], y[30:]),
        callbacks=[nn.ModelCheckpoint(path, save_best_only=True)],
        progress=False,
    )
    best = nn.load(path).evaluate(X[30:], y[30:], loss="mse", batch_size=256)["loss"]
    assert best == min(h.history["val_loss"])
    assert best < h.history["val_loss"][-1]  # the last epoch was not the best one


def test_checkpoint_into_a_missing_directory_fails_before_training(tmp_path):
    X, y = noisy_regression(10)
    model = nn.Sequential(nn.Dense(4, 1), seed=0)
    before = model.theta.copy()
    with pytest.raises(ValueError, match="does not exist"):
        model.fit(
            X,
            y,
            loss="mse",
            optimizer="sgd",
            epochs=1,
            progress=False,
            callbacks=[nn.ModelCheckpoint(tmp_path / "no" / "m.npz")],
        )
    assert np.array_equal(model.theta, before)


def test_checkpoints_run_after_the_other_callbacks(tmp_path):
    """The saved learning rate is the one the schedule set for the next epoch."""
    X, y = noisy_regression(10)
    model = nn.Sequential(nn.Dense(4, 1), seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "ckpt.npz"
    model.fit(
        X,
        y,
        loss="mse",
        optimizer=opt,
        epochs=1,
        progress=False,
        callbacks=[
            nn.ModelCheckpoint(path, save_training_state=True),
            optim.StepLR(opt, step_size=1, gamma=0.5),
        ],
    )
    from nn.training import load_checkpoint

    assert load_checkpoint(path).optimizer_state["lr"] == 0.05


def test_learning_rate_scheduler_callback_by_hand():
    model = tiny_model()
    opt = optim.SGD(model.parameters(), lr=1.0)
    cb = nn.LearningRateScheduler(
        optim.ReduceLROnPlateau(opt, factor=0.5, patience=0), monitor="loss"
    )
    drive(cb, [5.0, 5.0, 5.0], model=model)  # loss logged as 100, 99, 98: improving
    assert opt.lr == 1.0
    cb = nn.LearningRateScheduler(optim.ReduceLROnPlateau(opt, factor=0.5, patience=0))
    drive(cb, [5.0, 5.0, 5.0], model=model)  # val_loss flat: two reductions
    assert opt.lr == 0.25
    with pytest.raises(ValueError, match="'val_acc' is not among"):
        drive(nn.LearningRateScheduler(optim.ReduceLROnPlateau(opt), monitor="val_acc"), [1.0])
    with pytest.raises(TypeError, match="schedule"):
        nn.LearningRateScheduler(opt)
