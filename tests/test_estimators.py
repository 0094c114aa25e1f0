"""The scikit-learn estimators, checked by scikit-learn's own checks and against its MLP.

Truths: scikit-learn's estimator checks; scikit-learn's own MLPClassifier/MLPRegressor for the
stopping rules (the epoch at which they stop); the objective written out by hand in float64
(half squared error or log-loss, weights normalised by their sum, ``α/(2Σw)·Σ‖W‖²``) and its
finite differences; hand-computed balanced class weights.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nn
from nn.estimators import MLPClassifier, MLPRegressor
from nn.estimators._training import add_penalty_gradient


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(n=60, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    y_reg = X @ rng.normal(size=n_features) + 0.1 * rng.normal(size=n)
    y_cls = np.digitize(y_reg, np.quantile(y_reg, [1 / 3, 2 / 3]))
    return X, y_reg, y_cls


# -- the objective ----------------------------------------------------------------------------


def _hand_objective(est, X, targets, sw):
    """scikit-learn's objective at the model's θ, in float64 numpy."""
    a = X
    dense = [la for la in est.model_.layers if isinstance(la, nn.Dense)]
    for i, layer in enumerate(dense):
        a = a @ layer.W.data + layer.b.data
        if i < len(dense) - 1:
            a = np.maximum(a, 0)
    w = sw / sw.sum()
    if isinstance(est, MLPRegressor):
        per_sample = {
            "squared_error": 0.5 * (a - targets) ** 2,
            "absolute_error": np.abs(a - targets),
            "huber": np.where(
                np.abs(a - targets) <= 1, 0.5 * (a - targets) ** 2, np.abs(a - targets) - 0.5
            ),
        }[est.loss].mean(axis=1)
    else:  # softmax log-loss on one-hot rows
        log_p = a - a.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        per_sample = -(targets * log_p).sum(axis=1)
    penalty = sum(float((la.W.data**2).sum()) for la in dense)
    return float(w @ per_sample) + est.alpha * penalty / (2 * sw.sum())


@pytest.mark.parametrize(
    "est",
    [
        MLPRegressor(loss="squared_error"),
        MLPRegressor(loss="absolute_error"),
        MLPRegressor(loss="huber"),
        MLPClassifier(),
    ],
    ids=lambda e: getattr(e, "loss", "log_loss"),
)
def test_objective_and_gradient_match_sklearns_formula(est):
    X, y_reg, y_cls = _data(n=20)
    y = y_reg if isinstance(est, MLPRegressor) else y_cls
    sw = np.random.default_rng(1).uniform(0.5, 3.0, size=len(X))
    est.set_params(hidden_layer_sizes=(5,), alpha=0.3, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
    model = est.model_
    assert model.dtype == np.float64  # float64 input: float64 model, as scikit-learn
    targets = y.reshape(-1, 1) if isinstance(est, MLPRegressor) else np.eye(3)[y]
    loss = est._make_loss()
    value = loss.forward(model.forward(X), targets, sw)
    assert value == pytest.approx(_hand_objective(est, X, targets, sw), rel=1e-12)
    # ∇θ (with the penalty's gradient) against central differences of the hand objective
    model.zero_grad()
    model.backward(loss.backward())
    add_penalty_gradient(loss)
    grad = model.theta_grad.copy()
    theta = model.theta.copy()
    h = 1e-6
    for k in np.random.default_rng(2).choice(theta.size, size=15, replace=False):
        model.theta[k] = theta[k] + h
        up = _hand_objective(est, X, targets, sw)
        model.theta[k] = theta[k] - h
        down = _hand_objective(est, X, targets, sw)
        model.theta[k] = theta[k]
        assert grad[k] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


# -- stopping rules, against scikit-learn's MLP -------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(tol=1e9, n_iter_no_change=2),  # training loss never improves by tol
        dict(tol=1e9, n_iter_no_change=3, early_stopping=True),  # nor the validation score
        dict(tol=1e9, n_iter_no_change=1, solver="sgd", learning_rate="adaptive"),
    ],
)
@pytest.mark.parametrize("ours, theirs", [(MLPRegressor, SkMLPRegressor)])
def test_stops_at_the_epoch_sklearn_stops(params, ours, theirs):
    X, y, _ = _data()
    common = dict(hidden_layer_sizes=(4,), max_iter=200, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # it stops: no warning
        mine = ours(**common).fit(X, y)
        ref = theirs(**common).fit(X, y)
    assert mine.n_iter_ == ref.n_iter_
    assert len(mine.loss_curve_) == mine.n_iter_
    assert mine.t_ == ref.t_
    if params.get("early_stopping"):
        assert mine.best_loss_ is None
        assert len(mine.validation_scores_) == len(mine.validation_loss_curve_) == mine.n_iter_
        assert mine.best_validation_score_ == max(mine.validation_scores_)
    else:
        assert mine.best_loss_ == min(mine.loss_curve_)
        assert mine.validation_scores_ is None and mine.validation_loss_curve_ is None
    if params.get("learning_rate") == "adaptive":
        assert mine._optimizer.lr == pytest.approx(1e-3 / 5**5)  # 5 divisions reach ≤ 1e-6


def test_invscaling_sets_the_rate_from_the_samples_seen():
    X, y, _ = _data()
    est = MLPRegressor(solver="sgd", learning_rate="invscaling", power_t=0.25, max_iter=3)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        est.fit(X, y)
    assert est.t_ == 3 * len(X)
    assert est._optimizer.lr == pytest.approx(0.001 / (3 * len(X) + 1) ** 0.25)


def test_early_stopping_restores_the_best_weights():
    X, _, y = _data(n=300)
    est = MLPClassifier(
        hidden_layer_sizes=(8,),
        early_stopping=True,
        random_state=0,
        max_iter=60,
        tol=0,
        n_iter_no_change=60,
        learning_rate_init=0.05,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # the held-out set: the split draws after the one draw that seeded the model
    rs = np.random.RandomState(0)
    rs.randint(np.iinfo(np.int32).max)
    _, X_val, _, y_val = train_test_split(X, y, random_state=rs, test_size=0.1, stratify=y)
    assert est.score(X_val, y_val) == est.best_validation_score_ == max(est.validation_scores_)
    assert est.validation_scores_[-1] < est.best_validation_score_  # not simply the last θ


# -- the extras -------------------------------------------------------------------------------


def test_class_weight_balanced_is_n_over_k_times_count():
    X, _, y = _data(n=60)
    y = np.where(np.arange(60) < 40, 0, y.clip(1, 2))  # unbalanced: 40, then the rest
    counts = np.bincount(y)
    hand = (len(y) / (3 * counts))[y]
    a = MLPClassifier(class_weight="balanced", random_state=0, max_iter=5).fit(X, y)
    b = MLPClassifier(random_state=0, max_iter=5).fit(X, y, sample_weight=hand)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = MLPClassifier(random_state=0, max_iter=5).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_extras_build_the_layers_asked_for():
    X, _, y = _data()
    est = MLPClassifier(
        hidden_layer_sizes=(6, 5),
        activation="leaky_relu",
        dropout=0.2,
        batch_norm=True,
        dtype="float32",
        max_iter=3,
    ).fit(X, y)
    kinds = [type(layer).__name__ for layer in est.model_.layers]
    assert kinds == ["Dense", "BatchNorm1d", "LeakyReLU", "Dropout"] * 2 + ["Dense"]
    assert est.model_.dtype == np.float32
    assert est.predict_proba(X).dtype == np.float32
    assert [c.shape for c in est.coefs_] == [(4, 6), (6, 5), (5, 3)]
    assert est.n_layers_ == 4 and est.out_activation_ == "softmax" and est.n_outputs_ == 3
    for name in ("elu", "gelu", "softplus", "logistic", "tanh", "identity"):
        est.set_params(activation=name, batch_norm=False, dropout=0.0).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_binary_and_multilabel_use_a_logistic_output():
    X, _, y = _data()
    binary = MLPClassifier(max_iter=5).fit(X, y > 0)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    proba = binary.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(binary.predict(X), binary.classes_[proba.argmax(axis=1)])
    Y = np.stack([y == 0, y == 2], axis=1).astype(int)
    multilabel = MLPClassifier(max_iter=5).fit(X, Y)
    assert multilabel.predict(X).shape == Y.shape and multilabel.n_outputs_ == 2


def test_verbose_shows_a_progress_bar(capfd):
    X, y, _ = _data()
    with pytest.warns(ConvergenceWarning):
        MLPRegressor(max_iter=2, verbose=True).fit(X, y)
    err = capfd.readouterr().err
    assert "Epoch 2/2" in err and "batch/s" in err


# -- scikit-learn's API -----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pandas_feature_names_as_sklearn():
    X, y, _ = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = MLPRegressor(max_iter=3).fit(frame, y)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    assert est.predict(frame).shape == (len(X),)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(frame[["b", "a", "c", "d"]])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(X)
    est2 = MLPRegressor(max_iter=3).fit(X, np.stack([y, -y], axis=1))
    assert est2.predict(X).shape == (len(X), 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_continues_and_survives_pickling():
    X, _, y = _data()
    est = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    est.partial_fit(X[:30], y[:30], classes=[0, 1, 2])
    clone = pickle.loads(pickle.dumps(est))
    est.partial_fit(X, y)
    clone.partial_fit(X, y)  # the optimizer's moments and the random state came along
    np.testing.assert_array_equal(clone.predict_proba(X), est.predict_proba(X))
    assert est.n_iter_ == 1 and est.t_ == 30 + 60
    with pytest.raises(AttributeError, match="partial_fit"):
        getattr(MLPClassifier(solver="lbfgs"), "partial_fit")  # noqa: B009
    np.testing.assert_array_equal(est.predict_log_proba(X), np.log(est.predict_proba(X)))
    # a later fit learns the classes of its own y, not those given to partial_fit
    assert list(est.fit(X[y < 2], y[y < 2]).classes_) == [0, 1]


def test_lbfgs_warns_when_it_runs_out_of_iterations():
    X, y, _ = _data()
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        est = MLPRegressor(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert est.n_iter_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MLPRegressor(solver="lbfgs", hidden_layer_sizes=(3,), random_state=0, tol=1e-2)
        est.fit(X, y)
    assert est.score(X, y) > 0.9


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_in_a_pipeline(n_jobs):
    X, _, y = _data(n=90)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), MLPClassifier(max_iter=300, random_state=0)),
        {"mlpclassifier__alpha": [1e-4, 1.0], "mlpclassifier__hidden_layer_sizes": [(4,), (16,)]},
        cv=3,
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    # the same fits whichever the number of processes
    reference = GridSearchCV(search.estimator, search.param_grid, cv=3, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(X, y)
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"]
    )
    assert search.best_score_ > 0.7


def test_import_nn_does_not_import_sklearn_and_the_error_names_the_extra():
    code = (
        "import sys, nn; assert 'sklearn' not in sys.modules\n"
        "sys.modules['sklearn'] = None\n"
        "try:\n    import nn.estimators\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'chainrule[sklearn]'" in out.stdout


@pytest.mark.parametrize("n_labels", [1, 3])
def test_the_logistic_loss_is_scikit_learns_binary_log_loss(n_labels):
    """Averaged over the samples and summed over the outputs, for multilabel targets too."""
    from sklearn.neural_network._base import binary_log_loss

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = (
        rng.integers(0, 2, size=(40, n_labels)).ravel()
        if n_labels == 1
        else rng.integers(0, 2, size=(40, n_labels))
    )
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, alpha=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    targets = y.reshape(len(y), -1).astype(np.float64)
    proba = est.predict_proba(X)
    proba = proba[:, 1:] if n_labels == 1 else proba
    loss = est._make_loss()
    logits = est.model_.forward(X.astype(est.model_.dtype))
    value = loss.forward(logits, targets, np.ones(len(X)))
    assert value == pytest.approx(binary_log_loss(targets, proba), rel=1e-9)
