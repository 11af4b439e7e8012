"""Finite-volume incompressible Navier-Stokes on a periodic staggered (MAC) grid.

The base solver of learned interpolation (Kochkov et al. 2021) and temporal stencil
modeling (Sun et al. 2023), following jax-cfd's ``implicit_diffusion_navier_stokes``:
convection in flux form with pluggable face interpolation, explicit Euler on convection
and forcing, an FFT pressure projection, and backward-Euler diffusion solved by FFT.
Every operation is a torch op on ``[B, 2, N, N]`` tensors, so steps are batched, run on
any device and are differentiable (gradients flow through unrolled steps).

Grid conventions (as jax-cfd's ``offset``): on ``[0, L)^2`` with ``dx = L / N``, cell
``(i, j)`` has its centre at ``((i + 1/2) dx, (j + 1/2) dx)``; channel 0, ``u``, lives
on the x-faces at ``((i + 1) dx, (j + 1/2) dx)`` and channel 1, ``v``, on the y-faces
at ``((i + 1/2) dx, (j + 1) dx)``. Axis ``-2`` of a field is ``x`` (index ``i``), axis
``-1`` is ``y`` (index ``j``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import StepResult, cfl_time_step

from ._spectral import rfft_wavenumber_grid

__all__ = [
    "FaceInterpolation",
    "FaceValues",
    "FiniteVolumeNS2D",
    "KolmogorovForcing",
    "LinearInterpolation",
    "VanLeerInterpolation",
    "blend_advected",
    "check_time_step",
    "face_shift",
    "laplacian_eigenvalues",
    "linear_face_values",
    "pressure_projection",
    "staggered_divergence",
    "staggered_vorticity",
    "taylor_green_velocity",
    "van_leer_limit",
]

_SPATIAL = (-2, -1)  # the axes x, y of a field [..., N, N]
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def face_shift(c: Tensor, axis: int, shift: int) -> Tensor:
    """``c[..., i + shift, ...]`` along spatial axis ``axis`` (0: x, 1: y), periodic."""
    return torch.roll(c, -shift, dims=_SPATIAL[axis])


class FaceValues(NamedTuple):
    """Velocities on the faces of each velocity component's control volume.

    Both tensors are ``[B, 2, 2, N, N]``: entry ``[:, c, j]`` sits half a cell from
    component ``c`` along axis ``j`` (on the face between ``c``'s control volumes
    ``k`` and ``k + 1`` along ``j``).

    Attributes:
        advecting: the advecting velocity component ``j`` there ("u" tag in Kochkov et
            al.); on a MAC grid it is component ``j`` shifted half a cell along axis
            ``c``.
        advected: the advected quantity, component ``c`` itself ("c" tag), shifted
            half a cell along axis ``j``.
    """

    advecting: Float[Tensor, "B 2 2 N N"]
    advected: Float[Tensor, "B 2 2 N N"]


@runtime_checkable
class FaceInterpolation(Protocol):
    """Maps a staggered velocity ``[B, 2, N, N]`` to its :class:`FaceValues`."""

    def __call__(self, velocity: Float[Tensor, "B 2 N N"]) -> FaceValues: ...


def _linear(c: Tensor, axis: int) -> Tensor:
    return 0.5 * (c + face_shift(c, axis, 1))


def _per_face(value: Callable[[int, int], Tensor]) -> Tensor:
    """Stack ``value(c, j)`` over components ``c`` and axes ``j``: ``[B, 2, 2, ..]``."""
    return torch.stack(
        [torch.stack([value(c, j) for j in range(2)], 1) for c in range(2)], 1
    )


def linear_face_values(velocity: Float[Tensor, "B 2 N N"]) -> FaceValues:
    """Second-order linear interpolation of every face value (both tags).

    ``advecting[:, c, j] = (u_j[k] + u_j[k + 1]) / 2`` along axis ``c`` and
    ``advected[:, c, j] = (u_c[k] + u_c[k + 1]) / 2`` along axis ``j``.
    """
    return FaceValues(
        _per_face(lambda c, j: _linear(velocity[:, j], c)),
        _per_face(lambda c, j: _linear(velocity[:, c], j)),
    )


def van_leer_limit(
    c: Float[Tensor, "B N N"],
    axis: int,
    face_velocity: Float[Tensor, "B N N"],
    c_high: Float[Tensor, "B N N"],
) -> Float[Tensor, "B N N"]:
    """Blend a high-order face value with first-order upwind through van Leer's limiter.

    ``c_face = c_up - (c_up - c_high) phi(r)`` with ``phi(r) = 2 r / (1 + r)`` for
    ``r > 0`` and 0 otherwise, written ``(r + |r|) / (1 + |r|)`` so that it has no
    pole (and finite gradients) anywhere. ``r`` is the ratio of successive differences
    on the upwind side of the face between ``k`` and ``k + 1``: ``(c_k - c_{k-1}) /
    (c_{k+1} - c_k)`` for a positive face velocity and ``(c_{k+2} - c_{k+1}) /
    (c_{k+1} - c_k)`` otherwise; a zero denominator counts as 1 (jax-cfd's
    ``apply_tvd_limiter`` with ``safe_div``). With ``c_high`` the linear interpolation
    this is the van Leer TVD scheme; with learned stencils it is Kochkov et al.'s
    blend for the advected quantity.

    Args:
        c: the advected quantity on its own grid.
        axis: the spatial axis of the face shift (0: x, 1: y).
        face_velocity: the advecting velocity on the faces (sign picks upwind).
        c_high: the high-order face values to limit.

    Returns:
        The limited face values.
    """
    c_left = face_shift(c, axis, -1)
    c_right = face_shift(c, axis, 1)
    c_next = face_shift(c, axis, 2)
    jump = c_right - c
    safe_jump = torch.where(jump != 0, jump, torch.ones_like(jump))
    positive = face_velocity > 0
    r = torch.where(positive, c - c_left, c_next - c_right) / safe_jump
    phi = (r + r.abs()) / (1 + r.abs())
    c_up = torch.where(positive, c, c_right)
    return c_up - (c_up - c_high) * phi


def blend_advected(velocity: Float[Tensor, "B 2 N N"], faces: FaceValues) -> FaceValues:
    """``faces`` with every advected value passed through :func:`van_leer_limit`."""
    advected = _per_face(
        lambda c, j: van_leer_limit(
            velocity[:, c], j, faces.advecting[:, c, j], faces.advected[:, c, j]
        )
    )
    return FaceValues(faces.advecting, advected)


class LinearInterpolation:
    """Linear (central, second-order) interpolation of both tags; no limiter.

    Non-dissipative: resolved flows only (it is the scheme of the convergence test).
    """

    def __call__(self, velocity: Float[Tensor, "B 2 N N"]) -> FaceValues:
        return linear_face_values(velocity)

    def __repr__(self) -> str:
        return "LinearInterpolation()"


class VanLeerInterpolation:
    """Linear interpolation for the advecting velocity, van Leer TVD for the advected.

    jax-cfd's ``advect_van_leer_using_limiters``: second order where the field is
    smooth, first-order upwind at extrema, so it stays stable on under-resolved grids
    (the default of the DNS and of the coarse baseline solver).
    """

    def __call__(self, velocity: Float[Tensor, "B 2 N N"]) -> FaceValues:
        return blend_advected(velocity, linear_face_values(velocity))

    def __repr__(self) -> str:
        return "VanLeerInterpolation()"


@dataclass(frozen=True)
class KolmogorovForcing:
    """Kolmogorov forcing with linear drag: ``f = (A sin(k y), 0) - drag * u``.

    The forcing of Kochkov et al. (2021) and TSM on ``[0, 2 pi]^2`` (jax-cfd's
    ``simple_turbulence_forcing`` with ``forcing_type="kolmogorov"``): amplitude 1,
    wavenumber 4, drag 0.1. ``sin(k y)`` is evaluated at the y-position of the u-faces.

    Args:
        amplitude: ``A``.
        wavenumber: ``k`` (periods per ``2 pi``).
        drag: linear drag coefficient (>= 0).
    """

    amplitude: float = 1.0
    wavenumber: int = 4
    drag: float = 0.1

    def describe(self) -> str:
        return f"({self.amplitude!r} sin({self.wavenumber} y), 0) - {self.drag!r} u"


def laplacian_eigenvalues(
    num_points: int,
    grid_spacing: float,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> Float[Tensor, "N K"]:
    """Eigenvalues of the periodic 5-point Laplacian on the ``rfft2`` grid.

    ``sum_axes (2 cos(2 pi k / N) - 2) / dx^2``: the discrete operator, not
    ``-|k|^2``, so that ``div(grad(p))`` of the projection is exactly the operator
    inverted (divergence zero to round-off). Shape ``[N, N // 2 + 1]``.
    """
    grid = rfft_wavenumber_grid(num_points, 2, dtype=torch.float64, device=device)
    eig = sum(
        (2.0 * torch.cos(2.0 * math.pi * k / num_points) - 2.0) / grid_spacing**2
        for k in grid
    )
    return eig.to(dtype)


def staggered_divergence(
    velocity: Float[Tensor, "*B 2 N N"], grid_spacing: float
) -> Float[Tensor, "*B N N"]:
    """Cell-centred divergence ``(u_i - u_{i-1} + v_j - v_{j-1}) / dx``."""
    u, v = velocity[..., 0, :, :], velocity[..., 1, :, :]
    return (u - face_shift(u, 0, -1) + v - face_shift(v, 1, -1)) / grid_spacing


def staggered_vorticity(
    velocity: Float[Tensor, "*B 2 N N"], grid_spacing: float = 1.0
) -> Float[Tensor, "*B N N"]:
    """Vorticity ``dv/dx - du/dy`` at the cell corners ``((i + 1) dx, (j + 1) dx)``."""
    u, v = velocity[..., 0, :, :], velocity[..., 1, :, :]
    return (face_shift(v, 0, 1) - v - face_shift(u, 1, 1) + u) / grid_spacing


def pressure_projection(
    velocity: Float[Tensor, "B 2 N N"],
    eigenvalues: Float[Tensor, "N K"],
    grid_spacing: float,
) -> Float[Tensor, "B 2 N N"]:
    """Remove the gradient part: ``v - grad p`` with ``lap p = div v`` solved by FFT.

    ``p`` lives at cell centres; its zero mode (undetermined) is set to 0.
    Alternatives: jax-cfd's ``solve_fast_diag`` (the same eigen-decomposition, written
    with dense eigenvector matrices, which also handles walls) or conjugate gradients
    (any boundary, iterative, slower); FFT is exact and cheapest on the periodic grid.
    """
    n = velocity.shape[-1]
    div_hat = torch.fft.rfft2(staggered_divergence(velocity, grid_spacing))
    safe = torch.where(eigenvalues != 0, eigenvalues, torch.ones_like(eigenvalues))
    p_hat = torch.where(eigenvalues != 0, div_hat / safe, torch.zeros_like(div_hat))
    p = torch.fft.irfft2(p_hat, s=(n, n))
    grad = torch.stack(
        [(face_shift(p, axis, 1) - p) / grid_spacing for axis in (0, 1)], dim=-3
    )
    return velocity - grad


def check_time_step(
    dt: float, max_velocity: float, grid_spacing: float, courant_limit: float = 1.0
) -> None:
    """Raise ``ValueError`` when ``dt`` breaks the Courant limit for ``max_velocity``.

    Explicit Euler convection is stable only for ``max_velocity dt / dx`` below about
    1 (with the van Leer limiter); beyond it the flow blows up within a few steps.
    """
    bound = cfl_time_step(max_velocity, grid_spacing, courant_limit, math.inf)
    if not (math.isfinite(dt) and 0 < dt <= bound * (1 + 1e-9)):
        raise ValueError(
            f"dt={dt!r} is not a stable step: with max_velocity={max_velocity} and "
            f"grid spacing {grid_spacing:.6g} the Courant number "
            f"{dt * max_velocity / grid_spacing:.3g} exceeds {courant_limit}; use "
            f"0 < dt <= {bound:.6g} (0.5 of that is the usual choice)."
        )


class FiniteVolumeNS2D:
    """2-D incompressible Navier-Stokes, finite volumes on a periodic MAC grid.

    Equation (velocity form, density ``rho``) on ``[0, L)^2``::

        du/dt + div(u u) = -grad(p) / rho + nu lap(u) + f(u),   div(u) = 0

    One step of size ``dt`` (jax-cfd's ``implicit_diffusion_navier_stokes``):

    1. ``u* = u + dt (-div(u_face c_face) + f(u))``: explicit Euler on convection in
       flux form (face values from :attr:`interpolation`) and forcing;
    2. ``u** = P u*``: FFT pressure projection (:func:`pressure_projection`);
    3. ``(I - dt nu L) u_{n+1} = u**``: backward-Euler diffusion, diagonal in Fourier
       space with the 5-point Laplacian ``L`` (it commutes with the projection, so the
       result stays divergence-free).

    First order in time, second order in space with linear interpolation. Flux form
    makes total momentum an exact invariant without forcing and viscosity. Convection
    stability needs ``max|u| dt / dx`` below about 1 (:func:`check_time_step`); the
    diffusion is unconditionally stable.

    Channels: ``("u", "v")`` on the x- and y-faces; state ``[B, 2, N, N]`` (the
    physical field itself: :meth:`encode`/:meth:`decode` only cast).

    Good values (Kochkov et al. 2021, Kolmogorov flow at Re = 1000): ``L = 2 pi``,
    ``viscosity=1e-3``, ``KolmogorovForcing()``, ``dt = 0.5 dx / 7``.

    Args:
        num_points: cells per axis ``N`` (>= 4).
        domain_extent: ``L``.
        viscosity: kinematic viscosity ``nu`` (>= 0).
        density: ``rho`` (> 0); scales the forcing, as in jax-cfd.
        forcing: a :class:`KolmogorovForcing` or ``None``.
        interpolation: the face interpolation (default :class:`VanLeerInterpolation`).
        dtype: ``float32`` or ``float64`` (torch dtype or name).
        device: where the operators live (states are moved there by :meth:`encode`).
    """

    name = "navier_stokes_2d_velocity"
    order = 1
    channel_names = ("u", "v")

    def __init__(
        self,
        num_points: int,
        *,
        domain_extent: float = 2.0 * math.pi,
        viscosity: float = 1e-3,
        density: float = 1.0,
        forcing: KolmogorovForcing | None = None,
        interpolation: FaceInterpolation | None = None,
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        integral = not isinstance(num_points, bool) and int(num_points) == num_points
        if not (integral and num_points >= 4):
            raise ValueError(
                f"FiniteVolumeNS2D: num_points must be an integer >= 4, got "
                f"{num_points!r}."
            )
        for name, value in [("domain_extent", domain_extent), ("density", density)]:
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"FiniteVolumeNS2D: {name} must be > 0, got {value!r}."
                )
        if not (math.isfinite(viscosity) and viscosity >= 0):
            raise ValueError(
                f"FiniteVolumeNS2D: viscosity must be >= 0, got {viscosity!r}."
            )
        dtype = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"FiniteVolumeNS2D: dtype must be float32 or float64, got {dtype!r}."
            )
        self.num_points = int(num_points)
        self.domain_extent = float(domain_extent)
        self.viscosity = float(viscosity)
        self.density = float(density)
        self.forcing = forcing
        self.interpolation = interpolation or VanLeerInterpolation()
        self.dtype = dtype
        self.device = torch.device(device)
        self.grid_spacing = self.domain_extent / self.num_points
        self._eigenvalues = laplacian_eigenvalues(
            self.num_points, self.grid_spacing, dtype=dtype, device=self.device
        )
        self._forcing_field: Tensor | None = None
        if forcing is not None:
            y = (torch.arange(self.num_points, dtype=torch.float64) + 0.5) * (
                self.grid_spacing
            )
            field = torch.zeros(2, num_points, num_points, dtype=torch.float64)
            field[0] = forcing.amplitude * torch.sin(forcing.wavenumber * y)[None, :]
            self._forcing_field = field.to(dtype=dtype, device=self.device)

    # ------------------------------------------------------------------ protocol
    def encode(self, u: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 N N"]:
        """Check the shape and cast to the solver's dtype and device."""
        n = self.num_points
        if u.ndim != 4 or tuple(u.shape[1:]) != (2, n, n):
            raise ValueError(
                f"FiniteVolumeNS2D.encode: expected a staggered velocity [B, 2, {n}, "
                f"{n}], got shape {tuple(u.shape)}."
            )
        return u.to(device=self.device, dtype=self.dtype)

    def decode(self, y: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 N N"]:
        return y

    def coordinates(self, num_points: int | None = None) -> dict[str, Tensor]:
        """Cell-centre positions ``(i + 1/2) L / M`` (float64, CPU) per axis."""
        m = self.num_points if num_points is None else int(num_points)
        x = (torch.arange(m, dtype=torch.float64) + 0.5) * (self.domain_extent / m)
        return {"x": x, "y": x.clone()}

    def parameters(self) -> dict[str, float | int | str]:
        """Plain values for file attributes."""
        return {
            "pde": self.name,
            "viscosity": self.viscosity,
            "density": self.density,
            "num_points": self.num_points,
            "domain_extent": self.domain_extent,
            "forcing": "none" if self.forcing is None else self.forcing.describe(),
            "scheme": "finite volume MAC, explicit Euler convection, FFT projection, "
            "implicit diffusion",
            "interpolation": repr(self.interpolation),
            "staggering": "u at ((i+1) dx, (j+1/2) dx), v at ((i+1/2) dx, (j+1) dx)",
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def to(self, device: str | torch.device) -> FiniteVolumeNS2D:
        """This solver with its operators on ``device`` (``self`` if already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        moved = copy.copy(self)
        moved.device = device
        moved._eigenvalues = self._eigenvalues.to(device)
        if self._forcing_field is not None:
            moved._forcing_field = self._forcing_field.to(device)
        return moved

    def max_speed(self, y: Float[Tensor, "B 2 N N"]) -> Float[Tensor, " B"]:
        """``max(|u|, |v|)`` per trajectory (for :class:`CFLController`)."""
        return y.abs().flatten(1).amax(dim=1)

    # ------------------------------------------------------------------ physics
    def convection(
        self, velocity: Float[Tensor, "B 2 N N"], faces: FaceValues
    ) -> Float[Tensor, "B 2 N N"]:
        """``-div(u_face c_face)`` per component: backward differences of the fluxes."""
        flux = faces.advecting * faces.advected  # [B, c, j, N, N]
        return (
            -sum(flux[:, :, j] - face_shift(flux[:, :, j], j, -1) for j in range(2))
            / self.grid_spacing
        )

    def explicit_terms(
        self, velocity: Float[Tensor, "B 2 N N"], interpolation: FaceInterpolation
    ) -> Float[Tensor, "B 2 N N"]:
        """Convection plus forcing (the explicitly integrated right-hand side)."""
        dvdt = self.convection(velocity, interpolation(velocity))
        if self.forcing is not None:
            dvdt = dvdt + (self._forcing_field - self.forcing.drag * velocity) / (
                self.density
            )
        return dvdt

    def project(self, velocity: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 N N"]:
        """The FFT pressure projection onto discretely divergence-free fields."""
        return pressure_projection(velocity, self._eigenvalues, self.grid_spacing)

    def diffuse(
        self, velocity: Float[Tensor, "B 2 N N"], dt: float
    ) -> Float[Tensor, "B 2 N N"]:
        """Backward-Euler diffusion ``(I - dt nu L)^-1 u`` by FFT (identity if nu=0)."""
        if self.viscosity == 0:
            return velocity
        n = self.num_points
        factor = 1.0 / (1.0 - dt * self.viscosity * self._eigenvalues)
        return torch.fft.irfft2(torch.fft.rfft2(velocity) * factor, s=(n, n))

    def advance(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        dt: float,
        interpolation: FaceInterpolation | None = None,
    ) -> Float[Tensor, "B 2 N N"]:
        """One step with ``interpolation`` (default: the solver's own)."""
        rhs = self.explicit_terms(velocity, interpolation or self.interpolation)
        return self.diffuse(self.project(velocity + dt * rhs), dt)

    def step(self, y: Float[Tensor, "B 2 N N"], t: float, dt: float) -> StepResult:
        """The stepper protocol: :meth:`advance` with no error estimate."""
        return StepResult(self.advance(y, dt))

    def __repr__(self) -> str:
        return (
            f"FiniteVolumeNS2D(num_points={self.num_points}, "
            f"domain_extent={self.domain_extent:.6g}, viscosity={self.viscosity}, "
            f"forcing={self.forcing!r}, interpolation={self.interpolation!r}, "
            f"dtype={self.dtype})"
        )


def taylor_green_velocity(
    num_points: int,
    t: float = 0.0,
    viscosity: float = 0.0,
    *,
    domain_extent: float = 2.0 * math.pi,
    dtype: torch.dtype = torch.float64,
) -> Float[Tensor, "1 2 N N"]:
    """The Taylor-Green vortex sampled on the MAC grid at time ``t``.

    ``u = sin(x) cos(y) e^{-2 nu t}``, ``v = -cos(x) sin(y) e^{-2 nu t}`` (in units
    where the domain ``[0, 2 pi)`` has wavenumber 1; other extents are rescaled): an
    exact unforced solution whose point samples on the MAC grid are exactly discretely
    divergence-free.
    """
    k = 2.0 * math.pi / domain_extent
    dx = domain_extent / num_points
    index = torch.arange(num_points, dtype=torch.float64)
    face, centre = (index + 1.0) * dx, (index + 0.5) * dx
    decay = math.exp(-2.0 * viscosity * k**2 * t)
    u = torch.sin(k * face)[:, None] * torch.cos(k * centre)[None, :]
    v = -torch.cos(k * centre)[:, None] * torch.sin(k * face)[None, :]
    return (decay * torch.stack([u, v]))[None].to(dtype)
