"""Step-size controllers and the integration driver, for solvers and integrators."""

from ._base import Decision, Stepper, StepResult, StepSizeController
from ._cfl import CFLController, cfl_time_step
from ._constant import ConstantStep
from ._integrate import NonFiniteError, Solution, integrate
from ._pid import PIDController, PIDState, StepRejectedError

__all__ = [
    "CFLController",
    "ConstantStep",
    "Decision",
    "NonFiniteError",
    "PIDController",
    "PIDState",
    "Solution",
    "StepRejectedError",
    "StepResult",
    "StepSizeController",
    "Stepper",
    "cfl_time_step",
    "integrate",
]
