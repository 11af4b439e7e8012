"""Finite-volume incompressible Navier-Stokes on a periodic staggered (MAC) grid.

The base solver of learned interpolation (Kochkov et al. 2021) and temporal stencil
modeling (Sun et al. 2023), jax-cfd 0.2.1's ``implicit_diffusion_navier_stokes`` (or,
selectable, ``semi_implicit_navier_stokes``) to round-off in float64
(``tests/solvers/test_fv_jaxcfd.py`` checks it against arrays jax-cfd produced):
convection in flux form with pluggable face interpolation (:mod:`._fv_interpolation`),
explicit Euler on convection and forcing, an FFT pressure projection, and backward-Euler
diffusion solved by FFT. Every operation is a torch op on ``[B, 2, N, N]`` tensors, so
steps are batched, run on any device and are differentiable (gradients flow through
unrolled steps).

Grid conventions (as jax-cfd's ``offset``): on ``[0, L)^2`` with ``dx = L / N``, cell
``(i, j)`` has its centre at ``((i + 1/2) dx, (j + 1/2) dx)``; channel 0, ``u``, lives
on the x-faces at ``((i + 1) dx, (j + 1/2) dx)`` and channel 1, ``v``, on the y-faces
at ``((i + 1/2) dx, (j + 1) dx)``. Axis ``-2`` of a field is ``x`` (index ``i``), axis
``-1`` is ``y`` (index ``j``).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import StepResult, cfl_time_step

from ._fv_interpolation import (
    FaceInterpolation,
    FaceValues,
    VanLeerInterpolation,
    _BuiltInInterpolation,
    face_shift,
)
from ._fv_operators import SpectralOperators, _project, project_and_diffuse

__all__ = [
    "TIME_SCHEMES",
    "FiniteVolumeNS2D",
    "KolmogorovForcing",
    "check_time_step",
    "five_point_laplacian",
    "flux_convection",
    "taylor_green_velocity",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: The time schemes of :class:`FiniteVolumeNS2D`, as jax-cfd 0.2.1 names them in
#: ``jax_cfd/base/equations.py``: ``implicit_diffusion_navier_stokes`` and
#: ``semi_implicit_navier_stokes`` (explicit diffusion, forward Euler).
TIME_SCHEMES = {
    "implicit_diffusion": "explicit Euler convection and forcing, FFT projection, "
    "backward-Euler diffusion (jax-cfd implicit_diffusion_navier_stokes)",
    "explicit_diffusion": "explicit Euler convection, forcing and diffusion, FFT "
    "projection (jax-cfd semi_implicit_navier_stokes with forward_euler)",
}


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


def flux_convection(faces: FaceValues, grid_spacing: float) -> Float[Tensor, "B 2 N N"]:
    """``-div(u_face c_face)`` per component: backward differences of the fluxes.

    jax-cfd's ``advection._advect_aligned``: ``-fd.divergence(flux)``.
    """
    flux = faces.advecting * faces.advected  # [B, c, j, N, N]
    fx, fy = flux[:, :, 0], flux[:, :, 1]
    return (face_shift(fx, 0, -1) - fx + face_shift(fy, 1, -1) - fy) / grid_spacing


def five_point_laplacian(
    velocity: Float[Tensor, "*B N N"], grid_spacing: float
) -> Float[Tensor, "*B N N"]:
    """The periodic 5-point Laplacian (jax-cfd's ``finite_differences.laplacian``)."""
    scale = 1.0 / grid_spacing**2
    neighbours = (
        face_shift(velocity, 0, -1)
        + face_shift(velocity, 0, 1)
        + face_shift(velocity, 1, -1)
        + face_shift(velocity, 1, 1)
    )
    return neighbours * scale - (4 * scale) * velocity


def _right_hand_side(
    velocity: Tensor,
    faces: FaceValues,
    grid_spacing: float,
    viscosity: float,
    constant_force: Tensor | None,
    drag: float,
    density: float,
) -> Tensor:
    """Convection, ``+ nu L u`` if ``viscosity``, ``+ f / rho`` if forced.

    The order of jax-cfd's ``navier_stokes_explicit_terms`` (convection, diffusion,
    forcing); ``viscosity`` is 0 when diffusion is implicit.
    """
    dvdt = flux_convection(faces, grid_spacing)
    if viscosity:
        dvdt = dvdt + viscosity * five_point_laplacian(velocity, grid_spacing)
    if constant_force is not None:
        dvdt = dvdt + (constant_force - drag * velocity) / density
    return dvdt


def _update(
    velocity: Tensor,
    faces_fn: Callable[[Tensor, float | Tensor], FaceValues],
    courant_factor: float | Tensor,
    dt: float | Tensor,
    *physics: Any,
) -> Tensor:
    """Step 1: ``u + dt rhs`` with the face values of ``faces_fn``."""
    faces = faces_fn(velocity, courant_factor)
    return velocity + dt * _right_hand_side(velocity, faces, *physics)


def _implicit_step(
    velocity: Tensor,
    faces_fn: Callable[[Tensor, float | Tensor], FaceValues],
    courant_factor: float | Tensor,
    dt: float | Tensor,
    physics: tuple,
    operators: tuple[Tensor, ...],
) -> Tensor:
    """jax-cfd's ``implicit_diffusion_navier_stokes`` step: update, project, diffuse.

    ``operators``: the difference symbols and the diffusion coefficients of
    :func:`project_and_diffuse`. A pure function of its arguments, so that
    ``compile=True`` compiles the whole step as one graph.
    """
    predicted = _update(velocity, faces_fn, courant_factor, dt, *physics)
    return project_and_diffuse(predicted, *operators)


def _explicit_step(
    velocity: Tensor,
    faces_fn: Callable[[Tensor, float | Tensor], FaceValues],
    courant_factor: float | Tensor,
    dt: float | Tensor,
    physics: tuple,
    operators: tuple[Tensor, float],
) -> Tensor:
    """jax-cfd's ``semi_implicit_navier_stokes`` step (forward Euler): update, project.

    ``operators``: the pseudo-inverse Laplacian eigenvalues and ``dx``.
    """
    return _project(
        _update(velocity, faces_fn, courant_factor, dt, *physics), *operators
    )


_STEPS = {"implicit_diffusion": _implicit_step, "explicit_diffusion": _explicit_step}


@functools.cache
def _compiled_step(time_scheme: str) -> Callable[..., Tensor]:
    """The step of ``time_scheme`` through ``torch.compile``, built once per process.

    Inductor fuses the ~40 elementwise passes of the limiter, convection and forcing,
    and the Fourier-space products (written in real arithmetic: inductor has no
    complex code generation), into a few vectorised loops around the transforms.
    Shapes follow torch's default (static first, dynamic after a change of shape).
    """
    return torch.compile(_STEPS[time_scheme])


def _call_with_step(
    interpolation: FaceInterpolation,
    dt: float,
    grid_spacing: float,
    velocity: Tensor,
    courant_factor: float | Tensor,
) -> FaceValues:
    """Any :class:`FaceInterpolation` as a ``faces_fn`` of the step functions."""
    return interpolation(velocity, dt=dt, grid_spacing=grid_spacing)


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

    One step of size ``dt`` with ``time_scheme="implicit_diffusion"`` (the default;
    jax-cfd's ``implicit_diffusion_navier_stokes``, the scheme of the TSM authors' DNS,
    coarse baseline and learned models):

    1. ``u* = u + dt (-div(u_face c_face) + f(u))``: explicit Euler on convection in
       flux form (face values from :attr:`interpolation`) and forcing;
    2. ``u** = P u*``: pressure projection (:func:`pressure_projection`);
    3. ``(I - dt nu L) u_{n+1} = u**``: backward-Euler diffusion, diagonal in Fourier
       space with the 5-point Laplacian ``L`` (it commutes with the projection, so the
       result stays divergence-free).

    With ``time_scheme="explicit_diffusion"`` (jax-cfd's ``semi_implicit_navier_stokes``
    with ``forward_euler``) the viscous term ``nu L u`` joins convection and forcing
    in step 1 and step 3 is dropped; stable for ``dt <= dx^2 / (4 nu)`` (jax-cfd's
    ``diffusion.stable_time_step``). jax-cfd divides the viscosity by the density in
    this scheme only; physim's ``viscosity`` is kinematic in both (identical at
    ``density=1``, the Kolmogorov setting).

    First order in time, second order in space with linear interpolation. Flux form
    makes total momentum an exact invariant without forcing and viscosity. Convection
    stability needs ``max|u| dt / dx`` below the interpolation's ``courant_limit``
    (1 for van Leer), checked before each step; the implicit diffusion is
    unconditionally stable.

    Round-off (float32): the backward-Euler solve is applied as an increment,
    ``u + F^-1[g F u]`` with ``g = dt nu lambda / (1 - dt nu lambda)`` computed in
    float64 (jax-cfd's ``diffusion.solve_fast_diag``), not as ``F^-1[F u / (1 - dt nu
    lambda)]``: the factor ``1 / (1 - dt nu lambda)`` rounded to float32 is a fixed
    relative error of ``~6e-8`` per mode and step that accumulates coherently, while
    the rounding of ``g ~ 1e-3`` is ``1e-3`` of that. Float32-vs-float64 drift after
    1000 steps of 64^2 Kolmogorov flow: 1.4e-3 before (jax-cfd: 1.6e-5, issue 16),
    9.9e-6 now (jax-cfd from the same state: 8.8e-6).

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
        time_scheme: ``"implicit_diffusion"`` or ``"explicit_diffusion"``
            (:data:`TIME_SCHEMES`).
        dtype: ``float32`` or ``float64`` (torch dtype or name).
        device: where the operators live (states are moved there by :meth:`encode`).
        compile: run the step (face values, convection, forcing, Euler update,
            projection and diffusion, around the transforms) through
            ``torch.compile`` when the interpolation is a built-in one (learned
            interpolations stay eager). Inductor fuses its ~40 elementwise passes
            into a few vectorised loops: 2-3x faster than eager on a CPU, about as
            fast as jax-cfd's jitted step or faster (BENCHMARKS.md,
            ``scripts/bench/bench_fv_jaxcfd.py``), at the price of seconds of
            compilation per shape on first use and a C++ compiler. Same results to
            round-off.

    Raises:
        ValueError: for a bad size, viscosity, density, dtype or time scheme.
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
        time_scheme: str = "implicit_diffusion",
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
        compile: bool = False,
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
        if time_scheme not in TIME_SCHEMES:
            raise ValueError(
                f"FiniteVolumeNS2D: unknown time_scheme {time_scheme!r}; use "
                "'implicit_diffusion' (jax-cfd's implicit_diffusion_navier_stokes, "
                "the default) or 'explicit_diffusion' (semi_implicit_navier_stokes)."
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
        self.time_scheme = time_scheme
        self.compile = bool(compile)
        self.dtype = dtype
        self.device = torch.device(device)
        self.grid_spacing = self.domain_extent / self.num_points
        self._operators = SpectralOperators(
            self.num_points, self.grid_spacing, self.viscosity, dtype, self.device
        )
        self._constant_force: Tensor | None = None
        if forcing is not None:
            y = (torch.arange(self.num_points, dtype=torch.float64) + 0.5) * (
                self.grid_spacing
            )
            field = torch.zeros(2, num_points, num_points, dtype=torch.float64)
            field[0] = forcing.amplitude * torch.sin(forcing.wavenumber * y)[None, :]
            self._constant_force = field.to(dtype=dtype, device=self.device)

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
        """Plain values for file attributes (and the dataset fingerprint).

        The interpolation and the time scheme are part of them, so data generated
        with another scheme is never taken for this one's.
        """
        return {
            "pde": self.name,
            "viscosity": self.viscosity,
            "density": self.density,
            "num_points": self.num_points,
            "domain_extent": self.domain_extent,
            "forcing": "none" if self.forcing is None else self.forcing.describe(),
            "scheme": f"finite volume MAC, {TIME_SCHEMES[self.time_scheme]}",
            "time_scheme": self.time_scheme,
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
        moved._operators = self._operators.to(device)
        if self._constant_force is not None:
            moved._constant_force = self._constant_force.to(device)
        return moved

    def max_speed(self, y: Float[Tensor, "B 2 N N"]) -> Float[Tensor, " B"]:
        """``max(|u|, |v|)`` per trajectory (for :class:`CFLController`)."""
        return y.abs().flatten(1).amax(dim=1)

    # ------------------------------------------------------------------ physics
    def face_values(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        dt: float,
        interpolation: FaceInterpolation | None = None,
    ) -> FaceValues:
        """The face values of ``interpolation`` (default: the solver's) for ``dt``."""
        interpolation = interpolation or self.interpolation
        return interpolation(velocity, dt=dt, grid_spacing=self.grid_spacing)

    def convection(
        self, velocity: Float[Tensor, "B 2 N N"], faces: FaceValues
    ) -> Float[Tensor, "B 2 N N"]:
        """``-div(u_face c_face)`` per component (:func:`flux_convection`)."""
        return flux_convection(faces, self.grid_spacing)

    def forcing_term(
        self, velocity: Float[Tensor, "B 2 N N"]
    ) -> Float[Tensor, "B 2 N N"] | None:
        """``f(u) / rho`` (``None`` without forcing)."""
        if self.forcing is None:
            return None
        return (self._constant_force - self.forcing.drag * velocity) / self.density

    def viscous_term(
        self, velocity: Float[Tensor, "B 2 N N"]
    ) -> Float[Tensor, "B 2 N N"]:
        """``nu L u`` with the 5-point Laplacian (jax-cfd's ``diffusion.diffuse``)."""
        return self.viscosity * five_point_laplacian(velocity, self.grid_spacing)

    def _explicit_viscosity(self) -> float:
        """``nu`` where diffusion is explicit, else 0 (it is then solved implicitly)."""
        return self.viscosity if self.time_scheme == "explicit_diffusion" else 0.0

    def explicit_terms(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        dt: float,
        interpolation: FaceInterpolation | None = None,
    ) -> Float[Tensor, "B 2 N N"]:
        """The explicitly integrated right-hand side of one step of size ``dt``.

        Convection and forcing; plus the viscous term with explicit diffusion.
        """
        faces = self.face_values(velocity, dt, interpolation)
        return _right_hand_side(velocity, faces, *self._physics())

    def project(self, velocity: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 N N"]:
        """The FFT pressure projection onto discretely divergence-free fields."""
        return self._operators.project(velocity)

    def diffuse(
        self, velocity: Float[Tensor, "B 2 N N"], dt: float
    ) -> Float[Tensor, "B 2 N N"]:
        """Backward-Euler diffusion ``(I - dt nu L)^-1 u`` by FFT (identity if nu=0).

        Written ``u + F^-1[g F u]`` (jax-cfd's ``diffusion.solve_fast_diag``): only
        the small increment goes through the transforms (see the class docstring).
        """
        if self.viscosity == 0:
            return velocity
        return self._operators.diffuse(velocity, dt)

    def project_and_diffuse(
        self, velocity: Float[Tensor, "B 2 N N"], dt: float
    ) -> Float[Tensor, "B 2 N N"]:
        """``diffuse(project(velocity), dt)`` with one transform pair (see
        :meth:`SpectralOperators.project_and_diffuse`); the implicit scheme's step 2-3.
        """
        return self._operators.project_and_diffuse(velocity, dt)

    def check_step(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        dt: float,
        interpolation: FaceInterpolation | None = None,
    ) -> None:
        """Raise ``ValueError`` before a step that the scheme cannot take stably.

        Checks ``dt > 0``, the interpolation's ``courant_limit`` (if it declares one)
        against ``max|u| dt / dx`` of ``velocity`` (one reduction, and a device sync
        on a GPU; a non-finite state passes, so that a rollout's blow-up is reported
        by the rollout, not here) and, with explicit diffusion, ``dt <= dx^2 /
        (4 nu)``. Interpolations without a ``courant_limit`` (learned ones) cost
        nothing here.
        """
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(
                f"FiniteVolumeNS2D: dt must be a finite step > 0, got {dt!r}."
            )
        dx = self.grid_spacing
        if self.time_scheme == "explicit_diffusion" and self.viscosity > 0:
            bound = dx**2 / (4 * self.viscosity)
            if dt > bound * (1 + 1e-9):
                raise ValueError(
                    f"FiniteVolumeNS2D: dt={dt!r} exceeds the explicit-diffusion "
                    f"bound dx^2 / (4 nu) = {bound:.6g}; use a smaller dt or "
                    "time_scheme='implicit_diffusion'."
                )
        interpolation = interpolation or self.interpolation
        limit = getattr(interpolation, "courant_limit", None)
        if limit is None:
            return
        with torch.no_grad():
            speed = float(velocity.abs().amax())
        courant = speed * dt / dx
        if math.isfinite(courant) and courant > limit * (1 + 1e-9):
            raise ValueError(
                f"FiniteVolumeNS2D: dt={dt!r} gives the Courant number {courant:.3g} "
                f"(max|u| = {speed:.6g}, dx = {dx:.6g}) above the limit {limit} of "
                f"{interpolation!r}; use dt <= {limit * dx / speed:.6g} (e.g. a "
                "CFLController with courant_number 0.5)."
            )

    def advance(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        dt: float,
        interpolation: FaceInterpolation | None = None,
    ) -> Float[Tensor, "B 2 N N"]:
        """One step of the time scheme with ``interpolation`` (default: the solver's).

        Raises:
            ValueError: from :meth:`check_step`, before any work.
        """
        interpolation = interpolation or self.interpolation
        self.check_step(velocity, dt, interpolation)
        dx = self.grid_spacing
        operands = (self._physics(), self._operators_for(dt))
        # Learned interpolations run eagerly, where autograd and checkpointing are
        # plain; the built-in ones (stateless) can be compiled with the step.
        if not isinstance(interpolation, _BuiltInInterpolation):
            faces_fn = functools.partial(_call_with_step, interpolation, dt, dx)
            return _STEPS[self.time_scheme](velocity, faces_fn, dt / dx, dt, *operands)
        if not self.compile:
            step = _STEPS[self.time_scheme]
            return step(velocity, interpolation.faces, dt / dx, dt, *operands)
        # dt as 0-d tensors: a Python float would become a symbolic kernel argument
        # on the first change of dt, and inductor then emits scalar (unvectorised)
        # loops, 4x slower here.
        courant_factor, dt_tensor = torch.tensor(
            [dt / dx, dt], dtype=velocity.dtype, device=velocity.device
        )
        step = _compiled_step(self.time_scheme)
        return step(velocity, interpolation.faces, courant_factor, dt_tensor, *operands)

    def _physics(self) -> tuple:
        """The arguments of ``_right_hand_side`` after the face values."""
        drag = 0.0 if self.forcing is None else self.forcing.drag
        viscosity = self._explicit_viscosity()
        return (self.grid_spacing, viscosity, self._constant_force, drag, self.density)

    def _operators_for(self, dt: float) -> tuple:
        """The projection (and diffusion) operands of the time scheme's step."""
        ops = self._operators
        if self.time_scheme == "implicit_diffusion":
            return (ops.backward, ops.forward, *ops.diffusion_coefficients(dt))
        return (ops.inverse_eigenvalues, self.grid_spacing)

    def step(self, y: Float[Tensor, "B 2 N N"], t: float, dt: float) -> StepResult:
        """The stepper protocol: :meth:`advance` with no error estimate."""
        return StepResult(self.advance(y, dt))

    def __repr__(self) -> str:
        return (
            f"FiniteVolumeNS2D(num_points={self.num_points}, "
            f"domain_extent={self.domain_extent:.6g}, viscosity={self.viscosity}, "
            f"forcing={self.forcing!r}, interpolation={self.interpolation!r}, "
            f"time_scheme={self.time_scheme!r}, dtype={self.dtype})"
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
