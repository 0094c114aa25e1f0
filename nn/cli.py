"""The ``chainrule`` command: train, evaluate and predict from the shell.

    chainrule train                       # the bundled digits, default MLP, saves model.npz
    chainrule train --data my.csv --hidden 128,64 --task classify
    chainrule evaluate model.npz --data test.csv
    chainrule predict model.npz --data new.csv --out predictions.csv [--proba]
    mpiexec -n 4 python -m mpi4py -m nn train ...   # data-parallel; rank 0 prints and saves

User errors (a missing file, a bad CSV, a model that expects other features) print one line
to stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import losses
import nn
import optim
from nn import data
from nn.activations import ACTIVATIONS
from nn.container import Sequential
from nn.distributed import world_from_environment
from nn.export import export_onnx
from nn.files import ModelFileError, load_with_state, save, write_atomically
from nn.linear import Dense
from nn.preprocessing import Standardize
from nn.tracing import trace, worked_example
from nn.training import CSVLogger, TrainingDivergedError
from nn.training.plot import plot_history

DEFAULTS = {  # the defaults of `chainrule train`, tuned on the bundled digits
    "hidden": "512",
    "activation": "relu",
    "optimizer": "adam",
    "lr": 1e-3,
    "epochs": 40,
    "batch_size": 32,
    "weight_decay": 1e-4,
}


class UserError(Exception):
    """A mistake in the command line or its files: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _number(low: float, high: float, *, low_open: bool, what: str):
    """An argparse type for a finite float in the interval (or [) low, high)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value > low if low_open else value >= low) or not value < high:
            raise argparse.ArgumentTypeError(f"expected {what}, received {text!r}")
        return value

    return parse


def build_mlp(
    n_features: int,
    hidden: Sequence[int],
    n_outputs: int,
    activation: str,
    seed: int,
    X_train: np.ndarray | None = None,
) -> Sequential:
    """Standardize → Dense(activation) × len(hidden) → Dense (logits or values)."""
    layers = [Standardize(n_features)]
    sizes = [n_features, *hidden]
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers.append(Dense(n_in, n_out, activation=activation))
    layers.append(Dense(sizes[-1], n_outputs))
    model = Sequential(*layers, seed=seed)
    if X_train is not None:
        model.layers[0].adapt(X_train)
    return model


def _parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")] if text.strip() else []
    except ValueError:
        raise UserError(f"--hidden expects sizes such as 128,64; received {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise UserError(f"--hidden sizes must be positive integers; received {text!r}")
    return sizes


def _load(path: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The data of ``--data`` (default: the bundled digits); the loader's warnings as notes."""
    if path is None:
        return data.load_digits()
    X, y = _with_notes(data.load_dataset, path)
    if y is not None and y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "iu":
        y = y[:, 0]  # one column of integer labels, as in an .npz: labels (n,)
    return X, y


def _with_notes(load, *args, **kwargs):
    """``load(*args, **kwargs)``, printing its warnings (a dropped index column) as one line each,
    without Python's source line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load(*args, **kwargs)
    for warning in caught:
        print(f"chainrule: {warning.message}", file=sys.stderr)
    return result


def _note(message: str) -> None:
    print(f"chainrule: note: {message}", file=sys.stderr)


def _task(task: str | None, y: np.ndarray) -> str:
    """``--task``, or the task the labels suggest (with a note when that is regression).

    Integer labels are classes unless most classes have fewer than 3 samples or there are
    more classes than samples; labels written as floats (151.0) are regression targets.
    Only the inferences a user might not expect get a note (whole numbers taken as targets).
    """
    if task is not None:
        return task
    if y.ndim != 1:
        return "regress"
    if y.dtype.kind not in "iu":
        if np.all(y == np.round(y)):  # whole numbers written as floats: say which task this is
            _note(
                f"the labels are whole numbers written as floats (e.g. {y[0]:.1f}), so this "
                "trains a regression; pass --task classify if they are class labels"
            )
        return "regress"
    counts = np.unique(y, return_counts=True)[1]
    if int(y.max()) + 1 > len(y) or (counts.size > 2 and np.mean(counts < 3) > 0.5):
        _note(
            f"the labels look like numeric targets ({counts.size} distinct values up to "
            f"{y.max()} for {len(y)} samples, {np.sum(counts < 3)} of them with fewer than 3 "
            "samples), so this trains a regression; pass --task classify if they are class labels"
        )
        return "regress"
    return "classify"


def _whole_to_int(y: np.ndarray) -> np.ndarray:
    """Float labels ``(n,)`` that are all whole numbers (written as 2.0) as int64 classes."""
    if y.ndim == 1 and y.dtype.kind == "f" and np.all(y == np.round(y)):
        if np.all(np.abs(y) < 2.0**63):
            return y.astype(np.int64)
    return y


def _class_labels(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels ``(n,)`` as int64 classes and the number of outputs, ``max + 1``."""
    y = _whole_to_int(y)  # --task classify on labels written as 2.0
    if y.dtype.kind not in "iu" or y.ndim != 1 or y.min() < 0:
        found = f" (found {y.min()}..{y.max()})" if y.ndim == 1 else ""
        raise UserError(
            "classification needs integer class labels 0..C-1 in the last column"
            f"{found}; remap the labels, or pass --task regress for numeric targets"
        )
    n_outputs = int(y.max()) + 1
    if n_outputs < 2:
        raise UserError("--task classify needs at least two classes; all labels are 0")
    present = np.unique(y)
    if present.size < n_outputs:  # a label in 0..max without samples: an output never used
        gaps = np.flatnonzero(present != np.arange(present.size))
        first = int(gaps[0]) if gaps.size else present.size
        n_unused = n_outputs - present.size
        which = f"label {first}" if n_unused == 1 else f"{n_unused} of the labels (e.g. {first})"
        _note(
            f"no sample has {which} (the labels run {y.min()}..{y.max()}): the model gets "
            f"{n_outputs} outputs and never predicts {'it' if n_unused > 1 else first}; "
            f"relabel as 0..{present.size - 1} to drop {'them' if n_unused > 1 else 'it'}"
        )
    return y, n_outputs


def _splits(args: argparse.Namespace, X: np.ndarray, y: np.ndarray, classify: bool) -> dict:
    """Training, validation (``--validation-split`` of the training part) and test sets.

    Both splits are stratified for classification, so each part keeps every class.
    """
    X_train, X_test, y_train, y_test = data.train_test_split(
        X, y, test_size=args.test_size, stratify=classify, seed=args.seed
    )
    parts = {"train": (X_train, y_train), "val": None, "test": (X_test, y_test)}
    if args.validation_split:
        X_fit, X_val, y_fit, y_val = data.train_test_split(
            X_train, y_train, test_size=args.validation_split, stratify=classify, seed=args.seed
        )
        parts.update(train=(X_fit, y_fit), val=(X_val, y_val))
    return parts


def _standardize_targets(parts: dict) -> tuple[np.ndarray, np.ndarray]:
    """Scale the regression targets of ``parts`` in place to mean 0, scale 1 (per output), with
    the mean and scale of the training part; returns them."""
    y_train = parts["train"][1]
    y_mean = y_train.mean(axis=0, dtype=np.float64)  # float64: no overflow of the squares
    y_scale = y_train.std(axis=0, dtype=np.float64)
    y_scale[y_scale == 0] = 1
    for key in ("train", "val"):
        if parts[key] is not None:
            X_part, y_part = parts[key]
            parts[key] = (X_part, ((y_part - y_mean) / y_scale).astype(np.float32))
    return y_mean, y_scale


def _optimizer(args: argparse.Namespace, model: Sequential):
    """``--optimizer`` with the flags its constructor takes (L-BFGS takes no learning rate)."""
    accepted = inspect.signature(optim.OPTIMIZERS[args.optimizer]).parameters
    kwargs = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.optimizer == "sgd":
        kwargs["momentum"] = 0.9
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    return optim.get(args.optimizer, model.parameters(), **kwargs)


def _fit(args: argparse.Namespace, model: Sequential, parts: dict, loss, metrics: list, comm):
    """Train on ``parts["train"]``, with early stopping on ``parts["val"]`` for ``--patience``;
    a diverging run becomes a UserError naming the flag to change. Returns the History."""
    X_train, y_train = parts["train"]
    optimizer = _optimizer(args, model)
    callbacks = _history_callbacks(args)
    stop = None
    if args.patience is not None:
        stop = nn.EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True)
        callbacks.append(stop)
    untrained = model.evaluate(X_train, y_train, loss=loss)["loss"]
    try:
        history = model.fit(
            X_train,
            y_train,
            loss=loss,
            optimizer=optimizer,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            metrics=metrics,
            validation_data=parts["val"],
            callbacks=callbacks,
            progress=None if not args.quiet else False,
            comm=comm,
        )
    except TrainingDivergedError as err:  # fit's hint names Python arguments; give the flag
        where = f"epoch {err.epoch}" + (f", batch {err.batch}" if err.batch else "")
        what = "running statistics" if err.quantity == "buffers" else err.quantity
        raise UserError(
            f"training diverged at {where}: the {what} became {err.value}. "
            f"Try a smaller --lr than {args.lr:g}, or check the data; nothing was saved."
        ) from None
    last = history.history["loss"][-1]
    if comm is not None and comm.Get_rank() != 0:  # rank 0 alone prints
        return history
    if last > 10 * untrained:  # finite, so no divergence error, but training went the wrong way
        print(
            f"chainrule: warning: the training loss grew from {untrained:.4g} to {last:.4g}; "
            f"--lr {args.lr:g} is probably too high for --optimizer {args.optimizer}",
            file=sys.stderr,
        )
    if stop is not None and not args.quiet:
        ran = len(history.history["loss"])
        print(
            f"chainrule: trained {ran} epoch(s); restored the weights of epoch "
            f"{stop.best_epoch + 1} (val_loss {stop.best:.4g})",
            file=sys.stderr,
        )
    return history


def cmd_train(args: argparse.Namespace) -> int:
    if args.plot and importlib.util.find_spec("matplotlib") is None:  # before, not after training
        raise UserError("--plot needs matplotlib: pip install 'chainrule[plot]'")
    if args.patience is not None and not args.validation_split:
        raise UserError("--patience needs --validation-split (the loss it watches), e.g. 0.2")
    out_directory = Path(args.out).parent
    if not out_directory.is_dir():  # before training, not after
        raise UserError(f"--out {args.out}: the directory {str(out_directory)!r} does not exist")
    X, y = _load(args.data)
    if y is None:
        raise UserError(f"{args.data}: training needs labels (a CSV or an .npz with X and y)")
    task = _task(args.task, y)
    if task == "classify":
        y, n_outputs = _class_labels(y)
        loss, metrics = losses.CrossEntropy(), ["accuracy"]
    else:
        y = y.astype(np.float32).reshape(len(y), -1)
        n_outputs = y.shape[1]
        loss, metrics = losses.MSE(), ["mae"]
    parts = _splits(args, X, y, classify=task == "classify")
    hidden = _parse_hidden(args.hidden)
    model = build_mlp(X.shape[1], hidden, n_outputs, args.activation, args.seed, parts["train"][0])
    if task == "regress":  # train on standardized targets; the saved model predicts raw ones
        y_mean, y_scale = _standardize_targets(parts)
    comm = world_from_environment()  # started by mpiexec: train data-parallel
    rank_0 = comm is None or comm.Get_rank() == 0  # the one rank that prints and saves
    if not args.quiet and rank_0:
        print(f"chainrule: training {model!r}".replace("\n", "\n  "), file=sys.stderr)
    history = _fit(args, model, parts, loss, metrics, comm)
    if not rank_0:
        return 0
    if task == "regress":  # undo the target scaling inside the output layer: ŷ·s + m
        output = model.layers[-1]
        output.W.data *= y_scale
        output.b.data *= y_scale
        output.b.data += y_mean
    X_test, y_test = parts["test"]
    results = model.evaluate(X_test, y_test, loss=loss, metrics=metrics)
    save(model, args.out, state={"json": {"task": task}})  # evaluate and predict read it
    _plot_curves(args, history)
    name = "accuracy" if task == "classify" else "mae"
    print(
        f"test {name}: {results[name]:.4g}  test loss: {results['loss']:.4g}  "
        f"({len(X_test)} samples)"
    )
    print(f"saved the model to {args.out}")
    return 0


def _model_and_data(args, labels: bool) -> tuple[Sequential, str, np.ndarray, np.ndarray | None]:
    """The saved model, its task and the data; without ``labels``, a CSV may hold features only.

    The task is the one ``chainrule train`` recorded; for a model saved from Python it is
    "classify" when the model has several outputs (taken as logits), else "regress".
    """
    model, state = load_with_state(args.model)
    saved = (state or {}).get("json")
    task = saved.get("task") if isinstance(saved, dict) else None
    csv = args.data is not None and args.data.lower().endswith((".csv", ".csv.gz"))
    if not labels and csv:  # every column a feature, unless there is one too many: a label
        X, y = _with_notes(data.load_csv, args.data, labels=False)
        if X.shape[1] == model.n_features + 1:
            X = X[:, :-1]
    else:
        X, y = _load(args.data)
    if X.shape[1] != model.n_features:
        source = args.data or "the bundled digits (no --data given)"
        columns = X.shape[1] + (y is not None)
        label = " plus a label column" if labels else " (a label column after them is optional)"
        raise UserError(
            f"{source} has {columns} columns, but {args.model} needs {model.n_features} "
            f"feature columns{label}"
        )
    if task not in ("classify", "regress"):  # saved from Python: several outputs are logits
        task = "classify" if model.predict(X[:1]).shape[1] > 1 else "regress"
    return model, task, X, y


def cmd_evaluate(args: argparse.Namespace) -> int:
    model, task, X, y = _model_and_data(args, labels=True)
    if y is None:
        raise UserError(f"{args.data}: evaluation needs labels")
    n_outputs = model.predict(X[:1]).shape[1]
    if task == "classify":
        y = _whole_to_int(y)  # a classifier's labels may be written as 2.0
        if y.dtype.kind not in "iu" or y.ndim != 1 or y.min() < 0 or y.max() >= n_outputs:
            raise UserError(
                f"{args.model} is a classifier: its labels must be integers in "
                f"0..{n_outputs - 1} in the last column; found {y.min()}..{y.max()}"
            )
        results = model.evaluate(X, y, loss=losses.CrossEntropy(), metrics=["accuracy"])
    else:
        y = y.astype(model.dtype).reshape(len(y), -1)
        results = model.evaluate(X, y, loss=losses.MSE(), metrics=["mae", "mse"])
    print("  ".join(f"{k}: {v:.4f}" for k, v in results.items()) + f"  ({len(X)} samples)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model, task, X, _ = _model_and_data(args, labels=False)
    if args.proba and task != "classify":
        raise UserError(f"--proba needs a classifier; {args.model} predicts values (regression)")
    out = model.predict(X)
    if args.proba:  # one column per class: softmax of the logits
        values, fmt = nn.Softmax()(out), "%.8g"
    elif task == "classify":
        values, fmt = out.argmax(axis=1).reshape(-1, 1), "%d"
    else:
        values, fmt = out, "%.8g"
    if args.out == "-":  # standard output, for pipes
        try:
            np.savetxt(sys.stdout, values, fmt=fmt, delimiter=",")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped early (| head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

    def write(f) -> None:
        if args.out.endswith(".npy"):
            np.save(f, values)
        else:
            np.savetxt(f, values, fmt=fmt, delimiter=",")

    out = Path(args.out)
    if out.is_symlink() or (out.exists() and not out.is_file()):  # a FIFO, /dev/stdout, ...
        with open(out, "wb") as f:
            write(f)
    else:  # a regular file: atomically, nothing half-written
        write_atomically(out, write)
    print(f"wrote {len(values)} predictions to {args.out}", file=sys.stderr)  # not into them
    return 0


def _history_callbacks(args: argparse.Namespace) -> list:
    """A CSVLogger for ``--history``."""
    return [CSVLogger(args.history)] if args.history else []


def _plot_curves(args: argparse.Namespace, history) -> None:
    """The training curves as an image for ``--plot``."""
    if args.plot:
        plot_history(history, args.plot)
        print(f"saved the training curves to {args.plot}", file=sys.stderr)


def cmd_trace(args: argparse.Namespace) -> int:
    print(trace(*worked_example()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    export_onnx(load_with_state(args.model)[0], args.out, opset=args.opset)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _add_train_parser(sub) -> None:
    """``chainrule train`` and its flags, each with its default in --help."""
    train = sub.add_parser("train", help="train an MLP (default: the bundled digits)")
    train.add_argument("--data", help="CSV (label last), .npz (X, y); default: bundled digits")
    default = " (default: %(default)s)"
    train.add_argument(
        "--hidden", default=DEFAULTS["hidden"], help="hidden sizes, e.g. 128,64" + default
    )
    train.add_argument(
        "--activation",
        default=DEFAULTS["activation"],
        choices=sorted(ACTIVATIONS),
        help="of the hidden layers" + default,
    )
    train.add_argument(
        "--optimizer",
        default=DEFAULTS["optimizer"],
        choices=list(optim.OPTIMIZERS),
        help=default.strip(),
    )
    positive = _number(0.0, float("inf"), low_open=True, what="a positive number")
    train.add_argument(
        "--lr", type=positive, default=DEFAULTS["lr"], help="learning rate" + default
    )
    train.add_argument(
        "--weight-decay",
        type=_number(0.0, float("inf"), low_open=False, what="a non-negative number"),
        default=DEFAULTS["weight_decay"],
        help="for the optimizers that take it (not lbfgs)" + default,
    )
    train.add_argument(
        "--epochs", type=_positive_int, default=DEFAULTS["epochs"], help=default.strip()
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=DEFAULTS["batch_size"], help=default.strip()
    )
    train.add_argument(
        "--test-size",
        type=_number(0.0, 1.0, low_open=True, what="a fraction in (0, 1)"),
        default=0.2,
        help="fraction held out for the test score" + default,
    )
    train.add_argument(
        "--validation-split",
        type=_number(0.0, 1.0, low_open=True, what="a fraction in (0, 1)"),
        help="fraction of the training part held out (stratified) for val_loss each epoch",
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        help="stop after this many epochs without a better val_loss and restore the best "
        "weights (needs --validation-split)",
    )
    train.add_argument(
        "--seed", type=int, default=0, help="of the split, the weights and the shuffling" + default
    )
    train.add_argument("--out", default="model.npz", help="where to save the model" + default)
    train.add_argument(
        "--task",
        choices=("classify", "regress"),
        help="default: classify for integer labels, regress otherwise",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--plot", help="save the training curves as an image, e.g. curves.png")
    train.add_argument("--history", help="write the per-epoch values as CSV, e.g. history.csv")
    train.set_defaults(func=cmd_train)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrule", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    evaluate = sub.add_parser("evaluate", help="loss and metrics of a saved model on data")
    evaluate.add_argument("model")
    evaluate.add_argument("--data", help="default: the bundled digits")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="write a saved model's predictions")
    predict.add_argument("model")
    predict.add_argument("--data", help="default: the bundled digits")
    predict.add_argument(
        "--out", required=True, help="a .csv or .npy file, written atomically; - for stdout"
    )
    predict.add_argument(
        "--proba",
        action="store_true",
        help="write class probabilities (softmax of the logits), one column per class",
    )
    predict.set_defaults(func=cmd_predict)

    trace_parser = sub.add_parser("trace", help="print the chain rule on the notes' example")
    trace_parser.set_defaults(func=cmd_trace)

    export_parser = sub.add_parser("export", help="write a saved model as ONNX")
    export_parser.add_argument("model")
    export_parser.add_argument("--out", required=True, help="the .onnx file, written atomically")
    export_parser.add_argument("--opset", type=_positive_int, help="ONNX opset (default: 17)")
    export_parser.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        UserError,
        ImportError,  # an optional extra that is not installed: the message names it
        ModelFileError,
        TrainingDivergedError,
        FileNotFoundError,
        ValueError,
        TypeError,
        OSError,
    ) as err:
        print(f"chainrule: error: {err}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(f"chainrule: error: out of memory{f' ({err})' if str(err) else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
