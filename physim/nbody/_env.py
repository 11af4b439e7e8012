"""The gymnasium environments: an agent chooses how the next interval is integrated.

:class:`ThreeBodyEnv` composes three policies passed in as objects: an action map
(:mod:`._actions`), an observation (:mod:`._observations`) and a reward
(:mod:`._rewards`). :class:`ThreeBodyTimestepEnv` is the reference paper's setting
(V. Saz Ulibarrena and S. Portegies Zwart, "Reinforcement learning for adaptive
time-stepping in the chaotic gravitational three-body problem", CNSNS (2025)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ._actions import ActionMap, ParameterGrid
from ._initial import NBodySystem, NBodyUnits, paper_initial_conditions
from ._observations import Observation, PaperObservation
from ._rewards import PaperReward, Reward
from ._simulation import INTEGRATORS, Simulation, check_integrator


class ThreeBodyEnv(gym.Env):
    """Three-body integration where each action sets how the next interval is run.

    One RL step integrates ``step_interval_yr`` (0.1 yr, about 1.09 N-body time
    units) with the integrator and parameter the ``action`` map decodes. The episode
    terminates when ``|dE|`` exceeds ``max_energy_error`` or the integration fails
    (``info["nonfinite"]``, ``info["max_steps_reached"]``); after ``max_steps`` steps
    it is terminated if the reward judges the horizon (``horizon_is_terminal``),
    otherwise truncated. ``info`` has the energy error, the integrator and parameter,
    the force evaluations of the step and of the episode; the integration wall time
    is ``env.wall_time`` (kept out of ``info`` so that a step is deterministic for a
    seed, as gymnasium's checker demands).

    ``reset(seed=s)`` draws the system from the paper's distribution (the same ``s``
    gives the same system); ``reset(options={"system": NBodySystem})`` starts from a
    given three-body system.

    Args:
        action: the action map (default: the paper's Hermite eta grid).
        observation: the observation (default: the paper's 13 numbers).
        reward: the reward (default: the paper's).
        max_steps: RL steps per episode.
        step_interval_yr: simulated time per RL step, in years.
        max_energy_error: early-termination threshold on ``|dE|``.
        units: N-body units of the initial conditions.
        render_mode: accepted for gymnasium/SB3 (no rendering).

    Raises:
        ValueError: for a bad length, interval or threshold.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        action: ActionMap | None = None,
        observation: Observation | None = None,
        reward: Reward | None = None,
        max_steps: int = 100,
        step_interval_yr: float = 0.1,
        max_energy_error: float = 0.1,
        units: NBodyUnits | None = None,
        render_mode: str | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps}: need at least 1 step.")
        if not (math.isfinite(step_interval_yr) and step_interval_yr > 0):
            raise ValueError(f"step_interval_yr={step_interval_yr}: must be > 0.")
        if not 0 < max_energy_error < 1:
            raise ValueError(
                f"max_energy_error={max_energy_error}: must lie in (0, 1)."
            )
        self.action = action or ParameterGrid()
        self.observation = observation or PaperObservation()
        self.reward = reward or PaperReward(max_energy_error=max_energy_error)
        self.units = units or NBodyUnits()
        self.max_steps = int(max_steps)
        self.step_interval = self.units.years(step_interval_yr)
        self.max_energy_error = float(max_energy_error)
        self.render_mode = render_mode
        self.action_space = self.action.space
        self.observation_space = self.observation.space(3)
        self.simulation: Simulation | None = None
        self.wall_time = 0.0

    @property
    def system(self) -> NBodySystem:
        """The system of the current episode."""
        if self.simulation is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() first.")
        return self.simulation.system

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
        self.simulation = Simulation(
            system, self.action.integrators, self.step_interval
        )
        self.wall_time = 0.0
        obs = self.observation(self.simulation, self.max_steps)
        return obs, {"energy_error": 0.0, "time": 0.0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        sim = self.simulation
        if sim is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step().")
        integrator, parameter = self.action.decode(action)
        interval = sim.advance(integrator, parameter)
        self.wall_time += interval.wall_time
        failed = interval.failed or not sim.energy_error <= self.max_energy_error
        reward = self.reward(sim, parameter, failed)
        at_horizon = sim.steps >= self.max_steps
        terminated = bool(failed or (at_horizon and self.reward.horizon_is_terminal))
        truncated = not terminated and at_horizon
        info = {
            "energy_error": sim.energy_error,
            "integrator": integrator,
            "parameter": parameter,
            "force_evaluations": interval.force_evaluations,
            "total_force_evaluations": sim.force_evaluations,
            "time": sim.steps * self.step_interval,
            "failed": failed,
            "nonfinite": interval.nonfinite,
            "max_steps_reached": interval.stalled,
        }
        obs = self.observation(sim, self.max_steps)
        return obs, reward, terminated, truncated, info


class ThreeBodyTimestepEnv(ThreeBodyEnv):
    """The reference paper's setting: the action picks the accuracy parameter.

    ``Discrete(10)`` over the integrator's grid (Hermite: eta = 1e-4 ... 1e-1; a
    policy transfers to another integrator by the action index), the paper's 13-number
    observation (:class:`PaperObservation`) and reward (:func:`timestep_reward`, ``t``
    = the RL step), episodes truncated after ``max_steps`` (100 in training, 300 in
    the paper's evaluation).

    Args:
        integrator: ``hermite``, ``leapfrog``, ``ias15``, ``whfast`` or
            ``rebound_leapfrog``.
        parameter_grid: the parameter of each action; default: the integrator's grid.
        max_steps, step_interval_yr, max_energy_error, units, render_mode: see
            :class:`ThreeBodyEnv`.
        w_energy, w_parameter: reward weights W0 and W2.

    Raises:
        ValueError: for an unknown integrator or a bad grid/length/threshold.
    """

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
        check_integrator(integrator)
        grid = parameter_grid
        if grid is None:
            grid = INTEGRATORS[integrator](np.ones(3), 1.0).default_grid
        grid = tuple(float(p) for p in grid)
        bad = [p for p in grid if not (math.isfinite(p) and 0 < p != 1)]
        if not grid or bad:
            raise ValueError(
                f"parameter_grid={list(grid)}: need at least one value, "
                "all finite, > 0 and != 1 (the reward divides by |log10 p|)."
            )
        super().__init__(
            ParameterGrid(integrator, grid),
            PaperObservation(),
            PaperReward(w_energy, w_parameter, max_energy_error),
            max_steps=max_steps,
            step_interval_yr=step_interval_yr,
            max_energy_error=max_energy_error,
            units=units,
            render_mode=render_mode,
        )
        self.integrator_name = integrator
        self.parameter_grid = grid
        self.w_energy = float(w_energy)
        self.w_parameter = float(w_parameter)


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
