"""Time chainrule's training against the GEMM floor and its peers, side by side.

Usage (from the repository root)::

    python benchmarks/run.py                       # every configuration, full sizes
    python benchmarks/run.py --quick               # tiny sizes, a few steps (the CI smoke run)
    python -m benchmarks --config mnist,wide --repeat 7 --json results.json

For every configuration (see :mod:`benchmarks.configs`) the runner trains the same multilayer
perceptron (cross-entropy on logits, SGD with momentum 0.9, one learning rate) with each
system, and times each system on the same number of samples:

``fit``
    chainrule's ``model.fit(..., epochs=1, shuffle=True, progress=False)``.
``by hand``
    chainrule's layer API over pre-sliced batches: ``model.zero_grad``, ``forward``,
    ``loss.forward``, ``backward``, ``optimizer.step``.
``GEMM floor``
    exactly the matrix products of one training step in plain numpy, into preallocated
    outputs: per layer ``x·W`` forward, ``xᵀ·dz`` and (except the first layer) ``dz·Wᵀ``
    backward. Nothing else, so no framework on this BLAS can be faster.
``PyTorch``
    eager ``torch.nn.Sequential`` with ``torch.optim.SGD`` and a random batch gather, with
    ``torch.set_num_threads`` set to the BLAS thread count; skipped when torch is missing.
``scikit-learn``
    ``MLPClassifier(solver="sgd")`` for one epoch through ``partial_fit``; skipped when
    scikit-learn is missing.

Systems are measured interleaved (A B C A B C ...) in one process, so that drift of the
machine (frequency, other load) hits all of them alike, after one warm-up run each; the
report gives medians, and each ratio is taken within a round before the median over rounds
(see :func:`paired_ratio`). Results go to stdout as Markdown; ``--json FILE`` also writes them
with the machine, the library versions, the BLAS and the seed.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.configs import LEARNING_RATE, MOMENTUM, Config, resolve  # noqa: E402
from benchmarks.threads import compare as compare_threads  # noqa: E402
from benchmarks.threads import markdown_lines as threads_markdown  # noqa: E402

#: Steps of the warm-up run of each system (fewer when a measurement has fewer steps).
WARMUP_STEPS = 20
#: Pause before each measurement (s). An OpenBLAS or OpenMP pool keeps its threads spinning
#: for a while (~0.1 s) after its last call; without the pause they would steal the CPUs from
#: whichever system runs next (numpy and scipy each ship their own OpenBLAS, torch its OpenMP).
SETTLE_S = 0.3
SETTLE_QUICK_S = 0.02
#: Default time budget (s) for the timed rounds of one configuration. When the warm-up shows
#: that the planned steps would take longer, fewer steps are timed (never fewer than
#: MIN_STEPS) and ms/epoch is extrapolated; the memory-mapped configuration runs fewer rounds.
DEFAULT_BUDGET_S = 75.0
MIN_STEPS = 10
#: Default number of measurements of each system (full runs; ``--quick`` takes 2).
DEFAULT_REPEAT = 5
#: Environment variables worth reporting: they change what the BLAS does.
ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "GOTO", "BLIS_", "VECLIB_", "KMP_")
#: Rows of the memory-mapped data set written per chunk (the file is never built in memory).
MEMMAP_CHUNK_ROWS = 8192
#: At most this many steps are timed for the floor of the memory-mapped configuration.
MEMMAP_FLOOR_STEPS = 256


class Skipped(Exception):
    """A peer that cannot run here (not installed, or it failed to set up); the reason."""


# -- the machine --------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": available_cpus(),
        "python": platform.python_version(),
    }


def _library_owner(path: str) -> str:
    """Which package shipped a shared library, judged from its path."""
    lowered = path.replace("\\", "/").lower()
    for marker, owner in (
        ("/numpy", "numpy"),
        ("/scipy", "scipy"),
        ("/torch", "torch"),
        ("scikit_learn", "scikit-learn"),
        ("/sklearn", "scikit-learn"),
    ):
        if marker in lowered:
            return owner
    return os.path.basename(path)


def blas_info() -> dict:
    """The BLAS and OpenMP libraries loaded now: threadpoolctl's view, else numpy's build info."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"source": "numpy.show_config", "summary": _numpy_build_blas()}
    keep = (
        "user_api",
        "internal_api",
        "prefix",
        "version",
        "num_threads",
        "threading_layer",
        "architecture",
        "filepath",
    )
    libraries = []
    for pool in threadpool_info():
        entry = {k: pool.get(k) for k in keep if k in pool}
        entry["owner"] = _library_owner(str(pool.get("filepath", "")))
        libraries.append(entry)
    return {"source": "threadpoolctl", "libraries": libraries, "summary": _summarise(libraries)}


def _summarise(libraries: list[dict]) -> str:
    parts = []
    for lib in libraries:
        if lib.get("user_api") != "blas":
            continue
        details = ", ".join(
            str(x)
            for x in (lib.get("architecture"), lib.get("threading_layer"))
            if x not in (None, "", "unknown")
        )
        details = f"{details}, " if details else ""
        parts.append(
            f"{lib['owner']}: {lib.get('internal_api')} {lib.get('version')} "
            f"({details}{lib.get('num_threads')} threads)"
        )
    return "; ".join(parts) or _numpy_build_blas()


def blas_warnings(blas: dict) -> list[str]:
    """Known traps in the loaded BLAS libraries that distort or explain timings."""
    pools = {
        lib["owner"]: lib
        for lib in blas.get("libraries", [])
        if lib.get("user_api") == "blas" and lib.get("owner") in ("numpy", "scipy")
    }
    if len(pools) < 2:
        return []
    np_lib, sp_lib = pools["numpy"], pools["scipy"]
    if np_lib.get("filepath") == sp_lib.get("filepath"):
        return []
    if max(np_lib.get("num_threads") or 1, sp_lib.get("num_threads") or 1) <= 1:
        return []
    return [
        f"numpy and scipy each load their own BLAS ({np_lib.get('internal_api')} "
        f"{np_lib.get('version')} and {sp_lib.get('internal_api')} {sp_lib.get('version')}), "
        "each with its own thread pool: code alternating `np.matmul` and `scipy.linalg.blas` "
        "calls keeps both pools awake, and the idle threads of one spin on the CPUs the other "
        "needs"
    ]


def _numpy_build_blas() -> str:
    """A one-line summary of the BLAS numpy was built with (numpy.show_config)."""
    try:
        with redirect_stdout(io.StringIO()):
            config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"numpy: {blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode; read the printed text
        buffer = io.StringIO()
        try:
            with redirect_stdout(buffer):
                np.show_config()
        except Exception:
            return "unknown"
        lines = [ln.strip() for ln in buffer.getvalue().splitlines() if "blas" in ln.lower()]
        return "numpy: " + (" | ".join(lines[:3]) if lines else "unknown")


def blas_threads() -> int:
    """The thread count of numpy's BLAS (threadpoolctl), else the CPUs this process may use."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return available_cpus()
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    for pool in pools:
        if _library_owner(str(pool.get("filepath", ""))) == "numpy":
            return int(pool["num_threads"])
    return int(pools[0]["num_threads"]) if pools else available_cpus()


def load_average() -> float | None:
    """The 1-minute load average: above ~0 other processes compete for the CPUs."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def blas_env() -> dict[str, str]:
    """Environment variables that steer the BLAS or OpenMP (left alone, only reported)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}


def peer_versions() -> dict[str, str | None]:
    """Versions of the peers that import, ``None`` for the others (imports are cheap to retry)."""
    versions: dict[str, str | None] = {}
    for key, module in (("torch", "torch"), ("scikit-learn", "sklearn")):
        try:
            versions[key] = __import__(module).__version__
        except Exception:
            versions[key] = None
    return versions


# -- data ---------------------------------------------------------------------------------------
def _features(rng: np.random.Generator, n: int, config: Config) -> np.ndarray:
    dtype = config.np_dtype
    if config.sizes[0] <= 16:  # low-dimensional points, centred
        return rng.standard_normal((n, config.sizes[0]), dtype=dtype)
    return rng.random((n, config.sizes[0]), dtype=dtype)  # pixel-like intensities in [0, 1)


def _labels(X: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Labels of a fixed random linear teacher, so that there is something to learn."""
    centred = X - X.dtype.type(0.5) if X.shape[1] > 16 else X
    return np.argmax(centred @ teacher.astype(X.dtype), axis=1).astype(np.int64)


def make_data(config: Config, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic samples for ``config``, from a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((config.sizes[0], config.n_classes))
    X = _features(rng, n, config)
    return X, _labels(X, teacher)


def make_memmap_data(
    config: Config, n: int, seed: int, directory: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """Write ``n`` samples to ``directory/X.npy`` chunk by chunk; return them memory-mapped."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((config.sizes[0], config.n_classes))
    path = os.path.join(directory, "X.npy")
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=config.np_dtype, shape=(n, config.sizes[0])
    )
    y = np.empty(n, dtype=np.int64)
    for start in range(0, n, MEMMAP_CHUNK_ROWS):
        stop = min(n, start + MEMMAP_CHUNK_ROWS)
        chunk = _features(rng, stop - start, config)
        out[start:stop] = chunk
        y[start:stop] = _labels(chunk, teacher)
    out.flush()
    del out
    return np.load(path, mmap_mode="r"), y, path


@dataclass
class Workload:
    """What every system of one configuration trains on."""

    config: Config
    X: np.ndarray
    y: np.ndarray
    seed: int
    threads: int

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every full batch of the data, in order, as contiguous slices (views, no gather)."""
        b = self.batch_size
        return [
            (self.X[i * b : (i + 1) * b], self.y[i * b : (i + 1) * b])
            for i in range(len(self.X) // b)
        ]


def build_model(config: Config, seed: int):
    """chainrule's model for ``config``: Dense layers, the last one giving logits."""
    import nn

    n_layers = len(config.sizes) - 1
    layers = [
        nn.Dense(n_in, n_out, activation=config.activation if i < n_layers - 1 else None)
        for i, (n_in, n_out) in enumerate(zip(config.sizes[:-1], config.sizes[1:], strict=True))
    ]
    return nn.Sequential(*layers, seed=seed, dtype=config.np_dtype)


def _chainrule_training(config: Config, seed: int):
    import losses
    import optim

    model = build_model(config, seed)
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    return model, losses.CrossEntropy(), optimizer


# -- the systems --------------------------------------------------------------------------------
class System:
    """One way of training; ``run(steps)`` trains on the first ``steps`` batches' samples."""

    key = ""
    label = ""
    peer = False

    def setup(self, work: Workload) -> None:
        raise NotImplementedError

    def run(self, steps: int) -> None:
        raise NotImplementedError


class Fit(System):
    """chainrule ``model.fit`` for one epoch over the first ``steps × batch`` samples."""

    key = "fit"
    label = "chainrule fit"

    def __init__(self, X: np.ndarray | None = None, key: str = "", label: str = "") -> None:
        self._X = X
        self.key = key or self.key
        self.label = label or self.label

    def setup(self, work: Workload) -> None:
        self.model, self.loss, self.optimizer = _chainrule_training(work.config, work.seed)
        self.X = work.X if self._X is None else self._X
        self.y = work.y
        self.batch_size = work.batch_size

    def run(self, steps: int) -> None:
        m = steps * self.batch_size
        self.model.fit(
            self.X[:m],
            self.y[:m],
            loss=self.loss,
            optimizer=self.optimizer,
            epochs=1,
            batch_size=self.batch_size,
            shuffle=True,
            progress=False,
        )


class ByHand(System):
    """chainrule's layer API step by step over pre-sliced batches."""

    key = "by_hand"
    label = "chainrule by hand"

    def setup(self, work: Workload) -> None:
        self.model, self.loss, self.optimizer = _chainrule_training(work.config, work.seed)
        self.model.train()
        self.model.needs_input_grad = False  # only ∇θ is needed
        self.batches = work.batches()

    def run(self, steps: int) -> None:
        model, loss, optimizer = self.model, self.loss, self.optimizer
        for xb, yb in self.batches[:steps]:
            model.zero_grad()
            pred = model.forward(xb)
            loss.forward(pred, yb)
            model.backward(loss.backward())
            optimizer.step()


class GemmFloor(System):
    """Only the matrix products of each training step, in numpy, into preallocated outputs."""

    key = "floor"
    label = "GEMM floor"

    def setup(self, work: Workload) -> None:
        config, b = work.config, work.batch_size
        dtype = config.np_dtype
        rng = np.random.default_rng(work.seed)
        shapes = list(zip(config.sizes[:-1], config.sizes[1:], strict=True))
        self.W = [
            (rng.standard_normal((i, o)) * math.sqrt(2.0 / i)).astype(dtype) for i, o in shapes
        ]
        self.dW = [np.empty_like(W) for W in self.W]
        self.z = [np.empty((b, o), dtype=dtype) for _, o in shapes]
        # ∂L/∂z per layer: the last one is given, the others are written by dz·Wᵀ
        self.dz = [np.empty((b, o), dtype=dtype) for _, o in shapes]
        self.dz[-1][...] = rng.standard_normal(self.dz[-1].shape) / b
        self.xs = [xb for xb, _ in work.batches()]

    def run(self, steps: int) -> None:
        W, dW, z, dz = self.W, self.dW, self.z, self.dz
        last = len(W) - 1
        for x in self.xs[:steps]:
            inp = x
            for layer in range(last + 1):  # forward: z = x·W
                np.matmul(inp, W[layer], out=z[layer])
                inp = z[layer]
            for layer in range(last, -1, -1):  # backward: ∂W = xᵀ·dz, ∂x = dz·Wᵀ
                layer_in = x if layer == 0 else z[layer - 1]
                np.matmul(layer_in.T, dz[layer], out=dW[layer])
                if layer:
                    np.matmul(dz[layer], W[layer].T, out=dz[layer - 1])


class Torch(System):
    """PyTorch eager: ``nn.Sequential`` of Linear and activations, ``optim.SGD``."""

    key = "torch"
    label = "PyTorch eager"
    peer = True

    def setup(self, work: Workload) -> None:
        try:
            import torch
        except Exception as err:  # ImportError, or a broken installation
            raise Skipped(f"torch not importable ({type(err).__name__})") from None
        config = work.config
        torch.set_num_threads(work.threads)
        dtype = torch.float64 if config.np_dtype == np.float64 else torch.float32
        activation = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}[config.activation]
        # the same initial weights as chainrule's model (W is (in, out), torch's (out, in))
        reference = build_model(config, work.seed)
        modules = []
        dense = reference.layers
        for i, layer in enumerate(dense):
            linear = torch.nn.Linear(layer.n_in, layer.n_out, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.data.T)))
                linear.bias.copy_(torch.from_numpy(layer.b.data.copy()))
            modules.append(linear)
            if i < len(dense) - 1:
                modules.append(activation())
        self.torch = torch
        self.model = torch.nn.Sequential(*modules)
        self.model.train()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM
        )
        self.criterion = torch.nn.CrossEntropyLoss()
        self.X = torch.from_numpy(work.X)
        self.y = torch.from_numpy(work.y)
        self.generator = torch.Generator().manual_seed(work.seed)
        self.batch_size = work.batch_size

    def run(self, steps: int) -> None:
        b = self.batch_size
        X, y, model = self.X, self.y, self.model
        optimizer, criterion = self.optimizer, self.criterion
        order = self.torch.randperm(steps * b, generator=self.generator)
        for s in range(steps):
            rows = order[s * b : (s + 1) * b]
            xb, yb = X.index_select(0, rows), y.index_select(0, rows)
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()


class Sklearn(System):
    """scikit-learn ``MLPClassifier(solver="sgd")``, one epoch per ``partial_fit``."""

    key = "sklearn"
    label = "scikit-learn"
    peer = True

    def setup(self, work: Workload) -> None:
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.neural_network import MLPClassifier
        except Exception as err:
            raise Skipped(f"scikit-learn not importable ({type(err).__name__})") from None
        config = work.config
        self.ConvergenceWarning = ConvergenceWarning
        self.model = MLPClassifier(
            hidden_layer_sizes=config.hidden,
            activation={"relu": "relu", "sigmoid": "logistic"}[config.activation],
            solver="sgd",
            alpha=0.0,
            batch_size=config.batch_size,
            learning_rate="constant",
            learning_rate_init=LEARNING_RATE,
            momentum=MOMENTUM,
            nesterovs_momentum=False,
            max_iter=1,
            shuffle=True,
            random_state=work.seed,
        )
        self.classes = np.arange(config.n_classes)
        self.X, self.y, self.batch_size = work.X, work.y, work.batch_size

    def run(self, steps: int) -> None:
        m = steps * self.batch_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            self.model.partial_fit(self.X[:m], self.y[:m], classes=self.classes)


def systems_for(config: Config) -> list[System]:
    return [Fit(), ByHand(), GemmFloor(), Torch(), Sklearn()]


# -- measuring ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How to measure: sizes (quick or full), rounds, seed, thread count, settle pause."""

    quick: bool
    repeat: int
    seed: int
    threads: int
    settle_s: float
    budget_s: float = DEFAULT_BUDGET_S
    memmap_samples: int | None = None


def _timed(system: System, steps: int, settle_s: float) -> float:
    time.sleep(settle_s)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        system.run(steps)
        return time.perf_counter() - start
    finally:
        gc.enable()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Entry:
    """One system in one configuration: how many steps one measurement runs, and the times."""

    system: System
    steps: int
    epoch_samples: int
    status: str = "ok"
    reason: str = ""
    times: list[float] = field(default_factory=list)


def set_up(entries: list[Entry], work: Workload) -> list[Entry]:
    """Set up every system; peers that cannot run are marked skipped (never an error)."""
    for entry in entries:
        try:
            entry.system.setup(work)
        except Skipped as why:
            entry.status, entry.reason = "skipped", str(why)
        except Exception as err:
            if not entry.system.peer:
                raise
            entry.status, entry.reason = "skipped", f"failed to set up: {type(err).__name__}: {err}"
    return [e for e in entries if e.status == "ok"]


def warm_up(entries: list[Entry], name: str) -> list[float]:
    """Run each system once, untimed (first-call allocations, lazy imports, thread pools).

    Returns each system's seconds per step in the warm-up: an upper estimate of its cost.
    """
    per_step = []
    for entry in entries:
        _log(f"[{name}] warm-up: {entry.system.label}")
        steps = min(entry.steps, WARMUP_STEPS)
        start = time.perf_counter()
        entry.system.run(steps)
        per_step.append((time.perf_counter() - start) / steps)
    return per_step


def steps_within_budget(steps: int, per_step: list[float], plan: Plan) -> int:
    """The largest step count ≤ ``steps`` whose rounds fit ``plan.budget_s`` (≥ MIN_STEPS)."""
    pauses = plan.repeat * len(per_step) * plan.settle_s
    cost = plan.repeat * sum(per_step)
    if cost <= 0:
        return steps
    fitting = int((plan.budget_s - pauses) / cost)
    return max(min(steps, MIN_STEPS), min(steps, fitting))


def measure(entries: list[Entry], rounds: int, settle_s: float, name: str) -> None:
    """Time the systems interleaved (A B C A B C ...), ``rounds`` times."""
    for r in range(rounds):
        _log(f"[{name}] round {r + 1}/{rounds}")
        for entry in entries:
            entry.times.append(_timed(entry.system, entry.steps, settle_s))


def summarise(entries: list[Entry], batch_size: int) -> dict[str, dict]:
    """Medians and the derived per-step, per-epoch and ratio figures of each system."""
    results: dict[str, dict] = {}
    for e in entries:
        result = {"label": e.system.label, "status": e.status, "peer": e.system.peer}
        if e.status != "ok":
            result["reason"] = e.reason
            results[e.system.key] = result
            continue
        median = statistics.median(e.times)
        timed_samples = e.steps * batch_size
        per_step = median / e.steps
        result.update(
            steps=e.steps,
            timed_samples=timed_samples,
            epoch_samples=e.epoch_samples,
            extrapolated=timed_samples != e.epoch_samples,
            times_s=e.times,
            median_s=median,
            us_per_step=per_step * 1e6,
            ms_per_epoch=per_step * e.epoch_samples / batch_size * 1e3,
            samples_per_s=timed_samples / median,
        )
        results[e.system.key] = result
    floor, fit = results.get("floor"), results.get("fit")
    for result in results.values():
        if result["status"] != "ok":
            continue
        if floor and floor["status"] == "ok":
            result["vs_floor"], result["vs_floor_range"] = paired_ratio(result, floor)
        if result["peer"] and fit and fit["status"] == "ok":
            result["peer_over_fit"], result["peer_over_fit_range"] = paired_ratio(result, fit)
    return results


def paired_ratio(a: dict, b: dict) -> tuple[float, list[float]]:
    """``a``'s time per step over ``b``'s, round by round: the median and [min, max].

    The systems of a round run within seconds of each other, so a slow spell of the machine
    slows both and cancels out of their ratio; the ratio of the two medians would mix rounds.
    """
    ratios = [
        (t_a / a["steps"]) / (t_b / b["steps"])
        for t_a, t_b in zip(a["times_s"], b["times_s"], strict=True)
    ]
    return statistics.median(ratios), [min(ratios), max(ratios)]


def run_standard(config: Config, plan: Plan) -> dict:
    steps = config.timed_steps(plan.quick)
    n_rows = steps * config.batch_size
    _log(f"[{config.name}] data: {n_rows:,} synthetic samples ({config.dtype})")
    X, y = make_data(config, n_rows, plan.seed)
    work = Workload(config, X, y, plan.seed, plan.threads)
    entries = [Entry(s, steps, config.n_samples) for s in systems_for(config)]
    running = set_up(entries, work)
    planned = steps
    steps = steps_within_budget(planned, warm_up(running, config.name), plan)
    if steps < planned:
        _log(f"[{config.name}] timing {steps} steps instead of {planned} (--budget)")
    for entry in running:
        entry.steps = steps
    measure(running, plan.repeat, plan.settle_s, config.name)
    return {
        **_describe(config),
        "planned_steps": planned,
        "timed_steps": steps,
        "timed_samples": steps * config.batch_size,
        "rounds": plan.repeat,
        "systems": summarise(entries, config.batch_size),
    }


def _describe(config: Config) -> dict:
    return {
        "name": config.name,
        "architecture": config.architecture,
        "activation": config.activation,
        "dtype": config.dtype,
        "batch_size": config.batch_size,
        "epoch_samples": config.n_samples,
        "summary": config.summary,
    }


# -- the memory-mapped configuration ------------------------------------------------------------
_STATUS_KEYS = ("VmRSS", "RssAnon", "RssFile")


def read_memory() -> dict[str, int] | None:
    """VmRSS, RssAnon and RssFile of this process in bytes (Linux), else None."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in _STATUS_KEYS:
            values[key] = int(rest.split()[0]) * 1024  # reported in kB
    return values if len(values) == len(_STATUS_KEYS) else None


class MemorySampler:
    """Sample /proc/self/status in a background thread and keep the peak of each value."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.before = read_memory()
        self.peak = dict(self.before) if self.before else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        now = read_memory()
        if now and self.peak is not None:
            for key, value in now.items():
                self.peak[key] = max(self.peak[key], value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        if self.before is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.before is not None:
            self._stop.set()
            self._thread.join()
            self._sample()


def run_memmap(config: Config, plan: Plan) -> dict:
    """fit on a memory-mapped .npy: peak anonymous memory growth, and time at two sizes."""
    b, seed, threads = config.batch_size, plan.seed, plan.threads
    samples = plan.memmap_samples
    if samples is None:
        samples = config.quick_steps * b if plan.quick else config.n_samples
    n_full = max(2, samples // (2 * b)) * 2 * b  # whole batches, and an even number of them
    n_half = n_full // 2
    data_bytes = n_full * config.sizes[0] * config.np_dtype.itemsize
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-") as directory:
        _log(f"[{config.name}] writing {n_full:,} samples ({data_bytes / 2**20:.0f} MiB) to .npy")
        X, y, path = make_memmap_data(config, n_full, seed, directory)
        work = Workload(config, X, y, seed, threads)
        full = Fit(X, key="fit", label="chainrule fit")
        half = Fit(X[:n_half], key="fit_half", label=f"chainrule fit, {n_half:,} samples")
        floor_steps = min(n_full // b, MEMMAP_FLOOR_STEPS)
        entries = [
            Entry(full, n_full // b, n_full),
            Entry(half, n_half // b, n_half),
            Entry(GemmFloor(), floor_steps, n_full),
        ]
        # the floor's batches are the first rows' slices, as many as it times
        work_floor = Workload(config, X[: floor_steps * b], y[: floor_steps * b], seed, threads)
        full.setup(work)
        half.setup(work)
        entries[2].system.setup(work_floor)
        warm_up(entries, config.name)
        _log(f"[{config.name}] memory during one full-size epoch of fit")
        time.sleep(plan.settle_s)
        with MemorySampler() as sampler:
            start = time.perf_counter()
            full.run(n_full // b)
            memory_epoch_s = time.perf_counter() - start
        # a round: a full and a half epoch of fit, the floor's steps, the pauses
        floor_s = memory_epoch_s * floor_steps / (n_full // b)
        round_s = 1.5 * memory_epoch_s + floor_s + len(entries) * plan.settle_s
        rounds = max(1, min(plan.repeat, int(plan.budget_s / round_s)))
        if rounds < plan.repeat:
            _log(f"[{config.name}] {rounds} rounds instead of {plan.repeat} (--budget)")
        measure(entries, rounds, plan.settle_s, config.name)
        results = summarise(entries, b)
        del X, work, work_floor, entries, full, half
        gc.collect()
    memory = _memory_report(sampler, data_bytes, memory_epoch_s)
    t_full, t_half = results["fit"]["median_s"], results["fit_half"]["median_s"]
    scaling = {
        "samples": [n_half, n_full],
        "ms_per_epoch": [t_half * 1e3, t_full * 1e3],
        "us_per_sample": [t_half / n_half * 1e6, t_full / n_full * 1e6],
        "time_ratio": t_full / t_half,
        "samples_ratio": n_full / n_half,
    }
    for key in ("torch", "sklearn", "by_hand"):
        results[key] = {
            "label": {"torch": Torch.label, "sklearn": Sklearn.label, "by_hand": ByHand.label}[key],
            "status": "not run",
            "peer": key != "by_hand",
            "reason": "the memory-mapped configuration measures fit only",
        }
    return {
        **_describe(replace(config, n_samples=n_full)),
        "planned_steps": n_full // b,
        "timed_steps": n_full // b,
        "timed_samples": n_full,
        "rounds": rounds,
        "data_bytes": data_bytes,
        "memory": memory,
        "scaling": scaling,
        "systems": results,
    }


def _memory_report(sampler: MemorySampler, data_bytes: int, epoch_s: float) -> dict:
    if sampler.before is None:
        return {"available": False, "reason": "/proc/self/status is not readable here"}
    growth = {k: sampler.peak[k] - sampler.before[k] for k in _STATUS_KEYS}
    return {
        "available": True,
        "before_bytes": sampler.before,
        "peak_bytes": sampler.peak,
        "peak_growth_bytes": growth,
        "anon_growth_fraction_of_data": growth["RssAnon"] / data_bytes,
        "sampling_interval_s": sampler.interval,
        "epoch_s": epoch_s,
    }


# -- the report ---------------------------------------------------------------------------------
SYSTEM_ORDER = ("fit", "fit_half", "by_hand", "floor", "torch", "sklearn")


def _num(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits and thousands separators."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{decimals}f}"


def _ratio(value: float | None, spread: list[float] | None = None) -> str:
    """``1.45×``, followed by the range over rounds when it is not a single value."""
    if value is None:
        return ""
    text = f"{value:.2f}×"
    if spread and f"{spread[0]:.2f}" != f"{spread[1]:.2f}":
        text += f" ({spread[0]:.2f}–{spread[1]:.2f})"
    return text


def markdown(report: dict) -> str:
    lines = ["# chainrule benchmark", ""]
    m, run = report["machine"], report["run"]
    lines += [
        f"- machine: {m['cpu']}, {m['cpu_count']} CPUs ({m['cpus_available']} available), "
        f"{m['platform']}, Python {m['python']}",
        f"- numpy {report['numpy']}, scipy {report['scipy']}; BLAS: {report['blas']['summary']}",
        f"- threads: {report['threads']} (numpy's BLAS; "
        f"torch.set_num_threads({report['threads']}))",
        "- peers: "
        + ", ".join(
            f"{name} {version}" if version else f"{name} not installed"
            for name, version in report["peers"].items()
        ),
    ]
    for note in report["blas_warnings"]:
        lines.append(f"- **BLAS warning**: {note}")
    if report["env"]:
        lines.append("- env: " + ", ".join(f"`{k}={v}`" for k, v in report["env"].items()))
    lines += [
        f"- run: {'--quick' if run['quick'] else 'full'}, medians of {run['repeat']} "
        f"interleaved measurements after a warm-up, each after a {run['settle_s']} s pause "
        f"(idle BLAS/OpenMP threads stop spinning), seed {report['seed']}; cross-entropy on "
        f"logits, SGD lr={LEARNING_RATE} momentum={MOMENTUM}; {run['wall_s']:.0f} s",
        f"- 1-minute load average at start and end: {run['load_average'][0]} and "
        f"{run['load_average'][1]} (this run adds about {report['threads']}; more means other "
        "processes compete for the CPUs and distort the timings)",
        "- **× floor** = time / GEMM-floor time (1.00× = nothing but the matrix products; lower "
        "is better). **peer ÷ fit** = peer time / chainrule fit time (above 1: chainrule is "
        "faster). Both are ratios of times from the same round, median over the rounds, with "
        "their range over the rounds in parentheses.",
        "- ms/epoch marked ~ is extrapolated: time per sample × epoch samples.",
        "",
        "| config | system | ms/epoch | µs/step | samples/s | × floor | peer ÷ fit |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for cfg in report["configs"]:
        name = f"{cfg['name']} ({cfg['architecture']}, {cfg['dtype']}, batch {cfg['batch_size']})"
        for key in SYSTEM_ORDER:
            r = cfg["systems"].get(key)
            if r is None:
                continue
            if r["status"] != "ok":
                lines.append(f"| {name} | {r['label']} | {r['status']}: {r['reason']} | | | | |")
                name = ""
                continue
            epoch = ("~" if r["extrapolated"] else "") + _num(r["ms_per_epoch"])
            lines.append(
                f"| {name} | {r['label']} | {epoch} | {_num(r['us_per_step'])} | "
                f"{r['samples_per_s']:,.0f} | "
                f"{_ratio(r.get('vs_floor'), r.get('vs_floor_range'))} | "
                f"{_ratio(r.get('peer_over_fit'), r.get('peer_over_fit_range'))} |"
            )
            name = ""
    lines += ["", "Timed per measurement:"]
    for cfg in report["configs"]:
        cut = (
            f", cut from {cfg['planned_steps']:,} to fit --budget {run['budget_s']:g} s"
            if cfg["timed_steps"] < cfg["planned_steps"]
            else ""
        )
        rounds = ""
        if cfg["rounds"] != run["repeat"]:
            rounds = f", {cfg['rounds']} round{'s' if cfg['rounds'] > 1 else ''}"
        lines.append(
            f"- {cfg['name']}: {cfg['timed_steps']:,} steps ({cfg['timed_samples']:,} samples"
            f"{cut}{rounds}) of a {cfg['epoch_samples']:,}-sample epoch; {cfg['summary']}"
        )
        if cfg["name"] == "tiny" and cfg["systems"].get("sklearn", {}).get("status") == "ok":
            lines.append(
                "  (scikit-learn's output layer for 2 classes is one logistic unit, not 2 logits)"
            )
    for cfg in report["configs"]:
        if "memory" in cfg:
            lines += ["", *_memmap_lines(cfg)]
    if report.get("threads_check"):
        rounds = len(report["threads_check"][0]["times"]["one"])
        lines += ["", *threads_markdown(report["threads_check"], rounds)]
    return "\n".join(lines) + "\n"


def _memmap_lines(cfg: dict) -> list[str]:
    mem, sc = cfg["memory"], cfg["scaling"]
    mib = 2**20
    lines = [
        f"Memory-mapped `{cfg['name']}`: a {cfg['data_bytes'] / mib:,.1f} MiB `.npy` "
        f"({cfg['timed_samples']:,} samples × {cfg['architecture'].split('-')[0]} "
        f"{cfg['dtype']}) read through `np.load(mmap_mode='r')`.",
        "",
    ]
    if mem["available"]:
        g, before = mem["peak_growth_bytes"], mem["before_bytes"]
        lines.append(
            f"- anonymous memory (RssAnon) before fit {before['RssAnon'] / mib:,.1f} MiB, peak "
            f"growth during one epoch {g['RssAnon'] / mib:,.1f} MiB = "
            f"{100 * mem['anon_growth_fraction_of_data']:.1f}% of the data size "
            f"(VmRSS peak growth {g['VmRSS'] / mib:,.1f} MiB; RssFile {g['RssFile'] / mib:,.1f} "
            f"MiB are pages of the mapped file, not copies; sampled every "
            f"{mem['sampling_interval_s'] * 1e3:.0f} ms)"
        )
    else:
        lines.append(f"- memory: not measured ({mem['reason']})")
    lines.append(
        f"- epoch time: {sc['ms_per_epoch'][0]:,.1f} ms for {sc['samples'][0]:,} samples, "
        f"{sc['ms_per_epoch'][1]:,.1f} ms for {sc['samples'][1]:,} "
        f"({sc['us_per_sample'][0]:.2f} vs {sc['us_per_sample'][1]:.2f} µs/sample): "
        f"{sc['time_ratio']:.2f}× the time for {sc['samples_ratio']:.2f}× the samples"
    )
    return lines


# -- the command line ---------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Time chainrule's training against the GEMM floor, PyTorch and "
        "scikit-learn, and print a Markdown table.",
    )
    parser.add_argument(
        "--config",
        action="append",
        metavar="NAME",
        help="a configuration to run (repeatable, or a comma-separated list): "
        "tiny, mnist, wide, sigmoid, memmap; default: all",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=None,
        help=f"measurements per system (default {DEFAULT_REPEAT}, 2 with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and few steps (a smoke test, not a result)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--thread-rounds",
        type=int,
        default=None,
        help="rounds of the default-threads vs one-thread comparison in fresh processes "
        "(default 5, 0 with --quick; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, models and shuffling")
    parser.add_argument(
        "--budget",
        type=_positive_float,
        default=DEFAULT_BUDGET_S,
        metavar="SECONDS",
        help="time for the timed rounds of one configuration; beyond it fewer steps are "
        f"timed and ms/epoch is extrapolated (default {DEFAULT_BUDGET_S:g})",
    )
    parser.add_argument(
        "--memmap-samples",
        type=_positive_int,
        default=None,
        help="samples of the memory-mapped data set (default 60,000; 2,048 with --quick)",
    )
    args = parser.parse_args(argv)
    try:
        args.configs = resolve(args.config)
    except ValueError as err:
        parser.error(str(err))
    if args.repeat is None:
        args.repeat = 2 if args.quick else DEFAULT_REPEAT
    if args.thread_rounds is None:
        args.thread_rounds = 0 if args.quick else DEFAULT_REPEAT
    return args


def run(args: argparse.Namespace) -> dict:
    """Run the chosen configurations; return the report (what ``--json`` writes)."""
    import scipy

    plan = Plan(
        quick=args.quick,
        repeat=args.repeat,
        seed=args.seed,
        threads=blas_threads(),
        settle_s=SETTLE_QUICK_S if args.quick else SETTLE_S,
        budget_s=args.budget,
        memmap_samples=args.memmap_samples,
    )
    threads = plan.threads
    started, load_start = time.time(), load_average()
    configs = []
    for config in args.configs:
        runner = run_memmap if config.memmap else run_standard
        configs.append(runner(config, plan))
    threads_check = compare_threads(args.thread_rounds) if args.thread_rounds > 0 else None
    blas = blas_info()  # after the runs: lists the libraries the peers loaded too
    return {
        "machine": machine_info(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": blas,
        "blas_warnings": blas_warnings(blas),
        "threads": threads,
        "env": blas_env(),
        "peers": peer_versions(),
        "seed": args.seed,
        "run": {
            "quick": args.quick,
            "repeat": args.repeat,
            "learning_rate": LEARNING_RATE,
            "momentum": MOMENTUM,
            "warmup_steps": WARMUP_STEPS,
            "settle_s": plan.settle_s,
            "budget_s": plan.budget_s,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "wall_s": time.time() - started,
            "load_average": [load_start, load_average()],
        },
        "configs": configs,
        "threads_check": threads_check,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    text = markdown(report)
    report["markdown"] = text
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
