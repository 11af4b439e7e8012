"""INSR's claim on 1-D advection: more accurate than grids at equal memory, but slower.

Run: ``python scripts/bench/bench_insr_advection.py``. Sizes are environment variables,
because the defaults must fit a shared 2-core machine: ``PHYSIM_BENCH_ITERATIONS``
(iterations per INSR step, default 50; the paper: up to 20000 with early stopping),
``PHYSIM_BENCH_POINTS`` (random points per iteration, 500; paper 5000),
``PHYSIM_BENCH_STEPS`` (time steps of 0.05, 240: t = 12), ``PHYSIM_BENCH_THREADS``
(torch threads, 1) and ``PHYSIM_BENCH_DEVICE`` (``cpu``).

The problem (Chen et al. 2023): ``u_t + 0.25 u_x = 0`` on ``[-2, 2]``, the Gaussian
``exp(-0.5 (x + 1.5)^2 / 0.1^2)``, to ``t = 12``; the exact solution ``u0(x - 0.25 t)``
from :class:`physim.solvers.GaussianPulse`. Compared in one run:

- INSR: the 901-parameter SIREN (20 wide, 2 hidden layers), midpoint rule, dt 0.05,
  Adam lr 1e-4 from the previous weights with reduce-on-plateau, initial fit 2500
  iterations at lr 3e-3 (CPU-sized, see above). Error on a 1024-point grid.
- grid schemes of :class:`physim.solvers.Advection1D` (upwind, Lax-Wendroff, Fourier +
  RK4), periodic, at Courant number 0.5 (their stable step; dt 0.05 would violate the
  CFL bound at these resolutions), on ``N`` points for ``N`` in a sweep that includes
  ``N = 901`` (equal memory: grid values = network parameters). Error on their grid.

Reported: relative L2 error at ``t = 12`` and wall time for each; then the two axes as
ratios from the same run: error at equal memory, and for each scheme the error of the
finest sweep resolution that runs within INSR's wall time (equal wall time).
"""

from __future__ import annotations

import math
import os
import time

import torch

from physim.models import SIREN
from physim.solvers import Advection1D, GaussianPulse
from physim.tasks import INSR, AdvectionProblem

VELOCITY, DT = 0.25, 0.05
SCHEMES = ("upwind", "lax_wendroff", "spectral")
SWEEP = (128, 256, 512, 901, 2048, 4096, 8192, 16384)


def env(name: str, default: str) -> str:
    return os.environ.get(f"PHYSIM_BENCH_{name}", default)


def exact(x: torch.Tensor, t: float) -> torch.Tensor:
    return GaussianPulse(1).profile(x - VELOCITY * t)


def relative_l2(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float((pred.double() - truth).norm() / truth.norm())


def run_insr(steps: int, iterations: int, points: int, device: str) -> dict:
    torch.manual_seed(0)
    task = INSR(
        {"u": SIREN(1, 1, 20, 2)},
        AdvectionProblem(velocity=VELOCITY),
        dt=DT,
        lr=1e-4,
        max_iterations=iterations,
        initial_lr=3e-3,
        initial_iterations=2500,
        factor=0.5,
        patience=300,
        num_points=points,
    ).to(device)
    x = Advection1D(num_points=1024).coordinates()["x"]
    t_end = DT * steps  # frames at t = 0 and the end only
    frames = torch.stack([exact(x, t)[None] for t in (0.0, t_end)]).float()
    task.configure_reference(frames[0], [x], [0.0, t_end])
    start = time.perf_counter()
    task.rollout(frames[None])
    seconds = time.perf_counter() - start
    return {
        "method": "INSR (SIREN 20x2)",
        "memory": task.num_parameters,
        "seconds": seconds,
        "error": task.exact_error(),
        "initial_error": relative_l2(task.frames[0][0], exact(x, 0.0)),
    }


def run_grid(scheme: str, n: int, t_end: float) -> dict:
    solver = Advection1D(VELOCITY, num_points=n, scheme=scheme, dtype="float64")
    x = solver.coordinates()["x"]
    dt_stable = 0.5 * solver.grid_spacing / VELOCITY
    steps = math.ceil(t_end / dt_stable)
    dt = t_end / steps
    y = solver.encode(exact(x, 0.0)[None, None])
    start = time.perf_counter()
    for k in range(steps):
        y = solver.step(y, k * dt, dt).y
    seconds = time.perf_counter() - start
    error = relative_l2(solver.decode(y)[0, 0], exact(x, t_end))
    return {
        "method": scheme,
        "memory": n,
        "seconds": seconds,
        "error": error,
        "steps": steps,
    }


def main() -> None:
    torch.set_num_threads(int(env("THREADS", "1")))
    steps = int(env("STEPS", "240"))
    iterations = int(env("ITERATIONS", "50"))
    points = int(env("POINTS", "500"))
    t_end = DT * steps
    print(f"advection to t = {t_end:g}; INSR: {iterations} iter/step, {points} points")
    grid = [run_grid(s, n, t_end) for s in SCHEMES for n in SWEEP]
    insr = run_insr(steps, iterations, points, env("DEVICE", "cpu"))
    print(f"\n{'method':<22}{'memory':>8}{'steps':>8}{'seconds':>10}{'rel L2':>11}")
    for row in [insr, *grid]:
        print(
            f"{row['method']:<22}{row['memory']:>8}{row.get('steps', steps):>8}"
            f"{row['seconds']:>10.3f}{row['error']:>11.2e}"
        )
    print(f"\nINSR initial fit error: {insr['initial_error']:.2e}")
    print("\nequal memory (N = 901 grid values vs 901 parameters):")
    for scheme in SCHEMES:
        row = next(r for r in grid if r["method"] == scheme and r["memory"] == 901)
        print(
            f"  {scheme:<14} error / INSR error = {row['error'] / insr['error']:8.3g}"
            f"   INSR time / grid time = {insr['seconds'] / row['seconds']:8.3g}"
        )
    print(f"equal wall time (finest N within INSR's {insr['seconds']:.1f} s):")
    for scheme in SCHEMES:
        rows = [r for r in grid if r["method"] == scheme]
        within = [r for r in rows if r["seconds"] <= insr["seconds"]] or rows[:1]
        best = max(within, key=lambda r: r["memory"])
        print(
            f"  {scheme:<14} N = {best['memory']:>6}: error {best['error']:.2e}"
            f" = {best['error'] / insr['error']:.3g} x INSR's"
        )


if __name__ == "__main__":
    main()
