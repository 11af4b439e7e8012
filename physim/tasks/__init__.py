"""LightningModules own the loss, metrics and optimiser wiring, never the backbone."""

from ._evaluation import (
    DataNames,
    EvaluableTask,
    RolloutEvaluation,
    check_evaluable,
    missing_evaluation_members,
)
from ._insr import INSR
from ._insr_fluid import (
    InviscidFluidProblem,
    kinetic_energy,
    taylor_green_velocity,
    velocity_from_vorticity,
)
from ._insr_problems import (
    INTEGRATORS,
    AdvectionProblem,
    Box,
    INSRProblem,
    PeriodicGridField,
    Stage,
    gaussian_pulse,
)
from ._losses import MSELoss, RelativeL2Loss, check_finite_loss
from ._refiner import PDERefiner, refinement_schedule
from ._rollout_metrics import MeanCurve, RolloutMetrics, log_metrics, metric_key
from ._surrogate import AutoregressiveSurrogate
from ._tsm import SkippedUpdatesError, TemporalStencilModel

__all__ = [
    "DataNames",
    "EvaluableTask",
    "INSR",
    "INTEGRATORS",
    "AdvectionProblem",
    "Box",
    "INSRProblem",
    "InviscidFluidProblem",
    "PeriodicGridField",
    "Stage",
    "gaussian_pulse",
    "kinetic_energy",
    "taylor_green_velocity",
    "velocity_from_vorticity",
    "AutoregressiveSurrogate",
    "MeanCurve",
    "RolloutMetrics",
    "SkippedUpdatesError",
    "log_metrics",
    "MSELoss",
    "PDERefiner",
    "RelativeL2Loss",
    "RolloutEvaluation",
    "TemporalStencilModel",
    "check_evaluable",
    "check_finite_loss",
    "metric_key",
    "missing_evaluation_members",
    "refinement_schedule",
]
