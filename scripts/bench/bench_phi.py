"""ETDRK4's coefficients for a new step size: the phi functions by series (the default
for a real ``L``) against Kassam & Trefethen's contour integral, side by side.

1. Building the coefficients of one ``dt`` (KS, N = 256, float64; Burgers, N = 256):
   what an adaptive step size pays for every new ``dt`` (step doubling: two builds per
   attempted step, ``dt`` and ``dt / 2``), next to one ETDRK4 step at batch 1.
2. Whole adaptive runs (PI controller with step doubling, KS to t = 20 and Burgers
   shock formation to t = 0.5, batch 1 and 16): wall time of each method, their
   ratio, steps, and how far the two final states are apart (round-off of the
   coefficients, grown by the dynamics).
3. The same runs (series) with the PI controller's step-size grid
   (``dt_grid_ratio = 2 ** (1 / 8)``) against without: wall time, attempted steps,
   coefficient builds and the error against a float64 reference (constant step).

Run: ``OMP_NUM_THREADS=1 python scripts/bench/bench_phi.py``. The two methods
alternate within each repeat and the median is reported, so a shared machine's load
falls on both alike.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from physim.solvers import Burgers1D, KuramotoSivashinsky1D
from physim.solvers.schemes import ETDRK4
from physim.timestepping import ConstantStep, PIDController, integrate

METHODS = ("contour", "auto")
#: The adaptive runs: (PDE, end time, batch).
RUNS = [
    (pde, t1, batch)
    for pde, t1 in (("ks", 20.0), ("burgers", 0.5))
    for batch in (1, 16)
]
REPEATS = 5


def median_seconds(work: Callable[[], object], number: int) -> float:
    """Median over ``REPEATS`` of the mean time of ``number`` calls."""
    work()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(number):
            work()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def solver(pde: str, method: str, error_estimate: bool = True):
    scheme = functools.partial(ETDRK4, phi_method=method)
    if pde == "ks":
        return KuramotoSivashinsky1D(
            256, 64.0, scheme=scheme, error_estimate=error_estimate, dtype="float64"
        )
    return Burgers1D(
        256, 0.01, 1.0, scheme=scheme, error_estimate=error_estimate, dtype="float64"
    )


def initial(pde: str, batch: int) -> torch.Tensor:
    x = torch.arange(256, dtype=torch.float64) / 256
    shift = torch.arange(batch, dtype=torch.float64)[:, None] / max(batch, 1)
    if pde == "ks":
        u = torch.cos(2 * math.pi * (x + shift)) + 0.5 * torch.sin(4 * math.pi * x)
    else:
        u = torch.sin(2 * math.pi * (x + shift))
    return u[:, None]


def build_seconds(scheme: ETDRK4) -> float:
    """Median time of ``scheme.build`` for a new ``dt`` at every call."""
    counter = iter(range(10**9))
    return median_seconds(lambda: scheme.build(0.05 + 1e-9 * next(counter)), 200)


def step_seconds(pde: str) -> float:
    stepper = solver(pde, "auto", error_estimate=False)
    y = stepper.encode(initial(pde, 1))
    return median_seconds(lambda: stepper.step(y, 0.0, 1e-3), 200)


def build_times() -> None:
    print("1. coefficients of one new dt vs one step (batch 1), microseconds")
    print("| PDE | build: contour | build: series | ratio | one ETDRK4 step |")
    print("|---|---|---|---|---|")
    for pde in ("ks", "burgers"):
        c, s = (
            build_seconds(solver(pde, method, error_estimate=False).scheme) * 1e6
            for method in METHODS
        )
        step = step_seconds(pde) * 1e6
        print(f"| {pde} | {c:.0f} | {s:.0f} | {c / s:.2f}x | {step:.0f} |")


def adaptive_run(
    pde: str, method: str, batch: int, t1: float, grid: float | None = None
) -> dict[str, Any]:
    """Median wall time, final state, attempted steps and coefficient builds of one
    adaptive run."""
    y0 = solver(pde, method).encode(initial(pde, batch))
    out: dict[str, Any] = {}
    builds = [0]
    build = ETDRK4.build

    def counted(scheme: ETDRK4, dt: float) -> Any:
        builds[0] += 1
        return build(scheme, dt)

    def run() -> None:
        builds[0] = 0
        controller = PIDController(1e-6, 1e-6, dt_grid_ratio=grid)
        stepper = solver(pde, method)  # a fresh coefficient cache, as a new run has
        sol = integrate(stepper, controller, y0, 0.0, t1)
        out["final"], out["steps"] = sol.ys, sol.stats["n_steps"]
        out["builds"] = builds[0]

    ETDRK4.build = counted
    try:
        out["seconds"] = median_seconds(run, 1)
    finally:
        ETDRK4.build = build
    return out


def reference(pde: str, batch: int, t1: float) -> torch.Tensor:
    stepper = solver(pde, "auto", error_estimate=False)
    y0 = stepper.encode(initial(pde, batch))
    return integrate(stepper, ConstantStep(1e-3), y0, 0.0, t1).ys


def grid_runs() -> None:
    print("\n3. PI step-size grid (ratio 2^(1/8)) vs none, series, rtol = atol = 1e-6")
    print(
        "| run | batch | seconds: none / grid | speed-up | attempted steps | "
        "coefficient builds | max error vs reference: none / grid |"
    )
    print("|---|---|---|---|---|---|---|")
    for pde, t1, batch in RUNS:
        a, b = (
            adaptive_run(pde, "auto", batch, t1, grid) for grid in (None, 2 ** (1 / 8))
        )
        ref = reference(pde, batch, t1)
        errors = [float((r["final"] - ref).abs().max()) for r in (a, b)]
        print(
            f"| {pde} to t = {t1:g} | {batch} | {a['seconds']:.3f} / "
            f"{b['seconds']:.3f} | {a['seconds'] / b['seconds']:.2f}x | "
            f"{a['steps']} / {b['steps']} | {a['builds']} / {b['builds']} | "
            f"{errors[0]:.1e} / {errors[1]:.1e} |"
        )


def adaptive_runs() -> None:
    print("\n2. adaptive runs (PI, step doubling, rtol = atol = 1e-6), seconds")
    print(
        "| run | batch | contour | series | speed-up | attempted steps | "
        "max rel. difference of the final states |"
    )
    print("|---|---|---|---|---|---|---|")
    for pde, t1, batch in RUNS:
        a, b = (adaptive_run(pde, method, batch, t1) for method in METHODS)
        diff = (a["final"] - b["final"]).abs().max() / a["final"].abs().max()
        c, s = a["seconds"], b["seconds"]
        print(
            f"| {pde} to t = {t1:g} | {batch} | {c:.3f} | {s:.3f} | {c / s:.2f}x | "
            f"{a['steps']} / {b['steps']} | {float(diff):.1e} |"
        )


def main() -> None:
    torch.set_num_threads(1)
    build_times()
    adaptive_runs()
    grid_runs()


if __name__ == "__main__":
    main()
