"""MLPRegressor: scikit-learn's multi-layer perceptron regressor, trained by chainrule."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d, validate_data

import losses
from nn.estimators._base import BaseMLP

# loss name -> (chainrule loss, factor): scikit-learn's squared error is half the mean square.
_LOSSES = {
    "squared_error": (losses.MSE, 0.5),
    "absolute_error": (losses.L1, 1.0),
    "huber": (losses.Huber, 1.0),
}


def _stochastic(estimator) -> bool:
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {estimator.solver} is "
            "not stochastic."
        )
    return True


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: ``sklearn.neural_network.MLPRegressor``'s drop-in.

    The parameters, defaults, fitted attributes and methods are scikit-learn's (see its
    documentation); the model is a chainrule :class:`~nn.Sequential` (``model_``) trained by
    :func:`nn.fit` on the loss plus ``alpha/(2 Σw) Σ‖W‖²``, with an identity output.

    Parameters beyond scikit-learn's
    --------------------------------
    loss : "squared_error" (½ mean square, default), "absolute_error" or "huber" (δ = 1)
    activation : also "leaky_relu", "elu", "gelu", "softplus"
    dropout : float, default 0
        Dropout probability after every hidden layer (training only).
    batch_norm : bool, default False
        Batch normalisation between each hidden Dense layer and its activation.
    dtype : None (default), "float32" or "float64"
        The dtype of the model's parameters and computations. None computes as scikit-learn
        does: in float32 for float32 input, else in float64. "float32" is about 1.3x faster.
    verbose : bool
        Shows a tqdm progress bar and one line per epoch.

    Attributes
    ----------
    n_features_in_, feature_names_in_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_layers_, n_outputs_, out_activation_, coefs_,
    intercepts_ : as in scikit-learn
    validation_loss_curve_ : list of float or None
        The loss on the held-out set per epoch when ``early_stopping`` holds one out.
    model_ : nn.Sequential
        The trained network.
    """

    def __init__(
        self,
        loss="squared_error",
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
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dropout=dropout,
            batch_norm=batch_norm,
            dtype=dtype,
        )
        self.loss = loss

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X (n_samples, n_features) and targets y; returns self."""
        if self.loss not in _LOSSES:
            raise ValueError(
                f"Received an invalid value for `loss`, expected one of {tuple(_LOSSES)}. "
                f"Received: loss={self.loss!r}"
            )
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X, y, reset: bool):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _encode_targets(self, y, first: bool, classes=None) -> np.ndarray:
        """Targets as columns, shape (n_samples, n_outputs) (``classes`` is unused)."""
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        if first:
            self.out_activation_ = "identity"
            self.n_outputs_ = targets.shape[1]
            self._y_1d = y.ndim == 1
        return targets

    def _stratify(self, y) -> bool:
        return False

    def _inner_loss(self):
        cls, factor = _LOSSES[self.loss]
        return cls(), factor

    def _score(self, X, y, sample_weight=None) -> float:
        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    def predict(self, X) -> np.ndarray:
        """Predictions, shape (n_samples,) for a 1-D y, else (n_samples, n_outputs)."""
        out = self._output(X)
        return out.ravel() if self._y_1d else out
