"""Rewards: the paper's, and one whose return is what the yardstick measures."""

from __future__ import annotations

import math
from typing import Protocol

from ._simulation import ENERGY_ERROR_FLOOR, Simulation


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

    It prices eta, not work (eta 0.01 -> 1e-4 costs 100x the force evaluations but
    one reward point per step), and discounts late errors by ``1/t``.

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


def log_energy_error(energy_error: float, failed: bool = False) -> float:
    """The yardstick's ``log10 |dE|``: floored at 1e-16, and 0 (``|dE| = 1``) for a
    failed run or an error above 1."""
    if failed or not math.isfinite(energy_error):
        return 0.0
    return math.log10(min(max(energy_error, ENERGY_ERROR_FLOOR), 1.0))


class Reward(Protocol):
    """The reward of the step just taken."""

    #: Whether the end of the episode's ``max_steps`` is terminal (the objective is
    #: judged there) or a truncation (bootstrapped by the agent).
    horizon_is_terminal: bool

    def __call__(self, sim: Simulation, parameter: float, failed: bool) -> float: ...


class PaperReward:
    """:func:`timestep_reward` with the paper's weights; the time limit truncates."""

    horizon_is_terminal = False

    def __init__(
        self,
        w_energy: float = 3000.0,
        w_parameter: float = 4.0,
        max_energy_error: float = 0.1,
    ) -> None:
        self.w_energy = float(w_energy)
        self.w_parameter = float(w_parameter)
        self.max_energy_error = float(max_energy_error)

    def __call__(self, sim: Simulation, parameter: float, failed: bool) -> float:
        return timestep_reward(
            sim.energy_error,
            parameter,
            sim.steps,
            w_energy=self.w_energy,
            w_parameter=self.w_parameter,
            max_energy_error=self.max_energy_error,
        )

    def __repr__(self) -> str:
        return f"PaperReward(w_energy={self.w_energy}, w_parameter={self.w_parameter})"


class AlignedReward:
    """Telescoped so that the episode return is the yardstick's objective:

    ``return = -log10 |dE(T)| - cost_weight * (force evaluations) / cost_scale``.

    Step ``t`` pays ``-(log10 |dE_t| - log10 |dE_{t-1}|)`` (``log10 |dE_0| := 0``) minus
    the cost of its force evaluations, with :func:`log_energy_error`'s floor and its
    ``|dE| = 1`` for a failure, as the yardstick counts them. So a policy maximising
    the undiscounted return (``gamma = 1``) maximises a linear trade-off of the two
    axes of the work-precision plot; sweeping ``cost_weight`` traces the policy's own
    front. The horizon is terminal: the error is judged there, and the step fraction
    is observed. ``cost_weight`` is the price of 1e4 evaluations in decades of error:
    on a front of slope ``s`` decades per decade of cost, the best cost is
    ``s * cost_scale / (cost_weight * ln 10)`` (Hermite: ``s`` about 4.3, so
    ``cost_weight = 3`` aims at about 6e3 evaluations per 300 intervals, eta ~ 0.01).

    Args:
        cost_weight: lambda, >= 0 (0: accuracy at any cost).
        cost_scale: evaluations per unit of cost (1e4).

    Raises:
        ValueError: for ``cost_weight < 0`` or ``cost_scale <= 0``.
    """

    horizon_is_terminal = True

    def __init__(self, cost_weight: float = 3.0, cost_scale: float = 1e4) -> None:
        if not (math.isfinite(cost_weight) and cost_weight >= 0):
            raise ValueError(
                f"cost_weight={cost_weight!r}: lambda must be >= 0 (0 prices "
                "accuracy only; larger values trade error for fewer evaluations)."
            )
        if not (math.isfinite(cost_scale) and cost_scale > 0):
            raise ValueError(f"cost_scale={cost_scale!r}: must be > 0.")
        self.cost_weight = float(cost_weight)
        self.cost_scale = float(cost_scale)

    def __call__(self, sim: Simulation, parameter: float, failed: bool) -> float:
        now = log_energy_error(sim.energy_error, failed)
        before = 0.0 if sim.steps <= 1 else log_energy_error(sim.previous_energy_error)
        evaluations = 0 if sim.last is None else sim.last.force_evaluations
        return before - now - self.cost_weight * evaluations / self.cost_scale

    def __repr__(self) -> str:
        return f"AlignedReward(cost_weight={self.cost_weight:g})"
