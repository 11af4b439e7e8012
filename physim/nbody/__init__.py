"""Three-body time stepping: integrators, initial conditions, the RL environments,
and the yardstick that judges a policy against fixed settings.

Importing this package registers the gymnasium environment
``physim/ThreeBodyTimestep-v0`` (:class:`ThreeBodyTimestepEnv`, the reference paper's
setting).
"""

from typing import TYPE_CHECKING, Any

import gymnasium as _gym

from ._actions import Menu, ParameterGrid, ResidualParameter
from ._base import Advance, MaxStepsError, NBodyIntegrator
from ._env import SeedCycle, ThreeBodyEnv, ThreeBodyTimestepEnv
from ._error_model import (
    ErrorModel,
    ErrorModelController,
    collect_intervals,
    fit_error_model,
)
from ._evaluate import (
    Method,
    Policy,
    evaluate_methods,
    fixed_methods,
    fixed_name,
    sb3_policy,
    sweep_values,
)
from ._front import Front
from ._hermite import HERMITE_ETA_GRID, CollisionTimeController, Hermite
from ._initial import (
    FIGURE_EIGHT_PERIOD,
    NBodySystem,
    NBodyUnits,
    figure_eight,
    paper_initial_conditions,
    pythagorean,
)
from ._leapfrog import Leapfrog
from ._observations import InvariantObservation, PaperObservation
from ._rebound import ReboundIntegrator
from ._report import plot_work_precision, write_evaluation
from ._rewards import AlignedReward, PaperReward, log_energy_error, timestep_reward
from ._rules import ForecastSwitch
from ._seeds import check_disjoint_seeds, training_seeds
from ._simulation import INTEGRATORS, Simulation
from ._yardstick import DEFAULT_FRONTS, print_yardstick, run_log_errors, yardstick

ENV_ID = "physim/ThreeBodyTimestep-v0"
if ENV_ID not in _gym.registry:
    _gym.register(id=ENV_ID, entry_point="physim.nbody._env:ThreeBodyTimestepEnv")

__all__ = [
    "DEFAULT_FRONTS",
    "ENV_ID",
    "FIGURE_EIGHT_PERIOD",
    "HERMITE_ETA_GRID",
    "INTEGRATORS",
    "Advance",
    "AlignedReward",
    "CollisionTimeController",
    "ErrorModel",
    "ErrorModelController",
    "ForecastSwitch",
    "Front",
    "Hermite",
    "InvariantObservation",
    "Leapfrog",
    "MaxStepsError",
    "Menu",
    "Method",
    "NBodyIntegrator",
    "NBodySystem",
    "NBodyUnits",
    "PaperObservation",
    "PaperReward",
    "ParameterGrid",
    "Policy",
    "ReboundIntegrator",
    "ResidualParameter",
    "SeedCycle",
    "Simulation",
    "ThreeBodyEnv",
    "ThreeBodyTimestepEnv",
    "TrainResult",
    "check_disjoint_seeds",
    "collect_intervals",
    "evaluate_methods",
    "figure_eight",
    "fit_error_model",
    "fixed_methods",
    "fixed_name",
    "load_agent",
    "log_energy_error",
    "paper_initial_conditions",
    "plot_work_precision",
    "print_yardstick",
    "pythagorean",
    "read_agent_info",
    "run_log_errors",
    "sb3_policy",
    "sweep_values",
    "timestep_reward",
    "train_agent",
    "training_seeds",
    "write_evaluation",
    "yardstick",
]

_LAZY = {"TrainResult", "load_agent", "read_agent_info", "train_agent"}

if TYPE_CHECKING:
    from ._train import TrainResult, load_agent, read_agent_info, train_agent


def __getattr__(name: str) -> Any:
    # Training imports stable-baselines3 (seconds); the integrators, the environments
    # and the yardstick do not need it (PEP 562).
    if name in _LAZY:
        from . import _train

        return getattr(_train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
