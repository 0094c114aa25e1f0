"""chainrule's nn package: layers, Sequential, training, model files, data and the CLI."""

from nn import data
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
from nn.callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint
from nn.checkpoint import Checkpoint, load_checkpoint, restore_checkpoint, save_checkpoint
from nn.container import Sequential
from nn.dropout import Dropout
from nn.gradcheck import GradcheckReport, gradcheck
from nn.layer import Layer
from nn.linear import Dense
from nn.metrics import Accuracy, MeanAbsoluteError, MeanSquaredError, Metric
from nn.normalization import BatchNorm1d, LayerNorm
from nn.parameter import Parameter
from nn.preprocessing import Standardize
from nn.serialization import LAYER_TYPES, ModelFileError, load, save
from nn.training import History, TrainingDivergedError, evaluate, fit

__all__ = [
    "data",
    "BatchNorm1d",
    "Dropout",
    "LayerNorm",
    "ACTIVATIONS",
    "LAYER_TYPES",
    "Accuracy",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "ModelCheckpoint",
    "ModelFileError",
    "Standardize",
    "TrainingDivergedError",
    "evaluate",
    "fit",
    "load",
    "load_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
    "save",
    "ELU",
    "GELU",
    "Activation",
    "Dense",
    "GradcheckReport",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "get_activation",
    "gradcheck",
]
