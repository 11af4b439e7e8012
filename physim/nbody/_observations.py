"""What the agent sees: the paper's 13 numbers, or rotation-invariant features."""

from __future__ import annotations

import math
from typing import Protocol

import gymnasium as gym
import numpy as np

from ._features import invariant_features
from ._simulation import ENERGY_ERROR_FLOOR, Simulation

#: Position of ``log10(forecast / interval)`` in :class:`InvariantObservation`'s vector
#: (from the end: forecast, error, evaluations, step fraction).
FORECAST_INDEX = -4


def _log_error(sim: Simulation) -> float:
    """``-log10 |dE|``, floored at 1e-16 and capped at 1e16 (a failure)."""
    error = min(max(sim.energy_error, ENERGY_ERROR_FLOOR), 1 / ENERGY_ERROR_FLOOR)
    return -math.log10(error)


class Observation(Protocol):
    """Maps the simulation to the agent's observation."""

    def space(self, n_bodies: int) -> gym.spaces.Box: ...

    def __call__(self, sim: Simulation, max_steps: int) -> np.ndarray: ...


class PaperObservation:
    """The paper's 13 numbers: planar positions / 10 and velocities, body by body, and
    ``-log10 |dE|`` (0 before the first step, as in the reference code).

    Neither rotation-invariant nor aware of time: the paper's reward discounts late
    errors by ``1/t`` while ``t`` is not observed.
    """

    def space(self, n_bodies: int) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, (4 * n_bodies + 1,), np.float32)

    def __call__(self, sim: Simulation, max_steps: int) -> np.ndarray:
        error = 0.0 if sim.steps == 0 else _log_error(sim)
        y = sim.y
        obs = np.concatenate([y[:, :2].ravel() / 10.0, y[:, 3:5].ravel(), [error]])
        return obs.astype(np.float32)

    def __repr__(self) -> str:
        return "PaperObservation()"


class InvariantObservation:
    """Rotation- and relabelling-invariant, normalised features plus the time.

    ``3 * pairs + 2`` system features (:mod:`physim.nbody._features`: per pair
    ``log10 r``, ``log10 |v|``, the cosine between them; ``log10`` of the collision
    time and of the two-body forecast over ``horizon_intervals``, per interval), then
    ``-log10 |dE| / 16``, ``log10(1 + force evaluations of the last interval) / 4``
    and the step fraction ``t / max_steps`` (the aligned reward judges the error at
    the horizon, so the policy must know how far it is). 14 numbers for three bodies.

    Args:
        horizon_intervals: look-ahead of the pericentre forecast, in intervals.
    """

    def __init__(self, horizon_intervals: float = 2.0) -> None:
        if not (math.isfinite(horizon_intervals) and horizon_intervals >= 0):
            raise ValueError(f"horizon_intervals={horizon_intervals!r}: must be >= 0.")
        self.horizon_intervals = float(horizon_intervals)

    def space(self, n_bodies: int) -> gym.spaces.Box:
        size = 3 * (n_bodies * (n_bodies - 1) // 2) + 5
        return gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)

    def __call__(self, sim: Simulation, max_steps: int) -> np.ndarray:
        system = sim.system
        features = invariant_features(
            sim.y,
            system.masses,
            system.g,
            sim.interval,
            self.horizon_intervals * sim.interval,
        )
        last = 0 if sim.last is None else sim.last.force_evaluations
        extra = [
            _log_error(sim) / 16.0,
            math.log10(1.0 + last) / 4.0,
            sim.steps / max_steps,
        ]
        return np.concatenate([features, extra]).astype(np.float32)

    def __repr__(self) -> str:
        return f"InvariantObservation(horizon_intervals={self.horizon_intervals:g})"
