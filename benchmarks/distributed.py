"""Data-parallel training over MPI: throughput, all-reduce cost and a cost model for clusters.

    python -m benchmarks.distributed                 # mnist and wide, 1, 2 and 4 ranks
    python -m benchmarks.distributed --config mnist --ranks 1 2

For each configuration and rank count it launches ``mpiexec -n N python -m mpi4py -m
benchmarks.distributed --worker ...`` with one BLAS thread per rank, and each launch measures

- ``fit``: samples/s of ``model.fit(..., comm=MPI.COMM_WORLD)`` (the blocking all-reduce);
- a step loop written like fit's, timing the all-reduce of ∇θ and its share of a step, once
  with one blocking ``Allreduce`` after backward and once starting a non-blocking
  ``Iallreduce`` of each layer's slice of ∇θ as soon as backward has written it (waiting for
  all before the optimizer step), as PyTorch DDP's buckets do.

On one machine the ranks share cores and memory, so expect no speed-up: the point is the cost
model printed at the end. From the 1-rank compute time per sample ``c`` and the bytes of θ,
a step of global batch ``B`` on ``N`` machines with bandwidth ``β`` takes about

    compute  B/N · c
    ring all-reduce  2(N−1)/N · |θ| bytes / β
    no overlap: compute + all-reduce;  overlap: compute + max(0, all-reduce − backward)

with backward taken as 2/3 of the compute (two of the three matrix products per layer).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.configs import CONFIGS, LEARNING_RATE, MOMENTUM

STEPS = {"mnist": 40, "wide": 6}  # timed steps per measurement (after 2 warm-up steps)


# -- inside one rank -----------------------------------------------------------------------------


def _layer_slices(model) -> list[tuple[object, slice | None]]:
    """Each layer with the slice of θ (and ∇θ) its parameters occupy, or None."""
    slices, offset = [], 0
    for layer in model.layers:
        size = sum(p.size for p in layer.parameters())
        slices.append((layer, slice(offset, offset + size) if size else None))
        offset += size
    return slices


def _step_loop(config, X, y, comm, steps: int, overlap: bool) -> dict:
    """fit's step by hand, timing the all-reduce; returns seconds per step and in all-reduce."""
    from mpi4py import MPI

    import losses
    import optim
    from benchmarks.run import build_model

    model = build_model(config, seed=0)
    loss = losses.CrossEntropy()
    opt = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    grad, slices = model.theta_grad, _layer_slices(model)
    b, rank, size = config.batch_size, comm.Get_rank(), comm.Get_size()
    mine = slice(rank * b // size, (rank + 1) * b // size)
    reduce_time = total = 0.0
    for step in range(steps + 2):
        xb = X[step * b : (step + 1) * b][mine]
        yb = y[step * b : (step + 1) * b][mine]
        comm.Barrier()
        start = time.perf_counter()
        loss.forward(model.forward(xb), yb)
        g = loss.backward()
        g *= len(xb) / b  # the global batch's denominator
        model.zero_grad()
        if overlap:  # Iallreduce each layer's slice as soon as its backward wrote it
            requests = []
            for i in range(len(slices) - 1, -1, -1):
                layer, part = slices[i]
                layer.needs_input_grad, layer.grad_is_zero = i > 0, True
                g = layer.backward(g)
                layer.needs_input_grad, layer.grad_is_zero = True, False
                if part is not None:
                    requests.append(comm.Iallreduce(MPI.IN_PLACE, grad[part], op=MPI.SUM))
            waited = time.perf_counter()
            MPI.Request.Waitall(requests)
        else:
            model.needs_input_grad = False
            model.backward(g)
            model.needs_input_grad = True
            waited = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, grad, op=MPI.SUM)
        reduced = time.perf_counter()
        opt.step()
        end = time.perf_counter()
        if step >= 2:
            reduce_time += reduced - waited
            total += end - start
    return {"step": total / steps, "allreduce": reduce_time / steps}


def worker(name: str) -> None:
    """One rank's measurements; rank 0 prints them as one JSON line."""
    from mpi4py import MPI

    import losses
    import optim
    from benchmarks.run import build_model, make_data

    comm = MPI.COMM_WORLD
    config = CONFIGS[name]
    steps = STEPS[name]
    X, y = make_data(config, (steps + 2) * config.batch_size, seed=0)
    result = {"config": name, "ranks": comm.Get_size()}
    for overlap in (False, True):
        result["overlap" if overlap else "blocking"] = _step_loop(
            config, X, y, comm, steps, overlap
        )
    model = build_model(config, seed=0)
    opt = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    fit = {"loss": losses.CrossEntropy(), "optimizer": opt, "progress": False, "comm": comm}
    model.fit(X[: 2 * config.batch_size], y[: 2 * config.batch_size], epochs=1, **fit)  # warm
    comm.Barrier()
    start = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=config.batch_size, shuffle=False, **fit)
    result["fit_samples_per_s"] = len(X) / (time.perf_counter() - start)
    result["theta_bytes"] = model.theta.nbytes
    buffer = np.ones_like(model.theta)  # the all-reduce alone, every rank ready
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(20):
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
    result["allreduce_alone"] = (time.perf_counter() - start) / 20
    if comm.Get_rank() == 0:
        print(json.dumps(result), flush=True)


# -- the driver ----------------------------------------------------------------------------------


def launch(name: str, ranks: int) -> dict:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "mpi4py"]
    command += ["-m", "benchmarks.distributed", "--worker", name]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cost_model(config, per_sample: float, theta_bytes: int) -> list[str]:
    """Projected samples/s on N machines (ring all-reduce), without and with overlap."""
    lines = []
    b = config.batch_size
    for gbits in (10, 100):
        beta = gbits * 1e9 / 8  # bytes/s
        for n in (8, 64):
            compute = b / n * per_sample
            comm = 2 * (n - 1) / n * theta_bytes / beta
            plain = b / (compute + comm)
            hidden = b / (compute + max(0.0, comm - 2 / 3 * compute))
            lines.append(
                f"  {n:3d} nodes {gbits:4d} Gb/s: compute {compute * 1e3:7.2f} ms, all-reduce "
                f"{comm * 1e3:6.2f} ms: {plain:8.0f} samples/s ({plain * per_sample:5.1f}×), "
                f"overlapped {hidden:8.0f} ({hidden * per_sample:5.1f}×)"
            )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["mnist", "wide"], choices=sorted(STEPS))
    parser.add_argument("--ranks", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    for name in args.config:
        config = CONFIGS[name]
        print(f"{name} ({config.architecture}, batch {config.batch_size}, {config.dtype}):")
        base = None
        for ranks in args.ranks:
            r = launch(name, ranks)
            mb = r["theta_bytes"] / 1e6
            for mode in ("blocking", "overlap"):
                m = r[mode]
                print(
                    f"  {ranks} rank(s) {mode:8s}: step {m['step'] * 1e3:7.2f} ms "
                    f"({config.batch_size / m['step']:7.0f} samples/s), all-reduce "
                    f"{m['allreduce'] * 1e3:6.2f} ms = {m['allreduce'] / m['step']:5.1%} of a step"
                    + (f", {m['allreduce'] * 1e3 / mb:.3f} ms/MB" if ranks > 1 else "")
                )
            print(f"  {ranks} rank(s) fit:      {r['fit_samples_per_s']:7.0f} samples/s")
            if ranks > 1:
                alone = r["allreduce_alone"]
                print(
                    f"  {ranks} rank(s) all-reduce alone: {alone * 1e3:.3f} ms, "
                    f"{alone / mb * 1e3:.3f} ms/MB"
                )
            if ranks == 1:
                base = r
        if base is not None:
            per_sample = base["blocking"]["step"] / config.batch_size
            mb = base["theta_bytes"] / 1e6
            print(f"  compute {per_sample * 1e6:.1f} µs/sample (1 rank), |θ| = {mb:.2f} MB")
            print("\n".join(cost_model(config, per_sample, base["theta_bytes"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
