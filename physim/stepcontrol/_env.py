"""The gymnasium environment: an agent corrects PI's step factor, one step at a time.

Each episode integrates one problem (a solver, an initial state, a horizon, a
reference) at one tolerance with a :class:`~physim.timestepping.LearnedController`
whose correction is the agent's action. An environment step is one controller
decision: the observation is the controller's features of the step just tried, the
action (``Box(-1, 1)``) its correction, and the driver (:class:`~physim.timestepping.
Stepping`, the loop of :func:`~physim.timestepping.integrate`) then takes the next
step. The return is the training objective of :mod:`._objective` on this run::

    return = -(log10 error - log10 error_base) - w (log10 evals - log10 evals_base)

``base``: the PI controller of the family at this tolerance on the same problem (so
the zero action returns 0), ``w = |q|``, the family's front slope. It is paid as it
accrues: each step costs ``-w log10(evals_after / evals_before)`` (rejected steps
included), and the last step adds the error term and the baseline's constants.
A failed run (too many rejections, a non-finite state, ``max_steps`` decisions) ends
the episode with ``error = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from physim.timestepping import (
    DEFAULT_FEATURES,
    LearnedController,
    NonFiniteError,
    PIDController,
    Stepping,
    StepRejectedError,
)
from physim.timestepping._learned import _LIMIT

from ._problems import PDEFamily, Problem, build_problems, evaluations_per_step
from ._runs import CountingStepper, Method, RunResult, log10_error, run_method

__all__ = ["PDEStepControlEnv", "make_env"]


class PDEStepControlEnv(gym.Env):
    """Step-size correction on physim PDE solvers, as an RL environment.

    ``reset(seed=s)`` draws a problem and a tolerance from ``problems`` and
    ``tolerances`` (``options={"problem": i, "tolerance": tol}`` picks them); the
    first observation is that of the first step tried. ``info`` has the accepted
    flag, the time, the step size, the evaluations so far and, at the end, the
    error and the baseline's.

    Args:
        problems: the problems (any solvers with an error estimate).
        tolerances: rtol (= atol / ``tolerance_ratio``) values an episode draws from.
        coefficients: per family, the PI keyword arguments of the base controller
            (the tuned PI; missing: PI's defaults).
        cost_weight: ``w``, per family or one for all (decades of error one decade
            of evaluations is worth; the front slope's magnitude).
        features: the controller's features (:data:`~physim.timestepping.FEATURES`).
        max_log10_correction: the correction's clip in decades.
        max_steps: decisions per episode before it counts as failed.
        tolerance_ratio: ``atol = ratio * rtol``.
        render_mode: accepted for gymnasium (no rendering).

    Raises:
        ValueError: no problems or tolerances, a bad tolerance, a family without a
            cost weight.
        TypeError: a problem whose solver has no error estimate (before any step).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        problems: Sequence[Problem],
        tolerances: Sequence[float],
        coefficients: Mapping[str, Mapping[str, float]] | None = None,
        cost_weight: float | Mapping[str, float] = 3.5,
        features: Sequence[str] = DEFAULT_FEATURES,
        max_log10_correction: float = 0.2,
        max_steps: int = 5000,
        tolerance_ratio: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        if not problems or not tolerances:
            raise ValueError(
                "PDEStepControlEnv: need at least one problem and one tolerance."
            )
        if int(max_steps) < 1:
            raise ValueError(f"PDEStepControlEnv: max_steps={max_steps} must be >= 1.")
        self.problems = list(problems)
        self.tolerances = [float(t) for t in tolerances]
        self.base = Method(
            "base", "pi", dict(coefficients or {}), None, 0.2, tolerance_ratio
        )
        families = sorted({p.family for p in self.problems})
        if isinstance(cost_weight, Mapping):
            missing = [f for f in families if f not in cost_weight]
            if missing:
                raise ValueError(
                    f"PDEStepControlEnv: cost_weight has no value for {missing}."
                )
            self.cost_weight = {f: float(cost_weight[f]) for f in families}
        else:
            self.cost_weight = dict.fromkeys(families, float(cost_weight))
        # Every controller is checked on every solver and tolerance now, before a
        # step is taken (no error estimate, a tolerance below the dtype's floor, a
        # feature the solver cannot give).
        for problem in self.problems:
            for tolerance in self.tolerances:
                controller = self._controller(
                    problem, tolerance, features, max_log10_correction
                )
                controller.check_stepper(problem.adaptive)
                controller.base.check_precision(problem.y0.dtype)
        self.features = tuple(features)
        self.max_log10_correction = float(max_log10_correction)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gym.spaces.Box(
            -_LIMIT, _LIMIT, (len(self.features),), np.float32
        )
        self._baselines: dict[tuple[int, float], RunResult] = {}
        self._episode: dict[str, Any] | None = None

    def _controller(
        self, problem: Problem, tolerance: float, features: Sequence[str], clip: float
    ) -> LearnedController:
        base = self.base.pid(problem.family, tolerance)
        return LearnedController(base, features=features, max_log10_correction=clip)

    def baseline(self, index: int, tolerance: float) -> RunResult:
        """The base PI run on problem ``index`` at ``tolerance`` (cached)."""
        key = (index, float(tolerance))
        if key not in self._baselines:
            self._baselines[key] = run_method(
                self.base, self.problems[index], tolerance, self.max_steps
            )
        return self._baselines[key]

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        index = int(options.get("problem", self.np_random.integers(len(self.problems))))
        tolerance = float(
            options.get(
                "tolerance",
                self.tolerances[int(self.np_random.integers(len(self.tolerances)))],
            )
        )
        problem = self.problems[index]
        base = self.baseline(index, tolerance)
        controller = self._controller(
            problem, tolerance, self.features, self.max_log10_correction
        )
        counter = CountingStepper(
            problem.adaptive, evaluations_per_step(problem.adaptive.scheme)
        )
        run = Stepping(counter, controller, problem.y0, 0.0, dt0=problem.dt0)
        self._episode = {
            "problem": problem,
            "index": index,
            "tolerance": tolerance,
            "controller": controller,
            "counter": counter,
            "run": run,
            "base": base,
            "weight": self.cost_weight[problem.family],
            "decisions": 0,
        }
        self._episode["start_evaluations"] = None
        obs = self._attempt()
        self._episode["start_evaluations"] = counter.evaluations
        info = {"problem": problem.label, "tolerance": tolerance}
        return obs, info

    def _attempt(self) -> np.ndarray:
        """Take the next step; its observation."""
        ep = self._episode
        run = ep["run"]
        ep["attempt"] = attempt = run.attempt(ep["problem"].t1)
        observation = ep["controller"].observe(
            run.stepper, attempt.t, attempt.dt, attempt.y0, attempt.result, run.state
        )
        ep["observation"] = observation
        return observation.features.astype(np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        ep = self._episode
        if ep is None:
            raise RuntimeError("PDEStepControlEnv: call reset() before step().")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.size != 1:
            raise ValueError(f"action={action!r}: expected one number in [-1, 1].")
        run, attempt, counter = ep["run"], ep["attempt"], ep["counter"]
        before = counter.evaluations
        failed, accept = False, False
        try:
            decision = ep["controller"].decide(
                run.stepper,
                attempt.t,
                attempt.dt,
                ep["observation"],
                float(a[0]),
                run.state,
            )
            run.commit(attempt, decision)
            accept = decision.accept
            ep["decisions"] += 1
            done = run.t >= ep["problem"].t1
            if not done and ep["decisions"] >= self.max_steps:
                failed = done = True
            obs = ep["observation"].features.astype(np.float32)
            if not done:
                obs = self._attempt()
        except (StepRejectedError, NonFiniteError, RuntimeError):
            failed = done = True
            obs = ep["observation"].features.astype(np.float32)
        weight = ep["weight"]
        reward = -weight * math.log10(counter.evaluations / before)
        info: dict[str, Any] = {
            "accepted": accept,
            "time": run.t,
            "dt": attempt.dt,
            "evaluations": counter.evaluations,
            "failed": failed,
        }
        if done:
            base = ep["base"]
            log_error = 0.0
            if not failed:
                log_error = log10_error(ep["problem"].relative_error(run.y))
            start = ep["start_evaluations"]
            reward += -(log_error - base.log10_error) + weight * (
                math.log10(base.evaluations) - math.log10(start)
            )
            info |= {
                "log10_error": log_error,
                "base_log10_error": base.log10_error,
                "base_evaluations": base.evaluations,
            }
        return obs, float(reward), bool(done), False, info


def make_env(
    families: Mapping[str, PDEFamily],
    parameters: Mapping[str, Sequence[float]],
    seeds: Sequence[int],
    tolerances: Sequence[float],
    coefficients: Mapping[str, Mapping[str, float]] | None = None,
    cost_weight: float | Mapping[str, float] = 3.5,
    features: Sequence[str] = DEFAULT_FEATURES,
    max_log10_correction: float = 0.2,
    max_steps: int = 5000,
    reference_tolerance: float = 1e-12,
    render_mode: str | None = None,
) -> PDEStepControlEnv:
    """A :class:`PDEStepControlEnv` over ``families`` (name -> family) at
    ``parameters[name]`` and initial states ``seeds`` (the config's ``_target_``).

    References are computed once per process and kept (:func:`_cached_problems`),
    so the training, checking and selection environments share them.
    """
    for family in families.values():
        for tolerance in tolerances:  # refused before any reference is computed
            PIDController(tolerance, tolerance).check_precision(family.dtype)
    problems: list[Problem] = []
    for name, family in families.items():
        if name not in parameters:
            raise ValueError(
                f"make_env: no parameters for family {name!r}; give parameters.{name}."
            )
        problems += _cached_problems(
            family, parameters[name], seeds, reference_tolerance
        )
    return PDEStepControlEnv(
        problems,
        tolerances,
        coefficients,
        cost_weight,
        features,
        max_log10_correction,
        max_steps,
        render_mode=render_mode,
    )


_PROBLEMS: dict[tuple[Any, ...], list[Problem]] = {}


def _cached_problems(
    family: PDEFamily,
    parameters: Sequence[float],
    seeds: Sequence[int],
    reference_tolerance: float,
) -> list[Problem]:
    describe = getattr(family, "describe", lambda: {"repr": repr(family)})
    key = (
        repr(sorted(describe().items())),
        tuple(float(p) for p in parameters),
        tuple(int(s) for s in seeds),
        float(reference_tolerance),
    )
    if key not in _PROBLEMS:
        _PROBLEMS[key] = build_problems(family, parameters, seeds, reference_tolerance)
    return _PROBLEMS[key]
