"""Solver benchmarks of issue 4, side by side in one run.

1. KS at equal accuracy: physim's ETDRK4 batched over 64 trajectories against scipy
   ``solve_ivp(method="Radau")`` (the route of the published KS data) one trajectory at
   a time, both against a tight ETDRK4 reference (float64, dt = 1e-3). scipy runs at
   ``rtol = atol = 1e-9`` (the published setting) on ``PHYSIM_BENCH_SCIPY`` trajectories
   (default 4, each timed alone); ETDRK4 runs at the largest step of a halving ladder
   whose error is at most scipy's. Reported: wall time per trajectory and the ratio.
2. ``pid`` against ``constant`` at equal error on each PDE: the PI controller (step
   doubling) at a tolerance, then the smallest constant-step count whose error is at
   most the PI controller's. Reported: steps (PI: attempted, with their 3x cost of
   step doubling) and wall times.
3. Generation time of each default dataset (``python scripts/generate.py data=<name>``
   into a temporary folder), with ``--generate``.
4. The cost of one KS step (N = 256, batch 64, float64) under each scheme against the
   transforms it needs alone (ETDRK4: 10 real FFTs of length N, IMEX: 6), with
   ``--step-cost`` (alone: ``--step-cost-only``).

Run: ``OMP_NUM_THREADS=1 python scripts/bench/bench_solvers.py [--generate]
[--step-cost]``. Solver
timings are CPU seconds of this (single-threaded) process, so other jobs on a shared
machine disturb them little; the ratios are measured in the same run. Generation is
timed as wall and CPU time of the subprocess.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

from physim.solvers import Burgers1D, KuramotoSivashinsky1D, RandomSines
from physim.solvers.schemes import ETDRK4, IMEXCrankNicolsonHeun, SchemeFactory
from physim.timestepping import ConstantStep, PIDController, integrate

N, L, T_KS = 256, 64.0, 5.0
BATCH = 64
SCIPY_RUNS = int(os.environ.get("PHYSIM_BENCH_SCIPY", "4"))


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """``fn()`` and the CPU seconds of this process it took (robust to other jobs on
    a shared machine, unlike wall time; single-threaded here, so equal to wall time
    on an idle machine)."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Relative L2 error per trajectory (rows)."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return (a - b).norm(dim=1) / b.norm(dim=1)


def solve(pde, controller, u0: torch.Tensor, t1: float):
    return integrate(pde, controller, pde.encode(u0), 0.0, t1, save_fn=pde.decode)


# ----------------------------------------------------------------- 1. KS vs scipy
def ks_rhs(num_points: int, length: float) -> Callable[[float, np.ndarray], np.ndarray]:
    """The same semi-discretisation in numpy (2/3 rule, Nyquist derivative cut)."""
    m = np.fft.rfftfreq(num_points, 1.0 / num_points)
    k = 2 * np.pi * m / length
    mask = (3 * m < num_points).astype(float)
    linear, derivative = k**2 - k**4, -0.5j * k * mask

    def rhs(t: float, u: np.ndarray) -> np.ndarray:
        v = np.fft.rfft(u)
        w = np.fft.irfft(v * mask, n=num_points)
        return np.fft.irfft(linear * v + derivative * np.fft.rfft(w * w), n=num_points)

    return rhs


def bench_ks_vs_scipy() -> None:
    u0 = RandomSines(N).sample(
        BATCH, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    pde = KuramotoSivashinsky1D(N, L, dtype=torch.float64)
    reference = solve(pde, ConstantStep(5e-4), u0, T_KS).ys[:, -1]

    ours = {}  # dt -> (max error over the batch, seconds per trajectory)
    for dt in [0.05, 0.025, 0.0125, 0.00625, 0.003125, 0.0015625]:
        solve(pde, ConstantStep(dt), u0[:2], T_KS)  # coefficients built, warm
        ys, seconds = timed(lambda dt=dt: solve(pde, ConstantStep(dt), u0, T_KS).ys)
        ours[dt] = (float(rel_l2(ys[:, -1], reference).max()), seconds / BATCH)

    rhs = ks_rhs(N, L)
    theirs = {}  # tol -> (max error over the runs, mean seconds per trajectory)
    for tol in [1e-6, 1e-7, 1e-8, 1e-9]:
        errors, times = [], []
        for i in range(SCIPY_RUNS):
            start = time.process_time()
            sol = solve_ivp(
                rhs, (0.0, T_KS), u0[i, 0].numpy(), method="Radau", rtol=tol, atol=tol
            )
            times.append(time.process_time() - start)
            final = torch.from_numpy(sol.y[:, -1])[None, None]
            errors.append(float(rel_l2(final, reference[i : i + 1])[0]))
        theirs[tol] = (max(errors), sum(times) / len(times))

    print("## KS at equal accuracy (t = 5, N = 256, L = 64, float64)")
    print(
        f"Reference: ETDRK4 dt = 5e-4. physim: batch of {BATCH}; scipy Radau: "
        f"{SCIPY_RUNS} trajectories one at a time (rtol = atol = tol).\n"
    )
    print("| physim ETDRK4 dt | max rel. L2 error | CPU ms / trajectory |")
    print("|---|---|---|")
    for dt, (error, seconds) in ours.items():
        print(f"| {dt} | {error:.2e} | {seconds * 1e3:.2f} |")
    print()
    print(
        "| scipy Radau tol | max rel. L2 error | CPU s / trajectory | cheapest ETDRK4 "
        "at least as accurate | CPU ms / trajectory | speed-up |"
    )
    print("|---|---|---|---|---|---|")
    for tol, (error, seconds) in theirs.items():
        matches = [(s, dt) for dt, (e, s) in ours.items() if e <= error]
        if matches:
            best, dt = min(matches)
            cells = f"dt = {dt} | {best * 1e3:.2f} | {seconds / best:.0f}x"
        else:
            cells = "none on the ladder | - | -"
        print(f"| {tol:.0e} | {error:.2e} | {seconds:.3f} | {cells} |")
    print()


# ----------------------------------------------------------------- 2. pid vs constant
def equal_error_constant(
    pde, u0: torch.Tensor, t1: float, exact: torch.Tensor, target: float, start: int
) -> tuple[int, float, float]:
    """The smallest constant-step count (5% ladder) with error <= target."""
    n = max(1, start)
    while True:
        ys, seconds = timed(lambda n=n: solve(pde, ConstantStep(t1 / n), u0, t1).ys)
        error = float(rel_l2(ys[:, -1], exact).max())
        if error <= target:
            return n, error, seconds
        # Fourth order: jump close to the answer, then creep up.
        guess = n * (error / target) ** 0.25
        n = max(n + 1, int(math.ceil(min(guess, 2 * n) * 0.98)))


def compare(
    name: str,
    adaptive,
    fixed,
    u0: torch.Tensor,
    t1: float,
    exact: torch.Tensor,
    tolerances: list[float],
) -> None:
    print(f"### {name}")
    print(
        "| tol | PI steps (rejected) | PI error | PI CPU [s] | constant steps "
        "| constant error | constant CPU [s] | steps ratio | time ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tol in tolerances:
        controller = PIDController(rtol=tol, atol=tol)
        sol, pid_seconds = timed(lambda c=controller: solve(adaptive, c, u0, t1))
        error = float(rel_l2(sol.ys[:, -1], exact).max())
        steps = int(sol.stats["n_steps"])
        n, c_error, c_seconds = equal_error_constant(
            fixed, u0, t1, exact, error, steps // 2
        )
        print(
            f"| {tol:.0e} | {steps} ({int(sol.stats['n_rejected'])}) | {error:.2e} "
            f"| {pid_seconds:.3f} | {n} | {c_error:.2e} | {c_seconds:.3f} "
            f"| {n / steps:.2f} | {c_seconds / pid_seconds:.2f} |"
        )
    print()


def cole_hopf_fft(
    x: torch.Tensor, t: float, viscosity: float, waves: list[tuple[float, int]]
) -> torch.Tensor:
    """Burgers from sum_j a_j sin(n_j x) on [0, 2 pi) by Cole-Hopf (fine FFT grid)."""
    fine = 4096
    grid = torch.arange(fine, dtype=torch.float64) * 2 * math.pi / fine
    antiderivative = sum(-a / n * torch.cos(n * grid) for a, n in waves)
    log_phi = -antiderivative / (2 * viscosity)
    modes = torch.fft.rfft(torch.exp(log_phi - log_phi.max()))
    m = torch.arange(fine // 2 + 1, dtype=torch.float64)
    modes = modes * torch.exp(-viscosity * m**2 * t)
    phi = torch.fft.irfft(modes, n=fine)
    phi_x = torch.fft.irfft(1j * m * modes, n=fine)
    return (-2 * viscosity * phi_x / phi)[:: fine // len(x)]


def bench_pid_vs_constant() -> None:
    print("## PI controller vs constant step at equal error (float64)")
    print("PI steps are attempted steps; each costs 3 ETDRK4 steps (step doubling).\n")
    for label, waves, t1 in [
        ("Burgers, sin(x), nu = 0.1, t = 3", [(1.0, 1)], 3.0),
        (
            "Burgers, fast transient sin(x) + 0.5 sin(16 x), nu = 0.1, t = 2",
            [(1.0, 1), (0.5, 16)],
            2.0,
        ),
    ]:
        adaptive = Burgers1D(
            256, 0.1, 2 * math.pi, error_estimate=True, dtype="float64"
        )
        fixed = Burgers1D(256, 0.1, 2 * math.pi, dtype="float64")
        x = fixed.coordinates()["x"]
        u0 = sum(a * torch.sin(n * x) for a, n in waves)[None, None]
        exact = cole_hopf_fft(x, t1, 0.1, waves)[None, None]
        compare(label, adaptive, fixed, u0, t1, exact, [1e-4, 1e-6, 1e-8])

    u0 = RandomSines(N).sample(
        8, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    fixed = KuramotoSivashinsky1D(N, L, dtype=torch.float64)
    adaptive = KuramotoSivashinsky1D(N, L, dtype=torch.float64, error_estimate=True)
    exact = solve(fixed, ConstantStep(1e-3), u0, T_KS).ys[:, -1]
    compare(
        "KS, 8 trajectories, L = 64, t = 5",
        adaptive,
        fixed,
        u0,
        T_KS,
        exact,
        [1e-4, 1e-6, 1e-8],
    )
    print(
        "Advection: no PI row. Its schemes have no error estimate (the exact shift "
        "has no time error; upwind/Lax-Wendroff are CFL-bounded, error dominated by "
        "space).\n"
    )


# ----------------------------------------------------------------- 3. generation
def bench_generation() -> None:
    print("## Generation time of the default datasets")
    print("| dataset | wall time [s] | CPU time [s] |")
    print("|---|---|---|")
    for name in ["ks1d", "burgers1d", "advection1d"]:
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "PHYSIM_DATA_DIR": folder}
            start = time.perf_counter()
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [
                    sys.executable,
                    "scripts/generate.py",
                    f"data={name}",
                    "progress=false",
                    f"hydra.run.dir={folder}/hydra",
                ],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
            print(f"| {name} | {wall:.1f} | {used:.1f} |")
    print()


# ----------------------------------------------------------------- 4. step cost
def bench_step_cost(rounds: int = 15, number: int = 100) -> None:
    """One KS step against its transforms alone, CPU time, fastest of interleaved
    blocks (a step's element-wise work is what the scheme adds to the FFTs)."""
    u0 = RandomSines(N).sample(
        BATCH, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    schemes: dict[str, tuple[SchemeFactory, int]] = {
        "ETDRK4": (ETDRK4, 10),
        "IMEX CN/Heun": (IMEXCrankNicolsonHeun, 6),
    }
    print(f"## One KS step vs its transforms (N = {N}, batch {BATCH}, float64)")
    print("| scheme | step ms | its FFTs alone ms | step / FFTs |")
    print("|---|---|---|---|")
    for name, (scheme, count) in schemes.items():
        pde = KuramotoSivashinsky1D(N, L, scheme=scheme, dtype=torch.float64)
        y = pde.encode(u0)
        u_hat = torch.fft.rfft(y)

        def step(pde=pde, y=y) -> None:
            pde.step(y, 0.0, 0.05)

        def transforms(count=count, u_hat=u_hat, y=y) -> None:
            for _ in range(count // 2):
                torch.fft.irfft(u_hat, n=N)
                torch.fft.rfft(y)

        best = {"step": math.inf, "ffts": math.inf}
        for fn in (step, transforms):
            fn()
        for _ in range(rounds):
            for key, fn in (("step", step), ("ffts", transforms)):
                _, seconds = timed(lambda fn=fn: [fn() for _ in range(number)])
                best[key] = min(best[key], seconds / number)
        print(
            f"| {name} | {best['step'] * 1e3:.3f} | {best['ffts'] * 1e3:.3f} "
            f"| {best['step'] / best['ffts']:.2f} |"
        )
    print()


def main() -> None:
    torch.set_num_threads(int(os.environ.get("PHYSIM_BENCH_THREADS", "1")))
    print(f"torch threads: {torch.get_num_threads()}\n")
    if "--step-cost-only" in sys.argv:
        bench_step_cost()
        return
    bench_ks_vs_scipy()
    bench_pid_vs_constant()
    if "--generate" in sys.argv:
        bench_generation()
    if "--step-cost" in sys.argv:
        bench_step_cost()


if __name__ == "__main__":
    main()
