"""Training: fit and evaluate, the trainer and its batches, callbacks, metrics, checkpoints."""

# The check runs before the imports below load losses and optim.
# ruff: noqa: E402
from nn.training.packages import check_sibling_packages

check_sibling_packages()

from nn.training.callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint
from nn.training.checkpoint import (
    Checkpoint,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from nn.training.csv_logger import CSVLogger
from nn.training.history import History, StateMismatchError, TrainingDivergedError
from nn.training.loop import evaluate, fit
from nn.training.metrics import Accuracy, MeanAbsoluteError, MeanSquaredError, Metric

__all__ = [
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
]
