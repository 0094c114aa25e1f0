"""chainrule's MLPClassifier against scikit-learn's, side by side on scikit-learn's data sets.

Usage (from the repository root)::

    python benchmarks/sklearn_side_by_side.py              # 3 seeds, 1 BLAS thread
    python benchmarks/sklearn_side_by_side.py --seeds 5 --threads 2

For each data set (breast_cancer, wine, digits) and seed, a stratified 75/25 split is made
and three pipelines ``make_pipeline(StandardScaler(), model)`` with the same (default)
parameters and ``random_state=seed`` are fitted on the training part, interleaved (A B C per
seed, so machine drift hits them alike): scikit-learn's ``MLPClassifier``, ours with its
default dtype (float64 for float64 data, as scikit-learn), and ours with ``dtype="float32"``.
The report gives the test accuracy (mean ± standard deviation over seeds), the mean fit
time, and the fit-time ratio scikit-learn / ours (the median of the per-seed ratios).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from nn.estimators import MLPClassifier

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}
SYSTEMS = {
    "scikit-learn": lambda seed: SklearnMLP(random_state=seed),
    "chainrule": lambda seed: MLPClassifier(random_state=seed),
    "chainrule float32": lambda seed: MLPClassifier(random_state=seed, dtype="float32"),
}


def run_one(make, seed: int, split) -> tuple[float, float]:
    """Fit a pipeline on the training part; return (fit seconds, test accuracy)."""
    X_train, X_test, y_train, y_test = split
    pipe = make_pipeline(StandardScaler(), make(seed))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return seconds, pipe.score(X_test, y_test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per data set (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args(argv)
    print(f"{args.seeds} seeds, {args.threads} BLAS thread(s); default MLP parameters\n")
    print("| data set | system | test accuracy | fit time (s) | scikit-learn / this |")
    print("|---|---|---|---|---|")
    with threadpool_limits(args.threads):
        for name, load in DATASETS.items():
            X, y = load(return_X_y=True)
            results = {system: [] for system in SYSTEMS}
            for seed in range(args.seeds):
                split = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
                for system, make in SYSTEMS.items():
                    results[system].append(run_one(make, seed, split))
            reference = [seconds for seconds, _ in results["scikit-learn"]]
            for system, runs in results.items():
                seconds = [s for s, _ in runs]
                accuracy = [a for _, a in runs]
                spread = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
                ratio = statistics.median(r / s for r, s in zip(reference, seconds, strict=True))
                print(
                    f"| {name} | {system} | {statistics.mean(accuracy):.4f} ± {spread:.4f} | "
                    f"{statistics.mean(seconds):.3f} | {ratio:.2f}× |"
                )


if __name__ == "__main__":
    main()
