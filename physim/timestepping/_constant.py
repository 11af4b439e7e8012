"""Constant step size."""

from __future__ import annotations

import math

from torch import Tensor

from ._base import Decision, Stepper, StepResult


class ConstantStep:
    """Always accepts and always proposes the same ``dt``.

    The driver clips the last step of each output interval so that output times are hit
    exactly; with ``dt`` dividing the interval this clip is a no-op up to round-off.

    Args:
        dt: the step size, > 0.
    """

    def __init__(self, dt: float) -> None:
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"ConstantStep: dt must be a positive number, got {dt!r}.")
        self.dt = float(dt)

    def init(
        self, stepper: Stepper, t0: float, y0: Tensor, dt0: float | None
    ) -> tuple[float, None]:
        return self.dt, None

    def adapt(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: None,
    ) -> Decision[None]:
        return Decision(accept=True, dt_next=self.dt, state=None)

    def __repr__(self) -> str:
        return f"ConstantStep(dt={self.dt})"
