"""Kolmogorov flow: initial states, face-averaged downsampling and the DNS solver.

The benchmark of Kochkov et al. (2021) and TSM (Sun et al. 2023): 2-D incompressible
flow on ``[0, 2 pi]^2`` at viscosity ``1e-3`` driven by ``sin(4 y)`` with drag 0.1,
solved by direct numerical simulation (DNS) on a fine MAC grid and averaged down to the
coarse grid that models see. :class:`KolmogorovFlow` follows the solver protocol of
:class:`physim.solvers.DatasetGenerator`, so ``kolmogorov2d`` data is generated like
``ns2d``.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import StepResult

from ._fv import FiniteVolumeNS2D, KolmogorovForcing
from ._fv_interpolation import FaceInterpolation
from ._fv_operators import laplacian_eigenvalues, pressure_projection
from ._spectral import rfft_wavenumber_grid

__all__ = ["FilteredVelocityField", "KolmogorovFlow", "downsample_staggered"]


def _coarsening_factor(fine: int, coarse: int, where: str) -> int:
    if coarse < 1 or fine % coarse:
        raise ValueError(
            f"{where}: the coarse grid of {coarse} points does not divide the fine "
            f"grid of {fine} points; make the fine grid an integer multiple of the "
            "coarse one (e.g. 256 -> 32)."
        )
    return fine // coarse


def downsample_staggered(
    velocity: Float[Tensor, "B 2 N N"], num_points: int
) -> Float[Tensor, "B 2 M M"]:
    """Average a MAC velocity down to ``num_points`` per axis along the cell faces.

    A coarse x-face is the union of ``f = N / M`` fine x-faces: its ``u`` is their
    mean (and likewise ``v`` on the y-faces). The flux through every coarse face is then
    the total fine flux through it, so the coarse divergence of a cell is the sum of the
    fine divergences inside it: a divergence-free field stays divergence-free (jax-cfd's
    ``downsample_staggered_velocity``). Point sampling or spectral truncation would not
    keep this property.

    Args:
        velocity: ``[B, 2, N, N]`` on the fine grid.
        num_points: ``M``, dividing ``N``.

    Returns:
        ``[B, 2, M, M]``; the input itself when ``M == N``.

    Raises:
        ValueError: when ``M`` does not divide ``N``.
    """
    n = velocity.shape[-1]
    f = _coarsening_factor(n, num_points, "downsample_staggered")
    if f == 1:
        return velocity
    b = velocity.shape[0]
    m = num_points
    # u: the fine faces (i + 1) f - 1 along x lie on coarse faces; average f along y.
    u = velocity[:, 0, f - 1 :: f, :].reshape(b, m, m, f).mean(-1)
    v = velocity[:, 1, :, f - 1 :: f].reshape(b, m, f, m).mean(-2)
    return torch.stack([u, v], dim=1)


class FilteredVelocityField:
    """Random divergence-free velocity, log-normal spectrum, scaled to a max speed.

    jax-cfd's ``filtered_velocity_field``: white noise on each MAC component is filtered
    in Fourier space by a log-normal density in ``|k|`` (integer wavenumber on the
    ``2 pi`` torus) with mode ``peak_wavenumber`` and log-variance 0.25, then projected
    and rescaled to ``max(|u|, |v|) = max_velocity``, ``iterations`` times (rescaling
    keeps the projection; repeating guards round-off).

    Good values: ``peak_wavenumber=4, max_velocity=7`` (Kochkov et al. 2021), followed
    by a warm-up of 40 time units.

    Args:
        num_points: cells per axis (the DNS grid).
        peak_wavenumber: the spectrum's mode (> 0).
        max_velocity: the largest velocity component after scaling (> 0).
        domain_extent: the periodic domain's side.
        iterations: project-and-rescale passes (>= 1).
    """

    def __init__(
        self,
        num_points: int,
        peak_wavenumber: float = 4.0,
        max_velocity: float = 7.0,
        domain_extent: float = 2.0 * math.pi,
        iterations: int = 3,
    ) -> None:
        for name, value in [
            ("num_points", num_points),
            ("peak_wavenumber", peak_wavenumber),
            ("max_velocity", max_velocity),
            ("domain_extent", domain_extent),
            ("iterations", iterations),
        ]:
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"FilteredVelocityField: {name} must be > 0, got {value!r}."
                )
        self.num_points = int(num_points)
        self.peak_wavenumber = float(peak_wavenumber)
        self.max_velocity = float(max_velocity)
        self.domain_extent = float(domain_extent)
        self.iterations = int(iterations)

    def parameters(self) -> dict[str, float | int]:
        return {
            "num_points": self.num_points,
            "peak_wavenumber": self.peak_wavenumber,
            "max_velocity": self.max_velocity,
            "domain_extent": self.domain_extent,
            "iterations": self.iterations,
        }

    def _spectral_filter(self, device: torch.device) -> Tensor:
        n = self.num_points
        k = torch.sqrt(
            sum(
                g.square()
                for g in rfft_wavenumber_grid(n, 2, dtype=torch.float64, device=device)
            )
        ) * (2.0 * math.pi / self.domain_extent)
        variance = 0.25
        mu = math.log(self.peak_wavenumber) + variance
        safe = torch.where(k > 0, k, torch.ones_like(k))
        density = torch.exp(-((safe.log() - mu) ** 2) / (2 * variance)) / (
            safe * math.sqrt(2 * math.pi * variance)
        )
        return torch.where(k > 0, density, torch.zeros_like(k))

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> Float[Tensor, "n 2 N N"]:
        """``n`` independent states ``[n, 2, N, N]`` (noise drawn on the CPU)."""
        m = self.num_points
        device = torch.device(device)
        noise = torch.randn(n, 2, m, m, generator=generator, dtype=torch.float64)
        noise = noise.to(device)
        velocity = torch.fft.irfft2(
            torch.fft.rfft2(noise) * self._spectral_filter(device), s=(m, m)
        )
        dx = self.domain_extent / m
        eigenvalues = laplacian_eigenvalues(m, dx, device=device)
        for _ in range(self.iterations):
            velocity = pressure_projection(velocity, eigenvalues, dx)
            peak = velocity.abs().flatten(1).amax(dim=1).view(n, 1, 1, 1)
            velocity = self.max_velocity * velocity / peak
        return velocity.to(dtype)

    def __repr__(self) -> str:
        return (
            f"FilteredVelocityField(num_points={self.num_points}, "
            f"peak_wavenumber={self.peak_wavenumber}, "
            f"max_velocity={self.max_velocity})"
        )


class KolmogorovFlow:
    """Kolmogorov-flow DNS that stores face-averaged coarse velocities.

    A :class:`FiniteVolumeNS2D` on ``num_points^2`` with :class:`KolmogorovForcing`,
    in the solver protocol of :class:`physim.solvers.DatasetGenerator`: the state is
    the fine velocity ``[B, 2, N, N]``; :meth:`decode` returns it averaged down to
    ``coarse_points^2`` along cell faces (:func:`downsample_staggered`), which is what
    is stored. Set the generator's ``store_points`` to ``coarse_points``.

    Good values: ``num_points=2048, coarse_points=64`` (the paper), ``256 -> 32`` on
    a CPU; step with ``CFLController(courant_number=0.5, ...)``.

    The scheme defaults to what the TSM authors' data used (Edward-Sun/TSM-PDE's
    jax-cfd gin configs; ``shared/reference/tsm.md``): jax-cfd's
    ``implicit_diffusion_navier_stokes`` with ``advect_van_leer_using_limiters``, i.e.
    ``time_scheme="implicit_diffusion"`` and :class:`VanLeerInterpolation`
    (Lax-Wendroff limited by van Leer). ``"explicit_diffusion"``
    (``semi_implicit_navier_stokes``) appears only in a jax-cfd demo notebook.

    Args:
        num_points: DNS cells per axis.
        coarse_points: stored cells per axis (divides ``num_points``).
        viscosity: kinematic viscosity.
        domain_extent: the domain's side.
        forcing: default ``KolmogorovForcing()`` (``sin(4 y)``, drag 0.1).
        interpolation: face interpolation of the DNS (default
            :class:`VanLeerInterpolation`, jax-cfd's van Leer scheme).
        time_scheme: ``"implicit_diffusion"`` (default) or ``"explicit_diffusion"``.
        dtype: solver dtype.
        device: solver device.
        compile: compile the solver's step with ``torch.compile`` (see
            :class:`FiniteVolumeNS2D`).

    Raises:
        ValueError: when ``coarse_points`` does not divide ``num_points``.
    """

    name = "kolmogorov_flow_2d"
    order = 1
    channel_names = FiniteVolumeNS2D.channel_names

    def __init__(
        self,
        num_points: int,
        coarse_points: int,
        *,
        viscosity: float = 1e-3,
        domain_extent: float = 2.0 * math.pi,
        forcing: KolmogorovForcing | None = None,
        interpolation: FaceInterpolation | None = None,
        time_scheme: str = "implicit_diffusion",
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
        compile: bool = False,
    ) -> None:
        self.factor = _coarsening_factor(
            int(num_points), int(coarse_points), "KolmogorovFlow"
        )
        self.solver = FiniteVolumeNS2D(
            num_points,
            domain_extent=domain_extent,
            viscosity=viscosity,
            forcing=forcing or KolmogorovForcing(),
            interpolation=interpolation,
            time_scheme=time_scheme,
            dtype=dtype,
            device=device,
            compile=compile,
        )
        self.num_points = self.solver.num_points
        self.coarse_points = int(coarse_points)
        self.dtype = self.solver.dtype
        self.device = self.solver.device
        self.grid_spacing = self.solver.grid_spacing

    def encode(self, u: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 N N"]:
        return self.solver.encode(u)

    def decode(self, y: Float[Tensor, "B 2 N N"]) -> Float[Tensor, "B 2 M M"]:
        """The fine state averaged down to the coarse grid along faces."""
        return downsample_staggered(y, self.coarse_points)

    def coordinates(self, num_points: int | None = None) -> dict[str, Tensor]:
        """Cell centres of the DNS grid (``None``) or of the stored coarse grid.

        Raises:
            ValueError: for any other resolution (the stored fields are coarse).
        """
        if num_points not in (None, self.coarse_points):
            raise ValueError(
                f"KolmogorovFlow stores face averages on its {self.coarse_points}^2 "
                f"coarse grid; got store_points={num_points!r}. Set the generator's "
                f"store_points to {self.coarse_points} (or change coarse_points)."
            )
        return self.solver.coordinates(num_points)

    def parameters(self) -> dict[str, float | int | str]:
        return {
            **self.solver.parameters(),
            "pde": self.name,
            "coarse_points": self.coarse_points,
            "downsampling": "face averages (divergence-preserving)",
        }

    def step(self, y: Float[Tensor, "B 2 N N"], t: float, dt: float) -> StepResult:
        return self.solver.step(y, t, dt)

    def max_speed(self, y: Float[Tensor, "B 2 N N"]) -> Float[Tensor, " B"]:
        return self.solver.max_speed(y)

    def __repr__(self) -> str:
        return (
            f"KolmogorovFlow(num_points={self.num_points}, "
            f"coarse_points={self.coarse_points}, solver={self.solver!r})"
        )
