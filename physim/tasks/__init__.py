"""LightningModules own the loss, metrics and optimiser wiring, never the backbone."""

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
from ._surrogate import AutoregressiveSurrogate, metric_key
from ._tsm import TemporalStencilModel

__all__ = [
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
    "MSELoss",
    "PDERefiner",
    "RelativeL2Loss",
    "TemporalStencilModel",
    "check_finite_loss",
    "metric_key",
    "refinement_schedule",
]
