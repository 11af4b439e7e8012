"""Operators of the periodic MAC grid: divergence, vorticity, projection, diffusion.

The linear, diagonal-in-Fourier-space parts of :class:`physim.solvers.FiniteVolumeNS2D`
following jax-cfd 0.2.1: ``pressure.projection`` with ``solve_fast_diag`` and
``diffusion.solve_fast_diag`` (``jax_cfd/base/pressure.py``, ``diffusion.py``,
``fast_diagonalization.py``), both diagonal on the ``rfft2`` grid with the eigenvalues
of the 5-point Laplacian. Their coefficients are formed in float64 and rounded once to
the working dtype, as jax-cfd forms its diagonals in NumPy float64.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from ._fv_interpolation import face_shift
from ._spectral import rfft_wavenumber_grid

__all__ = [
    "SpectralOperators",
    "laplacian_eigenvalues",
    "project_and_diffuse",
    "pressure_projection",
    "staggered_divergence",
    "staggered_vorticity",
]

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


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


def _pseudo_inverse(eigenvalues: Tensor) -> Tensor:
    """``1 / lambda`` with the zero mode mapped to 0 (jax-cfd's ``pseudoinverse``)."""
    safe = torch.where(eigenvalues != 0, eigenvalues, torch.ones_like(eigenvalues))
    return torch.where(eigenvalues != 0, 1.0 / safe, torch.zeros_like(eigenvalues))


def _project(velocity: Tensor, inverse_eigenvalues: Tensor, dx: float) -> Tensor:
    """``v - grad p`` with ``p = L^+ div v``: only the divergence is transformed."""
    n = velocity.shape[-1]
    div_hat = torch.fft.rfft2(staggered_divergence(velocity, dx))
    p = torch.fft.irfft2(div_hat * inverse_eigenvalues, s=(n, n))
    grad = torch.stack([face_shift(p, 0, 1) - p, face_shift(p, 1, 1) - p], dim=-3)
    return velocity - grad / dx


def pressure_projection(
    velocity: Float[Tensor, "B 2 N N"],
    eigenvalues: Float[Tensor, "N K"],
    grid_spacing: float,
) -> Float[Tensor, "B 2 N N"]:
    """Remove the gradient part: ``v - grad p`` with ``lap p = div v`` solved by FFT.

    jax-cfd's ``pressure.projection`` with ``solve_fast_diag``: divergence and gradient
    are finite differences in physical space, only the divergence is transformed, and
    ``p`` is the pseudo-inverse of the 5-point Laplacian applied to it (zero mode 0).
    Alternatives: conjugate gradients (any boundary, iterative, slower) or projecting
    the whole velocity in Fourier space (see :class:`SpectralOperators`).
    """
    inverse = _pseudo_inverse(eigenvalues.to(torch.float64)).to(eigenvalues.dtype)
    return _project(velocity, inverse, grid_spacing)


class SpectralOperators:
    """The projection and the implicit diffusion of one grid, dtype and device.

    Holds the float64 Laplacian eigenvalues ``lambda``, their pseudo-inverse and the
    forward/backward difference symbols ``F_c = (e^{2 pi i k_c / N} - 1) / dx``,
    ``B_c = -conj(F_c)`` (``lambda = sum_c F_c B_c``), rounded once to the working
    dtype, plus the per-``dt`` diffusion coefficients (cached for the last ``dt``:
    a CFL controller changes it every step, a fixed-step rollout never).

    Args:
        num_points: cells per axis.
        grid_spacing: ``dx``.
        viscosity: ``nu``.
        dtype: float32 or float64.
        device: where the tensors live.
    """

    def __init__(
        self,
        num_points: int,
        grid_spacing: float,
        viscosity: float,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.num_points = num_points
        self.grid_spacing = grid_spacing
        self.viscosity = viscosity
        self.dtype = dtype
        self.eigenvalues64 = laplacian_eigenvalues(
            num_points, grid_spacing, device=device
        )
        self.eigenvalues = self.eigenvalues64.to(dtype)
        inverse64 = _pseudo_inverse(self.eigenvalues64)
        self.inverse64 = inverse64
        self.inverse_eigenvalues = inverse64.to(dtype)
        grid = rfft_wavenumber_grid(num_points, 2, device=device)
        phase = [2.0 * math.pi * k / num_points for k in grid]
        forward = [
            torch.polar(torch.ones_like(p), p).sub(1.0) / grid_spacing for p in phase
        ]
        forward64 = torch.stack(torch.broadcast_tensors(*forward))  # [2, N, K]
        # Real and imaginary parts, [2, 2, N, K] (component, part): the Fourier-space
        # arithmetic is written in real numbers so that torch.compile can fuse it.
        self.forward = _parts(forward64.to(_COMPLEX[dtype]))
        self.backward = _parts((-forward64.conj()).to(_COMPLEX[dtype]))
        self._cache: tuple[float, Tensor, Tensor] | None = None

    def to(self, device: torch.device) -> SpectralOperators:
        return SpectralOperators(
            self.num_points,
            self.grid_spacing,
            self.viscosity,
            self.dtype,
            device,
        )

    def project(self, velocity: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 N N"]:
        """:func:`pressure_projection` with the cached pseudo-inverse."""
        return _project(velocity, self.inverse_eigenvalues, self.grid_spacing)

    def diffusion_coefficients(self, dt: float) -> tuple[Tensor, Tensor]:
        """``g = s / (1 - s)`` and ``(1 + g) / lambda`` with ``s = dt nu lambda``.

        ``(I - dt nu L)^-1 = 1 + g``: jax-cfd's ``diffusion.solve_fast_diag`` applies
        ``g`` to the field and adds the field back (``func = dt_nu_x / (1 - dt_nu_x)``),
        which is better conditioned than ``1 / (1 - s)`` when ``s`` is small and, in
        float32, rounds the coefficient at ``eps |g|`` instead of ``eps``. Both in
        float64, then rounded.
        """
        if self._cache is None or self._cache[0] != dt:
            scaled = (dt * self.viscosity) * self.eigenvalues64
            increment = scaled / (1 - scaled)
            pressure = self.inverse64 / (1 - scaled)
            self._cache = (dt, increment.to(self.dtype), pressure.to(self.dtype))
        return self._cache[1], self._cache[2]

    def diffuse(
        self, velocity: Float[Tensor, "B 2 N N"], dt: float
    ) -> Float[Tensor, "B 2 N N"]:
        """Backward-Euler diffusion ``(I - dt nu L)^-1 u`` as ``u + F^-1[g F u]``.

        Only the small increment goes through the inverse transform; transforming the
        whole field (``F^-1[F u / (1 - s)]``) put a fixed float32 rounding of the
        factor on every mode every step (float32-vs-float64 drift after 1000 steps at
        64^2: 1.4e-3, against jax-cfd's 1.6e-5; issue 16).
        """
        n = self.num_points
        increment, _ = self.diffusion_coefficients(dt)
        u_hat = torch.fft.rfft2(velocity)
        return velocity + torch.fft.irfft2(u_hat * increment, s=(n, n))

    def project_and_diffuse(
        self, velocity: Float[Tensor, "B 2 N N"], dt: float
    ) -> Float[Tensor, "B 2 N N"]:
        """``diffuse(project(u), dt)`` with one transform pair instead of three.

        In Fourier space, per mode: ``div = B . u``, ``p = div / lambda`` and the
        result is ``(1 + g)(u - F p) = u + [g u - F (1 + g) p]``; the bracket, the
        increment, is transformed back and added to ``u`` in physical space. Round-off
        behaves like jax-cfd's separate steps: errors of the forward transform of
        ``u`` reach the kept field only through ``g`` (``~1e-3``) or along ``F``, the
        gradient direction, which the next projection removes; rounding of ``B`` only
        perturbs ``p``, so it too lands along ``F``. Equal to the separate steps to
        round-off (``tests/solvers/test_fv_jaxcfd.py``); 2 instead of 3 transforms of
        a field each way, and fewer elementwise passes.
        """
        return self.project_and_diffuse_with(velocity, *self.diffusion_coefficients(dt))

    def project_and_diffuse_with(
        self,
        velocity: Float[Tensor, "B 2 N N"],
        increment: Float[Tensor, "N K"],
        pressure: Float[Tensor, "N K"],
    ) -> Float[Tensor, "B 2 N N"]:
        """:meth:`project_and_diffuse` with the :meth:`diffusion_coefficients` given."""
        return project_and_diffuse(
            velocity, self.backward, self.forward, increment, pressure
        )


def project_and_diffuse(
    velocity: Float[Tensor, "B 2 N N"],
    backward: Tensor,
    forward: Tensor,
    increment: Float[Tensor, "N K"],
    pressure: Float[Tensor, "N K"],
) -> Float[Tensor, "B 2 N N"]:
    """:meth:`SpectralOperators.project_and_diffuse` as a pure function of tensors.

    Free of Python-level branches on ``dt`` (its coefficients come in as tensors), so
    that a compiled step does not recompile when a controller changes ``dt``.
    """
    n = velocity.shape[-2:]
    u_hat = _parts(torch.fft.rfft2(velocity))
    delta = _fourier_increment(u_hat, backward, forward, increment, pressure)
    return velocity + torch.fft.irfft2(torch.view_as_complex(delta), s=n)


def _parts(z: Tensor) -> Tensor:
    """``[..., C, N, K]`` complex -> ``[..., C, 2, N, K]`` real (real, imaginary)."""
    return torch.view_as_real(z).movedim(-1, -3)


def _fourier_increment(
    u_hat: Tensor,
    backward: Tensor,
    forward: Tensor,
    increment: Tensor,
    pressure: Tensor,
) -> Tensor:
    """``g u - F q`` with ``q = (1 + g) (B . u) / lambda``, in real arithmetic.

    ``u_hat`` is ``[B, 2, 2, N, K]`` (component, real/imaginary part), ``backward``
    and ``forward`` ``[2, 2, N, K]``; returns ``[B, 2, N, K, 2]``, ready for
    ``torch.view_as_complex``. Complex products as torch forms them,
    ``(a + ib)(c + id) = (ac - bd) + i(ad + bc)``.
    """
    u_re, u_im = u_hat[:, :, 0], u_hat[:, :, 1]
    b_re, b_im = backward[:, 0], backward[:, 1]
    f_re, f_im = forward[:, 0], forward[:, 1]
    q_re = (b_re * u_re - b_im * u_im).sum(1, keepdim=True) * pressure
    q_im = (b_re * u_im + b_im * u_re).sum(1, keepdim=True) * pressure
    delta_re = increment * u_re - (f_re * q_re - f_im * q_im)
    delta_im = increment * u_im - (f_re * q_im + f_im * q_re)
    return torch.stack([delta_re, delta_im], -1)
