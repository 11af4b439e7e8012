"""Accuracy per cost on the Pythagorean problem to t = 10: Hermite over eta against
IAS15 over its tolerance, as a markdown table and one plot.

Run: ``python scripts/bench/bench_nbody_accuracy.py [out_dir]`` (about 30 s; the plot
goes to ``out_dir/nbody_accuracy.png``, default ``/tmp/physim-bench``).

For each setting: the relative energy error |E(10) / E(0) - 1|, the force evaluations
(Hermite: force-and-jerk) and the CPU time of the integration (minimum of
``REPEATS``; CPU time of this process, since the machine is shared and wall time
would count other processes' turns). IAS15's evaluations are counted in a separate
run (REBOUND's ``additional_forces`` hook), its time in an uncounted one. REBOUND's
``epsilon`` is IAS15's tolerance on the relative size of the last term of its series.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from physim.nbody import Hermite, ReboundIntegrator, pythagorean
from physim.nbody import _kernels as K

T_END = 10.0
REPEATS = 3
ETAS = np.logspace(-4, -1, 13)
EPSILONS = np.logspace(-12, -1, 12)


def cpu_time(run) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def hermite_point(eta: float) -> tuple[float, int, float]:
    system = pythagorean()
    hermite = Hermite(system.masses)
    state = hermite.start(system.y)
    advance = hermite.advance(state, 0.0, T_END, eta)
    seconds = min(
        cpu_time(lambda: hermite.advance(state, 0.0, T_END, eta))
        for _ in range(REPEATS)
    )
    return energy_error(hermite.phase_space(advance.state)), advance[1], seconds


def ias15_point(epsilon: float) -> tuple[float, int, float]:
    system = pythagorean()
    counted = ReboundIntegrator(system.masses, "ias15")
    sim = counted.start(system.y)
    evaluations = counted.advance(sim, 0.0, T_END, epsilon).force_evaluations
    timed = ReboundIntegrator(system.masses, "ias15", count_forces=False)
    times = []
    for _ in range(REPEATS):
        fresh = timed.start(system.y)  # setting up is not timed
        times.append(
            cpu_time(lambda sim=fresh: timed.advance(sim, 0.0, T_END, epsilon))
        )
    seconds = min(times)
    return energy_error(counted.phase_space(sim)), evaluations, seconds


def energy_error(y: np.ndarray) -> float:
    system = pythagorean()
    e0 = K.energy(system.y, system.masses, system.g)
    return abs(K.energy(y, system.masses, system.g) / e0 - 1)


def plot(points: dict[str, list[tuple[float, float, int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for (name, rows), marker in zip(points.items(), "os", strict=True):
        _, error, evaluations, seconds = map(np.array, zip(*rows, strict=True))
        error = np.maximum(error, 1e-16)
        axes[0].loglog(evaluations, error, marker=marker, label=name)
        axes[1].loglog(seconds, error, marker=marker, label=name)
    axes[0].set(xlabel="force evaluations", ylabel="|E(10) / E(0) - 1|")
    axes[1].set(xlabel="CPU time [s] (shared machine)")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.suptitle("Pythagorean problem to t = 10: energy error against cost")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(out_dir: Path) -> None:
    points = {
        "Hermite (eta)": [(eta, *hermite_point(eta)) for eta in ETAS],
        "IAS15 (epsilon)": [(eps, *ias15_point(eps)) for eps in EPSILONS],
    }
    print("| method | parameter | energy error | force evals | CPU time [ms] |")
    print("|---|---:|---:|---:|---:|")
    for name, rows in points.items():
        for parameter, error, evaluations, seconds in rows:
            print(
                f"| {name.split()[0]} | {parameter:.2g} | {error:.2e} | {evaluations} "
                f"| {1e3 * seconds:.3g} |"
            )
    path = out_dir / "nbody_accuracy.png"
    plot(points, path)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/physim-bench"))
