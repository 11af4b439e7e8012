"""CFL-limited step size for advection-dominated explicit (or IMEX) schemes."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ._base import Decision, Stepper, StepResult, require_attribute


def cfl_time_step(
    max_speed: float, grid_spacing: float, courant_number: float, dt_max: float
) -> float:
    """Largest ``dt`` with ``max_speed * dt / grid_spacing <= courant_number``.

    Capped at ``dt_max`` (also used when the flow is at rest).
    """
    if max_speed <= 0.0:
        return dt_max
    return min(dt_max, courant_number * grid_spacing / max_speed)


class CFLController:
    """Sets ``dt = courant_number * dx / max|u|`` from the current state.

    The Courant bound is enforced at *both* ends of a step: a step is accepted only when
    ``dt * max(speed(y0), speed(y1)) / dx <= courant_number``; otherwise it is rejected
    and retried with the bound of the faster state. The next step is proposed at
    ``safety`` times the bound of the new state, so that the small growth of the speed
    within one step rarely causes a rejection (with ``safety=1`` about half the steps
    of a flow with growing speed would be rejected). The speed of the current state is
    carried in the controller state, so each step costs one speed evaluation.

    The speed is the maximum over the batch, so every trajectory in a batch takes the
    same steps (alternative: per-trajectory ``dt``, which would need per-sample scheme
    coefficients and masking of finished trajectories; not worth it for batches of
    statistically similar trajectories).

    Args:
        courant_number: the bound C on ``max|u| dt / dx``, > 0.
        dt_max: the largest step allowed (also the step for a fluid at rest).
        speed_fn: maps a state to the max wave speed per trajectory; defaults to the
            stepper's ``max_speed``.
        grid_spacing: ``dx``; defaults to the stepper's ``grid_spacing``.
        safety: fraction of the bound proposed for the next step, in (0, 1].
    """

    def __init__(
        self,
        courant_number: float,
        dt_max: float,
        speed_fn: Callable[[Tensor], Tensor] | None = None,
        grid_spacing: float | None = None,
        safety: float = 0.9,
    ) -> None:
        if not (math.isfinite(courant_number) and courant_number > 0):
            raise ValueError(
                f"CFLController: courant_number must be > 0, got {courant_number!r}."
            )
        if not (math.isfinite(dt_max) and dt_max > 0):
            raise ValueError(f"CFLController: dt_max must be > 0, got {dt_max!r}.")
        if not 0 < safety <= 1:
            raise ValueError(
                f"CFLController: safety must be in (0, 1], got {safety!r}."
            )
        self.safety = float(safety)
        self.courant_number = float(courant_number)
        self.dt_max = float(dt_max)
        self.speed_fn = speed_fn
        self.grid_spacing = grid_spacing

    def _speed(self, stepper: Stepper, y: Tensor) -> float:
        fn = self.speed_fn or require_attribute(stepper, "max_speed", "CFLController")
        speed = fn(y)
        return float(torch.as_tensor(speed).max())

    def _dx(self, stepper: Stepper) -> float:
        if self.grid_spacing is not None:
            return float(self.grid_spacing)
        return float(require_attribute(stepper, "grid_spacing", "CFLController"))

    def init(
        self, stepper: Stepper, t0: float, y0: Tensor, dt0: float | None
    ) -> tuple[float, float]:
        speed = self._speed(stepper, y0)
        bound = cfl_time_step(
            speed, self._dx(stepper), self.courant_number, self.dt_max
        )
        proposal = cfl_time_step(
            speed, self._dx(stepper), self.safety * self.courant_number, self.dt_max
        )
        dt = proposal if dt0 is None else min(dt0, bound)
        return dt, speed

    def adapt(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: float,
    ) -> Decision[float]:
        dx = self._dx(stepper)
        speed0 = state
        speed1 = self._speed(stepper, result.y)
        if not math.isfinite(speed1):
            # Non-finite candidate: reject with a NaN step; the driver reports it.
            return Decision(accept=False, dt_next=math.nan, state=speed0)
        bound = cfl_time_step(max(speed0, speed1), dx, self.courant_number, self.dt_max)
        # Relative slack for round-off in dt (the driver may clip dt to an output time).
        if dt <= bound * (1.0 + 1e-12):
            dt_next = cfl_time_step(
                speed1, dx, self.safety * self.courant_number, self.dt_max
            )
            return Decision(accept=True, dt_next=dt_next, state=speed1)
        return Decision(accept=False, dt_next=self.safety * bound, state=speed0)

    def __repr__(self) -> str:
        return (
            f"CFLController(courant_number={self.courant_number}, "
            f"dt_max={self.dt_max}, safety={self.safety})"
        )
