"""SineNet (Zhang et al., ICLR 2024): K U-shaped waves in sequence, 1-D and 2-D."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ._blocks import (
    BlockOptions,
    ConditionedConvBlock,
    CubicUp,
    UShapedBackbone,
    avg_pool_down,
    conv,
    phase_of,
    roll_phase,
)

__all__ = ["PAPER_MULTS", "SineNet", "sinenet_parameter_count", "mult_for_budget"]

# The reference implementation's channel multiplier for K waves (hidden 64, 4 levels,
# 4 x 3 channels in, 3 out), tuned there so that every K has about the 35,490,219
# parameters of SineNet-8; `mult_for_budget` recomputes such a value for any setting
# (it gives 1.4245 / 1.5011 / 1.6109 / 1.8075 for K = 8 / 6 / 4 / 2).
PAPER_MULTS: dict[int, float] = {8: 1.425, 6: 1.5, 4: 1.611, 2: 1.8075}


class ResidualStage(nn.Module):
    """``blocks_per_level`` post-norm `ConditionedConvBlock`s with residual connections.

    The first block's shortcut is a 1x1 convolution of ``residual_input`` (the
    features before the skip or the disentangled input was concatenated), the later
    ones are identities, as in the SineNet code.
    """

    def __init__(
        self,
        in_channels: int,
        residual_channels: int,
        out_channels: int,
        blocks_per_level: int,
        options: BlockOptions,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ConditionedConvBlock(
                in_channels if i == 0 else out_channels,
                out_channels,
                options,
                pre_norm=False,
            )
            for i in range(blocks_per_level)
        )
        self.shortcut = conv(
            options.spatial_dims, residual_channels, out_channels, 1, "zeros"
        )

    def forward(
        self, h: Tensor, residual_input: Tensor, emb: Tensor | None
    ) -> Float[Tensor, "B C *S"]:
        residual = self.shortcut(residual_input)
        for block in self.blocks:
            h = block(h, emb) + residual
            residual = h
        return h


class SineNet(UShapedBackbone):
    """SineNet: ``(B, C_in, *S) -> (B, C_out, *S)`` through K sequential waves.

    Steps: (1) lift with a 3-wide convolution to ``hidden_channels``; (2) K waves,
    each a U-Net of ``num_levels`` levels added to its input (``x = x + wave(x)``):
    the down path average-pools and applies a residual conv stage, level ``l`` having
    ``int(hidden_channels * mult**l)`` channels; every level after the first also
    receives the wave's input, pooled to that level ("disentangled" down path); the
    up path interpolates cubically, concatenates the skip and applies a residual conv
    stage; (3) project with a 3-wide convolution to ``out_channels``.

    ``padding_mode="circular"`` makes every convolution and the cubic up-sampling
    periodic and the pooling shift-consistent, so the network commutes with every
    periodic shift (see `physim.models._blocks`). Deviation from the reference code
    with ``downsample_phase="adaptive"`` (the default): it pools at a fixed phase,
    which commutes only with shifts by multiples of ``2**num_levels``; here each
    pooling picks the polyphase component of largest energy (no extra parameters, the
    same count). ``downsample_phase="fixed"`` pools as the reference code does: the
    network is then continuous in its input (the adaptive choice is not, which matters
    when a large part of the input is random, as in PDE-Refiner). With
    ``cond_dim = P > 0`` the call takes ``P`` scalars per sample, embedded as in
    `UNet` and fed to every conv block.

    Good values: the paper's SineNet-8 is ``hidden_channels=64, num_waves=8,
    mult=1.425`` (35,490,219 parameters for 4 x 3 channels in, 3 out); `PAPER_MULTS`
    keeps that budget for K = 2, 4, 6 and `mult_for_budget` finds ``mult`` for any
    budget. A CPU model for 64^2 data is ``hidden_channels=16``, ``num_levels=3``.

    Args:
        in_channels: input channels (history frames x field channels).
        out_channels: output channels (future frames x field channels).
        hidden_channels: width of the finest level.
        num_waves: K >= 1.
        mult: width growth per level (> 1 in practice).
        num_levels: levels per wave (each pools by 2).
        blocks_per_level: conv blocks per level and direction (the paper: 1).
        disentangle: feed the pooled wave input to every down level after the first.
        norm_groups: GroupNorm groups (the paper: 1); must divide every width.
        spatial_dims, norm, padding_mode, downsample_phase, cond_dim, cond_mode,
            spatial_size: the arguments every U-shaped backbone takes, described in
            `UShapedBackbone`; the grid is halved ``num_levels`` times, and the fixed
            phase is the reference code's pooling.

    Raises:
        ValueError: for a bad argument (at construction), or an input whose grid or
            ``cond`` does not fit (at the call).

    References:
        Zhang, Xu, Helwig, Li, Ji, "SineNet: Learning temporal dynamics in
        time-dependent partial differential equations", ICLR 2024 (code:
        github.com/divelab/AIRS, OpenPDE/SineNet, ``sinenet_dual.py``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        hidden_channels: int = 64,
        num_waves: int = 8,
        mult: float = 1.425,
        num_levels: int = 4,
        blocks_per_level: int = 1,
        disentangle: bool = True,
        norm: bool = True,
        norm_groups: int = 1,
        padding_mode: str = "circular",
        downsample_phase: str = "adaptive",
        cond_dim: int = 0,
        cond_mode: str = "add",
        spatial_size: Sequence[int] | None = None,
    ) -> None:
        for name, value in [
            ("num_waves", num_waves),
            ("num_levels", num_levels),
            ("blocks_per_level", blocks_per_level),
        ]:
            if value < 1:
                raise ValueError(f"SineNet: {name} must be >= 1, got {value}.")
        if mult <= 0:
            raise ValueError(f"SineNet: mult must be > 0, got {mult}.")
        widths = [int(hidden_channels * mult**level) for level in range(num_levels + 1)]
        if min(widths) < 1:
            raise ValueError(
                f"SineNet: hidden_channels={hidden_channels} and mult={mult} give a "
                f"level without channels (widths {widths}); raise either."
            )
        super().__init__(
            spatial_dims=spatial_dims,
            padding_mode=padding_mode,
            downsample_phase=downsample_phase,
            num_downsamplings=num_levels,
            spatial_size=spatial_size,
            norm=norm,
            norm_groups=norm_groups,
            norm_widths=widths,
            hidden_channels=hidden_channels,
            cond_dim=cond_dim,
            cond_mode=cond_mode,
        )
        self.input_channels = in_channels  # the field and conditioning-field inputs
        self.num_levels = num_levels
        self.disentangle = disentangle

        def stage(cin: int, cres: int, cout: int) -> ResidualStage:
            return ResidualStage(cin, cres, cout, blocks_per_level, self.options)

        self.lift = self.options.conv(in_channels, hidden_channels)
        self.pool = avg_pool_down(spatial_dims)
        self.upsample = CubicUp(spatial_dims, self.periodic)
        # down[k][l]: level l of wave k, from width l to l + 1, on the grid pooled
        # l + 1 times; up[k][l] goes back from width L - l to L - l - 1.
        extra = [
            hidden_channels * (disentangle and level > 0) for level in range(num_levels)
        ]
        self.down = nn.ModuleList(
            nn.ModuleList(
                stage(widths[level] + extra[level], widths[level], widths[level + 1])
                for level in range(num_levels)
            )
            for _ in range(num_waves)
        )
        self.up = nn.ModuleList(
            nn.ModuleList(
                stage(
                    widths[level + 1] + widths[level], widths[level + 1], widths[level]
                )
                for level in reversed(range(num_levels))
            )
            for _ in range(num_waves)
        )
        self.project = self.options.conv(hidden_channels, out_channels)

    def wave(
        self,
        x: Float[Tensor, "B C *S"],
        down: nn.ModuleList,
        up: nn.ModuleList,
        emb: Tensor | None,
    ) -> Float[Tensor, "B C *S"]:
        """One U-shaped wave (without its outer residual connection)."""
        skips, phases, wave_input = [x], [], x
        for level, stage in enumerate(down):
            phases.append(phase_of(skips[-1], self.adaptive_phase))
            wave_input = self.pool(roll_phase(wave_input, phases[-1], -1))
            h = self.pool(roll_phase(skips[-1], phases[-1], -1))
            features = (
                torch.cat([h, wave_input], 1) if self.disentangle and level else h
            )
            skips.append(stage(features, h, emb))
        x = skips.pop()
        for stage in up:
            u = roll_phase(self.upsample(x), phases.pop(), +1)
            x = stage(torch.cat([skips.pop(), u], 1), u, emb)
        return x

    def forward(
        self, x: Float[Tensor, "B Ci *S"], cond: Float[Tensor, "B P"] | None = None
    ) -> Float[Tensor, "B Co *S"]:
        emb = self.embed(x, cond)
        x = self.lift(x)
        for down, up in zip(self.down, self.up, strict=True):
            x = x + self.wave(x, down, up, emb)
        return self.project(x)


def sinenet_parameter_count(*, num_waves: int = 8, **kwargs) -> int:
    """Parameters of ``SineNet(num_waves=num_waves, **kwargs)``, without weights.

    Waves are identical, so one- and two-wave networks built on the meta device (no
    memory, no initialisation) give the count for any ``num_waves``.
    """
    with torch.device("meta"):
        one, two = (
            sum(p.numel() for p in SineNet(num_waves=k, **kwargs).parameters())
            for k in (1, 2)
        )
    return one + (num_waves - 1) * (two - one)


def mult_for_budget(
    budget: int, *, low: float = 1.0, high: float = 4.0, tol: float = 1e-4, **kwargs
) -> float:
    """The ``mult`` whose `SineNet` has closest to ``budget`` parameters.

    Bisection on ``mult``: the count grows with ``mult`` (in steps, the widths being
    truncated to integers), so the interval ``[low, high]`` is halved until it is
    ``tol`` wide, and the end nearer the budget is returned. Found this way for the
    paper's setting (hidden 64, 4 levels, 12 channels in, 3 out) and the 35,490,219
    parameters of SineNet-8: 1.4245 / 1.5011 / 1.6109 / 1.8075 for K = 8 / 6 / 4 / 2,
    the reference code's hand-tuned `PAPER_MULTS` to within rounding.

    Args:
        budget: target parameter count.
        low: a ``mult`` giving at most ``budget`` parameters.
        high: a ``mult`` giving at least ``budget`` parameters.
        tol: width of the final interval.
        **kwargs: every other `SineNet` argument (``in_channels``, ``num_waves``, ...).

    Raises:
        ValueError: the budget is outside what ``[low, high]`` reaches.
    """
    counts = {m: sinenet_parameter_count(mult=m, **kwargs) for m in (low, high)}
    if not counts[low] <= budget <= counts[high]:
        raise ValueError(
            f"budget={budget} is outside the parameter counts {counts[low]} .. "
            f"{counts[high]} of mult in [{low}, {high}]; widen low/high or change "
            "hidden_channels / num_waves."
        )
    while high - low > tol:
        middle = 0.5 * (low + high)
        counts[middle] = sinenet_parameter_count(mult=middle, **kwargs)
        low, high = (middle, high) if counts[middle] < budget else (low, middle)
    return min((low, high), key=lambda m: abs(counts[m] - budget))
