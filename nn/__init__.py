"""chainrule's nn package: layers and Sequential, with training, files, data and tools around.

The layer math is imported with the package. Everything around it (training, model files,
data, the command line) is imported on first use (PEP 562 ``__getattr__``, as scipy does),
so ``optim`` and ``losses`` can import ``nn.checks`` and ``nn.parameter`` without pulling in
the training loop, and ``import nn`` stays fast.
"""

import importlib

from nn.activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    get_activation,
)
from nn.container import Sequential
from nn.dropout import Dropout
from nn.layer import LAYER_TYPES, Layer, register_layer
from nn.linear import Dense
from nn.normalization import BatchNorm1d, LayerNorm
from nn.parameter import Parameter
from nn.preprocessing import Standardize

#: Public names defined in modules that load on first use, by the module defining them.
_LAZY = {
    "nn.training": [
        "Accuracy",
        "CSVLogger",
        "Callback",
        "Checkpoint",
        "EarlyStopping",
        "History",
        "LearningRateScheduler",
        "MeanAbsoluteError",
        "MeanSquaredError",
        "Metric",
        "ModelCheckpoint",
        "StateMismatchError",
        "TrainingDivergedError",
        "evaluate",
        "fit",
        "load_checkpoint",
        "restore_checkpoint",
        "save_checkpoint",
    ],
    "nn.files": ["ModelFileError", "load", "save"],
    "nn.gradcheck": ["GradcheckReport", "gradcheck"],
    "nn.export": ["export_onnx"],
    "nn.training.plot": ["plot_history"],
    "nn.tracing": ["trace"],
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}
_SUBMODULES = {
    "checks",
    "cli",
    "data",
    "distributed",
    "estimators",
    "export",
    "files",
    "gradcheck",
    "init",
    "tracing",
    "training",
}


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"nn.{name}")
    else:
        raise AttributeError(f"module 'nn' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES) | _SUBMODULES)


__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "LAYER_TYPES",
    "Activation",
    "BatchNorm1d",
    "Dense",
    "Dropout",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Standardize",
    "Tanh",
    "get_activation",
    "register_layer",
    *_LAZY_NAMES,
    "data",
]
