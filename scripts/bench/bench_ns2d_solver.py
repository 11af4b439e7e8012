"""Speed of one NavierStokes2D step against the FFTs it needs, as a markdown table.

Run: ``python scripts/bench/bench_ns2d_solver.py`` (about 1-2 minutes on 2 cores).
Set ``PHYSIM_BENCH_THREADS`` to fix torch's intra-op threads (default: torch's own
choice); ``PHYSIM_BENCH_DEVICE=cuda`` to time on a GPU.

For N in {64, 256}, batch B in {1, 64} and float32/float64 it reports

- the CFL step ``dt = 0.5 dx / max|u|`` of a developed FNO-setting flow (a GRF initial
  state, nu = 1e-3, FNO forcing, run to t = 30 at 64^2 and resampled to N),
- the time of one ``step`` (min and median over interleaved repeats), steps/s and the
  simulated time units per second (batch and trajectory-time units),
- the time of the transforms alone: the same number and sizes of ``irfft2``/``rfft2``
  calls the step stands for (2 x irfft2 of [B, 4, N, N/2+1] and 2 x rfft2 of [B, N, N]),
  and the ratio step / transforms (target <= 1.5). The solver skips the columns that the
  2/3 rule zeroes in the inverse transform, so the ratio can fall below 1.
- the time of ``max_speed`` (called once per step by ``CFLController``).

``--jax-cfd``: instead, the cost per right-hand-side evaluation against jax-cfd 0.2.1's
spectral ``NavierStokes2D`` (``jax_cfd.spectral``, 2/3 filter, no forcing on either
side), 256^2, float64, batch 1 and 16, one thread each: physim's IMEX step / 2 (it
evaluates the advection twice) against jax-cfd's jitted ``explicit_terms`` (one
evaluation, vmapped over the batch) and its ``crank_nicolson_rk4`` step / 5 (five
evaluations). jax-cfd runs in a subprocess of ``PHYSIM_JAX_PYTHON`` (an interpreter
with jax-cfd, e.g. ``/tmp/jaxenv/bin/python``; see
``scripts/bench/bench_fv_jaxcfd.py``), taking turns with physim for
``PHYSIM_BENCH_ROUNDS`` rounds (default 3); CPU seconds (``time.process_time``), the
fastest block of each.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from rich.progress import Progress

from physim.solvers import GaussianRandomField, NavierStokes2D, spectral_resample
from physim.timestepping import CFLController, integrate

COURANT = 0.5
CASES = [
    (n, b, d)
    for n in (64, 256)
    for b in (1, 64)
    for d in (torch.float32, torch.float64)
]


def developed_state(device: torch.device) -> torch.Tensor:
    """A typical FNO-setting vorticity: a GRF advanced to t = 30 (64^2, float64)."""
    grf = GaussianRandomField(64)
    u0 = grf.sample(1, generator=torch.Generator().manual_seed(0))
    solver = NavierStokes2D(64, 1e-3, dtype=torch.float64, device=device)
    sol = integrate(
        solver,
        CFLController(COURANT, 0.05),
        solver.encode(u0),
        0.0,
        30.0,
        save_fn=solver.decode,
    )
    return sol.ys[:, -1]


def interleaved(
    fns: list[Callable[[], object]], number: int, repeats: int, sync: Callable[[], None]
) -> list[tuple[float, float]]:
    """(min, median) seconds per call of each fn, timed in alternating blocks."""
    samples: list[list[float]] = [[] for _ in fns]
    for fn in fns:  # warm-up (plans, allocator)
        fn()
    sync()
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            sync()
            out.append((time.perf_counter() - start) / number)
    return [(min(s), statistics.median(s)) for s in samples]


def main() -> None:
    if "PHYSIM_BENCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["PHYSIM_BENCH_THREADS"]))
    device = torch.device(os.environ.get("PHYSIM_BENCH_DEVICE", "cpu"))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    u64 = developed_state(device)

    rows = []
    with Progress() as progress:
        task = progress.add_task("benchmark", total=len(CASES))
        for n, batch, dtype in CASES:
            solver = NavierStokes2D(n, 1e-3, dtype=dtype, device=device)
            u = spectral_resample(u64, n).repeat(batch, 1, 1, 1)
            y = solver.encode(u)
            dt = COURANT * solver.grid_spacing / float(solver.max_speed(y).max())
            stack = torch.randn(
                batch, 4, n, n // 2 + 1, dtype=solver.complex_dtype, device=device
            )
            real = torch.randn(batch, n, n, dtype=dtype, device=device)

            def transforms(stack=stack, real=real, n=n):
                for _ in range(2):
                    torch.fft.irfft2(stack, s=(n, n))
                    torch.fft.rfft2(real)

            def step(solver=solver, y=y, dt=dt):
                solver.step(y, 0.0, dt)

            def speed(solver=solver, y=y):
                solver.max_speed(y)

            work = batch * n * n
            big = work >= 64 * 256 * 256 and dtype == torch.float64
            number = max(1, min(200, 2_000_000 // work))
            repeats = 3 if big else 7
            (s_min, s_med), (f_min, _), (m_min, _) = interleaved(
                [step, transforms, speed], number, repeats, sync
            )
            rows.append(
                (
                    n,
                    batch,
                    str(dtype).removeprefix("torch."),
                    dt,
                    s_min,
                    s_med,
                    f_min,
                    m_min,
                )
            )
            progress.advance(task)

    print()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"device {device}, {torch.get_num_threads()} thread(s), courant {COURANT}"
    )
    print()
    print(
        "| N | B | dtype | dt (CFL) | step ms (min / median) | steps/s | time units/s "
        "| traj x time/s | FFTs ms | step / FFTs | max_speed ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, batch, dtype, dt, s_min, s_med, f_min, m_min in rows:
        rate = 1.0 / s_min
        print(
            f"| {n} | {batch} | {dtype} | {dt:.2e} "
            f"| {1e3 * s_min:.3f} / {1e3 * s_med:.3f} "
            f"| {rate:.1f} | {rate * dt:.3g} | {rate * dt * batch:.3g} "
            f"| {1e3 * f_min:.3f} | {s_min / f_min:.2f} | {1e3 * m_min:.3f} |"
        )


# ------------------------------------------------------------------ vs jax-cfd
JAX_CASES = [(256, 1), (256, 16)]
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def best_cpu_seconds(fn: Callable[[], object], number: int, repeats: int) -> float:
    """The fastest of ``repeats`` blocks of ``number`` calls, CPU seconds per call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best


# Run with ``python -c`` by jax-cfd's interpreter (no torch there): prints the CPU
# seconds of one explicit_terms call and one crank_nicolson_rk4 step as JSON.
JAX_CASE = """
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax_cfd.base import grids
from jax_cfd.spectral import equations, time_stepping

n, batch = int(sys.argv[1]), int(sys.argv[2])
grid = grids.Grid((n, n), domain=((0, 1), (0, 1)))
equation = equations.NavierStokes2D(1e-3, grid, smooth=True)
w = np.random.default_rng(0).standard_normal((batch, n, n))
w_hat = jnp.fft.rfftn(jnp.asarray(w), axes=(-2, -1))
fns = {
    "rhs": jax.jit(jax.vmap(equation.explicit_terms)),
    "step": jax.jit(jax.vmap(time_stepping.crank_nicolson_rk4(equation, 1e-3))),
}
number, times = (10 if batch == 1 else 1), {}
for name, fn in fns.items():
    fn(w_hat).block_until_ready()
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(number):
            fn(w_hat).block_until_ready()
        best = min(best, (time.process_time() - start) / number)
    times[name] = best
print(json.dumps(times))
"""


def compare_with_jax_cfd() -> None:
    python = os.environ.get("PHYSIM_JAX_PYTHON", sys.executable)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XLA_FLAGS": XLA_FLAGS}
    rounds = int(os.environ.get("PHYSIM_BENCH_ROUNDS", "3"))
    torch.set_num_threads(1)
    rows = []
    for n, batch in JAX_CASES:
        solver = NavierStokes2D(n, 1e-3, forcing=None, dtype=torch.float64)
        u = torch.randn(batch, 1, n, n, generator=torch.Generator().manual_seed(0))
        y = solver.encode(u.double())
        ours, theirs = float("inf"), {"rhs": float("inf"), "step": float("inf")}
        number = 10 if batch == 1 else 1

        def step(solver: NavierStokes2D = solver, y: torch.Tensor = y) -> None:
            solver.step(y, 0.0, 1e-3)

        for _ in range(rounds):  # taking turns
            ours = min(ours, best_cpu_seconds(step, number, 3) / 2)
            reply = subprocess.run(
                [python, "-c", JAX_CASE, str(n), str(batch)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            times = json.loads(reply.stdout.strip().splitlines()[-1])
            theirs = {k: min(v, times[k]) for k, v in theirs.items()}
        rows.append((n, batch, ours, theirs["rhs"], theirs["step"] / 5))
    print(
        "\n| N | B | physim IMEX step / 2 | jax-cfd explicit_terms | jax-cfd "
        "CN-RK4 step / 5 | physim / explicit_terms | physim / (step / 5) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, batch, ours, rhs, per_stage in rows:
        print(
            f"| {n} | {batch} | {1e3 * ours:.2f} ms | {1e3 * rhs:.2f} ms "
            f"| {1e3 * per_stage:.2f} ms | {ours / rhs:.2f} | {ours / per_stage:.2f} |"
        )
    print(f"\nCPU time per evaluation, float64, one thread, best of {rounds} rounds.")


if __name__ == "__main__":
    if "--jax-cfd" in sys.argv:
        compare_with_jax_cfd()
    else:
        main()
