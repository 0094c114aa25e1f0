"""MLPClassifier: scikit-learn's multi-layer perceptron classifier, trained by chainrule."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d, validate_data

import losses
from nn.estimators._base import BaseMLP


def _stochastic(estimator) -> bool:
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {estimator.solver} is "
            "not stochastic."
        )
    return True


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: ``sklearn.neural_network.MLPClassifier``'s drop-in.

    The parameters, defaults, fitted attributes and methods are scikit-learn's (see its
    documentation); the model is a chainrule :class:`~nn.Sequential` (``model_``) trained by
    :func:`nn.fit` on log-loss plus ``alpha/(2 Σw) Σ‖W‖²``. Multiclass targets use a softmax
    output (``out_activation_ = "softmax"``), binary and multilabel ones a logistic output.

    Parameters beyond scikit-learn's
    --------------------------------
    activation : also "leaky_relu", "elu", "gelu", "softplus"
    dropout : float, default 0
        Dropout probability after every hidden layer (training only).
    batch_norm : bool, default False
        Batch normalisation between each hidden Dense layer and its activation.
    class_weight : dict, "balanced" or None, default None
        Multiplies each sample's weight by its class's weight (single-output targets).
    dtype : None (default), "float32" or "float64"
        The dtype of the model's parameters and computations. None computes as scikit-learn
        does: in float32 for float32 input, else in float64. "float32" is about 1.3x faster.
    verbose : bool
        Shows a tqdm progress bar and one line per epoch.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, loss_, best_loss_, loss_curve_,
    validation_scores_, best_validation_score_, n_iter_, t_, n_layers_, n_outputs_,
    out_activation_, coefs_, intercepts_ : as in scikit-learn
    validation_loss_curve_ : list of float or None
        The loss on the held-out set per epoch when ``early_stopping`` holds one out.
    model_ : nn.Sequential
        The trained network; its output is the logits.
    """

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
        class_weight=None,
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
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X (n_samples, n_features) and labels y; returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (every label) is required on the first call."""
        fitted = hasattr(self, "classes_")
        if classes is None and not fitted:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None and fitted and not np.array_equal(self.classes_, np.unique(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on the first call to partial_fit, "
                f"which was {self.classes_!r}"
            )
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    # -- targets ------------------------------------------------------------------------------
    def _validate_input(self, X, y, reset: bool):
        X, y = validate_data(
            self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return X, y

    def _encode_targets(self, y, first: bool, classes=None) -> np.ndarray:
        """Labels -> one-hot rows (multiclass) or 0/1 columns (binary, multilabel)."""
        if first:
            binarizer = LabelBinarizer()
            if classes is None or type_of_target(y).startswith("multilabel"):
                binarizer.fit(y)
            else:
                binarizer.fit(classes)
            if len(binarizer.classes_) < 2:
                raise ValueError(
                    "MLPClassifier needs samples of at least 2 classes in the data, but the "
                    f"data contains only one class: {binarizer.classes_[0]!r}"
                )
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self.out_activation_ = "softmax" if binarizer.y_type_ == "multiclass" else "logistic"
        elif y.ndim == 1:
            if np.setdiff1d(np.unique(y), self.classes_).size:
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {np.unique(y)}."
                )
        targets = self._label_binarizer.transform(y)
        self.n_outputs_ = targets.shape[1]
        return targets

    def _stratify(self, y) -> bool:
        return y.ndim == 1

    def _inner_loss(self):
        if self.out_activation_ == "softmax":
            return losses.CrossEntropy(), 1.0
        # scikit-learn's binary log-loss sums over the outputs and averages over the samples
        return losses.BinaryCrossEntropy(from_logits=True), float(self.n_outputs_)

    def _sample_weights(self, sample_weight, X, y):
        sw = super()._sample_weights(sample_weight, X, y)
        if self.class_weight is None:
            return sw
        if y.ndim != 1:
            raise ValueError("class_weight is supported for single-output targets only")
        weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        per_sample = weights[np.searchsorted(self.classes_, y)]
        return per_sample if sw is None else sw * per_sample

    def _score(self, X, y, sample_weight=None) -> float:
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

    # -- predicting -----------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes) (n_classes columns also for 2)."""
        logits = self._output(X)
        if self.out_activation_ == "softmax":
            return softmax(logits, axis=1)
        proba = expit(logits)
        if self._label_binarizer.y_type_ == "binary":
            return np.hstack([1 - proba, proba])
        return proba

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``."""
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape (n_samples,) (or (n_samples, n_classes) for multilabel)."""
        logits = self._output(X)
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(logits, axis=1)]
        return self._label_binarizer.inverse_transform((logits > 0).astype(int), threshold=0.5)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
