"""INSR's 2-D incompressible inviscid flow: advection-projection operator splitting."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from physim.solvers import rfft_wavenumber_grid

from ._insr_problems import (
    Box,
    FieldFn,
    Fields,
    PeriodicGridField,
    Samples,
    Stage,
    _with_grad,
    check_network,
    divergence,
    gradient,
    laplacian,
)

__all__ = [
    "InviscidFluidProblem",
    "kinetic_energy",
    "taylor_green_velocity",
    "velocity_from_vorticity",
]


def taylor_green_velocity(
    x: Float[Tensor, "P 2"],
    wavenumbers: Sequence[int] = (1,),
    amplitudes: Sequence[float] = (1.0,),
    period: float = 1.0,
) -> Float[Tensor, "P 2"]:
    """A sum of Taylor-Green vortices ``A (sin kx cos ky, -cos kx sin ky)``.

    ``k = 2 pi n / period`` for each wavenumber ``n``. Every term is divergence-free,
    has zero normal velocity on the lines ``x, y = 0, period/2, period...`` (so it
    satisfies free-slip walls on ``[0, period]^2``) and vorticity
    ``2 k A sin kx sin ky``, the field of :func:`physim.solvers.taylor_green_vorticity`.
    A single term is a steady solution of the Euler equations; several wavenumbers
    (INSR's multi-scale state) interact and evolve.
    """
    if len(wavenumbers) != len(amplitudes):
        raise ValueError(
            f"taylor_green_velocity: {len(wavenumbers)} wavenumbers but "
            f"{len(amplitudes)} amplitudes; give one amplitude per wavenumber."
        )
    u = torch.zeros_like(x)
    for n, amplitude in zip(wavenumbers, amplitudes, strict=True):
        k = 2.0 * math.pi * n / period
        sx, cx = torch.sin(k * x[:, 0]), torch.cos(k * x[:, 0])
        sy, cy = torch.sin(k * x[:, 1]), torch.cos(k * x[:, 1])
        u = u + amplitude * torch.stack([sx * cy, -cx * sy], dim=1)
    return u


def velocity_from_vorticity(
    vorticity: Float[Tensor, "N N"], length: float
) -> Float[Tensor, "2 N N"]:
    """Velocity ``(dpsi/dy, -dpsi/dx)``, ``-lap psi = w``, of a periodic vorticity.

    Spectral on a square periodic grid of side ``length`` (the mean flow is zero), the
    same relation as :class:`physim.solvers.NavierStokes2D`.
    """
    n = vorticity.shape[-1]
    kx, ky = (
        2.0 * math.pi / length * k
        for k in rfft_wavenumber_grid(n, 2, dtype=torch.float64)
    )
    k2 = kx**2 + ky**2
    psi_hat = torch.fft.rfft2(vorticity.double()) / torch.where(k2 > 0, k2, 1.0)
    psi_hat[..., 0, 0] = 0.0
    velocity_hat = torch.stack([1j * ky * psi_hat, -1j * kx * psi_hat])
    return torch.fft.irfft2(velocity_hat, s=(n, n))


def kinetic_energy(
    velocity: FieldFn, domain: Box, num_points: int = 64
) -> Float[Tensor, ""]:
    """Mean of ``|u|^2 / 2`` over a cell-centred ``num_points^2`` grid of the box."""
    axes = [
        lo + (hi - lo) * (torch.arange(num_points) + 0.5) / num_points
        for lo, hi in domain.bounds
    ]
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        return 0.5 * velocity(x).square().sum(dim=1).mean()


class InviscidFluidProblem:
    """2-D incompressible Euler flow in a box with free-slip walls (Chen et al. 2023).

    Networks: ``velocity`` (2 -> 2) holds the state, ``pressure`` (2 -> 1) is
    recomputed each step. Each time step is three optimisations (operator splitting):

    1. advect: fit ``u(x)`` to ``u_prev(clamp(x - dt u_prev(x)))`` (semi-Lagrangian,
       first order, unconditionally stable; it dissipates a little energy);
    2. pressure: fit ``lap p = div u*`` with a soft Neumann condition ``dp/dn = 0``;
    3. project: fit ``u = u* - grad p``, which is divergence-free when 2. is exact.

    Steps 1 and 3 add the soft wall condition ``(u . n)^2``; every penalty has weight
    ``boundary_weight``. The pressure absorbs ``dt`` (``p = dt * pressure``), as in
    the reference. The data channel is the vorticity ``dv/dx - du/dy`` (autograd), so
    the result compares with :class:`physim.solvers.NavierStokes2D` data; the initial
    velocity comes from a stored vorticity frame through the stream function
    (:func:`velocity_from_vorticity`).

    Good values: ``[0, 1]^2`` with Taylor-Green data (4 vortex cells; the paper's
    ``[-1, 1]^2`` is the same flow scaled by 2), ``dt = 0.05``, SIRENs of width 32
    with 3 hidden layers, ``128^2`` points per iteration.

    Args:
        domain: ``[[x0, x1], [y0, y1]]``.
        boundary_weight: weight of the wall and Neumann penalties.
    """

    state_fields = ("velocity", "pressure")
    channel_names = ("vorticity",)

    def __init__(
        self,
        domain: Sequence[Sequence[float]] = ((0.0, 1.0), (0.0, 1.0)),
        boundary_weight: float = 1.0,
    ) -> None:
        self.domain = Box(tuple(tuple(pair) for pair in domain))
        if self.domain.dim != 2:
            raise ValueError(
                f"InviscidFluidProblem: domain must be 2-D, got {self.domain.bounds}."
            )
        self.boundary_weight = float(boundary_weight)

    def check_fields(self, fields: Fields) -> None:
        check_network("InviscidFluidProblem", fields, "velocity", 2, 2)
        check_network("InviscidFluidProblem", fields, "pressure", 2, 1)

    def initial_targets(
        self, frame: Float[Tensor, "1 N N"], coords: Sequence[Tensor]
    ) -> dict[str, FieldFn]:
        length = float(coords[0][1] - coords[0][0]) * frame.shape[-1]
        velocity = velocity_from_vorticity(frame[0], length)
        # The pressure starts at zero: a random SIREN's gradient is O(omega_0) and
        # would enter the first projection.
        return {
            "velocity": PeriodicGridField.from_coords(velocity, coords),
            "pressure": lambda x: torch.zeros_like(x[:, :1]),
        }

    def observe(self, fields: Fields, x: Tensor) -> Tensor:
        x = _with_grad(x)
        u = fields["velocity"](x)
        vorticity = gradient(u[:, 1], x)[:, 0] - gradient(u[:, 0], x)[:, 1]
        return vorticity[:, None].detach()

    def stages(self) -> list[Stage]:
        return [
            Stage("advect", "velocity", self.advection_loss),
            Stage("pressure", "pressure", self.pressure_loss),
            Stage("project", "velocity", self.projection_loss),
        ]

    def _wall(self, fields: Fields, samples: Samples) -> Tensor:
        normal = (fields["velocity"](samples.boundary) * samples.normals).sum(dim=1)
        return self.boundary_weight * normal.square().mean()

    def advection_loss(
        self, fields: Fields, frozen: Fields, samples: Samples, dt: float
    ) -> Tensor:
        x = samples.interior
        with torch.no_grad():
            departure = self.domain.clamp(x - dt * frozen["velocity"](x))
            target = frozen["velocity"](departure)
        mismatch = (fields["velocity"](x) - target).square().sum(dim=1).mean()
        return mismatch + self._wall(fields, samples)

    def pressure_loss(
        self, fields: Fields, frozen: Fields, samples: Samples, dt: float
    ) -> Tensor:
        x = _with_grad(samples.interior)
        source = divergence(frozen["velocity"](x), x).detach()
        residual = laplacian(fields["pressure"](x)[:, 0], x) - source
        b = _with_grad(samples.boundary)
        neumann = (gradient(fields["pressure"](b)[:, 0], b) * samples.normals).sum(1)
        return residual.square().mean() + self.boundary_weight * neumann.square().mean()

    def projection_loss(
        self, fields: Fields, frozen: Fields, samples: Samples, dt: float
    ) -> Tensor:
        x = _with_grad(samples.interior)
        target = (
            frozen["velocity"](x) - gradient(frozen["pressure"](x)[:, 0], x)
        ).detach()
        mismatch = (fields["velocity"](x.detach()) - target).square().sum(dim=1).mean()
        return mismatch + self._wall(fields, samples)
