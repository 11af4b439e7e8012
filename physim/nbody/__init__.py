"""Three-body time stepping: integrators, initial conditions, the RL environment.

Importing this package registers the gymnasium environment
``physim/ThreeBodyTimestep-v0`` (:class:`ThreeBodyTimestepEnv`).
"""

from typing import TYPE_CHECKING, Any

import gymnasium as _gym

from ._base import Advance, MaxStepsError, NBodyIntegrator
from ._env import INTEGRATORS, SeedCycle, ThreeBodyTimestepEnv, timestep_reward
from ._evaluate import (
    Method,
    dominating,
    evaluate_methods,
    fixed_methods,
    fixed_name,
    print_summary,
    sb3_policy,
    summarize,
    write_evaluation,
)
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
from ._rebound import ReboundIntegrator

ENV_ID = "physim/ThreeBodyTimestep-v0"
if ENV_ID not in _gym.registry:
    _gym.register(id=ENV_ID, entry_point="physim.nbody._env:ThreeBodyTimestepEnv")

__all__ = [
    "ENV_ID",
    "FIGURE_EIGHT_PERIOD",
    "HERMITE_ETA_GRID",
    "INTEGRATORS",
    "Advance",
    "CollisionTimeController",
    "Hermite",
    "Leapfrog",
    "MaxStepsError",
    "Method",
    "NBodyIntegrator",
    "NBodySystem",
    "NBodyUnits",
    "ReboundIntegrator",
    "SeedCycle",
    "ThreeBodyTimestepEnv",
    "TrainResult",
    "dominating",
    "evaluate_methods",
    "figure_eight",
    "fixed_methods",
    "fixed_name",
    "load_agent",
    "make_env",
    "paper_initial_conditions",
    "print_summary",
    "pythagorean",
    "sb3_policy",
    "summarize",
    "timestep_reward",
    "train_agent",
    "write_evaluation",
]

_LAZY = {"TrainResult", "load_agent", "make_env", "train_agent"}

if TYPE_CHECKING:
    from ._train import TrainResult, load_agent, make_env, train_agent


def __getattr__(name: str) -> Any:
    # Training imports stable-baselines3 (seconds); the integrators and the environment
    # do not need it (PEP 562).
    if name in _LAZY:
        from . import _train

        return getattr(_train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
