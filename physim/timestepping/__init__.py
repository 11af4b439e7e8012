"""Step-size controllers and the integration driver, for solvers and integrators."""

from ._base import Decision, Stepper, StepResult, StepSizeController
from ._cfl import CFLController, cfl_time_step
from ._constant import ConstantStep
from ._integrate import Attempt, NonFiniteError, Solution, Stepping, integrate
from ._learned import (
    DEFAULT_FEATURES,
    FEATURES,
    CorrectionNetwork,
    LearnedController,
    LearnedState,
    Observation,
)
from ._pid import PIDController, PIDState, Proposal, StepRejectedError

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "Attempt",
    "CFLController",
    "ConstantStep",
    "CorrectionNetwork",
    "Decision",
    "LearnedController",
    "LearnedState",
    "NonFiniteError",
    "Observation",
    "PIDController",
    "PIDState",
    "Proposal",
    "Solution",
    "StepRejectedError",
    "StepResult",
    "StepSizeController",
    "Stepper",
    "Stepping",
    "cfl_time_step",
    "integrate",
]
