"""Running a controller on a problem: global error, evaluations, rejections, time.

A :class:`Method` is one way of choosing steps at several settings (a ``point``:
the tolerance of PI and learned control, the number of steps of the constant step):
the default PI controller, PI with tuned coefficients per family, the learned
correction on the tuned PI, and the constant step. :func:`run_method` runs one
setting on one problem; :func:`evaluate` runs every method at every point on every
problem and returns one row per run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from torch import Tensor

from physim._progress import Progress
from physim.timestepping import (
    ConstantStep,
    CorrectionNetwork,
    LearnedController,
    NonFiniteError,
    PIDController,
    Stepper,
    StepRejectedError,
    StepResult,
    StepSizeController,
    integrate,
)

from ._problems import Problem, evaluations_per_step

__all__ = [
    "KINDS",
    "CountingStepper",
    "Method",
    "RunResult",
    "evaluate",
    "log10_error",
    "run_method",
]

#: Method kinds: the constant step, PI control, learned correction on PI.
KINDS = ("constant", "pi", "learned")
#: Errors below this count as this (round-off of the reference).
ERROR_FLOOR = 1e-16


class CountingStepper:
    """Passes steps through to ``stepper`` and counts attempts and evaluations
    (every ``step``: the controller's trial steps for the first ``dt`` included)."""

    def __init__(self, stepper: Stepper, evaluations: int) -> None:
        self.stepper = stepper
        self.per_step = int(evaluations)
        self.attempts = 0

    @property
    def evaluations(self) -> int:
        """Right-hand-side evaluations so far."""
        return self.attempts * self.per_step

    def step(self, y: Tensor, t: float, dt: float) -> StepResult:
        self.attempts += 1
        return self.stepper.step(y, t, dt)

    def __getattr__(self, name: str) -> Any:
        # order, embedded_order, error_estimate, max_speed, grid_spacing, scheme...
        return getattr(self.stepper, name)


@dataclass(frozen=True)
class RunResult:
    """One run. ``attempts`` counts every step the solver took (the PI controller's
    trial steps for the first ``dt`` included, as in ``evaluations``), ``steps`` the
    driver's (accepted and rejected). A failed run (too many rejections, a non-finite
    state, the step cap) has ``error = 1`` and the evaluations it spent."""

    error: float
    evaluations: int
    attempts: int
    steps: int
    accepted: int
    failed: bool
    wall_time: float
    message: str = ""

    @property
    def log10_error(self) -> float:
        """``log10`` of the error, floored at 1e-16; 0 for a failure."""
        return log10_error(self.error, self.failed)


def log10_error(error: float, failed: bool = False) -> float:
    """``log10`` of a relative error, floored at 1e-16 and capped at 0 (``error``
    1); 0 for a failed or non-finite run."""
    if failed or not math.isfinite(error):
        return 0.0
    return math.log10(min(max(error, ERROR_FLOOR), 1.0))


@dataclass(frozen=True)
class Method:
    """One controller at several settings.

    Attributes:
        name: label in the tables and plots.
        kind: ``constant``, ``pi`` or ``learned`` (:data:`KINDS`).
        coefficients: per family, the PI keyword arguments besides the tolerances
            (``pcoeff``, ``icoeff``, ``safety``...); a missing family gets PI's
            defaults.
        network: the correction (``learned``), one for all families or one per
            family.
        max_log10_correction: the correction's clip, in decades.
        tolerance_ratio: ``atol = ratio * rtol``.
    """

    name: str
    kind: str
    coefficients: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    network: CorrectionNetwork | Mapping[str, CorrectionNetwork] | None = None
    max_log10_correction: float = 0.2
    tolerance_ratio: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Method {self.name!r}: kind={self.kind!r} not in {KINDS}."
            )
        if self.kind == "learned" and self.network is None:
            raise ValueError(f"Method {self.name!r}: a learned method needs a network.")

    def pid(self, family: str, tolerance: float) -> PIDController:
        """The (base) PI controller of ``family`` at ``tolerance``."""
        kwargs = dict(self.coefficients.get(family, {}))
        return PIDController(tolerance, self.tolerance_ratio * tolerance, **kwargs)

    def controller(self, problem: Problem, point: float) -> StepSizeController:
        """The controller at ``point`` (a tolerance, or a number of steps)."""
        if self.kind == "constant":
            return ConstantStep(problem.t1 / float(point))
        base = self.pid(problem.family, float(point))
        if self.kind == "pi":
            return base
        network = self.network
        if isinstance(network, Mapping):
            network = network[problem.family]
        return LearnedController(
            base, network, max_log10_correction=self.max_log10_correction
        )

    def stepper(self, problem: Problem) -> Stepper:
        """The constant step's solver has no error estimate (it would not read it)."""
        return problem.fixed if self.kind == "constant" else problem.adaptive


def run_method(
    method: Method, problem: Problem, point: float, max_steps: int = 100_000
) -> RunResult:
    """Run ``method`` at ``point`` on ``problem`` to its horizon."""
    controller = method.controller(problem, point)
    stepper = method.stepper(problem)
    counter = CountingStepper(stepper, evaluations_per_step(stepper.scheme))
    start = time.perf_counter()
    try:
        solution = integrate(
            counter,
            controller,
            problem.y0,
            0.0,
            problem.t1,
            dt0=problem.dt0,
            max_steps=max_steps,
        )
    except (StepRejectedError, NonFiniteError, RuntimeError) as failure:
        return RunResult(
            1.0,
            counter.evaluations,
            counter.attempts,
            counter.attempts,
            0,
            True,
            time.perf_counter() - start,
            str(failure).split(";")[0],
        )
    wall = time.perf_counter() - start
    error = problem.relative_error(solution.ys[:, -1])
    failed = not math.isfinite(error)
    return RunResult(
        1.0 if failed else error,
        counter.evaluations,
        counter.attempts,
        int(solution.stats["n_steps"]),
        int(solution.stats["n_accepted"]),
        failed,
        wall,
    )


def evaluate(
    problems: Sequence[Problem],
    methods: Sequence[Method],
    points: Mapping[str, Sequence[float] | Mapping[str, Sequence[float]]],
    progress: bool = True,
    max_steps: int = 100_000,
) -> pd.DataFrame:
    """Every method at each of its points on every problem: one row per run.

    Args:
        problems: the problems (any families).
        methods: distinct names.
        points: method name -> its settings (tolerances, or step counts), or
            method name -> family -> settings.
        progress: a rich bar in a terminal, a line per method otherwise.
        max_steps: the step cap of a run (a run that hits it failed).

    Returns:
        Columns ``family, parameter, seed, problem, method, kind, point, error,
        log10_error, evaluations, attempts, accepted, rejected, failed, wall_time``.

    Raises:
        ValueError: duplicate method names, or a method without points.
    """
    names = [m.name for m in methods]
    missing = [n for n in names if not points.get(n)]
    if len(set(names)) != len(names) or missing:
        raise ValueError(
            f"evaluate: methods need distinct names and points; got {names}, no "
            f"points for {missing}."
        )
    rows: list[dict[str, Any]] = []

    def settings(method: Method, problem: Problem) -> Sequence[float]:
        chosen = points[method.name]
        if isinstance(chosen, Mapping):
            if problem.family not in chosen:
                raise ValueError(
                    f"evaluate: no points of {method.name} for family {problem.family}."
                )
            return chosen[problem.family]
        return chosen

    total = sum(len(settings(m, p)) for m in methods for p in problems)
    with Progress(disable=not progress) as bar:
        task = bar.add_task("runs", total=total)
        for method in methods:
            for problem in problems:
                for point in settings(method, problem):
                    result = run_method(method, problem, point, max_steps)
                    rows.append(
                        {
                            "family": problem.family,
                            "parameter": problem.parameter,
                            "seed": problem.seed,
                            "problem": problem.label,
                            "method": method.name,
                            "kind": method.kind,
                            "point": float(point),
                            "error": result.error,
                            "log10_error": result.log10_error,
                            "evaluations": result.evaluations,
                            "attempts": result.attempts,
                            "steps": result.steps,
                            "accepted": result.accepted,
                            "rejected": result.steps - result.accepted,
                            "failed": result.failed,
                            "wall_time": result.wall_time,
                            "message": result.message,
                        }
                    )
                    bar.advance(task)
    return pd.DataFrame(rows)
