"""SGD's bound on its step, and fit's use of it in place of a backup of θ.

The truth for the bound is the step itself: ‖θ_t − θ_{t−1}‖ measured after each step must never
exceed what ``step_bound`` predicted before it. The truth for fit is its guarantee: a step that
overflows θ is undone exactly, whichever path the steps before it took.
"""

from __future__ import annotations

import numpy as np
import pytest

import losses
import nn
import optim
from nn.training import TrainingDivergedError


def _params(n=50, seed=0):
    rng = np.random.default_rng(seed)
    p = nn.Parameter(rng.normal(size=n), "p")
    return p, rng


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1},
        {"weight_decay": 2.0},
    ],
)
def test_each_step_stays_within_the_predicted_bound(kwargs):
    p, rng = _params()
    opt = optim.SGD([p], lr=0.3, **kwargs)
    for t in range(30):
        # gradients of changing scale, some steps nearly opposite to the momentum
        p.grad[...] = rng.normal(size=p.data.shape) * 10.0 ** rng.integers(-2, 3)
        if t % 7 == 6:
            p.grad *= -50
        before = p.data.copy()
        bound = opt.step_bound(float(np.linalg.norm(p.grad)), float(np.linalg.norm(before)))
        opt.step()
        assert np.linalg.norm(p.data - before) <= bound * (1 + 1e-12)


def test_the_bound_is_tight_for_plain_sgd():
    p, _ = _params()
    p.grad[...] = 3.0
    opt = optim.SGD([p], lr=0.5)
    bound = opt.step_bound(float(np.linalg.norm(p.grad)), 1.0)
    before = p.data.copy()
    opt.step()
    assert np.linalg.norm(p.data - before) == pytest.approx(bound, rel=1e-12)


def test_a_loaded_momentum_buffer_is_measured_not_assumed():
    p, _ = _params()
    opt = optim.SGD([p], lr=1.0, momentum=0.9)
    p.grad[...] = 1.0
    opt.step_bound(float(np.linalg.norm(p.grad)), 1.0)
    opt.step()
    state = opt.state_dict()
    state["momentum_buffer"] = np.full_like(state["momentum_buffer"], 1e6)
    opt.load_state_dict(state)  # the kept bound (about ‖g‖) no longer holds
    p.grad[...] = 0.0
    before = p.data.copy()
    bound = opt.step_bound(0.0, float(np.linalg.norm(before)))
    opt.step()
    assert np.linalg.norm(p.data - before) <= bound * (1 + 1e-12)
    assert bound == pytest.approx(0.9 * 1e6 * np.sqrt(p.data.size))


def test_a_step_taken_without_asking_for_the_bound_is_measured_next_time():
    p, _ = _params()
    opt = optim.SGD([p], lr=1.0, momentum=0.9)
    p.grad[...] = 1.0
    opt.step_bound(float(np.linalg.norm(p.grad)), 1.0)
    opt.step()
    p.grad[...] = 1e4
    opt.step()  # by hand: the kept bound is for the buffer before this step
    p.grad[...] = 0.0
    before = p.data.copy()
    bound = opt.step_bound(0.0, 1.0)
    opt.step()
    assert np.linalg.norm(p.data - before) <= bound * (1 + 1e-12)


def test_optimizers_without_a_bound_say_so():
    p, _ = _params()
    assert optim.Adam([p]).step_bound(1.0, 1.0) is None


class HugeGradientAt(losses.MSE):
    """MSE whose gradient is scaled by 1e30 (finite in float32) at one call of backward."""

    def __init__(self, bad_call):
        super().__init__()
        self.bad_call, self.calls = bad_call, 0

    def backward(self):
        self.calls += 1
        grad = super().backward()
        if self.calls == self.bad_call:
            grad *= np.float32(1e30)
        return grad


class CountingSGD(optim.SGD):
    """SGD that counts the bounds fit asks for (its step() is SGD's own)."""

    asked = 0

    def step_bound(self, grad_norm, theta_norm):
        self.asked += 1
        return super().step_bound(grad_norm, theta_norm)


def test_a_finite_step_that_overflows_theta_after_unchecked_steps_is_undone():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 3)).astype(np.float32)
    y = X.sum(axis=1, keepdims=True)
    model = nn.Sequential(nn.Dense(3, 4, activation="relu"), nn.Dense(4, 1), seed=0)
    # the reference: steps 1-4 by the layer API
    reference = model.copy()
    ref_opt = optim.SGD(reference.parameters(), lr=1e-3, momentum=0.9)
    ref_loss = losses.MSE()
    for start in range(0, 32, 8):
        reference.zero_grad()
        ref_loss.forward(reference.forward(X[start : start + 8]), y[start : start + 8])
        reference.backward(ref_loss.backward())
        ref_opt.step()
    opt = CountingSGD(model.parameters(), lr=1e-3, momentum=0.9)

    class RateOf5th(nn.Callback):  # step 5: a rate and a gradient that overflow float32 θ
        def on_batch_end(self, batch, logs):
            if batch == 3:
                opt.lr = 1e10

    with pytest.raises(TrainingDivergedError, match="weights non-finite") as info:
        model.fit(
            X,
            y,
            loss=HugeGradientAt(5),
            optimizer=opt,
            epochs=1,
            batch_size=8,
            shuffle=False,
            callbacks=[RateOf5th()],
            progress=False,
        )
    assert (info.value.batch, info.value.quantity) == (5, "weights")
    assert opt.asked == 5  # steps 1-4 ran without θ's backup
    assert np.array_equal(model.theta, reference.theta)
