"""`chainrule train` against scikit-learn's MLPClassifier set up the same way, on the digits.

Usage (from the repository root)::

    python benchmarks/cli_vs_sklearn.py            # seeds 0-4
    python benchmarks/cli_vs_sklearn.py --seeds 2  # seeds 0-1

Both train on the same stratified 80/20 splits (``nn.data.train_test_split(..., seed=s)``,
the split ``chainrule train --seed s`` makes) with standardized features, one hidden layer of
512 ReLU units, Adam (lr 1e-3), an L2 penalty of 1e-4 and 40 epochs; scikit-learn gets
``n_iter_no_change=40`` so that it too runs all 40 epochs. scikit-learn is timed with
chainrule's batch size (32) and with its own default (200). Each time covers training and the
test score; ``chainrule train`` also saves its model. Runs are interleaved seed by seed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import nn
from nn import cli, data


def chainrule_train(seed: int, out: Path) -> float:
    """Test accuracy of ``chainrule train --seed seed`` (the defaults), read from its model."""
    with contextlib.redirect_stdout(io.StringIO()):  # its own report: read the model instead
        status = cli.main(["train", "--seed", str(seed), "--quiet", "--out", str(out)])
    if status != 0:
        raise RuntimeError(f"chainrule train --seed {seed} exited with status {status}")
    X, y = data.load_digits()
    _, X_test, _, y_test = data.train_test_split(X, y, 0.2, stratify=True, seed=seed)
    return float((nn.load(out).predict(X_test).argmax(axis=1) == y_test).mean())


def sklearn_mlp(seed: int, batch_size: int | str) -> float:
    # optional dependency: pip install 'chainrule[bench]'
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data.load_digits()
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, 0.2, stratify=True, seed=seed)
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(512,),
            alpha=1e-4,
            learning_rate_init=1e-3,
            batch_size=batch_size,
            max_iter=40,
            n_iter_no_change=40,
            random_state=seed,
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 40 epochs is the point
        model.fit(X_train, y_train)
    return float(model.score(X_test, y_test))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: 5)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: expected a positive integer, received {args.seeds}")
    systems = {
        "chainrule train (batch 32)": None,
        "scikit-learn MLPClassifier (batch 32)": 32,
        "scikit-learn MLPClassifier (batch 200, its default)": "auto",
    }
    results = {name: ([], []) for name in systems}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for name, batch_size in systems.items():
                start = time.perf_counter()
                if batch_size is None:
                    accuracy = chainrule_train(seed, Path(folder) / "model.npz")
                else:
                    accuracy = sklearn_mlp(seed, batch_size)
                results[name][0].append(accuracy)
                results[name][1].append(time.perf_counter() - start)
    print(f"digits, seeds 0-{args.seeds - 1}: mean test accuracy (min-max), median seconds")
    for name, (accuracies, seconds) in results.items():
        print(
            f"{name}: {100 * np.mean(accuracies):.1f}% ({100 * min(accuracies):.1f}-"
            f"{100 * max(accuracies):.1f}), {np.median(seconds):.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
