"""Accuracy of the default ns2d data (64^2, float32, CFL 0.5) vs a 256^2 float64 solve.

Run: ``python scripts/bench/bench_ns2d_accuracy.py`` (about 3-4 minutes on one core;
``PHYSIM_BENCH_THREADS`` fixes torch's thread count, ``PHYSIM_BENCH_DEVICE=cuda`` uses a
GPU).

The same GRF initial states (nu = 1e-3, FNO forcing, the FNO paper's setting; sampled at
256^2 and resampled to 64^2) are solved

- ``ref``: at 256^2 in float64 with ``CFLController(0.4)``,
- ``data``: at 64^2 as the generated data set is (float32, ``CFLController(0.5)``),
- ``data_float64``: the same in float64 (isolates float32 round-off),
- ``same_dt``: at 64^2, float64, ``CFLController(0.1)``, which takes the reference's
  steps (dx is 4x larger), so its difference to ``ref`` is the 64^2 spatial error,
- ``half_dt``: at 64^2, float64, ``CFLController(0.05)``; second order in time, so
  ``|same_dt - half_dt| * 4/3`` estimates the reference's own time-stepping error (the
  spatial error being negligible, as ``same_dt`` shows),

all with ``dt_max = 0.05``; 256^2 solutions are brought to 64^2 with
``spectral_resample``. The table gives the relative L2 error
``||w - w_ref|| / ||w_ref||`` at t = 10, ..., 50, mean over the trajectories (max in
brackets).
"""

from __future__ import annotations

import os
import time

import torch
from rich.progress import Progress

from physim.solvers import GaussianRandomField, NavierStokes2D, spectral_resample
from physim.timestepping import CFLController, integrate

NUM_TRAJECTORIES = 2
SAVE_AT = [10.0, 20.0, 30.0, 40.0, 50.0]
VISCOSITY = 1e-3


def solve(num_points, dtype, courant, u0, device, progress, label):
    """Solve from the 256^2 initial state ``u0``; return [B, T, 1, 64, 64] float64."""
    solver = NavierStokes2D(num_points, VISCOSITY, dtype=dtype, device=device)
    task = progress.add_task(label, total=len(SAVE_AT))
    start = time.perf_counter()
    sol = integrate(
        solver,
        CFLController(courant, dt_max=0.05),
        solver.encode(spectral_resample(u0, num_points)),
        0.0,
        SAVE_AT[-1],
        save_at=SAVE_AT,
        save_fn=lambda y: spectral_resample(solver.decode(y), 64).double().cpu(),
        on_save=lambda i, t: progress.update(task, completed=i + 1),
    )
    seconds = time.perf_counter() - start
    return sol.ys, sol.stats["n_accepted"], seconds


def relative_errors(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, T] relative L2 errors of a against b."""
    return (a - b).flatten(2).norm(dim=-1) / b.flatten(2).norm(dim=-1)


def main() -> None:
    if "PHYSIM_BENCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["PHYSIM_BENCH_THREADS"]))
    device = torch.device(os.environ.get("PHYSIM_BENCH_DEVICE", "cpu"))
    grf = GaussianRandomField(256)
    u0 = grf.sample(NUM_TRAJECTORIES, generator=torch.Generator().manual_seed(0))

    runs = {
        "ref": (256, torch.float64, 0.4),
        "data": (64, torch.float32, 0.5),
        "data_float64": (64, torch.float64, 0.5),
        "same_dt": (64, torch.float64, 0.1),
        "half_dt": (64, torch.float64, 0.05),
    }
    results = {}
    with Progress() as progress:
        for name, (n, dtype, courant) in runs.items():
            results[name] = solve(n, dtype, courant, u0, device, progress, name)

    ref = results["ref"][0]
    print()
    print(
        f"nu={VISCOSITY}, FNO forcing, {NUM_TRAJECTORIES} GRF trajectories, "
        f"{torch.get_num_threads()} thread(s), device {device}"
    )
    print()
    print(
        "| run | N | dtype | courant | steps | seconds | "
        + " | ".join(f"rel L2 t={t:g}" for t in SAVE_AT)
        + " |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(SAVE_AT))
    for name, (n, dtype, courant) in runs.items():
        ys, steps, seconds = results[name]
        if name == "ref":
            cells = ["(reference)"] * len(SAVE_AT)
        else:
            err = relative_errors(ys, ref)
            cells = [
                f"{m:.2e} ({x:.2e})"
                for m, x in zip(
                    err.mean(0).tolist(), err.max(0).values.tolist(), strict=True
                )
            ]
        print(
            f"| {name} | {n} | {str(dtype).removeprefix('torch.')} | {courant} "
            f"| {steps} "
            f"| {seconds:.1f} | " + " | ".join(cells) + " |"
        )
    estimate = relative_errors(results["same_dt"][0], results["half_dt"][0]) * 4 / 3
    print()
    print(
        "estimated time-stepping error of the reference at t=50: "
        f"{float(estimate[:, -1].mean()):.2e}"
    )


if __name__ == "__main__":
    main()
