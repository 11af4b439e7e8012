"""Learned interpolation: a periodic CNN picks the 4x4 flux-interpolation stencils.

Kochkov et al. (2021, PNAS) and TSM (Sun et al. 2023): every face value the
finite-volume solver needs (:class:`physim.solvers.FaceValues`, 8 per cell: 2 tags x 2
velocity components x 2 axes) is a 4x4 stencil of its source velocity component. The
CNN predicts per-cell stencil coefficients constrained to first-order accuracy (they sum
to 1); the advected values are then blended with upwind through van Leer's limiter.
Zero logits give linear interpolation (jax-cfd's ``PolynomialConstraint`` bias for a
4x4 stencil at first order: ``[0, 1/2, 1/2, 0]`` along the shifted axis), so an
untrained model is the coarse solver with
:class:`physim.solvers.LinearVanLeerInterpolation`, not with jax-cfd's van Leer scheme
(which limits Lax-Wendroff, :class:`physim.solvers.VanLeerInterpolation`).
"""

from __future__ import annotations

import itertools

import torch
from jaxtyping import Float
from torch import Tensor, nn

from physim.solvers import FaceValues, blend_advected, face_shift

__all__ = [
    "NUM_INTERPOLATIONS",
    "LearnedInterpolation",
    "StencilInterpolation",
    "apply_stencils",
    "linear_stencils",
    "periodic_cnn",
    "stencil_nullspace",
]

STENCIL_SIZE = 4
#: Offsets ``{-1, 0, 1, 2}`` per axis around the source cell; the target is half a cell
#: past offset 0 along the shifted axis, at offset 0 along the other.
STENCIL_OFFSETS = tuple(
    itertools.product(range(-1, STENCIL_SIZE - 1), range(-1, STENCIL_SIZE - 1))
)
NUM_POINTS = STENCIL_SIZE**2
NUM_INTERPOLATIONS = 8
#: Interpolation ``k = 4 tag + 2 c + j``: (source component, shifted axis). Tag 0 is the
#: advecting velocity u_j at component c's face along j (u_j shifted along c), tag 1
#: the advected u_c there (u_c shifted along j); see :class:`physim.solvers.FaceValues`.
_SOURCES = tuple(
    (j, c) if tag == 0 else (c, j)
    for tag in range(2)
    for c in range(2)
    for j in range(2)
)


def stencil_nullspace() -> Float[Tensor, "15 16"]:
    """An orthonormal basis of the stencils whose coefficients sum to 0 (float64).

    The rows of ``Vh`` beyond the rank of the 1 x 16 constraint matrix ``[1, ..., 1]``
    (first-order polynomial accuracy), from its SVD, as in jax-cfd's
    ``PolynomialConstraint``.
    """
    constraint = torch.ones(1, NUM_POINTS, dtype=torch.float64)
    _, _, vh = torch.linalg.svd(constraint)
    return vh[1:]


def linear_stencils() -> Float[Tensor, "8 16"]:
    """The base stencil of each interpolation: plain linear interpolation.

    Weights ``[0, 1/2, 1/2, 0]`` along the shifted axis times ``[0, 1, 0, 0]`` along
    the other, so zero logits reproduce :func:`physim.solvers.linear_face_values`.
    """
    half = torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64)
    point = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    stencils = []
    for _, axis in _SOURCES:
        x, y = (half, point) if axis == 0 else (point, half)
        stencils.append(torch.outer(x, y).flatten())
    return torch.stack(stencils)


def _neighbours(velocity: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 16 N N"]:
    """``[:, c, s] = u_c[i + dx_s, j + dy_s]`` for the 16 stencil offsets (periodic)."""
    return torch.stack(
        [face_shift(face_shift(velocity, 0, dx), 1, dy) for dx, dy in STENCIL_OFFSETS],
        dim=2,
    )


def apply_stencils(
    velocity: Float[Tensor, "B 2 N N"],
    coefficients: Float[Tensor, "B 8 16 N N"],
) -> FaceValues:
    """Face values from per-cell stencils (no limiter): ``sum_s w_s u_src[i + s]``."""
    neighbours = _neighbours(velocity)
    sources = torch.tensor([src for src, _ in _SOURCES], device=velocity.device)
    values = (coefficients * neighbours[:, sources]).sum(dim=2)  # [B, 8, N, N]
    values = values.unflatten(1, (2, 2, 2))
    return FaceValues(values[:, 0], values[:, 1])


class StencilInterpolation:
    """A :class:`physim.solvers.FaceInterpolation` with fixed stencil coefficients.

    The advecting values are the stencils' output ("u" tag); the advected values
    ("c" tag) are the stencils' output blended with upwind by van Leer's limiter, with
    the same ``r`` and ``phi`` as the solver's van Leer scheme
    (:func:`physim.solvers.van_leer_limit`). This is the reference's learned
    interpolation: TSM's ``tsm_modular_self_advection`` (Edward-Sun/TSM-PDE) wraps the
    "c" interpolation in jax-cfd's ``tvd_limiter_transformation``, i.e.
    ``apply_tvd_limiter(learned, van_leer_limiter)``, and uses the "u" interpolation
    as is. Learned stencils replace Lax-Wendroff as the high-order value; like
    jax-cfd's ``FusedLearnedInterpolation``, they ignore ``dt`` and ``grid_spacing``.
    No Courant limit is declared (the learned scheme has none known).
    """

    courant_limit = None

    def __init__(self, coefficients: Float[Tensor, "B 8 16 N N"]) -> None:
        self.coefficients = coefficients

    def __call__(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        *,
        dt: float | None = None,
        grid_spacing: float | None = None,
    ) -> FaceValues:
        return blend_advected(velocity, apply_stencils(velocity, self.coefficients))


def periodic_cnn(
    in_channels: int,
    out_channels: int,
    hidden_channels: int,
    num_layers: int,
    kernel_size: int = 3,
) -> nn.Sequential:
    """``num_layers`` x [periodic conv, ReLU] and a final periodic conv (no activation).

    Circular padding makes every layer translation-equivariant on the torus, as the
    data; the output layer starts at zero (see :class:`LearnedInterpolation`).
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(num_layers):
        layers += [
            nn.Conv2d(
                channels,
                hidden_channels,
                kernel_size,
                padding=kernel_size // 2,
                padding_mode="circular",
            ),
            nn.ReLU(),
        ]
        channels = hidden_channels
    output = nn.Conv2d(
        channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        padding_mode="circular",
    )
    nn.init.zeros_(output.weight)
    nn.init.zeros_(output.bias)
    return nn.Sequential(*layers, output)


class LearnedInterpolation(nn.Module):
    """CNN -> stencil coefficients for the next ``bundle`` solver steps.

    ``coefficients = base + logits @ nullspace`` per interpolation and cell, with the
    15 logits of each of the 8 interpolations (``120 bundle`` output channels) from a
    periodic CNN on the features (the velocity for LI, HiPPO states for TSM) scaled by
    ``input_scale``. Every stencil sums to 1 for any logits, and zero logits give
    linear interpolation. The output layer is initialised to zero, so an untrained
    model is the coarse solver with linear interpolation limited by van Leer
    (:class:`physim.solvers.LinearVanLeerInterpolation`; random logits, as in jax-cfd,
    start training from a perturbed and often unstable scheme).

    Paper settings: ``hidden_channels=256, num_layers=6, kernel_size=3``,
    ``input_scale=0.1``; TSM bundles 4 steps.

    Args:
        in_channels: feature channels.
        hidden_channels: width of the CNN.
        num_layers: hidden conv layers (each followed by ReLU).
        kernel_size: odd conv kernel size.
        bundle: steps served by one CNN call (temporal bundling).
        input_scale: factor on the features.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 256,
        num_layers: int = 6,
        kernel_size: int = 3,
        bundle: int = 1,
        input_scale: float = 0.1,
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("hidden_channels", hidden_channels),
            ("bundle", bundle),
        ]:
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(
                    f"LearnedInterpolation: {name} must be an integer >= 1, got "
                    f"{value!r}."
                )
        if kernel_size % 2 != 1:
            raise ValueError(
                f"LearnedInterpolation: kernel_size must be odd, got {kernel_size!r}."
            )
        self.bundle = int(bundle)
        self.input_scale = float(input_scale)
        nullspace = stencil_nullspace()
        self.cnn = periodic_cnn(
            in_channels,
            self.bundle * NUM_INTERPOLATIONS * nullspace.shape[0],
            hidden_channels,
            num_layers,
            kernel_size,
        )
        # Float64 masters, cast at use: buffers would be rounded to float32 at
        # construction, and the stencils must sum to 1 to the working precision.
        self._nullspace = nullspace
        self._base = linear_stencils()

    def coefficients(
        self, features: Float[Tensor, "B F N N"]
    ) -> Float[Tensor, "B K 8 16 N N"]:
        """Stencil coefficients for the next ``K = bundle`` steps."""
        return self.stencils(self.cnn(self.input_scale * features))

    def stencils(
        self, logits: Float[Tensor, "B L N N"]
    ) -> Float[Tensor, "B K 8 16 N N"]:
        """``base + logits @ nullspace`` from the CNN output ``[B, 120 K, N, N]``."""
        logits = logits.unflatten(1, (self.bundle, NUM_INTERPOLATIONS, -1))
        nullspace, base = self._nullspace.to(logits), self._base.to(logits)
        offsets = torch.einsum("bkifxy,fs->bkisxy", logits, nullspace)
        return offsets + base[None, None, :, :, None, None]

    def forward(self, features: Float[Tensor, "B F N N"]) -> list[StencilInterpolation]:
        """One :class:`StencilInterpolation` per bundled step."""
        return [StencilInterpolation(c) for c in self.coefficients(features).unbind(1)]
