"""The gymnasium environment: an agent picks the integrator's accuracy parameter.

Reference: V. Saz Ulibarrena and S. Portegies Zwart, "Reinforcement learning for
adaptive time-stepping in the chaotic gravitational three-body problem", CNSNS (2025).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from jaxtyping import Float

from physim.timestepping import NonFiniteError

from . import _kernels as K
from ._base import MaxStepsError, NBodyIntegrator
from ._hermite import Hermite
from ._initial import NBodySystem, NBodyUnits, paper_initial_conditions
from ._leapfrog import Leapfrog
from ._rebound import ReboundIntegrator

#: Integrator name -> factory ``(masses, g) -> NBodyIntegrator``.
INTEGRATORS: dict[str, Callable[[np.ndarray, float], NBodyIntegrator]] = {
    "hermite": lambda m, g: Hermite(m, g),
    "leapfrog": lambda m, g: Leapfrog(m, g),
    "ias15": lambda m, g: ReboundIntegrator(m, "ias15", g),
    "whfast": lambda m, g: ReboundIntegrator(m, "whfast", g),
    "rebound_leapfrog": lambda m, g: ReboundIntegrator(m, "leapfrog", g),
}

#: Smallest relative energy error used in the observation and the reward (|dE| can be
#: exactly 0 in round-off, where log10 is -inf).
ENERGY_ERROR_FLOOR = 1e-16


def timestep_reward(
    energy_error: float,
    parameter: float,
    step: int,
    *,
    w_energy: float = 3000.0,
    w_parameter: float = 4.0,
    max_energy_error: float = 0.1,
) -> float:
    """The reference paper's reward for RL step ``step`` (1 = the first step).

    ``R = -W0 log10(|dE| / 1e-10) / (|log10 |dE||^3 t) + W2 / |log10 p|`` and 0 at the
    first step, with ``dE`` the cumulative relative energy error and ``p`` the chosen
    parameter (eta). ``|dE|`` is clipped to ``[1e-16, max_energy_error]`` (NaN counts as
    the maximum): beyond the early-termination threshold the formula diverges at
    ``|dE| = 1``, and a bounded penalty keeps the Q-targets finite.

    Args:
        energy_error: ``|dE|`` after the step.
        parameter: the parameter used, in (0, 1).
        step: the 1-based RL step index.
        w_energy, w_parameter: W0 and W2.
        max_energy_error: the termination threshold (upper clip of ``|dE|``).
    """
    if step <= 1:
        return 0.0
    error = energy_error if math.isfinite(energy_error) else max_energy_error
    error = min(max(abs(error), ENERGY_ERROR_FLOOR), max_energy_error)
    log_error = math.log10(error)
    accuracy = -w_energy * (log_error + 10.0) / (abs(log_error) ** 3 * step)
    return accuracy + w_parameter / abs(math.log10(parameter))


class ThreeBodyTimestepEnv(gym.Env):
    """Three-body integration where each action sets the accuracy parameter.

    One RL step integrates ``step_interval_yr`` (0.1 yr, about 1.09 N-body time units)
    with the parameter ``parameter_grid[action]`` (Hermite: eta = 1e-4 ... 1e-1),
    applied through the shared controller interface of :mod:`physim.timestepping`:
    Hermite's eta becomes a :class:`CollisionTimeController`, leapfrog's dt a
    :class:`~physim.timestepping.ConstantStep`; REBOUND takes its own parameter. The
    episode terminates when the relative energy error exceeds ``max_energy_error`` or
    the state goes non-finite (``info["nonfinite"]``), and is truncated after
    ``max_steps`` steps (100 in training, 300 in the paper's evaluation).

    Observation (13 numbers, float32): the planar positions / 10 and velocities of the
    three bodies in N-body units, body by body, and ``-log10 |dE|`` (0 at reset, as in
    the reference code). Reward: :func:`timestep_reward` (``t`` = the RL step).
    ``info`` has the energy error, the parameter, the force evaluations of the step
    and of the episode; the episode's integration wall time is ``env.wall_time`` (kept
    out of ``info`` so that a step is deterministic for a seed, as gymnasium's checker
    demands).

    ``reset(seed=s)`` draws the system from the paper's distribution with
    ``np.random.default_rng``-style seeding (the same ``s`` gives the same system);
    ``reset(options={"system": NBodySystem})`` starts from a given system.

    Args:
        integrator: ``hermite``, ``leapfrog``, ``ias15``, ``whfast`` or
            ``rebound_leapfrog``.
        parameter_grid: the parameter of each action; default: the integrator's grid
            (10 values). A policy transfers to another integrator by the action index.
        max_steps: RL steps per episode.
        step_interval_yr: simulated time per RL step, in years.
        max_energy_error: early-termination threshold on ``|dE|``.
        w_energy, w_parameter: reward weights W0 and W2.
        units: N-body units of the initial conditions.
        render_mode: accepted for gymnasium/SB3 (no rendering).

    Raises:
        ValueError: for an unknown integrator or a bad grid/length/threshold.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        integrator: str = "hermite",
        parameter_grid: Sequence[float] | None = None,
        max_steps: int = 100,
        step_interval_yr: float = 0.1,
        max_energy_error: float = 0.1,
        w_energy: float = 3000.0,
        w_parameter: float = 4.0,
        units: NBodyUnits | None = None,
        render_mode: str | None = None,
    ) -> None:
        if integrator not in INTEGRATORS:
            raise ValueError(
                f"integrator={integrator!r} is unknown; choose one of "
                f"{sorted(INTEGRATORS)}."
            )
        self.integrator_name = integrator
        self.units = units or NBodyUnits()
        grid = parameter_grid
        if grid is None:
            grid = INTEGRATORS[integrator](np.ones(3), 1.0).default_grid
        self.parameter_grid = tuple(float(p) for p in grid)
        bad = [p for p in self.parameter_grid if not (math.isfinite(p) and 0 < p != 1)]
        if not self.parameter_grid or bad:
            raise ValueError(
                f"parameter_grid={list(self.parameter_grid)}: need at least one value, "
                "all finite, > 0 and != 1 (the reward divides by |log10 p|)."
            )
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps}: need at least 1 step.")
        if not (math.isfinite(step_interval_yr) and step_interval_yr > 0):
            raise ValueError(f"step_interval_yr={step_interval_yr}: must be > 0.")
        if not 0 < max_energy_error < 1:
            raise ValueError(
                f"max_energy_error={max_energy_error}: must lie in (0, 1)."
            )
        self.max_steps = int(max_steps)
        self.step_interval = self.units.years(step_interval_yr)
        self.max_energy_error = float(max_energy_error)
        self.w_energy = float(w_energy)
        self.w_parameter = float(w_parameter)
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(len(self.parameter_grid))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (13,), np.float32)
        self._integrator: NBodyIntegrator | None = None
        self._state: Any = None

    def _observe(self, y: Float[np.ndarray, "3 6"], energy_error: float) -> np.ndarray:
        error = min(max(energy_error, ENERGY_ERROR_FLOOR), 1 / ENERGY_ERROR_FLOOR)
        obs = np.concatenate(
            [y[:, :2].ravel() / 10.0, y[:, 3:5].ravel(), [-math.log10(error)]]
        )
        return obs.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        system = (options or {}).get("system")
        if system is None:
            system = paper_initial_conditions(self.np_random, self.units)
        if not isinstance(system, NBodySystem) or system.masses.shape != (3,):
            raise ValueError(
                "reset: options['system'] must be a three-body NBodySystem, got "
                f"{system!r}."
            )
        self.system = system
        self._integrator = INTEGRATORS[self.integrator_name](system.masses, system.g)
        self._state = self._integrator.start(system.y)
        self._y = system.y.copy()
        self._energy0 = K.energy(system.y, system.masses, system.g)
        self._steps = 0
        self._force_evaluations = 0
        self.wall_time = 0.0
        return self._observe(self._y, 1.0), {"energy_error": 0.0, "time": 0.0}

    def step(
        self, action: int | np.integer
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._integrator is None:
            raise RuntimeError("ThreeBodyTimestepEnv: call reset() before step().")
        n = self.action_space.n
        if not self.action_space.contains(action):
            raise ValueError(
                f"action={action!r} is outside the action space "
                f"Discrete({n}); pass an integer in [0, {n})."
            )
        parameter = self.parameter_grid[int(action)]
        t0 = self._steps * self.step_interval
        t1 = (self._steps + 1) * self.step_interval
        nonfinite = stalled = False
        evaluations = 0
        start = time.perf_counter()
        try:
            advance = self._integrator.advance(self._state, t0, t1, parameter)
        except NonFiniteError:
            nonfinite = True
        except MaxStepsError:  # a near-collision the step rule cannot pass
            stalled = True
        else:
            self._state, evaluations = advance
            self._y = self._integrator.phase_space(self._state)
        wall_time = time.perf_counter() - start
        self._steps += 1
        self._force_evaluations += evaluations
        self.wall_time += wall_time
        if nonfinite or stalled:
            energy_error = math.inf
        else:
            energy = K.energy(self._y, self.system.masses, self.system.g)
            energy_error = abs((energy - self._energy0) / self._energy0)
        reward = timestep_reward(
            energy_error,
            parameter,
            self._steps,
            w_energy=self.w_energy,
            w_parameter=self.w_parameter,
            max_energy_error=self.max_energy_error,
        )
        terminated = bool(
            nonfinite or stalled or not energy_error <= self.max_energy_error
        )
        truncated = not terminated and self._steps >= self.max_steps
        info = {
            "energy_error": energy_error,
            "parameter": parameter,
            "force_evaluations": evaluations,
            "total_force_evaluations": self._force_evaluations,
            "time": t1,
            "nonfinite": nonfinite,
            "max_steps_reached": stalled,
        }
        return self._observe(self._y, energy_error), reward, terminated, truncated, info


class SeedCycle(gym.Wrapper):
    """Resets ``env`` with ``seeds[0], seeds[1], ...`` in turn (held-out systems).

    Used for periodic evaluation during training, so that every evaluation sees the same
    systems, and for the final evaluation.
    """

    def __init__(self, env: gym.Env, seeds: Sequence[int]) -> None:
        super().__init__(env)
        if not seeds:
            raise ValueError("SeedCycle: seeds must not be empty.")
        self.seeds = [int(s) for s in seeds]
        self._next = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seed = self.seeds[self._next % len(self.seeds)]
            self._next += 1
        return self.env.reset(seed=seed, options=options)
