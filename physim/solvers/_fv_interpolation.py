"""Face interpolations of the staggered finite-volume solver (:mod:`._fv`).

Convection in flux form needs, for each velocity component ``c`` and axis ``j``, two
values on the face of ``c``'s control volume along ``j``: the advecting velocity
``u_j`` and the advected quantity ``u_c`` (:class:`FaceValues`). A
:class:`FaceInterpolation` computes both from the staggered velocity; it receives the
step size and the grid spacing, because Courant-number-dependent schemes such as
Lax-Wendroff need them (jax-cfd's ``InterpolationFn`` takes ``(c, offset, v, dt)`` for
the same reason; ``jax_cfd/base/interpolation.py``).

Schemes, all following jax-cfd 0.2.1 (``jax_cfd/base/interpolation.py`` and
``advection.py``) to round-off:

- :class:`LinearInterpolation`: central, both tags (``advect_linear``);
- :class:`VanLeerInterpolation`: linear advecting velocity, advected quantity
  Lax-Wendroff limited by van Leer (``advect_van_leer_using_limiters``, the default
  convection of ``implicit_diffusion_navier_stokes``): TVD for Courant numbers <= 1;
- :class:`LinearVanLeerInterpolation`: van Leer's limiter on the *linear* face value,
  which is what a learned interpolation with zero logits gives (jax-cfd's learned
  stencils start from linear interpolation and are limited the same way,
  ``jax_cfd/ml/interpolations.py``: ``transformed`` with
  ``tvd_limiter_transformation``); not TVD beyond small Courant numbers and not the
  reference's coarse solver.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "FaceInterpolation",
    "FaceValues",
    "LinearInterpolation",
    "LinearVanLeerInterpolation",
    "VanLeerInterpolation",
    "Neighbours",
    "blend_advected",
    "face_shift",
    "lax_wendroff_face_values",
    "linear_face_values",
    "van_leer_limit",
]

_SPATIAL = (-2, -1)  # the axes x, y of a field [..., N, N]


def face_shift(c: Tensor, axis: int, shift: int) -> Tensor:
    """``c[..., i + shift, ...]`` along spatial axis ``axis`` (0: x, 1: y), periodic."""
    return torch.roll(c, -shift, dims=_SPATIAL[axis])


class Neighbours:
    """Periodic neighbours ``u[k - 1 .. k + 2]`` along each axis, as views of one copy.

    The velocity is padded circularly once (one row/column before, two after) and
    every shift is a slice of the padded copy. Alternatives: ``torch.roll`` per shift
    (a copy each), or shifts of both axes stacked into one tensor (fewer eager
    kernels, but ``torch.compile`` then materialises every stacked copy: 3x slower
    at 256^2). Slices with constant offsets let a compiled step read neighbours
    straight from the padded copy, in vectorised loops.

    Args:
        velocity: ``[B, C, Nx, Ny]``.
    """

    def __init__(self, velocity: Float[Tensor, "B C Nx Ny"]) -> None:
        rows = torch.cat([velocity[..., -1:, :], velocity, velocity[..., :2, :]], -2)
        self.padded = torch.cat([rows[..., -1:], rows, rows[..., :2]], -1)
        self.shape = tuple(velocity.shape[-2:])

    def shift(self, axis: int, shift: int) -> Tensor:
        """``u[..., k + shift, ...]`` along ``axis`` (0: x, 1: y); -1 <= shift <= 2."""
        (nx, ny), start = self.shape, 1 + shift
        if axis == 0:
            return self.padded[..., start : start + nx, 1 : 1 + ny]
        return self.padded[..., 1 : 1 + nx, start : start + ny]


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
    """Maps a staggered velocity ``[B, 2, N, N]`` to its :class:`FaceValues`.

    ``dt`` and ``grid_spacing`` are the step the face values will be used for and the
    cell size (:meth:`FiniteVolumeNS2D.advance` passes both); schemes that do not
    depend on them ignore them, schemes that do raise ``ValueError`` when they are
    missing. An interpolation may declare ``courant_limit`` (a float): the largest
    ``max|u| dt / dx`` it is stable for, checked by the solver before each step.
    """

    def __call__(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        *,
        dt: float | None = None,
        grid_spacing: float | None = None,
    ) -> FaceValues: ...


def _linear_faces(neighbours: Neighbours, velocity: Tensor) -> list[Tensor]:
    """``[(u[k] + u[k + 1]) / 2 along x, ... along y]``, each ``[B, 2, N, N]``."""
    return [0.5 * (velocity + neighbours.shift(axis, 1)) for axis in (0, 1)]


def _advecting(linear: list[Tensor]) -> Tensor:
    """``advecting[:, c, j] = u_j`` interpolated along ``c``: ``stack(linear, 1)``."""
    return torch.stack(linear, 1)


def linear_face_values(velocity: Float[Tensor, "B 2 N N"]) -> FaceValues:
    """Second-order linear interpolation of every face value (both tags).

    ``advecting[:, c, j] = (u_j[k] + u_j[k + 1]) / 2`` along axis ``c`` and
    ``advected[:, c, j] = (u_c[k] + u_c[k + 1]) / 2`` along axis ``j``
    (jax-cfd's ``interpolation.linear``).
    """
    linear = _linear_faces(Neighbours(velocity), velocity)
    return FaceValues(_advecting(linear), torch.stack(linear, 2))


def _courant_factor(name: str, dt: float | None, grid_spacing: float | None) -> float:
    """``dt / dx``, or a ``ValueError`` naming what is missing and how to pass it."""
    if dt is None or grid_spacing is None:
        raise ValueError(
            f"{name} needs the step size and the grid spacing (its face values depend "
            f"on the Courant number u dt / dx); got dt={dt!r}, "
            f"grid_spacing={grid_spacing!r}. Call it as interpolation(velocity, "
            "dt=..., grid_spacing=...) - FiniteVolumeNS2D.advance passes both."
        )
    if not (math.isfinite(dt) and dt > 0 and math.isfinite(grid_spacing)):
        raise ValueError(
            f"{name}: dt must be a finite step > 0 and grid_spacing finite, got "
            f"dt={dt!r}, grid_spacing={grid_spacing!r}."
        )
    return dt / grid_spacing


def _select(positive: Tensor, if_positive: Tensor, otherwise: Tensor) -> Tensor:
    """``torch.where(positive > 0, if_positive, otherwise)`` for a 0/1 float mask.

    ``torch.lerp`` with weight exactly 0 or 1 returns ``otherwise`` or ``if_positive``
    bit for bit (for finite values: it evaluates ``start + w (end - start)`` for
    ``w < 1/2`` and ``end - (end - start)(1 - w)`` otherwise), and it is vectorised,
    while this CPU build's ``torch.where`` is ~20x slower per element at 256^2.
    """
    return torch.lerp(otherwise, if_positive, positive)


def _positive_mask(face_velocity: Tensor) -> Tensor:
    """1.0 where ``face_velocity > 0``, else 0.0 (also for 0 and -0), same dtype."""
    return torch.sign(face_velocity).clamp_min(0)


def _safe_denominator(jump: Tensor) -> Tensor:
    """``jump`` with zeros replaced by 1 (jax-cfd's ``safe_div``), exactly.

    ``jump + (1 - |sign(jump)|)`` adds exactly 0 to a nonzero jump and gives 1 for a
    zero one, without a (slow) select.
    """
    return jump + (1 - torch.sign(jump).abs())


def lax_wendroff_face_values(
    c: Tensor, c_right: Tensor, face_velocity: Tensor, courant_factor: float
) -> Tensor:
    """Lax-Wendroff face values: ``c + (1 - C)(c_right - c) / 2`` for ``u > 0``.

    ``C = u dt / dx`` is the face Courant number; for ``u <= 0`` the mirror image
    ``c_right - (1 + C)(c_right - c) / 2``. jax-cfd's ``interpolation.lax_wendroff``
    (the same expressions). Second order in space and time for linear advection, but
    oscillatory at jumps (Godunov's theorem), hence the limiter.
    """
    courant = courant_factor * face_velocity
    jump = c_right - c
    return _select(
        _positive_mask(face_velocity),
        c + 0.5 * (1 - courant) * jump,
        c_right - 0.5 * (1 + courant) * jump,
    )


def _tvd_blend(
    c: Tensor,
    c_left: Tensor,
    c_right: Tensor,
    c_next: Tensor,
    face_velocity: Tensor,
    c_high: Tensor | None,
    courant_factor: float = 0.0,
) -> Tensor:
    """``c_up - (c_up - c_high) phi(r)`` with van Leer's ``phi`` (see below).

    ``c_high=None`` stands for Lax-Wendroff at ``courant_factor = dt / dx``, whose
    difference to upwind, ``(s - C)(c_right - c) / 2`` with ``s = +-1`` the sign of
    the face velocity, is formed directly (equal to jax-cfd's ``c_low - c_high`` up to
    the last bit).
    """
    positive = _positive_mask(face_velocity)
    jump = c_right - c
    r = _select(positive, c - c_left, c_next - c_right) / _safe_denominator(jump)
    phi = (r + r.abs()) / (1 + r.abs())
    c_up = _select(positive, c, c_right)
    if c_high is None:
        correction = ((positive - 0.5) - (0.5 * courant_factor) * face_velocity) * jump
        return c_up + correction * phi
    return c_up - (c_up - c_high) * phi


def van_leer_limit(
    c: Float[Tensor, "B N N"],
    axis: int,
    face_velocity: Float[Tensor, "B N N"],
    c_high: Float[Tensor, "B N N"],
) -> Float[Tensor, "B N N"]:
    """Blend a high-order face value with first-order upwind through van Leer's limiter.

    ``c_face = c_up - (c_up - c_high) phi(r)`` with ``phi(r) = 2 r / (1 + r)`` for
    ``r > 0`` and 0 otherwise, written ``(r + |r|) / (1 + |r|)`` so that it has no
    pole (and finite gradients) anywhere; for ``r > 0`` both forms round identically
    (``r + |r| = 2 r`` exactly). ``r`` is the ratio of successive differences on the
    upwind side of the face between ``k`` and ``k + 1``: ``(c_k - c_{k-1}) /
    (c_{k+1} - c_k)`` for a positive face velocity and ``(c_{k+2} - c_{k+1}) /
    (c_{k+1} - c_k)`` otherwise; a zero denominator counts as 1. This is jax-cfd's
    ``apply_tvd_limiter`` with ``van_leer_limiter`` (``safe_div``), for any
    ``c_high``: Lax-Wendroff in :class:`VanLeerInterpolation`, linear in
    :class:`LinearVanLeerInterpolation`, the learned stencils in Kochkov et al.'s and
    TSM's models.

    Args:
        c: the advected quantity on its own grid.
        axis: the spatial axis of the face shift (0: x, 1: y).
        face_velocity: the advecting velocity on the faces (sign picks upwind).
        c_high: the high-order face values to limit.

    Returns:
        The limited face values.
    """
    return _tvd_blend(
        c,
        face_shift(c, axis, -1),
        face_shift(c, axis, 1),
        face_shift(c, axis, 2),
        face_velocity,
        c_high,
    )


def _limited_faces(
    velocity: Tensor,
    neighbours: Neighbours,
    advecting: Tensor,
    high: list[Tensor] | None,
    courant_factor: float | Tensor = 0.0,
) -> Tensor:
    """:func:`van_leer_limit` of ``high[j]`` (``[B, 2, N, N]`` per axis ``j``) on all
    four faces, stacked as ``advected[:, c, j]``.

    ``high=None``: Lax-Wendroff at ``courant_factor = dt / dx`` (see ``_tvd_blend``).
    """
    faces = [
        _tvd_blend(
            velocity,
            neighbours.shift(axis, -1),
            neighbours.shift(axis, 1),
            neighbours.shift(axis, 2),
            advecting[:, :, axis],
            None if high is None else high[axis],
            courant_factor,
        )
        for axis in (0, 1)
    ]
    return torch.stack(faces, 2)


def blend_advected(velocity: Float[Tensor, "B 2 N N"], faces: FaceValues) -> FaceValues:
    """``faces`` with every advected value passed through :func:`van_leer_limit`.

    The blend of Kochkov et al.'s learned interpolation (and TSM's): the advecting
    values are kept, each advected value is limited with the advecting velocity of
    its face picking the upwind side.
    """
    high = [faces.advected[:, :, axis] for axis in (0, 1)]
    advected = _limited_faces(velocity, Neighbours(velocity), faces.advecting, high)
    return FaceValues(faces.advecting, advected)


class _BuiltInInterpolation:
    """Base of the built-in schemes: ``__call__`` checks, :meth:`faces` computes.

    Subclasses set :attr:`needs_step` when their face values depend on ``dt / dx``.
    """

    courant_limit: float | None = None
    needs_step = False

    def __call__(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        *,
        dt: float | None = None,
        grid_spacing: float | None = None,
    ) -> FaceValues:
        courant_factor = 0.0
        if self.needs_step:
            courant_factor = _courant_factor(type(self).__name__, dt, grid_spacing)
        return self.faces(velocity, courant_factor)

    def faces(
        self, velocity: Float[Tensor, "B 2 N N"], courant_factor: float | Tensor
    ) -> FaceValues:
        """The face values for ``courant_factor = dt / dx``, without checks."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearInterpolation(_BuiltInInterpolation):
    """Linear (central, second-order) interpolation of both tags; no limiter.

    Non-dissipative: resolved flows only (it is the scheme of the convergence test).
    Ignores ``dt`` and ``grid_spacing``.
    """

    def faces(
        self, velocity: Float[Tensor, "B 2 N N"], courant_factor: float | Tensor
    ) -> FaceValues:
        return linear_face_values(velocity)


class VanLeerInterpolation(_BuiltInInterpolation):
    """Linear advecting velocity; advected quantity Lax-Wendroff limited by van Leer.

    jax-cfd's ``advect_van_leer_using_limiters`` (``apply_tvd_limiter(lax_wendroff,
    van_leer_limiter)``), the convection of ``implicit_diffusion_navier_stokes`` and of
    the TSM authors' DNS and coarse baseline: second order in space and time where the
    field is smooth (Lax-Wendroff, with its Courant-number-dependent correction), first
    order upwind at extrema, total variation diminishing for face Courant numbers up to
    1 (:attr:`courant_limit`). Needs ``dt`` and ``grid_spacing``.

    The limiter could also be applied to the linear face value
    (:class:`LinearVanLeerInterpolation`); that is neither TVD nor second order in
    time, and differs from jax-cfd by about 20% (rel. L2) after 100 Kolmogorov steps.
    """

    courant_limit = 1.0
    needs_step = True

    def faces(
        self, velocity: Float[Tensor, "B 2 N N"], courant_factor: float | Tensor
    ) -> FaceValues:
        neighbours = Neighbours(velocity)
        advecting = _advecting(_linear_faces(neighbours, velocity))
        advected = _limited_faces(velocity, neighbours, advecting, None, courant_factor)
        return FaceValues(advecting, advected)

    def __repr__(self) -> str:
        return "VanLeerInterpolation(high_order=lax_wendroff)"


class LinearVanLeerInterpolation(_BuiltInInterpolation):
    """Van Leer's limiter on *linear* face values (the pre-issue-16 scheme).

    What :class:`physim.models.LearnedInterpolation` computes with zero logits: its
    base stencils are linear interpolation (as jax-cfd's
    ``PolynomialConstraint`` bias), limited like the reference's learned
    interpolation. Not jax-cfd's van Leer scheme (:class:`VanLeerInterpolation`);
    ignores ``dt`` and ``grid_spacing``.
    """

    def faces(
        self, velocity: Float[Tensor, "B 2 N N"], courant_factor: float | Tensor
    ) -> FaceValues:
        neighbours = Neighbours(velocity)
        linear = _linear_faces(neighbours, velocity)
        advecting = _advecting(linear)
        advected = _limited_faces(velocity, neighbours, advecting, linear)
        return FaceValues(advecting, advected)
