"""Building blocks shared by the U-shaped backbones (`UNet`, `SineNet`), 1-D and 2-D.

Periodic data get circular padding *and* shift-consistent resampling. Circular padding
alone makes every convolution commute with periodic shifts, but a stride-2 down-sampling
only commutes with even shifts: shifting the input by one cell changes which samples the
coarse grid keeps. So on periodic data each down-sampling first picks, per sample, the
polyphase component of largest energy and rolls it onto the even grid; the matching
up-sampling rolls its output back (adaptive polyphase sampling, Chaman & Dokmanic 2021,
"Truly shift-invariant convolutional neural networks", and their 2021 follow-up with
adaptive polyphase up-sampling). A network built this way commutes *exactly* with every
integer periodic shift, odd ones included, up to ties between polyphase energies (a
measure-zero event for real data; with a tie the first phase wins). The alternative,
a fixed phase as in the SineNet and PDEArena code, is only equivariant to shifts by
multiples of ``2**levels``.

The two are a backbone's ``downsample_phase`` option (`DOWNSAMPLE_PHASES`):

- ``"adaptive"`` (physim's default): the adaptive polyphase choice above. Its price is
  that the choice is an ``argmax``, a discontinuous function of the input: where two
  phases' energies are close, a tiny change of the input flips the phase and moves the
  output by a finite amount. On clean data ties are rare, but an input with a large
  random part (PDE-Refiner's pure-noise level, where the noise draw decides the phase)
  flips often, and every flip adds output variance that training cannot remove.
- ``"fixed"``: always the even phase, PDEArena's ``Downsample`` (a stride-2 convolution
  with the padding that ``nn.Conv1d`` is given, pdearena/modules/conditioned/
  oned_unet.py:406-421, circular through pdearena/models/pderefiner.py:71-80) and
  SineNet's pooling. The network is then a continuous (Lipschitz) function of its input,
  equivariant only to shifts by multiples of ``2**levels``.

On non-periodic data (``padding_mode="zeros"``) the phase is always fixed: a shift is
not a symmetry there.

What both backbones share is written here once: their argument checks, the
conditioning embedding and the checks of a call (`UShapedBackbone`), the settings every
block is built with (`BlockOptions`) and the conditioned convolution block itself
(`ConditionedConvBlock`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from ._conditioning import (
    ConditionedNorm,
    backbone_embedding,
    check_cond,
    check_cond_mode,
)

PADDING_MODES = ("circular", "zeros")
DOWNSAMPLE_PHASES = ("adaptive", "fixed")

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d}


# ---------------------------------------------------------------------- validation
def check_common(
    owner: str, spatial_dims: int, padding_mode: str, hidden_channels: int
) -> None:
    """Validate the arguments every U-shaped backbone takes.

    Raises:
        ValueError: naming the argument, the value and the valid values.
    """
    if spatial_dims not in _CONV:
        raise ValueError(f"{owner}: spatial_dims must be 1 or 2, got {spatial_dims!r}.")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{owner}: padding_mode must be one of {PADDING_MODES} ('circular' for "
            f"periodic data), got {padding_mode!r}."
        )
    if hidden_channels < 1:
        raise ValueError(
            f"{owner}: hidden_channels must be >= 1, got {hidden_channels}."
        )


def check_downsample_phase(owner: str, downsample_phase: str) -> None:
    """Raise unless ``downsample_phase`` is one of `DOWNSAMPLE_PHASES`."""
    if downsample_phase not in DOWNSAMPLE_PHASES:
        raise ValueError(
            f"{owner}: downsample_phase must be one of {DOWNSAMPLE_PHASES} "
            "('adaptive': shift-equivariant polyphase choice; 'fixed': PDEArena's even "
            f"phase, continuous in the input), got {downsample_phase!r}."
        )


def check_norm_groups(
    owner: str, norm_groups: int, widths: list[int], prefix: str = ""
) -> None:
    """Raise unless ``norm_groups`` divides every normalised channel count.

    ``prefix`` names the argument in the message (``"out_"``: ``out_norm_groups``).
    """
    divisor = math.gcd(*widths)
    if norm_groups < 1 or divisor % norm_groups:
        valid = [g for g in range(1, divisor + 1) if divisor % g == 0]
        raise ValueError(
            f"{owner}: {prefix}norm_groups={norm_groups} does not divide every "
            f"normalised channel count {sorted(set(widths))}; valid values: {valid}."
        )


def check_spatial_size(
    owner: str, shape: Sequence[int], levels: int, name: str = "input spatial size"
) -> None:
    """Raise unless every spatial size survives ``levels`` halvings (>= 2 left).

    The networks call it at construction on their optional ``spatial_size`` (so a
    config that names the data's grid fails before training) and on every input.
    ``name`` is what the message calls ``shape``.
    """
    factor = 2**levels
    if any(s % factor or s < 2 * factor for s in shape):
        raise ValueError(
            f"{owner}: {name} {tuple(shape)} cannot be halved {levels} "
            f"times; every spatial size must be a multiple of {factor} and at least "
            f"{2 * factor}. Resample or crop the data, or use fewer levels."
        )


def check_spatial_size_arg(
    owner: str, spatial_size: Sequence[int] | None, spatial_dims: int, levels: int
) -> None:
    """Validate a backbone's optional ``spatial_size`` argument at construction."""
    if spatial_size is None:
        return
    if len(spatial_size) != spatial_dims:
        raise ValueError(
            f"{owner}: spatial_size must list {spatial_dims} size(s) (one per "
            f"spatial dimension), got {list(spatial_size)}."
        )
    check_spatial_size(owner, tuple(spatial_size), levels, "spatial_size")


# ---------------------------------------------------------------------- layers
def conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    padding_mode: str,
) -> nn.Module:
    """A stride-1 "same" convolution (odd ``kernel_size``) in 1-D or 2-D."""
    return _CONV[spatial_dims](
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        padding_mode=padding_mode,
    )


def group_norm(norm_groups: int, channels: int, norm: bool) -> nn.Module:
    """``GroupNorm`` when ``norm``, else the identity."""
    return nn.GroupNorm(norm_groups, channels) if norm else nn.Identity()


def zero_parameters(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero and return it.

    PDEArena's ``zero_module`` (pdearena/modules/conditioned/condition_utils.py:10-14),
    after the DDPM U-Net: a residual block whose last layer is zero starts as its
    shortcut, and a network whose output layer is zero starts by predicting zero.
    """
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    return module


@dataclass(frozen=True)
class BlockOptions:
    """What every layer of a U-shaped backbone is built with, and factories for them.

    Args:
        spatial_dims: 1 or 2.
        padding_mode: ``"circular"`` or ``"zeros"`` (`PADDING_MODES`).
        norm: use GroupNorm (``False``: identity).
        norm_groups: GroupNorm groups.
        embed_dim: width of the conditioning embedding (0: unconditioned).
        cond_mode: ``"add"`` or ``"scale_shift"`` (see `ConditionedNorm`).
    """

    spatial_dims: int
    padding_mode: str
    norm: bool
    norm_groups: int
    embed_dim: int
    cond_mode: str

    def conv(
        self, in_channels: int, out_channels: int, kernel_size: int = 3
    ) -> nn.Module:
        """A stride-1 "same" convolution with the backbone's padding (`conv`)."""
        return conv(
            self.spatial_dims, in_channels, out_channels, kernel_size, self.padding_mode
        )

    def norm_layer(self, channels: int) -> nn.Module:
        """The backbone's normalisation of ``channels`` features (`group_norm`)."""
        return group_norm(self.norm_groups, channels, self.norm)

    def conditioned_norm(self, channels: int, zero_init: bool = True) -> nn.Module:
        """`norm_layer`, modulated by the conditioning embedding (`ConditionedNorm`)."""
        return ConditionedNorm(
            self.norm_layer(channels),
            self.embed_dim,
            channels,
            self.cond_mode,
            zero_init=zero_init,
        )


class ConditionedConvBlock(nn.Module):
    """Two 3-wide convolutions, each with a norm and a GELU; the norm that follows the
    first convolution is modulated by the conditioning embedding (`ConditionedNorm`).

    The two backbones put the norms on different sides of their convolutions:

    - ``pre_norm=True``, the U-Net's wide residual block (PDEArena, after the
      pre-activation ResNet of He et al. 2016):
      ``conv2(act(norm2(conv1(act(norm1(x))), emb)))``; `UNet` adds the shortcut.
    - ``pre_norm=False``, SineNet's conv block:
      ``act(norm2(conv2(act(norm1(conv1(x), emb)))))``. The SineNet code adds the
      embedding after the first activation; here it sits where it does in the U-Net,
      so both backbones condition alike.

    The norms are numbered, and all layers registered, in the order they are applied,
    so state-dict names and the order of ``parameters()`` (which an optimizer's saved
    state follows) are those of the two blocks this one replaced.

    ``pdearena_init`` zeroes ``conv2`` (a residual block starts as its shortcut) and
    leaves the conditioning projection at torch's initialisation, as PDEArena
    (pdearena/modules/conditioned/oned_unet.py:66, 81); otherwise the projection
    starts at zero.

    Args:
        in_channels: input channels.
        out_channels: output channels (of both convolutions).
        options: the backbone's `BlockOptions`.
        pre_norm: the arrangement above.
        pdearena_init: PDEArena's initialisation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        options: BlockOptions,
        *,
        pre_norm: bool,
        pdearena_init: bool = False,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        # Created in the order a seeded build draws their weights (conv1, the
        # conditioning projection, conv2; a norm draws none), registered below in
        # the order they are applied.
        plain = options.norm_layer(in_channels if pre_norm else out_channels)
        conv1 = options.conv(in_channels, out_channels)
        conditioned = options.conditioned_norm(
            out_channels, zero_init=not pdearena_init
        )
        conv2 = options.conv(out_channels, out_channels)
        if pdearena_init:
            zero_parameters(conv2)
        if pre_norm:
            self.norm1, self.conv1, self.norm2, self.conv2 = (
                plain,
                conv1,
                conditioned,
                conv2,
            )
        else:
            self.conv1, self.norm1, self.conv2, self.norm2 = (
                conv1,
                conditioned,
                conv2,
                plain,
            )

    def forward(
        self, x: Float[Tensor, "B Ci *S"], emb: Float[Tensor, "B E"] | None
    ) -> Float[Tensor, "B Co *S"]:
        if self.pre_norm:
            h = self.norm2(self.conv1(F.gelu(self.norm1(x))), emb)
            return self.conv2(F.gelu(h))
        h = F.gelu(self.norm1(self.conv1(x), emb))
        return F.gelu(self.norm2(self.conv2(h)))


class UShapedBackbone(nn.Module):
    """What `UNet` and `SineNet` share: argument checks, conditioning, call checks.

    A backbone checks its own arguments, computes how often it halves the grid and
    which channel counts it normalises, and calls this constructor; it then builds its
    layers with `options` and starts ``forward`` with `embed`. The conditioning
    embedding (``cond_embedding``, `backbone_embedding`) is the first module a
    backbone registers, so a seeded build draws its weights in the same order.

    The arguments come in three groups: the grid, the norms, the conditioning.

    Args:
        spatial_dims: 1 or 2.
        padding_mode: ``"circular"`` (periodic data) or ``"zeros"``.
        downsample_phase: ``"adaptive"`` (polyphase choice, commutes with every
            periodic shift) or ``"fixed"`` (the even phase of the PDEArena and SineNet
            code, continuous in the input); only matters with circular padding.
        num_downsamplings: how often the grid is halved.
        spatial_size: the data's grid, if known (e.g. ``[64, 64]``): checked at
            construction, so a grid the down/up path cannot handle fails before any
            training. Inputs are checked at every call either way (`embed`).
        norm: use GroupNorm (``False``: identity).
        norm_groups: GroupNorm groups; must divide every entry of ``norm_widths``.
        norm_widths: every channel count a norm sees.
        hidden_channels: the finest level's width (sizes the embedding).
        cond_dim: number of conditioning scalars per sample (0: unconditioned).
        cond_mode: ``"add"`` or ``"scale_shift"``.

    Raises:
        ValueError: naming the argument, the value and the valid values, including
            a ``spatial_size`` that cannot be halved ``num_downsamplings`` times.
    """

    def __init__(
        self,
        *,
        spatial_dims: int,
        padding_mode: str,
        downsample_phase: str,
        num_downsamplings: int,
        spatial_size: Sequence[int] | None,
        norm: bool,
        norm_groups: int,
        norm_widths: list[int],
        hidden_channels: int,
        cond_dim: int,
        cond_mode: str,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        check_common(owner, spatial_dims, padding_mode, hidden_channels)
        check_downsample_phase(owner, downsample_phase)
        check_cond_mode(cond_mode)
        if cond_dim < 0:
            raise ValueError(f"{owner}: cond_dim must be >= 0, got {cond_dim}.")
        check_spatial_size_arg(owner, spatial_size, spatial_dims, num_downsamplings)
        if norm:
            check_norm_groups(owner, norm_groups, norm_widths)
        self.spatial_dims = spatial_dims
        self.cond_dim = cond_dim
        self.num_downsamplings = num_downsamplings
        self.periodic = padding_mode == "circular"
        self.adaptive_phase = self.periodic and downsample_phase == "adaptive"
        self.cond_embedding, embed_dim = backbone_embedding(cond_dim, hidden_channels)
        self.options = BlockOptions(
            spatial_dims, padding_mode, norm, norm_groups, embed_dim, cond_mode
        )

    def embed(
        self, x: Float[Tensor, "B C *S"], cond: Float[Tensor, "B P"] | None
    ) -> Float[Tensor, "B E"] | None:
        """Check a call's grid and ``cond``; the conditioning embedding (or ``None``).

        Raises:
            ValueError: the grid cannot be halved `num_downsamplings` times, or
                ``cond`` does not match ``cond_dim``.
        """
        owner = type(self).__name__
        check_spatial_size(owner, tuple(x.shape[2:]), self.num_downsamplings)
        check_cond(cond, self.cond_dim, x.shape[0], owner)
        return None if self.cond_embedding is None else self.cond_embedding(cond)


# ---------------------------------------------------------------------- resampling
def polyphase_choice(x: Float[Tensor, "B C *S"]) -> Bool[Tensor, "B D"]:
    """Per sample and axis, whether the odd polyphase component has most energy.

    The ``2**D`` components ``x[..., a::2, b::2]`` are ranked by their sum of
    squares over channels and space; the winner's offsets are returned.
    """
    batch, _, *space = x.shape
    dims = len(space)
    split = [batch]
    for size in space:
        split += [size // 2, 2]
    energy = x.square().sum(1).reshape(split).sum(dim=tuple(range(1, 2 * dims, 2)))
    best = energy.flatten(1).argmax(1)
    bits = [(best >> (dims - 1 - k)) & 1 for k in range(dims)]
    return torch.stack(bits, dim=1).bool()


def roll_phase(
    x: Float[Tensor, "B C *S"], phase: Bool[Tensor, "B D"] | None, sign: int
) -> Float[Tensor, "B C *S"]:
    """Roll each sample by ``sign`` cells along the axes its ``phase`` marks.

    ``sign=-1`` moves the chosen polyphase component onto the even grid before a
    down-sampling; ``sign=+1`` undoes it after the matching up-sampling. ``None``
    (non-periodic data) leaves ``x`` as it is.
    """
    if phase is None:
        return x
    view = (-1,) + (1,) * (x.ndim - 1)
    for axis in range(phase.shape[1]):
        x = torch.where(phase[:, axis].view(view), x.roll(sign, dims=2 + axis), x)
    return x


def phase_of(x: Float[Tensor, "B C *S"], adaptive: bool) -> Bool[Tensor, "B D"] | None:
    """`polyphase_choice` when ``adaptive``, ``None`` (the fixed even phase) otherwise.

    Backbones pass ``adaptive = periodic and downsample_phase == "adaptive"``.
    """
    return polyphase_choice(x) if adaptive else None


def circular_crop(x: Tensor, spatial_dims: int, width: int) -> Tensor:
    """Drop ``width`` cells at both ends of every spatial axis."""
    index = (Ellipsis,) + (slice(width, -width),) * spatial_dims
    return x[index]


def strided_conv_down(spatial_dims: int, channels: int, padding_mode: str) -> nn.Module:
    """Halve the resolution with a 3-wide stride-2 convolution (PDEArena U-Net)."""
    return _CONV[spatial_dims](
        channels, channels, 3, stride=2, padding=1, padding_mode=padding_mode
    )


def avg_pool_down(spatial_dims: int) -> nn.Module:
    """Halve the resolution by 2-wide average pooling (SineNet)."""
    return _AVG_POOL[spatial_dims](2)


class TransposedConvUp(nn.Module):
    """Double the resolution with a 4-wide stride-2 transposed convolution (PDEArena).

    Transposed convolutions only pad with zeros in torch; on periodic data the input is
    padded circularly by one coarse cell, which is all the 4-wide kernel reaches, and
    the two extra fine cells at each end are cropped.
    """

    def __init__(self, spatial_dims: int, channels: int, periodic: bool) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.periodic = periodic
        self.conv = _CONV_TRANSPOSE[spatial_dims](
            channels, channels, 4, stride=2, padding=1
        )

    def forward(self, x: Float[Tensor, "B C *S"]) -> Tensor:
        if not self.periodic:
            return self.conv(x)
        x = F.pad(x, (1, 1) * self.spatial_dims, mode="circular")
        return circular_crop(self.conv(x), self.spatial_dims, 2)


class CubicUp(nn.Module):
    """Double the resolution by cubic interpolation (SineNet), periodic if asked.

    Periodic: pad two coarse cells circularly (the cubic stencil's reach), interpolate,
    crop four fine cells at each end, as the SineNet code does. torch has no 1-D
    cubic mode; 1-D data is interpolated as a one-row image, exact along the row.
    """

    def __init__(self, spatial_dims: int, periodic: bool) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.periodic = periodic

    def forward(self, x: Float[Tensor, "B C *S"]) -> Tensor:
        if self.periodic:
            x = F.pad(x, (2, 2) * self.spatial_dims, mode="circular")
        if self.spatial_dims == 1:
            y = F.interpolate(x[..., None, :], scale_factor=(1, 2), mode="bicubic")
            y = y[..., 0, :]
        else:
            y = F.interpolate(x, scale_factor=2, mode="bicubic")
        return circular_crop(y, self.spatial_dims, 4) if self.periodic else y
