"""What MLPClassifier and MLPRegressor share: parameters, the model, the training loop."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

import nn
from nn.estimators._training import (
    PenalizedAdam,
    PenalizedSGD,
    SklearnLoss,
    SklearnStopping,
    fit_lbfgs,
    restore,
    snapshot,
)

# scikit-learn's hidden activation names -> chainrule's, plus chainrule's extras.
ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "gelu": "gelu",
    "softplus": "softplus",
}
_CHOICES = {
    "solver": ("adam", "sgd", "lbfgs"),
    "learning_rate": ("constant", "invscaling", "adaptive"),
    "activation": tuple(ACTIVATIONS),
}
_DTYPES = {"float32": np.float32, "float64": np.float64}  # dtype= names


class BaseMLP(BaseEstimator):
    """The shared machinery; see MLPClassifier and MLPRegressor for the parameters."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        batch_norm=False,
        dtype=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.dtype = dtype

    # -- parameters ---------------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        """Check the constructor arguments; return the hidden layer sizes as a list."""
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(
                "Received an invalid value for `hidden_layer_sizes`, expected positive "
                f"integers. Received: hidden_layer_sizes={self.hidden_layer_sizes!r}"
            )
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"Received an invalid value for `{name}`, expected one of {choices}. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        _check_number("alpha", self.alpha, 0, None)
        _check_number("learning_rate_init", self.learning_rate_init, 0, None, low_open=True)
        _check_number("tol", self.tol, 0, None)
        _check_number("momentum", self.momentum, 0, 1)
        _check_number("validation_fraction", self.validation_fraction, 0, 1, low_open=True)
        _check_number("beta_1", self.beta_1, 0, 1, high_open=True)
        _check_number("beta_2", self.beta_2, 0, 1, high_open=True)
        _check_number("epsilon", self.epsilon, 0, None, low_open=True)
        _check_number("dropout", self.dropout, 0, 1, high_open=True)
        for name in ("max_iter", "n_iter_no_change", "max_fun"):
            _check_number(name, getattr(self, name), 1, None, integer=True)
        if self.batch_size != "auto":
            _check_number("batch_size", self.batch_size, 1, None, integer=True)
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise ValueError(
                "Received an invalid value for `dtype`, expected None, 'float32' or 'float64'. "
                f"Received: dtype={self.dtype!r}"
            )
        return sizes

    # -- the model ------------------------------------------------------------------------------
    def _build(self, sizes: list[int], n_features: int, n_outputs: int) -> nn.Sequential:
        """Dense layers (with batch norm and dropout when asked) and a linear output layer."""
        activation = ACTIVATIONS[self.activation]
        layers: list[nn.Layer] = []
        n_in = n_features
        for units in sizes:
            if self.batch_norm:
                layers += [nn.Dense(n_in, units), nn.BatchNorm1d(units)]
                layers.append(nn.get_activation(activation))
            else:
                layers.append(nn.Dense(n_in, units, activation=activation))
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
            n_in = units
        layers.append(nn.Dense(n_in, n_outputs))
        return nn.Sequential(*layers, seed=self._new_seed(), dtype=self._dtype)

    def _new_seed(self) -> int:
        return int(self._random_state.randint(np.iinfo(np.int32).max))

    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weight matrices, ``coefs_[i]`` of shape (units of layer i, of layer i + 1).

        Views into ``model_.theta``: assigning in place (``coefs_[0][...] = W``) changes the
        model.
        """
        check_is_fitted(self, "model_")
        return [layer.W.data for layer in self.model_.layers if isinstance(layer, nn.Dense)]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The bias vectors, ``intercepts_[i]`` of shape (units of layer i + 1,); views."""
        check_is_fitted(self, "model_")
        return [layer.b.data for layer in self.model_.layers if isinstance(layer, nn.Dense)]

    # -- fitting ----------------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight, incremental: bool, classes=None):
        sizes = self._check_params()
        first = not hasattr(self, "model_") or not (self.warm_start or incremental)
        X, y = self._validate_input(X, y, reset=first)
        if first:  # the input's float dtype unless one is given, as scikit-learn computes
            self._dtype = X.dtype if self.dtype is None else np.dtype(_DTYPES[self.dtype])
        targets = np.asarray(self._encode_targets(y, first, classes), dtype=self._dtype)
        sw = self._sample_weights(sample_weight, X, y)
        if first:
            self._random_state = check_random_state(self.random_state)
            self.model_ = self._build(sizes, X.shape[1], targets.shape[1])
            self._initialize(len(sizes))
        loss = self._make_loss()
        if self.solver == "lbfgs":
            fit_lbfgs(self, self.model_, X, targets, sw, loss)
        else:
            self._fit_stochastic(X, y, targets, sw, loss, incremental)
        return self

    def _initialize(self, n_hidden: int) -> None:
        """Attributes scikit-learn sets on the first fit."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = n_hidden + 2
        self._no_improvement_count = 0
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self._best_state = snapshot(self.model_)

    def _make_loss(self) -> SklearnLoss:
        coefs = [layer.W for layer in self.model_.layers if isinstance(layer, nn.Dense)]
        inner, factor = self._inner_loss()
        return SklearnLoss(inner, factor, coefs, float(self.alpha))

    def _make_optimizer(self, loss: SklearnLoss):
        params = self.model_.parameters()
        if self.solver == "sgd":
            momentum = float(self.momentum)
            return PenalizedSGD(
                params,
                loss,
                lr=float(self.learning_rate_init),
                momentum=momentum,
                nesterov=bool(self.nesterovs_momentum) and momentum > 0,
            )
        return PenalizedAdam(
            params,
            loss,
            lr=float(self.learning_rate_init),
            betas=(float(self.beta_1), float(self.beta_2)),
            eps=float(self.epsilon),
        )

    def _fit_stochastic(self, X, y, targets, sw, loss, incremental: bool) -> None:
        """Mini-batch training through ``nn.fit``, with scikit-learn's stopping rules."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        validation = validation_data = None
        if self.early_stopping:
            stratify = y if self._stratify(y) else None
            arrays = [X, y, targets] + ([] if sw is None else [sw])
            parts = train_test_split(
                *arrays,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X, X_val, y, y_val, targets, targets_val = parts[:6]
            sw, sw_val = (None, None) if sw is None else parts[6:]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the "
                    "size of your dataset."
                )
            validation = (X_val, y_val, sw_val)
            validation_data = (X_val, targets_val) + (() if sw_val is None else (sw_val,))
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=3,
                )
            batch_size = min(self.batch_size, n)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(loss)
        self._optimizer.loss = loss
        stopping = SklearnStopping(self, self._optimizer, n, validation)
        self.n_iter_ = 0
        self.model_.fit(
            X,
            targets,
            loss=loss,
            optimizer=self._optimizer,
            epochs=1 if incremental else self.max_iter,
            batch_size=batch_size,
            shuffle=bool(self.shuffle),
            seed=self._new_seed(),
            validation_data=validation_data,
            callbacks=[stopping],
            progress=bool(self.verbose),
            sample_weight=sw,
        )
        if self.early_stopping:
            restore(self.model_, self._best_state)
        if not incremental and not stopping.stopped:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _sample_weights(self, sample_weight, X, y) -> np.ndarray | None:
        """``sample_weight`` checked (finite, non-negative, not all zero), or None."""
        if sample_weight is None:
            return None
        sw = check_array(
            sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight"
        )
        if sw.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight.shape == {sw.shape}, expected ({X.shape[0]},): one weight per "
                "sample"
            )
        if (sw < 0).any():
            raise ValueError("Negative values in data passed to sample_weight")
        if not sw.any():
            raise ValueError("Sample weights must contain at least one non-zero number.")
        return sw

    # -- predicting -----------------------------------------------------------------------------
    def _output(self, X) -> np.ndarray:
        """The model's raw output (logits, or the regression values), shape (n, n_outputs_)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.model_.predict(X)

    # -- pickling -------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """The optimizer is stored as its state dict: its arrays are views into θ."""
        state = dict(super().__getstate__())  # a copy: it may be the live __dict__
        if "_optimizer" in state:
            state["_optimizer"] = state["_optimizer"].state_dict()
        return state

    def __setstate__(self, state: dict) -> None:
        optimizer_state = state.pop("_optimizer", None)
        super().__setstate__(state)
        if optimizer_state is not None:
            self._optimizer = self._make_optimizer(self._make_loss())
            self._optimizer.load_state_dict(optimizer_state)


def _check_number(name, value, low, high, *, low_open=False, high_open=False, integer=False):
    """A real (or integer) number in the interval [low, high] (ends open as asked)."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        )
    if not ok:
        left = "(" if low_open else "["
        right = "inf)" if high is None else (f"{high})" if high_open else f"{high}]")
        what = "an integer" if integer else "a number"
        raise ValueError(
            f"Received an invalid value for `{name}`, expected {what} in "
            f"{left}{low}, {right}. Received: {name}={value!r}"
        )
