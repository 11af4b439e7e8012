"""Hermite force-and-jerk evaluations per second against REBOUND IAS15's force
evaluations per second, on the same system in one run, as a markdown table.

Run: ``python scripts/bench/bench_nbody_speed.py`` (about 30 s).

Systems: the Pythagorean problem to t = 10 (close encounters) and one system of the
reference paper's distribution (seed 0) over 10 RL steps. Hermite runs at eta = 1e-3,
IAS15 at its default epsilon = 1e-9, each advanced in one call (Hermite: the compiled
loop after a warm-up call, so numba's compilation is not timed).

IAS15's evaluations are counted in a separate run through REBOUND's
``additional_forces`` hook (a Python call per evaluation), and its rate is that count
over the time of an uncounted run. A Hermite evaluation computes the acceleration
*and* its time derivative (the jerk, ~1.7x the arithmetic of an acceleration alone)
and is followed by a predictor/corrector; an IAS15 evaluation is an acceleration
inside its Gauss-Radau iteration. Timings are CPU times of this process (single-threaded
both), the minimum of ``REPEATS`` alternating runs;
the machine is shared, so compare the ratio, measured in the same run, rather than
the absolute rates.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from physim.nbody import (
    Hermite,
    NBodySystem,
    NBodyUnits,
    ReboundIntegrator,
    paper_initial_conditions,
    pythagorean,
)

REPEATS = 20
ETA, EPSILON = 1e-3, 1e-9


def timed(run: Callable[[], object]) -> float:
    """CPU time of ``run`` in this process: on a shared machine, wall time also counts
    the time the scheduler gives to other processes, which hits long runs hardest."""
    start = time.process_time()
    run()
    return time.process_time() - start


def rates(system: NBodySystem, t1: float) -> tuple[int, float, int, float]:
    """Hermite's and IAS15's evaluation counts to ``t1`` and their rates (per s).

    The two are timed alternately, ``REPEATS`` times each, and the fastest run of each
    counts, so that both see the same load on a shared machine. Setting up a system
    (Hermite's first acceleration, a REBOUND simulation) is not timed.
    """
    hermite = Hermite(system.masses, system.g)
    state = hermite.start(system.y)
    n_hermite = hermite.advance(state, 0.0, t1, ETA).force_evaluations  # compiles
    counted = ReboundIntegrator(system.masses, "ias15", system.g)
    n_ias15 = counted.advance(
        counted.start(system.y), 0.0, t1, EPSILON
    ).force_evaluations
    ias15 = ReboundIntegrator(system.masses, "ias15", system.g, count_forces=False)
    t_hermite, t_ias15 = [], []
    for _ in range(REPEATS):
        t_hermite.append(timed(lambda: hermite.advance(state, 0.0, t1, ETA)))
        sim = ias15.start(system.y)
        t_ias15.append(timed(lambda sim=sim: ias15.advance(sim, 0.0, t1, EPSILON)))
    return n_hermite, n_hermite / min(t_hermite), n_ias15, n_ias15 / min(t_ias15)


def main() -> None:
    cases = {
        "Pythagorean, t = 10": (pythagorean(), 10.0),
        "Pythagorean, t = 70": (pythagorean(), 70.0),
        "paper IC seed 0, 10 RL steps": (
            paper_initial_conditions(np.random.default_rng(0)),
            10 * NBodyUnits().years(0.1),
        ),
    }
    print(
        "| system | Hermite evals | Hermite evals/s | IAS15 evals | IAS15 evals/s "
        "| Hermite / IAS15 rate |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, (system, t1) in cases.items():
        nh, rh, ni, ri = rates(system, t1)
        print(f"| {name} | {nh} | {rh:.3g} | {ni} | {ri:.3g} | {rh / ri:.2f} |")


if __name__ == "__main__":
    main()
