"""fit / evaluate / predict against independent truths.

The truths: loops written out here with the layer API (zero_grad, forward, loss, backward,
step) over batches sliced by hand, gradients of linear models computed by hand, Newton's
method for logistic regression, and the formulas of the learning-rate schedules.
"""

from __future__ import annotations

import copy
import math
import sys
import tracemalloc
import warnings

import numpy as np
import pytest

import losses
import nn
import optim
from nn.training import TrainingDivergedError

# -- helpers ----------------------------------------------------------------------------------


def xor_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X, y


def mlp(seed=0, dtype=np.float32, dropout=0.0):
    layers = [nn.Dense(2, 16, activation="tanh")]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Dense(16, 2))
    return nn.Sequential(*layers, seed=seed, dtype=dtype)


def regression_data(n=40, d=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = (X @ np.arange(1.0, d + 1) + 0.5 + 0.1 * rng.normal(size=n)).astype(dtype)
    return X, y


class Spy(nn.Layer):
    """A pass-through layer that records the dtype and first column of each training batch."""

    def __init__(self):
        super().__init__()
        self.dtypes, self.rows = [], []

    def forward(self, x):
        if self.training:
            self.dtypes.append(x.dtype)
            self.rows.append(x[:, 0].copy())
        return x

    def backward(self, grad_out):
        return grad_out


def quiet_fit(model, X, y, **kwargs):
    kwargs.setdefault("progress", False)
    return model.fit(X, y, **kwargs)


def manual_epochs(
    model, loss, optimizer, X, y, batch_size, epochs, lr_at=None, clip=None, clip_value=None
):
    """The reference loop: batches sliced in order, by the layer API."""
    losses_per_epoch = []
    for epoch in range(epochs):
        if lr_at is not None:
            optimizer.lr = lr_at(epoch)
        total = 0.0
        for start in range(0, len(X), batch_size):
            xb = X[start : start + batch_size].astype(model.dtype)
            yb = y[start : start + batch_size]
            model.zero_grad()
            value = loss.forward(model.forward(xb), yb)
            model.backward(loss.backward())
            if clip is not None:
                optim.clip_grad_norm(model.parameters(), clip)
            if clip_value is not None:
                optim.clip_grad_value(model.parameters(), clip_value)
            optimizer.step()
            total += value * len(xb)
        losses_per_epoch.append(total / len(X))
    return losses_per_epoch


# -- learning, history, batches ---------------------------------------------------------------


def test_fit_learns_a_nonlinear_problem_to_low_loss():
    X, y = xor_data()
    model = mlp()
    history = quiet_fit(
        model,
        X,
        y,
        loss=losses.CrossEntropy(),
        epochs=60,
        batch_size=32,
        seed=0,
        optimizer=optim.Adam(model.parameters(), lr=3e-2),
        metrics=["accuracy"],
    )
    assert history.history["loss"][-1] < 0.1
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    assert history.history["accuracy"][-1] > 0.97
    assert (model.predict(X).argmax(axis=1) == y).mean() > 0.97


def test_history_records_loss_metrics_validation_and_lr_per_epoch():
    X, y = xor_data(200)
    model = mlp()
    history = quiet_fit(
        model,
        X[:150],
        y[:150],
        loss="cross_entropy",
        epochs=4,
        batch_size=16,
        seed=1,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        metrics=["accuracy"],
        validation_data=(X[150:], y[150:]),
    )
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 4 for v in history.history.values())
    assert history.epoch == [0, 1, 2, 3]
    assert history.history["lr"] == [0.1] * 4
    # the last val_ values are those of the final model
    final = model.evaluate(X[150:], y[150:], loss="cross_entropy", metrics=["accuracy"])
    assert history.history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == final["accuracy"]


def test_validation_split_holds_out_the_last_samples_before_shuffling():
    X, y = regression_data(50)
    runs = []
    for kwargs in ({"validation_split": 0.2}, {"validation_data": (X[40:], y[40:])}):
        model = nn.Sequential(nn.Dense(3, 1), seed=0)
        data = (X, y) if "validation_split" in kwargs else (X[:40], y[:40])
        h = quiet_fit(
            model,
            *data,
            loss="mse",
            optimizer=optim.SGD(model.parameters(), lr=0.05),
            epochs=3,
            batch_size=8,
            seed=2,
            metrics=["mae", "mse"],
            **kwargs,
        )
        runs.append((model.theta.copy(), h.history))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert {"mae", "mse", "val_mae", "val_mse", "val_loss"} <= set(runs[0][1])


def test_mini_batches_and_the_last_partial_batch_match_a_hand_written_loop():
    X, y = regression_data(30)  # batches of 7: 7, 7, 7, 7, 2
    fitted, reference = (
        nn.Sequential(nn.Dense(3, 4, activation="tanh"), nn.Dense(4, 1), seed=3) for _ in range(2)
    )
    history = quiet_fit(
        fitted,
        X,
        y,
        loss=losses.MSE(),
        optimizer=optim.SGD(fitted.parameters(), lr=0.05),
        epochs=3,
        batch_size=7,
        shuffle=False,
    )
    expected = manual_epochs(
        reference,
        losses.MSE(),
        optim.SGD(reference.parameters(), lr=0.05),
        X,
        y.reshape(-1, 1),
        7,
        3,
    )
    assert np.array_equal(fitted.theta, reference.theta)
    assert history.history["loss"] == expected


def test_batch_larger_than_the_data_set_is_one_batch():
    X, y = regression_data(10)
    fitted, reference = nn.Sequential(nn.Dense(3, 1), seed=0), nn.Sequential(nn.Dense(3, 1), seed=0)
    quiet_fit(
        fitted,
        X,
        y,
        loss="mse",
        optimizer=optim.SGD(fitted.parameters(), lr=0.1),
        epochs=2,
        batch_size=100,
        shuffle=False,
    )
    manual_epochs(
        reference,
        losses.MSE(),
        optim.SGD(reference.parameters(), lr=0.1),
        X,
        y.reshape(-1, 1),
        100,
        2,
    )
    assert np.array_equal(fitted.theta, reference.theta)


def test_inputs_are_cast_per_batch_without_promotion_to_float64():
    X, y = xor_data(64)
    X64 = X.astype(np.float64)
    spy = Spy()
    model = nn.Sequential(spy, nn.Dense(2, 2), seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    quiet_fit(model, X64, y, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=16, seed=0)
    assert spy.dtypes and set(spy.dtypes) == {np.dtype(np.float32)}
    assert model.theta.dtype == np.float32 and model.theta_grad.dtype == np.float32
    assert X64.dtype == np.float64  # the caller's array is untouched
    # the same values as training on the float32 array
    other = nn.Sequential(Spy(), nn.Dense(2, 2), seed=0)
    quiet_fit(
        other,
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.SGD(other.parameters(), lr=0.1),
        epochs=2,
        batch_size=16,
        seed=0,
    )
    assert np.array_equal(model.theta, other.theta)


def test_shuffling_draws_one_permutation_per_epoch_from_the_seeded_generator():
    n, batch = 23, 5
    X = np.column_stack([np.arange(n, dtype=np.float32), np.ones(n, np.float32)])
    y = np.zeros(n, dtype=np.int64)
    spy = Spy()
    model = nn.Sequential(spy, nn.Dense(2, 2), seed=0)
    quiet_fit(
        model,
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.SGD(model.parameters(), lr=0.0),
        epochs=2,
        batch_size=batch,
        seed=7,
    )
    rng = np.random.default_rng(7)
    expected = []
    for _ in range(2):
        perm = rng.permutation(n)
        expected += [sorted(perm[i : i + batch]) for i in range(0, n, batch)]
    assert [sorted(r.astype(int)) for r in spy.rows] == expected
    for rows in spy.rows[:5]:  # every sample once per epoch
        assert len(rows) <= batch
    assert sorted(np.concatenate(spy.rows[:5]).astype(int)) == list(range(n))

    spy2 = Spy()
    model = nn.Sequential(spy2, nn.Dense(2, 2), seed=0)
    quiet_fit(
        model,
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.SGD(model.parameters(), lr=0.0),
        epochs=1,
        batch_size=batch,
        shuffle=False,
    )
    assert np.array_equal(np.concatenate(spy2.rows), np.arange(n))


def test_same_seed_gives_bitwise_identical_weights_and_history():
    X, y = xor_data(120)

    def run(seed):
        model = mlp(seed=4, dropout=0.3)
        h = quiet_fit(
            model,
            X,
            y,
            loss="cross_entropy",
            epochs=3,
            batch_size=16,
            seed=seed,
            optimizer=optim.Adam(model.parameters(), lr=1e-2),
            metrics=["accuracy"],
            validation_split=0.25,
        )
        return model.theta.copy(), h.history

    a, b, c = run(11), run(11), run(12)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


# -- memory-mapped data ------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_memory_mapped_X_trains_without_being_copied_whole(tmp_path, shuffle):
    n, d = 40_000, 64  # 20 MB of float64
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    del X
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert isinstance(X_map, np.memmap)
    model = nn.Sequential(nn.Dense(d, 2), seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)

    tracemalloc.start()
    try:
        quiet_fit(
            model,
            X_map,
            y,
            loss="cross_entropy",
            optimizer=opt,
            epochs=1,
            batch_size=500,
            shuffle=shuffle,
            seed=0,
            validation_split=0.1,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X_map.nbytes / 8, f"peak {peak / 1e6:.1f} MB for {X_map.nbytes / 1e6:.0f} MB X"
    assert model.evaluate(X_map[:2000], y[:2000], metrics=["accuracy"])["accuracy"] > 0.9

    # the same θ as training on the array in memory
    in_memory = nn.Sequential(nn.Dense(d, 2), seed=0)
    quiet_fit(
        in_memory,
        np.asarray(X_map),
        y,
        loss="cross_entropy",
        optimizer=optim.SGD(in_memory.parameters(), lr=0.1),
        epochs=1,
        batch_size=500,
        shuffle=shuffle,
        seed=0,
        validation_split=0.1,
    )
    assert np.array_equal(model.theta, in_memory.theta)


def test_np_memmap_of_float32_trains(tmp_path):
    X, y = xor_data(100)
    mm = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=X.shape)
    mm[...] = X
    mm.flush()
    X_map = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="r", shape=X.shape)
    a, b = mlp(), mlp()
    for model, data in ((a, X_map), (b, X)):
        quiet_fit(
            model,
            data,
            y,
            loss="cross_entropy",
            epochs=2,
            batch_size=16,
            seed=0,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
        )
    assert np.array_equal(a.theta, b.theta)


# -- divergence --------------------------------------------------------------------------------


class FaultyMSE(losses.MSE):
    """MSE that returns a NaN loss, or puts +inf into the gradient, at one call."""

    def __init__(self, bad_call, where="loss"):
        super().__init__()
        self.calls, self.bad_call, self.where = 0, bad_call, where

    def forward(self, pred, target, sample_weight=None):
        self.calls += 1
        value = super().forward(pred, target, sample_weight)
        return math.nan if self.where == "loss" and self.calls == self.bad_call else value

    def backward(self):
        grad = super().backward()
        if self.where == "gradient" and self.calls == self.bad_call:
            grad[0, 0] = np.inf
        return grad


class WeightsAfterEachStep(nn.Callback):
    def __init__(self):
        self.snapshots = []

    def on_batch_end(self, batch, logs):
        self.snapshots.append(self.model.theta.copy())


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_non_finite_loss_or_gradient_stops_at_that_step_with_the_weights_before_it(where):
    X, y = regression_data(40)  # 5 batches of 8 per epoch; call 8 = epoch 2, batch 3
    model = nn.Sequential(nn.Dense(3, 4, activation="relu"), nn.Dense(4, 1), seed=0)
    recorder = WeightsAfterEachStep()
    with pytest.raises(TrainingDivergedError) as info:
        quiet_fit(
            model,
            X,
            y,
            loss=FaultyMSE(8, where),
            epochs=5,
            batch_size=8,
            seed=0,
            optimizer=optim.Adam(model.parameters(), lr=1e-2),
            callbacks=[recorder],
        )
    err = info.value
    assert (err.epoch, err.batch, err.step, err.quantity) == (2, 3, 8, where)
    message = str(err)
    assert "epoch 2" in message and "batch 3" in message and "step 8" in message
    if where == "loss":
        assert math.isnan(err.value) and "nan" in message
    else:
        assert err.value == math.inf and "inf" in message
    assert len(recorder.snapshots) == 7
    assert np.array_equal(model.theta, recorder.snapshots[-1])
    assert np.isfinite(model.theta).all()


class StateAfterEachStep(nn.Callback):
    """θ and the batch-norm running statistics after every accepted step."""

    def __init__(self, norm):
        self.norm, self.snapshots = norm, []

    def on_batch_end(self, batch, logs):
        norm = self.norm
        self.snapshots.append(
            (self.model.theta.copy(), norm.running_mean.copy(), norm.running_var.copy())
        )


@pytest.mark.parametrize("where", ["loss", "buffers"])
def test_a_refused_step_leaves_the_running_statistics_as_they_were(where):
    """Running statistics change in forward, outside θ: they are checked and restored too."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    norm = nn.BatchNorm1d(8)
    model = nn.Sequential(
        nn.Dense(4, 8, activation="relu"), nn.Dense(8, 8), norm, nn.Dense(8, 2), seed=0
    )
    recorder = StateAfterEachStep(norm)
    if where == "buffers":  # a huge rate: running_var overflows while the loss stays finite
        loss, opt = "cross_entropy", optim.SGD(model.parameters(), lr=1e3, momentum=0.9)
    else:  # the 3rd loss is NaN, after the 3rd forward has updated the running statistics
        loss, opt = FaultyCrossEntropy(3), optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDivergedError) as info:
        quiet_fit(
            model,
            X,
            y,
            loss=loss,
            optimizer=opt,
            epochs=20,
            batch_size=32,
            seed=0,
            callbacks=[recorder],
        )
    assert info.value.quantity == where
    if where == "buffers":
        assert "in running_var of layer 2, BatchNorm1d(8" in str(info.value)
    theta, mean, var = recorder.snapshots[-1]
    assert np.array_equal(model.theta, theta)
    assert np.array_equal(norm.running_mean, mean) and np.array_equal(norm.running_var, var)
    assert np.isfinite(norm.running_var).all()


class FaultyCrossEntropy(losses.CrossEntropy):
    """Cross-entropy whose ``bad_call``-th forward returns NaN."""

    def __init__(self, bad_call):
        super().__init__()
        self.bad_call, self.calls = bad_call, 0

    def forward(self, pred, target, sample_weight=None):
        self.calls += 1
        value = super().forward(pred, target, sample_weight)
        return math.nan if self.calls == self.bad_call else value


def test_a_step_that_overflows_the_weights_is_undone():
    X, y = regression_data(16, dtype=np.float32)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    before = model.theta.copy()
    opt = optim.SGD(model.parameters(), lr=1e38)  # finite loss and gradient, θ overflows
    with pytest.raises(TrainingDivergedError, match="weights non-finite") as info:
        quiet_fit(model, X, y, loss="mse", optimizer=opt, epochs=1, batch_size=16)
    assert (info.value.epoch, info.value.batch, info.value.quantity) == (1, 1, "weights")
    assert np.array_equal(model.theta, before)


def test_a_diverging_learning_rate_ends_with_finite_weights():
    X, y = regression_data(64, dtype=np.float32)
    model = nn.Sequential(nn.Dense(3, 8, activation="relu"), nn.Dense(8, 1), seed=0)
    with pytest.raises(TrainingDivergedError, match=r"Training diverged at epoch \d+, batch \d+"):
        quiet_fit(
            model,
            X,
            y * 100,
            loss="mse",
            epochs=200,
            batch_size=8,
            seed=0,
            optimizer=optim.SGD(model.parameters(), lr=5.0),
        )
    assert np.isfinite(model.theta).all()


class HugeGradientMSE(losses.MSE):
    """MSE whose gradient is scaled by 1e25: finite in float32, but its square overflows."""

    def backward(self):
        grad = super().backward()
        grad *= np.float32(1e25)
        return grad


def test_a_huge_but_finite_gradient_is_not_divergence_and_clips_like_optim():
    X, y = regression_data(12, dtype=np.float32)
    fitted = nn.Sequential(nn.Dense(3, 1), seed=0)
    reference = fitted.copy()
    quiet_fit(
        fitted,
        X,
        y,
        loss=HugeGradientMSE(),
        optimizer=optim.SGD(fitted.parameters(), lr=0.01),
        epochs=2,
        batch_size=4,
        shuffle=False,
        clip_grad_norm=1.0,
    )
    manual_epochs(
        reference,
        HugeGradientMSE(),
        optim.SGD(reference.parameters(), lr=0.01),
        X,
        y.reshape(-1, 1),
        4,
        2,
        clip=1.0,
    )
    assert np.isfinite(fitted.theta).all()
    assert np.array_equal(fitted.theta, reference.theta)


def test_lbfgs_divergence_restores_the_weights_of_the_epoch_start():
    X, y = regression_data(20)
    model = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    before = model.theta.copy()
    with pytest.raises(TrainingDivergedError, match="epoch 1: the full-batch loss is nan"):
        quiet_fit(
            model,
            X,
            y,
            loss=FaultyMSE(4),
            optimizer=optim.LBFGS(model.parameters()),
            epochs=1,
            batch_size=5,
        )  # call 4: the last batch of the first evaluation
    assert np.array_equal(model.theta, before)


def test_lbfgs_divergence_restores_the_running_statistics_too():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    norm = nn.BatchNorm1d(4)
    model = nn.Sequential(norm, nn.Dense(4, 2), seed=0, dtype=np.float64)
    with pytest.raises(TrainingDivergedError, match="full-batch loss is nan"):
        quiet_fit(
            model,
            X,
            y,
            loss=FaultyCrossEntropy(1),
            epochs=1,
            batch_size=64,
            optimizer=optim.LBFGS(model.parameters()),
        )
    assert np.array_equal(norm.running_mean, np.zeros(4))
    assert np.array_equal(norm.running_var, np.ones(4))


def test_lbfgs_stops_when_the_running_statistics_overflow():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    X[:, 1] *= 1e200  # finite, but its batch variance overflows to inf
    norm = nn.BatchNorm1d(4)
    model = nn.Sequential(norm, nn.Dense(4, 2), seed=0, dtype=np.float64)
    with pytest.raises(TrainingDivergedError, match="running_var of layer 0") as info:
        quiet_fit(
            model,
            X,
            y,
            loss="cross_entropy",
            epochs=1,
            batch_size=64,
            optimizer=optim.LBFGS(model.parameters(), max_iter=3),
        )
    assert info.value.quantity == "buffers"
    assert np.isfinite(norm.running_var).all() and np.isfinite(model.theta).all()


# -- progress output ---------------------------------------------------------------------------


def _fit_small(progress, epochs=3):
    X, y = xor_data(64)
    model = mlp()
    quiet_fit(
        model,
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=epochs,
        batch_size=16,
        metrics=["accuracy"],
        progress=progress,
    )


def test_progress_false_prints_nothing(capfd):
    _fit_small(False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_none_without_a_terminal_prints_one_plain_line_per_epoch(capfd):
    _fit_small(None)
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3 and "\r" not in err
    for i, line in enumerate(lines, start=1):
        assert line.startswith(f"Epoch {i}/3  loss=") and "accuracy=" in line and "lr=0.1" in line


def test_progress_true_draws_a_tqdm_bar(capsys):
    _fit_small(True, epochs=2)
    err = capsys.readouterr().err
    assert "Epoch 1/2:" in err and "batch" in err and "\r" in err  # tqdm's bar
    assert "Epoch 1/2  loss=" in err and "Epoch 2/2  loss=" in err  # and the summary lines


def test_progress_none_on_a_terminal_draws_the_bar(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _fit_small(None, epochs=1)
    assert "Epoch 1/1:" in capsys.readouterr().err


# -- evaluate and predict ----------------------------------------------------------------------


def test_evaluate_returns_a_dict_of_the_loss_and_metrics_of_the_whole_set():
    X, y = xor_data(50)
    model = mlp(dtype=np.float64)
    logits = model.forward(X.astype(np.float64)).copy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_loss = -logp[np.arange(50), y].mean()
    expected_acc = (logits.argmax(axis=1) == y).mean()
    result = model.evaluate(X, y, loss="cross_entropy", metrics=["accuracy"], batch_size=7)
    assert isinstance(result, dict) and set(result) == {"loss", "accuracy"}
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-12)
    assert result["accuracy"] == pytest.approx(expected_acc)
    assert model.evaluate(X, y, metrics=["accuracy"]) == {"accuracy": result["accuracy"]}


SET_LOSSES = {
    "sum": lambda: losses.CrossEntropy(reduction="sum"),
    "a class of weight 0": lambda: losses.CrossEntropy(weight=[0.0, 1.0]),
    "class weights": lambda: losses.CrossEntropy(weight=[1.0, 10.0]),
    "mean": lambda: losses.CrossEntropy(),
}


@pytest.mark.parametrize("kind", sorted(SET_LOSSES))
def test_evaluate_gives_the_loss_of_the_whole_set_whatever_the_batch_size(kind):
    """A sum adds up; a class-weighted mean divides by the targets' weights over the set."""
    X, y = xor_data(50)
    model = mlp(dtype=np.float64)
    logits = model.forward(X.astype(np.float64)).copy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    ell = -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))[np.arange(50), y]
    weights = np.array([0.0, 1.0])[y]
    expected = {
        "sum": ell.sum(),
        "a class of weight 0": (ell * weights).sum() / weights.sum(),
        "class weights": (ell * np.array([1.0, 10.0])[y]).sum() / np.array([1.0, 10.0])[y].sum(),
        "mean": ell.mean(),
    }[kind]
    for batch_size in (50, 7, 1):
        result = model.evaluate(X, y, loss=SET_LOSSES[kind](), batch_size=batch_size)
        assert result["loss"] == pytest.approx(expected, rel=1e-12), batch_size


@pytest.mark.parametrize("kind", sorted(SET_LOSSES))
def test_the_epoch_loss_of_fit_is_the_loss_of_the_epochs_batches_as_one_set(kind):
    """With lr=0 θ stays put, so the epoch's training loss is evaluate's on the same data."""
    X, y = xor_data(50)
    model = mlp(dtype=np.float64)
    expected = model.evaluate(X, y, loss=SET_LOSSES[kind]())["loss"]
    opt = optim.SGD(model.parameters(), lr=0.0)
    history = model.fit(
        X,
        y,
        loss=SET_LOSSES[kind](),
        optimizer=opt,
        epochs=1,
        batch_size=7,
        validation_data=(X, y),
        progress=False,
    )
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-12)


def test_batches_whose_targets_all_weigh_zero_add_nothing_and_are_not_a_divergence():
    """CrossEntropy(weight=[0, 1]) on a batch of class 0 is NaN (PyTorch's 0/0)."""
    X, y = xor_data(64)
    order = np.argsort(y, kind="stable")  # class 0 first: whole batches of weight 0
    X, y = X[order], y[order]
    model = mlp(dtype=np.float64)
    weighted = lambda: losses.CrossEntropy(weight=[0.0, 1.0])  # noqa: E731
    expected = model.evaluate(X, y, loss=weighted(), batch_size=64)["loss"]
    assert math.isfinite(expected)
    assert model.evaluate(X, y, loss=weighted(), batch_size=8)["loss"] == pytest.approx(
        expected, rel=1e-12
    )
    history = quiet_fit(
        model,
        X,
        y,
        loss=weighted(),
        epochs=1,
        batch_size=8,
        shuffle=False,
        optimizer=optim.SGD(model.parameters(), lr=0.0),
    )
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    quiet_fit(
        model,
        X,
        y,
        loss=weighted(),
        epochs=2,
        batch_size=8,
        shuffle=False,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
    )
    assert np.isfinite(model.theta).all()


@pytest.mark.parametrize("kind", sorted(SET_LOSSES))
def test_full_batch_lbfgs_minimises_the_loss_of_the_whole_set_whatever_the_batch_size(kind):
    X, y = xor_data(60)
    thetas = []
    for batch_size in (60, 7):
        model = mlp(dtype=np.float64)
        opt = optim.LBFGS(model.parameters(), max_iter=5)
        model.fit(
            X,
            y,
            loss=SET_LOSSES[kind](),
            optimizer=opt,
            epochs=1,
            batch_size=batch_size,
            progress=False,
        )
        thetas.append(model.theta.copy())
    np.testing.assert_allclose(thetas[1], thetas[0], rtol=1e-7, atol=1e-9)


def test_evaluate_restores_the_training_mode():
    model = mlp(dropout=0.5)
    model.train()
    model.evaluate(*xor_data(10), loss="cross_entropy")
    assert model.training and all(layer.training for layer in model.layers)


def test_predict_in_batches_equals_one_forward_pass_in_eval_mode():
    X, _ = xor_data(103)
    model = mlp(dropout=0.5)
    model.eval()
    full = model.forward(X).copy()
    model.train()
    for batch_size in (1, 10, 103, 1000):
        out = model.predict(X, batch_size=batch_size)
        np.testing.assert_allclose(out, full, rtol=1e-6, atol=1e-7)
        assert out.dtype == np.float32 and out.shape == (103, 2)
    assert model.predict(X) is not model.predict(X)
    assert model.training  # predict put the mode back


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_predict_is_bitwise_equal(tmp_path, dtype):
    X, y = xor_data(80)
    model = nn.Sequential(
        nn.Standardize(2),
        nn.Dense(2, 8, activation="relu"),
        nn.BatchNorm1d(8),
        nn.Dropout(0.2),
        nn.Dense(8, 2),
        seed=0,
        dtype=dtype,
    )
    model.layers[0].adapt(X)
    quiet_fit(
        model,
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.Adam(model.parameters()),
        epochs=2,
        batch_size=16,
        seed=0,
    )
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = nn.load(path)
    assert loaded.dtype == np.dtype(dtype)
    assert np.array_equal(loaded.theta, model.theta)
    assert np.array_equal(loaded.predict(X), model.predict(X))


# -- sample weights ----------------------------------------------------------------------------


def test_sample_weight_matches_a_hand_computed_weighted_gradient():
    X, y = regression_data(10, d=2)
    w = np.array([1.0, 0.5, 2.0, 0.0, 1.5, 1.0, 3.0, 0.25, 1.0, 2.0])
    model = nn.Sequential(nn.Dense(2, 1), seed=0, dtype=np.float64)
    W, b = model.layers[0].W.data[:, 0].copy(), float(model.layers[0].b.data[0])
    lr, batch = 0.1, 4
    history = quiet_fit(
        model,
        X,
        y,
        loss="mse",
        optimizer=optim.SGD(model.parameters(), lr=lr),
        epochs=1,
        batch_size=batch,
        shuffle=False,
        sample_weight=w,
    )
    # Keras's sum_over_batch_size: L_b = Σ w_n (ŷ_n − y_n)² / n_b
    total = 0.0
    for start in range(0, 10, batch):
        xb, yb, wb = X[start : start + batch], y[start : start + batch], w[start : start + batch]
        r = xb @ W + b - yb
        total += float(np.sum(wb * r * r))
        gW = 2.0 / len(xb) * (wb * r) @ xb
        gb = 2.0 / len(xb) * float(np.sum(wb * r))
        W, b = W - lr * gW, b - lr * gb
    np.testing.assert_allclose(model.layers[0].W.data[:, 0], W, rtol=1e-12)
    assert float(model.layers[0].b.data[0]) == pytest.approx(b, rel=1e-12)
    assert history.history["loss"][0] == pytest.approx(total / 10, rel=1e-12)


def test_unit_sample_weights_change_nothing():
    X, y = xor_data(50)
    a, b = mlp(), mlp()
    for model, kwargs in ((a, {}), (b, {"sample_weight": np.ones(50)})):
        quiet_fit(
            model,
            X,
            y,
            loss="cross_entropy",
            epochs=2,
            batch_size=8,
            seed=0,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            **kwargs,
        )
    assert np.array_equal(a.theta, b.theta)


def test_sample_weights_travel_with_their_shuffled_samples():
    X, y = regression_data(60, dtype=np.float32)
    w = np.ones(60)
    w[::3] = 0.0  # these samples must not matter, whatever their targets
    runs = []
    for garbage in (1e3, -7.0):
        target = y.copy()
        target[::3] = garbage
        model = nn.Sequential(nn.Dense(3, 1), seed=0)
        quiet_fit(
            model,
            X,
            target,
            loss="mse",
            optimizer=optim.SGD(model.parameters(), lr=0.05),
            epochs=3,
            batch_size=7,
            seed=5,
            sample_weight=w,
        )
        runs.append(model.theta.copy())
    assert np.array_equal(runs[0], runs[1])


def test_validation_split_splits_the_sample_weights_too():
    X, y = regression_data(50)
    w = np.linspace(0.5, 2.0, 50)
    model = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    h = quiet_fit(
        model,
        X,
        y,
        loss="mse",
        optimizer=optim.SGD(model.parameters(), lr=0.01),
        epochs=1,
        batch_size=10,
        sample_weight=w,
        validation_split=0.2,
    )
    expected = model.evaluate(X[40:], y[40:], loss="mse", sample_weight=w[40:])["loss"]
    assert h.history["val_loss"][0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        (
            -np.ones(20),
            ValueError,
            r"`sample_weight`, expected non-negative weights.*sample_weight\[0\]",
        ),
        (np.full(20, np.nan), ValueError, "sample_weight contains NaN"),
        (np.ones(19), ValueError, r"shape \(20,\)"),
        (np.ones((20, 1)), ValueError, r"expected shape \(20,\).*shape \(20, 1\)"),
        (np.array(["a"] * 20), TypeError, "real numbers"),
    ],
)
def test_bad_sample_weights_are_refused_before_training(weights, error, match):
    X, y = regression_data(20)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    before = model.theta.copy()
    with pytest.raises(error, match=match):
        quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1, sample_weight=weights)
    assert np.array_equal(model.theta, before)


# -- gradient clipping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fit_kwargs", "manual_kwargs"),
    [
        ({"clip_grad_norm": 0.5}, {"clip": 0.5}),
        ({"clip_grad_value": 0.05}, {"clip_value": 0.05}),
    ],
    ids=["norm", "value"],
)
def test_clipping_in_fit_follows_optim_clip_functions(fit_kwargs, manual_kwargs):
    X, y = regression_data(24, dtype=np.float32)
    fitted = nn.Sequential(nn.Dense(3, 5, activation="tanh"), nn.Dense(5, 1), seed=1)
    reference = fitted.copy()
    quiet_fit(
        fitted,
        X,
        y * 10,
        loss="mse",
        optimizer=optim.SGD(fitted.parameters(), lr=0.01),
        epochs=3,
        batch_size=6,
        shuffle=False,
        **fit_kwargs,
    )
    manual_epochs(
        reference,
        losses.MSE(),
        optim.SGD(reference.parameters(), lr=0.01),
        X,
        (y * 10).reshape(-1, 1),
        6,
        3,
        **manual_kwargs,
    )
    assert np.array_equal(fitted.theta, reference.theta)
    unclipped = reference.copy()
    quiet_fit(
        unclipped,
        X,
        y * 10,
        loss="mse",
        optimizer=optim.SGD(unclipped.parameters(), lr=0.01),
        epochs=1,
        batch_size=6,
        shuffle=False,
    )
    assert not np.array_equal(unclipped.theta, reference.theta)  # clipping was active


def test_clip_grad_norm_and_value_together_are_refused():
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    with pytest.raises(ValueError, match="both `clip_grad_norm` and `clip_grad_value`"):
        quiet_fit(
            model,
            X,
            y,
            loss="mse",
            optimizer="sgd",
            epochs=1,
            clip_grad_norm=1.0,
            clip_grad_value=1.0,
        )


@pytest.mark.parametrize(
    ("clip", "error"),
    [(0, ValueError), (-1.0, ValueError), (math.inf, ValueError), ("1", TypeError)],
)
@pytest.mark.parametrize("name", ["clip_grad_norm", "clip_grad_value"])
def test_clip_arguments_must_be_positive_numbers(clip, error, name):
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    with pytest.raises(error, match=name):
        quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1, **{name: clip})


# -- L-BFGS ------------------------------------------------------------------------------------


def newton_logistic(X, y, iterations=50):
    """Logistic-regression maximum likelihood by Newton's method, in float64."""
    A = np.column_stack([X, np.ones(len(X))])
    beta = np.zeros(A.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(A @ beta)))
        grad = A.T @ (p - y)
        hess = A.T @ (A * (p * (1 - p))[:, None])
        beta -= np.linalg.solve(hess, grad)
    return beta


def test_lbfgs_from_fit_reaches_the_logistic_regression_minimum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-(X @ [1.5, -2.0, 0.5] + 0.3)))).astype(np.float64)
    beta = newton_logistic(X, y)
    model = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    opt = optim.LBFGS(model.parameters(), max_iter=200, tol=1e-12)
    history = quiet_fit(
        model,
        X,
        y,
        loss=losses.BinaryCrossEntropy(),
        optimizer=opt,
        epochs=2,
        batch_size=64,
        metrics=["accuracy"],
    )
    found = np.concatenate([model.layers[0].W.data[:, 0], model.layers[0].b.data])
    np.testing.assert_allclose(found, beta, rtol=1e-6, atol=1e-7)
    A = np.column_stack([X, np.ones(len(X))])
    p = 1 / (1 + np.exp(-(A @ beta)))
    nll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert history.history["loss"][-1] == pytest.approx(nll, rel=1e-10)
    assert history.history["accuracy"][-1] == pytest.approx(((A @ beta > 0) == y).mean())
    assert opt.result is not None and opt.steps == 2


def test_lbfgs_refuses_gradient_clipping():
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        quiet_fit(
            model,
            X,
            y,
            loss="mse",
            optimizer=optim.LBFGS(model.parameters()),
            epochs=1,
            clip_grad_norm=1.0,
        )


# -- learning-rate schedules from fit ----------------------------------------------------------

SCHEDULES = {
    "step": (lambda o: optim.StepLR(o, step_size=2, gamma=0.5), lambda e: 0.2 * 0.5 ** (e // 2)),
    "exponential": (lambda o: optim.ExponentialLR(o, gamma=0.8), lambda e: 0.2 * 0.8**e),
    "cosine": (
        lambda o: optim.CosineAnnealingLR(o, T_max=4, eta_min=0.01),
        lambda e: 0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * e / 4)) / 2,
    ),
    "warmup": (
        lambda o: optim.LinearWarmup(o, warmup_epochs=3, start_factor=0.25),
        lambda e: 0.2 * (0.25 + 0.75 * min(e, 3) / 3),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_in_callbacks_set_each_epochs_rate_by_their_formula(name):
    make, formula = SCHEDULES[name]
    X, y = regression_data(12)
    fitted = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    opt = optim.SGD(fitted.parameters(), lr=0.2)
    h = quiet_fit(
        fitted,
        X,
        y,
        loss="mse",
        optimizer=opt,
        epochs=6,
        batch_size=12,
        shuffle=False,
        callbacks=[make(opt)],
    )
    expected = [formula(e) for e in range(6)]
    np.testing.assert_allclose(h.history["lr"], expected, rtol=1e-12)
    reference = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    manual_epochs(
        reference,
        losses.MSE(),
        optim.SGD(reference.parameters(), lr=0.2),
        X,
        y.reshape(-1, 1),
        12,
        6,
        lr_at=lambda e: h.history["lr"][e],
    )
    assert np.array_equal(fitted.theta, reference.theta)


def plateau_reference(values, lr, factor, patience, threshold, cooldown=0, min_lr=0.0):
    """PyTorch's ReduceLROnPlateau (mode min, rel threshold), written out: lr per epoch."""
    best, bad, cool, rates = math.inf, 0, 0, []
    for v in values:
        rates.append(lr)
        if v < best * (1 - threshold):
            best, bad = v, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            if lr - new > 1e-8:
                lr = new
            cool, bad = cooldown, 0
    return rates


@pytest.mark.parametrize("validate", [True, False])
def test_reduce_on_plateau_gets_the_monitored_value(validate):
    X, y = regression_data(40)
    model = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    opt = optim.SGD(model.parameters(), lr=0.05)
    plateau = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.45)
    kwargs = {"validation_split": 0.25} if validate else {}
    h = quiet_fit(
        model,
        X,
        y,
        loss="mse",
        optimizer=opt,
        epochs=10,
        batch_size=10,
        seed=0,
        callbacks=[plateau],
        **kwargs,
    )
    monitored = h.history["val_loss" if validate else "loss"]
    expected = plateau_reference(monitored, 0.05, 0.5, 0, 0.45)
    assert h.history["lr"] == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) > 1  # the rate did go down


def test_a_schedule_of_another_optimizer_is_refused():
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    other = optim.SGD(nn.Sequential(nn.Dense(3, 1), seed=0).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        quiet_fit(
            model,
            X,
            y,
            loss="mse",
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            callbacks=[optim.StepLR(other, 1)],
        )


# -- argument errors ---------------------------------------------------------------------------


def test_an_optimizer_built_on_another_model_is_refused():
    X, y = regression_data(8)
    model, other = nn.Sequential(nn.Dense(3, 1), seed=0), nn.Sequential(nn.Dense(3, 1), seed=0)
    with pytest.raises(ValueError, match="not this model's"):
        quiet_fit(
            model, X, y, loss="mse", optimizer=optim.SGD(other.parameters(), lr=0.1), epochs=1
        )


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0, 1, 2, 1], r"`y\[2\]`, expected integer class labels in \[0, 2\)"),
        ([0, -1, 1, 1], r"y\[1\]=-1"),
        ([0.0, 0.5, 1.0, 1.0], r"integer class labels.*y\[1\]=0.5"),
    ],
)
def test_class_labels_are_checked_before_any_training(labels, match):
    """Also by evaluate, for CrossEntropy or metrics alone on a multi-output model."""
    model = nn.Sequential(nn.Dense(2, 2), seed=0)
    before = model.theta.copy()
    with pytest.raises(ValueError, match=match):
        quiet_fit(
            model,
            np.zeros((4, 2)),
            np.array(labels),
            loss="cross_entropy",
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            batch_size=1,
        )
    assert np.array_equal(model.theta, before)
    with pytest.raises(ValueError, match=match):
        model.evaluate(np.zeros((4, 2)), np.array(labels), metrics=["accuracy"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"validation_split": 1.0}, ValueError, "validation_split"),
        ({"validation_data": ([[1.0, 2.0, 3.0]],)}, ValueError, "validation_data"),
        ({"callbacks": nn.EarlyStopping()}, TypeError, "callbacks"),
        ({"callbacks": ["early"]}, TypeError, "callbacks"),
        ({"optimizer": 0.1}, TypeError, "optimizer"),
        ({"checkpoint": 3}, TypeError, "checkpoint"),
        ({"resume_from": 3}, TypeError, "resume_from"),
        ({"shuffle": "yes"}, TypeError, "shuffle"),
        ({"progress": 1}, TypeError, "progress"),
        ({"seed": -1}, ValueError, "`seed`, expected a non-negative integer"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"resume_from": "missing.npz"}, FileNotFoundError, "missing.npz"),
        ({"metrics": "accuracy"}, TypeError, r"`metrics`.*\['accuracy'\]"),
        ({"y": np.zeros((8, 2))}, ValueError, r"y has shape \(8, 2\), but the model has 1"),
        (
            {"validation_data": (np.zeros((2, 3)), np.zeros((2, 3)))},
            ValueError,
            r"y_val has shape \(2, 3\)",
        ),
    ],
)
def test_bad_fit_arguments_raise_clear_errors(kwargs, error, match):
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    y = kwargs.pop("y", y)
    args = {"loss": "mse", "optimizer": "sgd", "epochs": 1, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        model.fit(X, y, **args)


class PoisonsABias(optim.SGD):
    """SGD whose second step leaves −inf in the first layer's bias, which a ReLU hides."""

    def __init__(self, model, **kwargs):
        super().__init__(model.parameters(), **kwargs)
        self.model = model
        self.after = []

    def step(self):
        super().step()
        if self.steps == 2:
            self.model.layers[0].b.data[0] = -np.inf
        self.after.append(self.model.theta.copy())


def test_weights_made_non_finite_are_caught_at_that_step_even_when_the_loss_stays_finite():
    X, y = regression_data(32, dtype=np.float32)
    model = nn.Sequential(nn.Dense(3, 4, activation="relu"), nn.Dense(4, 1), seed=0)
    opt = PoisonsABias(model, lr=0.01)
    with pytest.raises(TrainingDivergedError, match="weights non-finite") as info:
        quiet_fit(model, X, y, loss="mse", optimizer=opt, epochs=1, batch_size=8, shuffle=False)
    assert (info.value.batch, info.value.step, info.value.quantity) == (2, 2, "weights")
    assert np.array_equal(model.theta, opt.after[0])  # the weights after step 1


def test_non_finite_starting_weights_are_refused_before_training():
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 2), nn.Dense(2, 1), seed=0)
    model.layers[1].W.data[0, 0] = np.nan
    with pytest.raises(ValueError, match="W of layer 1 holds NaN or infinity"):
        quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1)


@pytest.mark.parametrize("mode", [True, False])
def test_fit_leaves_the_training_mode_as_it_found_it(mode):
    X, y = regression_data(8)
    model = nn.Sequential(nn.Dense(3, 2), nn.Dropout(0.5), nn.Dense(2, 1), seed=0)
    model.train(mode)
    quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1)
    assert model.training is mode and model.layers[1].training is mode


def test_regression_targets_beyond_the_model_dtype_are_refused():
    X, y = regression_data(8)
    y[3] = 1e300  # finite in float64, inf once cast for a float32 model
    model = nn.Sequential(nn.Dense(3, 1), seed=0)
    with pytest.raises(ValueError, match=r"y has values too large for the model's float32"):
        quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1)


def test_fit_warns_about_a_standardize_layer_that_was_never_adapted():
    X, y = regression_data(16)
    model = nn.Sequential(nn.Standardize(3), nn.Dense(3, 1), seed=0)
    with pytest.warns(UserWarning, match=r"model.layers\[0\].*never adapted.*adapt\(X_train\)"):
        quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1)
    model.layers[0].adapt(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_fit(model, X, y, loss="mse", optimizer="sgd", epochs=1)


@pytest.mark.parametrize(
    ("last", "loss", "squash"),
    [
        (lambda: [nn.Dense(16, 2, activation="softmax")], "cross_entropy", "softmax"),
        (lambda: [nn.Dense(16, 2), nn.Softmax()], "cross_entropy", "softmax"),
        (lambda: [nn.Dense(16, 1, activation="sigmoid")], "bce", "sigmoid"),
    ],
)
def test_fit_warns_when_the_last_layer_squashes_what_the_loss_expects_as_logits(last, loss, squash):
    X, y = xor_data(64)
    y = y[:, None].astype(np.float32) if loss == "bce" else y
    model = nn.Sequential(nn.Dense(2, 16, activation="tanh"), *last(), seed=0)
    with pytest.warns(UserWarning, match=rf"last layer applies {squash}, but .* expects logits"):
        quiet_fit(
            model,
            X,
            y,
            loss=loss,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            batch_size=32,
        )


def test_fit_does_not_warn_for_logits_or_for_probabilities_with_a_probability_loss():
    X, y = xor_data(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = mlp()
        quiet_fit(
            model,
            X,
            y,
            loss="cross_entropy",
            epochs=1,
            batch_size=32,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
        )
        model = nn.Sequential(
            nn.Dense(2, 16, activation="tanh"), nn.Dense(16, 1, activation="sigmoid"), seed=0
        )
        quiet_fit(
            model,
            X,
            y[:, None].astype(np.float32),
            epochs=1,
            batch_size=32,
            loss=losses.BinaryCrossEntropy(from_logits=False),
            optimizer=optim.SGD(model.parameters(), lr=0.1),
        )


class PlainSquaredError(losses.Loss):
    """A loss written to DESIGN's contract only: forward and backward, no _forward."""

    def __init__(self):
        self.pred = self.target = None

    def forward(self, pred, target):
        self.pred, self.target = pred, target
        return float(np.mean((pred - target) ** 2))

    def backward(self):
        return 2 * (self.pred - self.target) / self.pred.size


def test_a_loss_that_overrides_forward_trains_and_counts_batches_by_size():
    X, y = regression_data(50)
    y = y[:, None]
    model = nn.Sequential(nn.Dense(3, 1), seed=0, dtype=np.float64)
    expected = np.mean((model.predict(X) - y) ** 2)
    history = quiet_fit(
        model,
        X,
        y,
        loss=PlainSquaredError(),
        epochs=1,
        batch_size=8,
        optimizer=optim.SGD(model.parameters(), lr=0.0),
        validation_data=(X, y),
    )
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-12)
    history = quiet_fit(
        model,
        X,
        y,
        loss=PlainSquaredError(),
        epochs=3,
        batch_size=8,
        optimizer=optim.SGD(model.parameters(), lr=0.05),
    )
    assert history.history["loss"][-1] < expected


def test_a_set_whose_targets_all_weigh_zero_has_a_nan_loss_and_training_skips_it():
    """PyTorch's mean over no weight is NaN; it must not be a ZeroDivisionError."""
    X, _ = xor_data(64)
    y = np.zeros(64, np.int64)  # class 0 only, of weight 0
    model = mlp(dtype=np.float64)
    weighted = lambda: losses.CrossEntropy(weight=[0.0, 1.0])  # noqa: E731
    assert math.isnan(model.evaluate(X, y, loss=weighted(), batch_size=8)["loss"])
    before = model.theta.copy()
    history = quiet_fit(
        model,
        X,
        y,
        loss=weighted(),
        epochs=1,
        batch_size=8,
        metrics=["accuracy"],
        optimizer=optim.SGD(model.parameters(), lr=0.1),
    )
    assert math.isnan(history.history["loss"][0]) and np.array_equal(model.theta, before)
    # metrics are unweighted: they count the skipped batches too, as evaluate does
    assert history.history["accuracy"][0] == pytest.approx(
        model.evaluate(X, y, metrics=["accuracy"])["accuracy"]
    )


def test_an_lbfgs_divergence_names_no_batch_and_no_clipping():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    X[:, 1] *= 1e200
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Dense(4, 2), seed=0, dtype=np.float64)
    with pytest.raises(TrainingDivergedError) as info:
        quiet_fit(
            model,
            X,
            y,
            loss="cross_entropy",
            epochs=1,
            batch_size=16,
            optimizer=optim.LBFGS(model.parameters(), max_iter=3),
        )
    message = str(info.value)
    assert message.startswith("Training diverged at epoch 1 (step 1): a layer's buffer")
    assert "batch" not in message and "clip" not in message and info.value.batch is None


def test_a_skipped_zero_weight_batch_still_has_its_running_statistics_checked():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    y[-16:] = 0
    X[-16:, 1] *= 1e200  # the last batch: class 0 only (weight 0), its variance overflows
    norm = nn.BatchNorm1d(4)
    model = nn.Sequential(norm, nn.Dense(4, 2), seed=0, dtype=np.float64)
    recorder = StateAfterEachStep(norm)
    with pytest.raises(TrainingDivergedError, match=r"batch 4 .*running_var of layer 0"):
        quiet_fit(
            model,
            X,
            y,
            loss=losses.CrossEntropy(weight=[0.0, 1.0]),
            epochs=1,
            batch_size=16,
            shuffle=False,
            callbacks=[recorder],
            optimizer=optim.SGD(model.parameters(), lr=0.01),
        )
    theta, mean, var = recorder.snapshots[-1]
    assert np.array_equal(norm.running_var, var) and np.isfinite(norm.running_var).all()
    assert np.array_equal(model.theta, theta)


def test_lbfgs_on_a_set_whose_targets_all_weigh_zero_takes_no_step_and_reports_nan():
    X, _ = xor_data(64)
    y = np.zeros(64, np.int64)
    model = mlp(dtype=np.float64)
    before = model.theta.copy()
    history = quiet_fit(
        model,
        X,
        y,
        loss=losses.CrossEntropy(weight=[0.0, 1.0]),
        epochs=1,
        batch_size=16,
        optimizer=optim.LBFGS(model.parameters()),
    )
    assert math.isnan(history.history["loss"][0])
    assert np.array_equal(model.theta, before)


def test_the_containers_hints_are_reset_when_a_layer_raises_and_callbacks_never_see_them():
    class Failing(nn.Layer):
        def forward(self, x):
            return x

        def backward(self, grad_out):
            raise RuntimeError("backward failed")

    failing = Failing()
    model = nn.Sequential(nn.Dense(2, 2), failing, seed=0)
    model.zero_grad()
    model.needs_input_grad = False
    with pytest.raises(RuntimeError, match="backward failed"):
        model.backward(model.forward(np.ones((3, 2), np.float32)))
    assert failing.needs_input_grad and not failing.grad_is_zero and not model.grad_is_zero
    model.needs_input_grad = True

    seen = []

    class Spy(nn.Callback):
        def on_batch_end(self, batch, logs):
            copy_ = copy.deepcopy(self.model)
            seen.append((self.model.needs_input_grad, copy_.needs_input_grad))

    model = nn.Sequential(nn.Dense(2, 2), seed=0)
    X, y = np.ones((8, 2), np.float32), np.zeros(8, np.int64)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, batch_size=4,
              progress=False, callbacks=[Spy()])  # fmt: skip
    assert seen == [(True, True), (True, True)] and model.needs_input_grad
