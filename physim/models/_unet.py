"""The modern U-Net of PDEArena ("Unetmod"), 1-D and 2-D, optionally conditioned."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ._blocks import (
    BlockOptions,
    ConditionedConvBlock,
    TransposedConvUp,
    UShapedBackbone,
    check_norm_groups,
    group_norm,
    phase_of,
    roll_phase,
    strided_conv_down,
    zero_parameters,
)

__all__ = ["WEIGHT_INITS", "UNet"]

#: ``"default"``: torch's initialisation everywhere, conditioning projections at zero.
#: ``"pdearena"``: PDEArena's - the second convolution of every residual block and the
#: output convolution at zero, conditioning projections as torch initialises them.
WEIGHT_INITS = ("default", "pdearena")


class ResidualBlock(ConditionedConvBlock):
    """Wide residual block, pre-norm: ``x + conv(act(norm2(conv(act(norm1(x))))))``.

    The pre-norm `ConditionedConvBlock` (``pdearena_init``: PDEArena's initialisation,
    see there) plus a shortcut, a 1x1 convolution when the channel count changes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        options: BlockOptions,
        *,
        pdearena_init: bool = False,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            options,
            pre_norm=True,
            pdearena_init=pdearena_init,
        )
        self.shortcut = (
            options.conv(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(
        self, x: Float[Tensor, "B Ci *S"], emb: Float[Tensor, "B E"] | None
    ) -> Float[Tensor, "B Co *S"]:
        return super().forward(x, emb) + self.shortcut(x)


class SelfAttention(nn.Module):
    """Single-head self-attention over all grid points, pre-norm, residual.

    Unlike PDEArena's ``AttentionBlock``, the normalisation is applied and the softmax
    runs over the keys (PDEArena normalises over the queries and skips its norm).
    """

    def __init__(self, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: Float[Tensor, "B C *S"]) -> Float[Tensor, "B C *S"]:
        h = self.norm(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        h = self.out(F.scaled_dot_product_attention(q, k, v))
        return x + h.transpose(1, 2).reshape(x.shape)


class UNet(UShapedBackbone):
    """Modern U-Net (PDEArena "Unetmod"): ``(B, C_in, *S) -> (B, C_out, *S)``.

    Steps: (1) lift with a 3-wide convolution to ``hidden_channels``; (2) down path:
    at each level ``num_blocks`` wide residual blocks (GroupNorm, GELU, pre-norm),
    then a stride-2 convolution except at the last level; (3) middle: residual block,
    optional self-attention, residual block; (4) up path: ``num_blocks + 1`` residual
    blocks per level, each fed the concatenated skip of the same resolution, then a
    stride-2 transposed convolution except at the finest level; (5) GroupNorm, GELU
    and a 3-wide convolution to ``out_channels``.

    With ``cond_dim = P > 0`` the forward call takes ``P`` scalars per sample; their
    sinusoidal features (``hidden_channels`` per scalar, rounded up to even) go
    through an MLP (width ``4 * hidden_channels``) into every residual block, whose
    projection starts at zero (see `ConditionedNorm`). With
    ``padding_mode="circular"`` the network commutes with every periodic shift (see
    `physim.models._blocks`), as long as ``downsample_phase="adaptive"`` (the
    default; a deviation from PDEArena). ``downsample_phase="fixed"`` is PDEArena's
    down-sampling: the stride-2 convolutions keep the even phase, the network is
    continuous in its input and commutes only with shifts by multiples of
    ``2**(len(channel_multipliers) - 1)``. PDE-Refiner needs the fixed phase: its
    pure-noise input makes the adaptive choice follow the noise draw.

    ``weight_init="pdearena"`` starts as PDEArena's U-Net: the second convolution of
    every residual block and the output convolution at zero
    (pdearena/modules/conditioned/oned_unet.py:66, 611-614; a fresh network outputs
    exactly zero), the conditioning projections at torch's initialisation (ibid.
    line 81). ``out_norm_groups=8`` is its output GroupNorm (ibid. lines 606-607).
    Remaining deviations from PDEArena's code: the conditioning scalars share one
    embedding MLP (PDEArena: one MLP per scalar, summed; ibid. lines 493-510,
    622-637), and on periodic data the transposed convolutions wrap around (PDEArena
    sets circular padding on ``nn.Conv1d`` only, pderefiner.py:80, so its
    up-sampling pads with zeros).

    Good values: the PDEArena 2-D model is ``hidden_channels=64``,
    ``channel_multipliers=(1, 2, 2, 4)``, ``num_blocks=2`` (about 144M parameters
    for 4 x 3 channels in); a CPU model for 64^2 data is ``hidden_channels=16``,
    ``channel_multipliers=(1, 2, 2)``, ``num_blocks=1``.

    Args:
        in_channels: input channels (history frames x field channels).
        out_channels: output channels (future frames x field channels).
        hidden_channels: width after the lift.
        channel_multipliers: per level, the factor from the previous level's width
            (cumulative: ``(1, 2, 2, 4)`` gives widths 64, 128, 256, 1024).
        num_blocks: residual blocks per level on the down path.
        mid_attention: self-attention in the middle block.
        norm_groups: GroupNorm groups; must divide every width. PDEArena uses 1, and
            8 in the output norm.
        out_norm_groups: groups of the output GroupNorm (``None``: ``norm_groups``;
            PDEArena: 8); must divide ``hidden_channels``.
        weight_init: ``"default"`` or ``"pdearena"`` (`WEIGHT_INITS`).
        spatial_dims, norm, padding_mode, downsample_phase, cond_dim, cond_mode,
            spatial_size: the arguments every U-shaped backbone takes, described in
            `UShapedBackbone`; the grid is halved ``len(channel_multipliers) - 1``
            times.

    Raises:
        ValueError: for a bad argument (at construction), or an input whose grid or
            ``cond`` does not fit (at the call).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        hidden_channels: int = 64,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_blocks: int = 2,
        mid_attention: bool = False,
        norm: bool = True,
        norm_groups: int = 1,
        out_norm_groups: int | None = None,
        padding_mode: str = "circular",
        downsample_phase: str = "adaptive",
        weight_init: str = "default",
        cond_dim: int = 0,
        cond_mode: str = "add",
        spatial_size: Sequence[int] | None = None,
    ) -> None:
        if weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"UNet: weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}."
            )
        multipliers = [int(m) for m in channel_multipliers]
        if not multipliers or min(multipliers) < 1:
            raise ValueError(
                "UNet: channel_multipliers must be a non-empty list of integers >= 1 "
                f"(one per level), got {list(channel_multipliers)}."
            )
        if num_blocks < 1:
            raise ValueError(f"UNet: num_blocks must be >= 1, got {num_blocks}.")
        # Every normalised channel count is a level width or a sum of two.
        widths = [
            hidden_channels * math.prod(multipliers[: i + 1])
            for i in range(len(multipliers))
        ]
        super().__init__(
            spatial_dims=spatial_dims,
            padding_mode=padding_mode,
            downsample_phase=downsample_phase,
            num_downsamplings=len(multipliers) - 1,
            spatial_size=spatial_size,
            norm=norm,
            norm_groups=norm_groups,
            norm_widths=[hidden_channels, *widths],
            hidden_channels=hidden_channels,
            cond_dim=cond_dim,
            cond_mode=cond_mode,
        )
        if out_norm_groups is None:
            out_norm_groups = norm_groups
        if norm:
            check_norm_groups("UNet", out_norm_groups, [hidden_channels], "out_")
        pdearena_init = weight_init == "pdearena"

        def block(cin: int, cout: int) -> ResidualBlock:
            return ResidualBlock(cin, cout, self.options, pdearena_init=pdearena_init)

        self.input_channels = in_channels  # the field and conditioning-field inputs
        self.lift = self.options.conv(in_channels, hidden_channels)
        width, skips = hidden_channels, [hidden_channels]
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        for level, multiplier in enumerate(multipliers):
            blocks, target = nn.ModuleList(), width * multiplier
            for _ in range(num_blocks):
                blocks.append(block(width, target))
                width = target
                skips.append(width)
            self.down_blocks.append(blocks)
            if level < self.num_downsamplings:
                self.downsamplers.append(
                    strided_conv_down(spatial_dims, width, padding_mode)
                )
                skips.append(width)
        self.middle = nn.ModuleList([block(width, width), block(width, width)])
        self.attention = (
            SelfAttention(width, norm_groups) if mid_attention else nn.Identity()
        )
        # Each up block takes the running features plus one skip, and returns the
        # skip's width: the last block of a level thus steps down to the width of
        # the next finer level.
        self.up_blocks = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in range(len(multipliers)):
            blocks = nn.ModuleList()
            for _ in range(num_blocks + 1):
                skip = skips.pop()
                blocks.append(block(width + skip, skip))
                width = skip
            self.up_blocks.append(blocks)
            if level < self.num_downsamplings:
                self.upsamplers.append(
                    TransposedConvUp(spatial_dims, width, self.periodic)
                )
        self.out_norm = group_norm(out_norm_groups, width, norm)
        self.project = self.options.conv(width, out_channels)
        if pdearena_init:
            zero_parameters(self.project)

    def forward(
        self, x: Float[Tensor, "B Ci *S"], cond: Float[Tensor, "B P"] | None = None
    ) -> Float[Tensor, "B Co *S"]:
        emb = self.embed(x, cond)
        x = self.lift(x)
        skips, phases = [x], []
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                x = block(x, emb)
                skips.append(x)
            if level < self.num_downsamplings:
                phases.append(phase_of(x, self.adaptive_phase))
                x = self.downsamplers[level](roll_phase(x, phases[-1], -1))
                skips.append(x)
        x = self.middle[1](self.attention(self.middle[0](x, emb)), emb)
        for level, blocks in enumerate(self.up_blocks):
            for block in blocks:
                x = block(torch.cat([x, skips.pop()], dim=1), emb)
            if level < self.num_downsamplings:
                x = roll_phase(self.upsamplers[level](x), phases.pop(), +1)
        return self.project(F.gelu(self.out_norm(x)))
