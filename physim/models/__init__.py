"""Backbones as plain ``nn.Module``s (no Lightning).

Each maps ``(B, C_in, *space) -> (B, C_out, *space)``, except the neural field
:class:`SIREN`, which maps points ``(*P, in) -> (*P, out)``.
"""

from ._blocks import (
    DOWNSAMPLE_PHASES,
    BlockOptions,
    ConditionedConvBlock,
    UShapedBackbone,
)
from ._conditioning import ConditionedNorm, ConditionEmbedding, sinusoidal_embedding
from ._fno import FNO
from ._hippo import MEASURES, HiPPO, HiPPOStem, hippo_matrices
from ._sinenet import PAPER_MULTS, SineNet, mult_for_budget, sinenet_parameter_count
from ._siren import SIREN, SineLayer
from ._stencil import (
    LearnedInterpolation,
    StencilInterpolation,
    apply_stencils,
    linear_stencils,
    periodic_cnn,
    stencil_nullspace,
)
from ._unet import WEIGHT_INITS, UNet

__all__ = [
    "DOWNSAMPLE_PHASES",
    "BlockOptions",
    "ConditionedConvBlock",
    "UShapedBackbone",
    "FNO",
    "MEASURES",
    "HiPPO",
    "HiPPOStem",
    "LearnedInterpolation",
    "StencilInterpolation",
    "apply_stencils",
    "hippo_matrices",
    "linear_stencils",
    "periodic_cnn",
    "stencil_nullspace",
    "PAPER_MULTS",
    "SIREN",
    "ConditionEmbedding",
    "ConditionedNorm",
    "SineLayer",
    "SineNet",
    "UNet",
    "WEIGHT_INITS",
    "mult_for_budget",
    "sinenet_parameter_count",
    "sinusoidal_embedding",
]
