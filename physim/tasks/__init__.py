"""LightningModules own the loss, metrics and optimiser wiring, never the backbone."""

from ._losses import MSELoss, RelativeL2Loss, check_finite_loss
from ._surrogate import AutoregressiveSurrogate, metric_key

__all__ = [
    "AutoregressiveSurrogate",
    "MSELoss",
    "RelativeL2Loss",
    "check_finite_loss",
    "metric_key",
]
