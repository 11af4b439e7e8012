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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

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
