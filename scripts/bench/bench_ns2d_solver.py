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
"""

from __future__ import annotations

import os
import platform
import statistics
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


if __name__ == "__main__":
    main()
