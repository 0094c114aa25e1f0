"""Learning-rate schedules against their documented formulas, a hand-worked plateau sequence
and PyTorch's schedulers (when installed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import optim
from nn.parameter import Parameter

EPOCHS = 25


def make_optimizer(lr: float = 0.1, cls=optim.SGD, **kwargs) -> optim.Optimizer:
    theta, grad = np.zeros(6), np.zeros(6)
    w = Parameter(theta[:4].reshape(2, 2), "W")
    w.grad = grad[:4].reshape(2, 2)
    b = Parameter(theta[4:], "b")
    b.grad = grad[4:]
    return cls([w, b], lr=lr, **kwargs)


def lrs_over_epochs(scheduler, epochs: int = EPOCHS) -> list[float]:
    """The rate in force at epochs 0..epochs-1 (the schedule steps at the end of each)."""
    out = [scheduler.optimizer.lr]
    for _ in range(epochs - 1):
        scheduler.step()
        assert scheduler.get_last_lr() == scheduler.optimizer.lr
        out.append(scheduler.optimizer.lr)
    return out


# -- closed-form schedules against their formulas --------------------------------------------

SCHEDULES = [
    (
        "StepLR",
        {"step_size": 4, "gamma": 0.5},
        lambda e, lr0: lr0 * 0.5 ** (e // 4),
    ),
    (
        "StepLR",
        {"step_size": 1},
        lambda e, lr0: lr0 * 0.1**e,
    ),
    (
        "ExponentialLR",
        {"gamma": 0.9},
        lambda e, lr0: lr0 * 0.9**e,
    ),
    (
        "CosineAnnealingLR",
        {"T_max": 10},
        lambda e, lr0: lr0 * (1 + math.cos(math.pi * e / 10)) / 2,
    ),
    (
        "CosineAnnealingLR",
        {"T_max": 7, "eta_min": 0.01},
        lambda e, lr0: 0.01 + (lr0 - 0.01) * (1 + math.cos(math.pi * e / 7)) / 2,
    ),
    (
        "LinearWarmup",
        {"warmup_epochs": 5},
        lambda e, lr0: lr0 * (1 / 3 + (2 / 3) * min(e, 5) / 5),
    ),
    (
        "LinearWarmup",
        {"warmup_epochs": 8, "start_factor": 0.01},
        lambda e, lr0: lr0 * (0.01 + 0.99 * min(e, 8) / 8),
    ),
]
SCHEDULE_IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw, _ in SCHEDULES]


@pytest.mark.parametrize(("name", "kwargs", "formula"), SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_follows_its_formula(name, kwargs, formula):
    opt = make_optimizer(lr=0.2)
    scheduler = getattr(optim, name)(opt, **kwargs)
    expected = [formula(e, 0.2) for e in range(EPOCHS)]
    np.testing.assert_allclose(lrs_over_epochs(scheduler), expected, rtol=1e-14, atol=1e-17)
    assert scheduler.last_epoch == EPOCHS - 1 and scheduler.base_lr == 0.2
    assert all(scheduler.lr_at(e) == pytest.approx(expected[e], rel=1e-14) for e in range(5))


TORCH_SCHEDULES = {
    "StepLR": lambda torch, o, kw: torch.optim.lr_scheduler.StepLR(o, **kw),
    "ExponentialLR": lambda torch, o, kw: torch.optim.lr_scheduler.ExponentialLR(o, **kw),
    "CosineAnnealingLR": lambda torch, o, kw: torch.optim.lr_scheduler.CosineAnnealingLR(o, **kw),
    "LinearWarmup": lambda torch, o, kw: torch.optim.lr_scheduler.LinearLR(
        o,
        start_factor=kw.get("start_factor", 1 / 3),
        end_factor=1.0,
        total_iters=kw["warmup_epochs"],
    ),
}


@pytest.mark.parametrize(("name", "kwargs", "formula"), SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_matches_pytorch(name, kwargs, formula):
    torch = pytest.importorskip("torch")
    param = torch.zeros(2, requires_grad=True)
    torch_opt = torch.optim.SGD([param], lr=0.2)
    torch_scheduler = TORCH_SCHEDULES[name](torch, torch_opt, kwargs)
    expected = [torch_opt.param_groups[0]["lr"]]
    for _ in range(EPOCHS - 1):
        torch_opt.step()  # PyTorch expects the optimizer to step first
        torch_scheduler.step()
        expected.append(torch_opt.param_groups[0]["lr"])
        assert torch_scheduler.get_last_lr()[0] == expected[-1]

    scheduler = getattr(optim, name)(make_optimizer(lr=0.2), **kwargs)
    np.testing.assert_allclose(lrs_over_epochs(scheduler), expected, rtol=1e-12, atol=1e-16)


def test_schedule_sets_epoch_zero_rate_on_construction():
    opt = make_optimizer(lr=0.3)
    optim.LinearWarmup(opt, warmup_epochs=3, start_factor=0.1)
    assert opt.lr == pytest.approx(0.03)


def test_learning_rate_reaches_the_update():
    """The rate the schedule sets is the one the next step uses."""
    opt = make_optimizer(lr=1.0)
    scheduler = optim.StepLR(opt, step_size=1, gamma=0.5)
    ((data, grad),) = opt.vectors
    grad[...] = 1.0
    opt.step()
    scheduler.step()
    opt.step()
    np.testing.assert_allclose(data, -1.5)


@pytest.mark.parametrize(("name", "kwargs", "formula"), SCHEDULES, ids=SCHEDULE_IDS)
def test_state_dict_round_trip_resumes_the_schedule(name, kwargs, formula):
    cls = getattr(optim, name)
    straight = lrs_over_epochs(cls(make_optimizer(lr=0.2), **kwargs), 12)

    opt = make_optimizer(lr=0.2)
    first = cls(opt, **kwargs)
    for _ in range(5):
        first.step()
    saved_sched = json.loads(json.dumps(first.state_dict()))  # JSON scalars only
    saved_opt = opt.state_dict()

    resumed_opt = make_optimizer(lr=0.2)
    resumed = cls(resumed_opt, **kwargs)  # sets epoch 0's rate, replaced by the loads
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    assert resumed.last_epoch == 5 and resumed_opt.lr == straight[5]
    rest = []
    for _ in range(6):
        resumed.step()
        rest.append(resumed_opt.lr)
    np.testing.assert_allclose(rest, straight[6:], rtol=1e-15)


def test_load_state_dict_rejects_mismatches():
    scheduler = optim.StepLR(make_optimizer(), step_size=3)
    good = scheduler.state_dict()
    bad_cases = [
        {**good, "scheduler": "ExponentialLR"},
        {**good, "step_size": 4},
        {k: v for k, v in good.items() if k != "last_epoch"},
        {**good, "surprise": 1},
        {**good, "last_epoch": "five"},
    ]
    for bad in bad_cases:
        with pytest.raises(ValueError):
            scheduler.load_state_dict(bad)
    assert scheduler.state_dict() == good
    with pytest.raises(TypeError):
        scheduler.load_state_dict([("last_epoch", 3)])


def test_float32_parameters_stay_float32_under_a_schedule():
    theta, grad = np.zeros(4, np.float32), np.ones(4, np.float32)
    p = Parameter(theta, "w")
    p.grad = grad
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    scheduler = optim.CosineAnnealingLR(opt, T_max=5)
    for _ in range(4):
        opt.step()
        scheduler.step()
        assert type(opt.lr) is float
    assert theta.dtype == np.float32


# -- ReduceLROnPlateau ----------------------------------------------------------------------


def test_reduce_on_plateau_hand_worked_sequence():
    opt = make_optimizer(lr=1.0)
    scheduler = optim.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    assert scheduler.needs_metric and opt.lr == 1.0  # no change on construction
    # epoch: metric -> (best, bad epochs, cooldown) -> lr
    metrics = [
        1.0,  # 1: best 1.0                                   lr 1.0
        0.9,  # 2: best 0.9                                   lr 1.0
        0.9,  # 3: not better by 1e-4 relative: bad 1         lr 1.0
        0.95,  # 4: bad 2                                     lr 1.0
        0.91,  # 5: bad 3 > patience: reduce, cooldown 1      lr 0.5
        0.92,  # 6: cooling down: bad reset to 0, cooldown 0  lr 0.5
        0.93,  # 7: bad 1                                     lr 0.5
        0.8,  # 8: best 0.8, bad 0                            lr 0.5
        0.85,  # 9: bad 1
        0.85,  # 10: bad 2
        0.85,  # 11: bad 3: reduce to 0.25                    lr 0.25
        0.85,  # 12: cooldown
        0.85,  # 13: bad 1
        0.85,  # 14: bad 2
        0.85,  # 15: bad 3: max(0.125, min_lr 0.2) = 0.2      lr 0.2
        0.85,  # 16..: stays at min_lr
        0.85,
        0.85,
        0.85,
        0.85,
    ]
    expected = [1.0] * 4 + [0.5] * 6 + [0.25] * 4 + [0.2] * 6
    got = []
    for m in metrics:
        scheduler.step(m)
        got.append(scheduler.get_last_lr())
    assert got == expected
    assert scheduler.best == 0.8 and scheduler.last_epoch == len(metrics)


def test_reduce_on_plateau_max_mode_and_absolute_threshold():
    opt = make_optimizer(lr=1.0)
    scheduler = optim.ReduceLROnPlateau(
        opt, mode="max", factor=0.1, patience=0, threshold=0.05, threshold_mode="abs"
    )
    scheduler.step(0.5)  # best 0.5
    scheduler.step(0.54)  # not above 0.5 + 0.05: reduce at once (patience 0)
    assert opt.lr == pytest.approx(0.1)
    scheduler.step(0.56)  # above 0.55: improvement
    assert opt.lr == pytest.approx(0.1) and scheduler.best == 0.56


PLATEAU_CASES = [
    {},
    {"mode": "max", "factor": 0.5, "patience": 1},
    {"patience": 2, "threshold": 0.1, "threshold_mode": "abs", "cooldown": 2},
    {"factor": 0.3, "patience": 0, "cooldown": 1, "min_lr": 0.005},
    {"mode": "max", "threshold": 0.2, "patience": 3, "min_lr": 0.01},
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=[str(k) for k in PLATEAU_CASES])
def test_reduce_on_plateau_matches_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    metrics = np.cumsum(rng.normal(0.0, 0.1, size=80)) + 1.0
    metrics[40:50] = metrics[39]  # a flat stretch
    param = torch.zeros(2, requires_grad=True)
    torch_opt = torch.optim.SGD([param], lr=0.1)
    torch_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **kwargs)
    opt = make_optimizer(lr=0.1)
    scheduler = optim.ReduceLROnPlateau(opt, **kwargs)
    reductions = 0
    for m in metrics:
        torch_opt.step()
        torch_scheduler.step(float(m))
        before = opt.lr
        scheduler.step(float(m))
        reductions += opt.lr < before
        assert opt.lr == torch_opt.param_groups[0]["lr"]
        assert scheduler.num_bad_epochs == torch_scheduler.num_bad_epochs
        assert scheduler.best == torch_scheduler.best
    assert reductions >= 1  # the sequence exercises a reduction


def test_reduce_on_plateau_state_dict_round_trip():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.94, 0.93, 0.96, 0.97, 0.5, 0.6, 0.6, 0.6]
    opt = make_optimizer(lr=1.0)
    straight = optim.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    expected = []
    for m in metrics:
        straight.step(m)
        expected.append(opt.lr)

    opt = make_optimizer(lr=1.0)
    first = optim.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for m in metrics[:5]:
        first.step(m)
    state = json.loads(json.dumps(first.state_dict()))
    assert state["best"] == 0.9 and state["num_bad_epochs"] == first.num_bad_epochs

    opt2 = make_optimizer(lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    resumed = optim.ReduceLROnPlateau(opt2, patience=1, cooldown=1)
    resumed.load_state_dict(state)
    got = []
    for m in metrics[5:]:
        resumed.step(m)
        got.append(opt2.lr)
    assert got == expected[5:]


def test_reduce_on_plateau_starting_best_survives_json():
    state = optim.ReduceLROnPlateau(make_optimizer()).state_dict()
    assert state["best"] == math.inf
    assert json.loads(json.dumps(state))["best"] == math.inf


# -- argument checks ----------------------------------------------------------------------

INVALID = [
    (optim.StepLR, {"step_size": 0}, "step_size"),
    (optim.StepLR, {"step_size": 2, "gamma": -0.1}, "gamma"),
    (optim.StepLR, {"step_size": 2, "gamma": math.nan}, "gamma"),
    (optim.ExponentialLR, {"gamma": 0.0}, "gamma"),
    (optim.ExponentialLR, {"gamma": math.inf}, "gamma"),
    (optim.CosineAnnealingLR, {"T_max": 0}, "T_max"),
    (optim.CosineAnnealingLR, {"T_max": 5, "eta_min": -1e-3}, "eta_min"),
    (optim.LinearWarmup, {"warmup_epochs": 0}, "warmup_epochs"),
    (optim.LinearWarmup, {"warmup_epochs": 3, "start_factor": 0.0}, "start_factor"),
    (optim.LinearWarmup, {"warmup_epochs": 3, "start_factor": 1.5}, "start_factor"),
    (optim.ReduceLROnPlateau, {"mode": "median"}, "mode"),
    (optim.ReduceLROnPlateau, {"factor": 1.0}, "factor"),
    (optim.ReduceLROnPlateau, {"patience": -1}, "patience"),
    (optim.ReduceLROnPlateau, {"threshold": -1e-4}, "threshold"),
    (optim.ReduceLROnPlateau, {"threshold_mode": "relative"}, "threshold_mode"),
    (optim.ReduceLROnPlateau, {"cooldown": -2}, "cooldown"),
    (optim.ReduceLROnPlateau, {"min_lr": math.nan}, "min_lr"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"), INVALID, ids=[f"{c.__name__}-{n}" for c, _, n in INVALID]
)
def test_invalid_arguments_raise_value_error_naming_them(cls, kwargs, name):
    with pytest.raises(ValueError) as info:
        cls(make_optimizer(), **kwargs)
    assert f"Received an invalid value for `{name}`" in str(info.value)
    assert f"Received: {name}=" in str(info.value)


def test_non_integer_epoch_counts_raise_type_error():
    with pytest.raises(TypeError, match="step_size"):
        optim.StepLR(make_optimizer(), step_size=2.5)
    with pytest.raises(TypeError, match="T_max"):
        optim.CosineAnnealingLR(make_optimizer(), T_max=True)


def test_schedules_need_an_optimizer_with_a_learning_rate():
    with pytest.raises(TypeError, match="optim.Optimizer"):
        optim.StepLR("sgd", step_size=2)
    lbfgs = optim.LBFGS([Parameter(np.zeros(3), "w")])
    with pytest.raises(TypeError, match="line search"):
        optim.ExponentialLR(lbfgs, gamma=0.9)


def test_every_schedule_is_an_lr_scheduler_with_a_readable_repr():
    opt = make_optimizer()
    schedules = [
        optim.StepLR(opt, step_size=2),
        optim.ExponentialLR(opt, gamma=0.9),
        optim.CosineAnnealingLR(opt, T_max=4),
        optim.LinearWarmup(opt, warmup_epochs=2),
        optim.ReduceLROnPlateau(opt),
    ]
    assert all(isinstance(s, optim.LRScheduler) for s in schedules)
    assert [s.needs_metric for s in schedules] == [False] * 4 + [True]
    assert repr(schedules[0]) == "StepLR(step_size=2, gamma=0.1)"
    assert repr(schedules[2]) == "CosineAnnealingLR(T_max=4, eta_min=0.0)"
