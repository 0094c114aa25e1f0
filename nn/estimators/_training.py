"""scikit-learn's MLP objective and stopping rules on top of chainrule's ``fit``.

scikit-learn minimises, per mini-batch of weights ``w`` (ones without ``sample_weight``),

    L = Σᵢ wᵢ ℓᵢ / Σᵢ wᵢ + α / (2 Σᵢ wᵢ) · Σ_layers ‖W‖²

(the L2 penalty is on the weight matrices, not on the intercepts). :class:`SklearnLoss` gives
``fit`` that value and ∂L/∂pred; the penalty's gradient ``α/Σw · W`` is added to ∇W by the
optimizers below just before their step. :class:`SklearnStopping` records the loss curve and
applies scikit-learn's rules (``tol``, ``n_iter_no_change``, validation score, learning-rate
schedules) after every epoch.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

import losses
import nn
import optim


class SklearnLoss(losses.Loss):
    """``factor · ℓ`` averaged with per-batch normalised sample weights, plus the L2 penalty.

    Parameters
    ----------
    inner : losses.Loss
        The per-sample loss, ``reduction="mean"``.
    factor : float
        Multiplies ``inner`` (½ for scikit-learn's half squared error).
    coefs : list of Parameter
        The weight matrices the penalty applies to.
    alpha : float
        The L2 penalty α.
    """

    def __init__(self, inner: losses.Loss, factor: float, coefs: list, alpha: float) -> None:
        super().__init__("mean")
        self.inner, self.factor, self.coefs, self.alpha = inner, factor, coefs, alpha
        self.weight = 0.0  # Σ w of the last batch: the penalty's denominator

    def penalty(self) -> float:
        """``½ α Σ ‖W‖²`` (divide by Σw for the batch's penalty)."""
        return (
            0.5
            * self.alpha
            * sum(float(np.dot(W.data.ravel(), W.data.ravel())) for W in self.coefs)
        )

    def _forward(self, pred, target, sample_weight) -> float:
        n = len(pred)
        w = None
        self.weight = float(n)
        if sample_weight is not None:
            self.weight = float(sample_weight.sum(dtype=np.float64))
            if self.weight == 0:  # a batch of no weight: no loss, no step (fit skips it)
                self._scale = math.nan
                return math.nan
            w = self._buffer("w", sample_weight.shape, sample_weight.dtype)
            np.multiply(sample_weight, n / self.weight, out=w)  # mean weight 1 in the batch
        value = self.factor * self.inner.forward(pred, target, w)
        self._scale = 1.0 / n  # fit averages batches by their number of samples, as sklearn
        return value + self.penalty() / self.weight

    def _backward(self, grad: np.ndarray) -> None:
        np.multiply(self.inner.backward(), self.factor, out=grad)


def add_penalty_gradient(loss: SklearnLoss) -> None:
    """∇W += α/Σw · W for every weight matrix (∂ of the penalty of the last batch)."""
    if loss.alpha and loss.weight:
        scale = loss.alpha / loss.weight
        for W in loss.coefs:
            W.grad += scale * W.data


class _Penalized:
    """Mixin for an optimizer whose step first adds the L2 penalty's gradient of ``loss``."""

    def __init__(self, params, loss: SklearnLoss, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.loss = loss

    def step(self) -> None:
        add_penalty_gradient(self.loss)
        super().step()


class PenalizedSGD(_Penalized, optim.SGD):
    """:class:`optim.SGD` with scikit-learn's L2 penalty on the weights."""


class PenalizedAdam(_Penalized, optim.Adam):
    """:class:`optim.Adam` with scikit-learn's L2 penalty on the weights."""


class SklearnStopping(nn.Callback):
    """scikit-learn's per-epoch bookkeeping and stopping rule for the stochastic solvers.

    After each epoch: ``n_iter_``, ``t_``, ``loss_`` and ``loss_curve_``; with a validation
    set, the validation score (accuracy or R²) counts as no improvement when it is below the
    best + ``tol`` (the best θ is kept); otherwise the training loss counts as no improvement
    when above the best − ``tol``. After more than ``n_iter_no_change`` such epochs training
    stops, except that ``learning_rate="adaptive"`` (sgd) first divides the rate by 5 until it
    is at most 1e-6. ``invscaling`` sets ``lr = learning_rate_init / (t_ + 1) ** power_t``.

    Parameters
    ----------
    estimator : the MLP estimator being fitted (its attributes are updated)
    optimizer : optim.Optimizer
    n_train : int
        Training samples per epoch.
    validation : (X_val, y_val, sample_weight_val) or None
        The held-out set in the estimator's own label format, for ``estimator._score``.
    """

    def __init__(self, estimator, optimizer, n_train: int, validation) -> None:
        self.estimator, self.optimizer = estimator, optimizer
        self.n_train, self.validation = n_train, validation
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        est = self.estimator
        est.n_iter_ += 1
        est.t_ += self.n_train
        est.loss_ = float(logs["loss"])
        est.loss_curve_.append(est.loss_)
        if self.validation is not None:
            est.validation_loss_curve_.append(float(logs["val_loss"]))
            score = est._score(*self.validation)
            est.validation_scores_.append(score)
            improved = score >= est.best_validation_score_ + est.tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_state = snapshot(est.model_)
        else:
            improved = est.loss_ <= est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, est.loss_)
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            self.optimizer.lr = est.learning_rate_init / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            adaptive = est.solver == "sgd" and est.learning_rate == "adaptive"
            if adaptive and self.optimizer.lr > 1e-6:
                self.optimizer.lr = self.optimizer.lr / 5.0
                est._no_improvement_count = 0
            else:
                self.stopped = True
                self.model.stop_training = True


def snapshot(model: nn.Sequential) -> list[np.ndarray]:
    """Copies of θ and of every layer buffer (batch-norm running statistics)."""
    arrays = [model.theta.copy()]
    for layer in model.layers:
        arrays.extend(array.copy() for array in layer.buffers().values())
    return arrays


def restore(model: nn.Sequential, state: list[np.ndarray]) -> None:
    """Write a :func:`snapshot` back into ``model``, in place."""
    model.theta[...] = state[0]
    buffers = [array for layer in model.layers for array in layer.buffers().values()]
    for array, saved in zip(buffers, state[1:], strict=True):
        array[...] = saved


# L-BFGS-B's relative reduction test: scipy's default for float64; a float32 loss is only
# accurate to ~1e-7, below which the line search fails instead of converging.
_LBFGS_FTOL = {np.dtype(np.float64): 2.220446049250313e-09, np.dtype(np.float32): 1e-6}


def fit_lbfgs(est, model: nn.Sequential, X, y, sample_weight, loss: SklearnLoss) -> None:
    """Minimise the full-batch objective with scipy's L-BFGS-B, as scikit-learn does.

    ``max_iter`` iterations, ``max_fun`` loss evaluations and ``gtol = tol`` as
    scikit-learn passes them; a ConvergenceWarning when it stops without converging.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    y : ndarray, the targets in the loss's format
    sample_weight : ndarray, shape (n_samples,), or None
    """
    X = np.asarray(X, dtype=model.dtype)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=model.dtype)
    rng_state = model.rng.bit_generator.state
    model.train()

    def loss_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        model.theta[...] = x
        model.rng.bit_generator.state = rng_state  # one objective: the same dropout masks
        value = loss.forward(model.forward(X), y, sw)
        model.zero_grad()
        model.backward(loss.backward())
        add_penalty_gradient(loss)
        return value, model.theta_grad.astype(np.float64)

    start = model.theta.copy()
    try:
        with np.errstate(over="ignore"):
            result = minimize(
                loss_and_grad,
                start.astype(np.float64),
                jac=True,
                method="L-BFGS-B",
                options={
                    "maxfun": est.max_fun,
                    "maxiter": est.max_iter,
                    "gtol": est.tol,
                    "ftol": _LBFGS_FTOL[model.dtype],
                },
            )
    except BaseException:  # θ leaves at the start, not at a line-search trial point
        model.theta[...] = start
        raise
    finally:
        model.eval()
    model.theta[...] = result.x
    est.n_iter_ = int(result.nit)
    est.loss_ = float(result.fun)
    if result.status != 0:
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iterations ({result.nfev} loss "
            f"evaluations): {result.message}. Increase max_iter or max_fun, or scale the data "
            "(e.g. StandardScaler).",
            ConvergenceWarning,
            stacklevel=4,
        )
