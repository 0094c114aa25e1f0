"""chainrule's nn package: layers, Sequential, training, model files, data and the CLI."""

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
from nn.gradcheck import GradcheckReport, gradcheck
from nn.layer import Layer
from nn.linear import Dense
from nn.parameter import Parameter

__all__ = [
    "ACTIVATIONS",
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
