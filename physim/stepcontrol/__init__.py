"""Learned step-size control for physim's PDE solvers (KS, Burgers).

Problems (:class:`KSFamily`, :class:`BurgersFamily`: a parameter, an initial state, a
reference), runs of controllers on them (:class:`Method`: constant step, PI, PI with
tuned coefficients, a learned correction on PI), the objective (decades of global
error at equal right-hand-side evaluations against a baseline), PI tuning, training
by CMA-ES or by PPO through :class:`PDEStepControlEnv`, and the work-precision
verdict. It sits above both :mod:`physim.solvers` (the problems) and
:mod:`physim.nbody` (whose work-precision front, bootstrap, seed handling and
stable-baselines3 training it reuses); the controller itself,
:class:`~physim.timestepping.LearnedController`, is in :mod:`physim.timestepping`
and needs none of them.
"""

import gymnasium as _gym

from ._env import PDEStepControlEnv, make_env
from ._objective import front_slope, relative_score, tolerance_slope, tune_pi
from ._problems import (
    BurgersFamily,
    KSFamily,
    PDEFamily,
    Problem,
    build_problems,
    evaluations_per_step,
)
from ._report import (
    markdown_summary,
    plot_work_precision,
    print_summary,
    write_report,
)
from ._runs import (
    KINDS,
    CountingStepper,
    Method,
    RunResult,
    evaluate,
    log10_error,
    run_method,
)
from ._train import (
    TrainingSet,
    network_objective,
    prepare_training,
    train_cmaes,
    train_ppo,
)
from ._verdict import work_precision

ENV_ID = "physim/PDEStepControl-v0"
if ENV_ID not in _gym.registry:
    _gym.register(id=ENV_ID, entry_point="physim.stepcontrol._env:make_env")

__all__ = [
    "ENV_ID",
    "KINDS",
    "BurgersFamily",
    "CountingStepper",
    "KSFamily",
    "Method",
    "PDEFamily",
    "PDEStepControlEnv",
    "Problem",
    "RunResult",
    "TrainingSet",
    "build_problems",
    "evaluate",
    "evaluations_per_step",
    "front_slope",
    "log10_error",
    "make_env",
    "markdown_summary",
    "network_objective",
    "plot_work_precision",
    "prepare_training",
    "print_summary",
    "relative_score",
    "run_method",
    "tolerance_slope",
    "train_cmaes",
    "train_ppo",
    "tune_pi",
    "work_precision",
    "write_report",
]
