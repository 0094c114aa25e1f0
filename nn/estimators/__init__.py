"""scikit-learn estimators on chainrule: ``MLPClassifier`` and ``MLPRegressor``.

A drop-in for ``sklearn.neural_network``'s MLPs (same parameters, defaults, attributes and
methods), trained by :func:`nn.fit`, with extras: more activations, dropout, batch norm,
class weights, regression losses, float32 and a validation loss curve. Needs the optional
``sklearn`` extra.
"""

try:  # optional dependency: the estimators subclass scikit-learn's base classes
    import sklearn  # noqa: F401
except ImportError as error:
    raise ImportError(
        "nn.estimators needs scikit-learn: pip install 'chainrule[sklearn]'"
    ) from error

from nn.estimators._classifier import MLPClassifier
from nn.estimators._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
