"""Pseudo-spectral solver for 2-D incompressible Navier-Stokes in vorticity form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Complex, Float
from torch import Tensor

from physim.timestepping import StepResult

from ._dtypes import COMPLEX_DTYPES, resolve_dtype
from ._spectral import dealias_mask, rfft_wavenumber_grid
from ._vorticity import VorticityAdvection
from .schemes import (
    IMEXCrankNicolsonHeun,
    Scheme,
    SchemeFactory,
    SchemeOrders,
    SemiLinear,
    build_scheme,
)

__all__ = [
    "FNOForcing",
    "Forcing",
    "NavierStokes2D",
    "taylor_green_vorticity",
]


@runtime_checkable
class Forcing(Protocol):
    """A steady body force on the vorticity equation, ``f(x, y)`` on the unit torus."""

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """Evaluate the force at broadcastable coordinates ``x, y`` in ``[0, 1)``."""
        ...

    def describe(self) -> str:
        """A one-line formula, stored in file attributes."""
        ...


@dataclass(frozen=True)
class FNOForcing:
    """The FNO benchmark forcing ``amplitude (sin(2 pi (x + y)) + cos(2 pi (x + y)))``.

    Args:
        amplitude: the factor in front, 0.1 in Li et al. (2021).
    """

    amplitude: float = 0.1

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        phase = 2.0 * math.pi * (x + y)
        return self.amplitude * (torch.sin(phase) + torch.cos(phase))

    def describe(self) -> str:
        return f"{self.amplitude!r} * (sin(2 pi (x + y)) + cos(2 pi (x + y)))"


def taylor_green_vorticity(
    num_points: int, wavenumber: int = 1, *, dtype: torch.dtype = torch.float64
) -> Float[Tensor, "1 1 N N"]:
    """The Taylor-Green vortex ``w = 2 k sin(k x) sin(k y)``, ``k = 2 pi wavenumber``.

    Its stream function is ``psi = w / (2 k^2)`` and ``u . grad(w)`` vanishes
    identically, so without forcing it decays exactly as ``exp(-2 nu k^2 t)``.

    Args:
        num_points: grid points per axis.
        wavenumber: integer number of periods per unit length.
        dtype: real dtype of the result.

    Returns:
        ``[1, 1, N, N]`` on the CPU, indexed ``[..., i, j] = w(x_i, y_j)``.
    """
    k = 2.0 * math.pi * wavenumber
    x = torch.arange(num_points, dtype=torch.float64) / num_points
    w = 2.0 * k * torch.sin(k * x)[:, None] * torch.sin(k * x)[None, :]
    return w[None, None].to(dtype)


class TaylorGreenVorticity:
    """Initial condition for the data generator: the vorticity of the
    Taylor-Green velocity ``a (sin kx cos ky, -cos kx sin ky)`` (period 1) on the grid
    ``x_i = i / N`` of :class:`NavierStokes2D`, the same for every trajectory.

    One wavenumber is INSR's Taylor-Green state (a steady Euler flow); several give
    the multi-scale variant (our choice of modes: the reference notes do not fix them).

    Args:
        num_points: grid points per axis.
        wavenumbers: integer wavenumbers ``n`` (periods per unit length).
        amplitudes: velocity amplitude per wavenumber.
    """

    def __init__(
        self,
        num_points: int,
        wavenumbers: Sequence[int] = (1,),
        amplitudes: Sequence[float] = (1.0,),
    ) -> None:
        if len(wavenumbers) != len(amplitudes) or not wavenumbers:
            raise ValueError(
                f"TaylorGreenVorticity: got {len(wavenumbers)} wavenumbers and "
                f"{len(amplitudes)} amplitudes; give one amplitude per wavenumber."
            )
        self.num_points = int(num_points)
        self.wavenumbers = [int(n) for n in wavenumbers]
        self.amplitudes = [float(a) for a in amplitudes]

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> Float[Tensor, "n 1 N N"]:
        """``n`` copies of the vorticity ``[n, 1, N, N]`` (``generator`` unused)."""
        w = sum(
            a * taylor_green_vorticity(self.num_points, k)
            for k, a in zip(self.wavenumbers, self.amplitudes, strict=True)
        )
        return w.expand(n, -1, -1, -1).to(dtype=dtype, device=device).clone()

    def parameters(self) -> dict[str, object]:
        """Plain values for file attributes."""
        return {
            "initial_condition": "taylor_green",
            "num_points": self.num_points,
            "wavenumbers": self.wavenumbers,
            "amplitudes": self.amplitudes,
        }


class NavierStokes2D(SchemeOrders):
    """2-D incompressible Navier-Stokes in vorticity form, pseudo-spectral, unit torus.

    Equation on ``[0, 1)^2`` (periodic)::

        dw/dt + u . grad(w) = nu lap(w) + f,   u = (dpsi/dy, -dpsi/dx),   -lap(psi) = w

    Channels: one, ``"vorticity"``; physical fields are ``[B, 1, N, N]`` indexed
    ``[b, 0, i, j] = w(x_i, y_j)`` with ``x_i = i / N``. The internal state is the
    spectrum ``w_hat = rfft2(w)`` (``[B, N, N//2 + 1]``, complex), so a step needs no
    extra transforms; :meth:`encode` and :meth:`decode` convert.

    Space: Fourier pseudo-spectral with Orszag's 2/3-rule de-aliasing of the advection
    term (both factors and the product are truncated to ``|k_i| < N/3``). The velocity
    and the vorticity gradient come from one batched inverse transform of a 4-channel
    stack (``irfft2``, run as its two 1-D passes so that the columns zeroed by the mask
    are skipped) and the product goes back with one ``rfft2``: a step costs 2 + 2
    batched transforms and about a dozen element-wise kernels. Large batches are
    evaluated in chunks through kept buffers, bit-identically
    (:class:`~physim.solvers._vorticity.VorticityAdvection`: freshly allocated
    temporaries cost more than the arithmetic on a CPU).

    Time: a scheme of :mod:`physim.solvers.schemes` advances the vorticity term
    (:attr:`term`: the symbol ``L = -nu |k|^2`` and ``N(w) = f_hat - mask *
    rfft2(u . grad w)``). The default,
    :class:`~physim.solvers.schemes.IMEXCrankNicolsonHeun`, is second order,
    Crank-Nicolson on the viscous term and Heun on advection + forcing, with a free
    embedded error estimate (order 1 vs 2) for PI control; its docstring explains the
    choice over CNAB2, ETDRK2 and jax-cfd's ``crank_nicolson_rk4``. Heun's explicit
    part is only weakly stable for pure advection, so keep the Courant number around
    0.5 or below (the viscosity damps the de-aliased band's edge).
    ``scheme=ETDRK4`` integrates the viscous term exactly (fourth order, four
    evaluations a step); ``error_estimate=True`` adds step doubling to a scheme
    without an embedded estimate.

    Cost: dt-dependent factors are cached per ``float(dt)`` (a few entries) by the
    scheme; wavenumbers, ``1/|k|^2``, the de-aliasing mask and the forcing spectrum
    are built once on the solver's device. Runs unchanged on CUDA.

    Good values: ``num_points=64, viscosity=1e-3`` with ``CFLController(0.5,
    dt_max=0.05)``, float32, for the FNO ``nu = 1e-3`` setting: about 1500 steps to
    t = 50, within ~5e-5 relative L2 of a 256^2 float64 solve of the same initial state
    (``scripts/bench/bench_ns2d_accuracy.py``). The paper solved at 256^2 with
    ``dt = 1e-4`` and stored 64^2 (use ``spectral_resample``).

    Args:
        num_points: grid points per axis ``N``, even, >= 4.
        viscosity: kinematic viscosity ``nu``, > 0.
        forcing: a steady :class:`Forcing`; ``None`` for unforced flow.
        scheme: the time scheme, a class of :mod:`physim.solvers.schemes` or a
            ``functools.partial`` of one, called with :attr:`term`; default
            :class:`~physim.solvers.schemes.IMEXCrankNicolsonHeun`.
        error_estimate: wrap a scheme without an embedded error estimate in
            :class:`~physim.solvers.schemes.StepDoubling` (3x the work), for
            :class:`~physim.timestepping.PIDController`.
        dtype: ``float32`` or ``float64`` (or their names); the state is complex64 or
            complex128.
        device: where the state and the precomputed operators live.

    Raises:
        ValueError: for ``viscosity <= 0``, an odd or too small ``num_points`` or an
            unsupported ``dtype`` (the message names the argument and value).

    References:
        Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021.
        Canuto, Hussaini, Quarteroni & Zang, "Spectral Methods", 2006 (2/3 rule).
        Ascher, Ruuth & Wetton, "Implicit-explicit methods for time-dependent PDEs",
        SIAM J. Numer. Anal. 32 (1995).
    """

    name = "navier_stokes_2d"
    channel_names = ("vorticity",)
    spatial_dims = ("x", "y")

    def __init__(
        self,
        num_points: int = 64,
        viscosity: float = 1e-3,
        forcing: Forcing | None = FNOForcing(),  # noqa: B008  (frozen, immutable)
        *,
        scheme: SchemeFactory | None = None,
        error_estimate: bool = False,
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if int(num_points) != num_points or num_points < 4 or num_points % 2:
            raise ValueError(
                "NavierStokes2D: num_points must be an even integer >= 4, "
                f"got {num_points!r}."
            )
        if not (math.isfinite(viscosity) and viscosity > 0):
            raise ValueError(
                "NavierStokes2D: viscosity must be a positive number, "
                f"got {viscosity!r}."
            )
        if forcing is not None and not isinstance(forcing, Forcing):
            raise ValueError(
                "NavierStokes2D: forcing must be callable as f(x, y) with a describe() "
                f"method (e.g. FNOForcing()) or None, got {forcing!r}."
            )
        self.num_points = n = int(num_points)
        self.viscosity = float(viscosity)
        self.forcing = forcing
        self.dtype = resolve_dtype("NavierStokes2D", dtype)
        self.complex_dtype = COMPLEX_DTYPES[self.dtype]
        self.device = torch.device(device)
        self.grid_spacing = 1.0 / n

        # Operators are built in float64 and cast once.
        kx, ky = (
            2.0 * math.pi * k
            for k in rfft_wavenumber_grid(n, 2, dtype=torch.float64, device=self.device)
        )
        k2 = kx**2 + ky**2
        inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
        mask = dealias_mask(n, 2, device=self.device)
        # w_hat -> hats of (u, v, dw/dx, dw/dy); u = dpsi/dy, v = -dpsi/dx, psi = w/k^2.
        # Only the columns k_y < N/3 of the rfft grid survive the de-aliasing mask.
        self._num_kept = int(mask[0].sum())
        shape = k2.shape
        velocity = torch.stack([1j * ky * inv_k2, -1j * kx * inv_k2])
        gradient = torch.stack([(1j * kx).expand(shape), (1j * ky).expand(shape)])
        self._velocity_op = velocity.to(self.complex_dtype)
        advection = torch.cat([velocity, gradient]) * mask
        #: ``A(w_hat) = rfft2(u . grad(w))`` from de-aliased factors.
        self._advection = VorticityAdvection(
            advection[..., : self._num_kept].to(self.complex_dtype), n
        )
        forcing_hat = None
        if forcing is not None:
            x = torch.arange(n, dtype=torch.float64, device=self.device) / n
            f = forcing(x[:, None], x[None, :]).to(torch.float64)
            forcing_hat = torch.fft.rfft2(f)
        #: The right-hand side ``dw_hat/dt = L w_hat + f_hat + W A(w_hat)``: the
        #: symbol of ``nu lap``, the forcing spectrum, ``W = -mask`` and ``A`` the
        #: transform of ``u . grad(w)`` from de-aliased factors (float64 operators).
        self.term = SemiLinear(
            linear=-self.viscosity * k2,
            nonlinear=self._advection,
            dtype=self.complex_dtype,
            weight=-mask.to(torch.float64),
            forcing=forcing_hat,
        )
        self.error_estimate = bool(error_estimate)
        self.scheme: Scheme = build_scheme(
            scheme or IMEXCrankNicolsonHeun, self.term, error_estimate=error_estimate
        )

    # ------------------------------------------------------------------ conversions
    def encode(self, u: Float[Tensor, "B 1 N N"]) -> Complex[Tensor, "B N K"]:
        """Physical vorticity ``[B, 1, N, N]`` -> spectral state (cast to the solver's
        dtype and device)."""
        n = self.num_points
        if u.ndim != 4 or tuple(u.shape[1:]) != (1, n, n):
            raise ValueError(
                f"NavierStokes2D.encode: expected vorticity of shape [B, 1, {n}, {n}], "
                f"got {tuple(u.shape)}; resample other resolutions with "
                "physim.solvers.spectral_resample first."
            )
        if u.is_complex():
            raise ValueError(
                "NavierStokes2D.encode: `u` must be the real vorticity field, got a "
                f"complex tensor ({u.dtype})."
            )
        u = u.to(device=self.device, dtype=self.dtype)
        return torch.fft.rfft2(u[:, 0])

    def decode(self, y: Complex[Tensor, "B N K"]) -> Float[Tensor, "B 1 N N"]:
        """Spectral state -> physical vorticity ``[B, 1, N, N]``."""
        n = self.num_points
        return torch.fft.irfft2(y, s=(n, n)).unsqueeze(1)

    def coordinates(self, num_points: int | None = None) -> dict[str, Tensor]:
        """Cell positions ``i / M`` (float64, CPU) of an ``M``-point grid per axis.

        Args:
            num_points: ``M``; default the solver's ``N`` (pass the stored resolution
                when saving resampled fields).
        """
        m = self.num_points if num_points is None else int(num_points)
        x = torch.arange(m, dtype=torch.float64) / m
        return {"x": x, "y": x.clone()}

    def parameters(self) -> dict[str, float | int | str | bool]:
        """Plain values for file attributes (``error_estimate`` only when set, so
        that the default's dataset fingerprints stay as they were)."""
        params: dict[str, float | int | str | bool] = {
            "pde": self.name,
            "viscosity": self.viscosity,
            "num_points": self.num_points,
            "domain_extent": 1.0,
            "forcing": "none" if self.forcing is None else self.forcing.describe(),
            "scheme": self.scheme.name,
            "dealiasing": "2/3 rule, |k_i| < N/3",
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        if self.error_estimate:
            params["error_estimate"] = True
        return params

    # ------------------------------------------------------------------ physics
    def step(self, y: Complex[Tensor, "B N K"], t: float, dt: float) -> StepResult:
        """One step of the scheme of size ``dt`` from the spectral ``y``.

        Returns:
            ``StepResult(y, error)``; with the default IMEX scheme ``error = w_{n+1}
            - w*`` (the difference to the embedded first-order predictor).
        """
        return self.scheme.step(y, t, dt)

    def time_derivative(
        self, y: Complex[Tensor, "B N K"], t: float = 0.0
    ) -> Complex[Tensor, "B N K"]:
        """The right-hand side the scheme integrates, ``dw_hat/dt`` (spectral).

        ``L w_hat + f_hat - mask * rfft2(u . grad w)`` with the de-aliased advection
        of :meth:`step` (used by residual error indicators, e.g.
        :class:`physim.rollout.PDEResidual`). The flow is autonomous; ``t`` is unused.
        """
        return self.term.vector_field(y, t)

    def max_speed(self, y: Complex[Tensor, "B N K"]) -> Float[Tensor, " B"]:
        """``max |u|`` over the grid, per trajectory (for :class:`CFLController`;
        in the advection's batch chunks, see :mod:`physim.solvers._vorticity`)."""
        chunk = self._advection.chunk_size(y)
        if chunk is None or chunk >= y.shape[0]:
            return self._max_speed(y)
        return torch.cat([self._max_speed(part) for part in y.split(chunk)])

    def _max_speed(self, y: Complex[Tensor, "B N K"]) -> Float[Tensor, " B"]:
        n = self.num_points
        velocity = torch.fft.irfft2(y.unsqueeze(1) * self._velocity_op, s=(n, n))
        return velocity.square().sum(dim=1).flatten(1).amax(dim=1).sqrt()

    # The explicit schemes' advection (Heun, RK4, ETDRK4's stages) has no sharp CFL
    # bound under viscous damping. Heun's explicit part amplifies pure advection
    # modes by |1 + z + z^2/2| > 1 for imaginary z (only the viscous Crank-Nicolson
    # factor damps them), so too large a step grows small-scale garbage instead of
    # NaNs (issue 24 saw a vorticity maximum of 46.5 at Courant 5 against 1.69 at
    # 0.5). 1 is a margin, not a sharp limit: the dealiased band edge then has
    # |z| = 2 pi C / 3 ~ 2, where the O(|z|^4) growth is no longer small.
    courant_limit = 1.0

    def check_controller(self, controller: object) -> None:
        """Refuse a ``CFLController`` above :attr:`courant_limit` before any work.

        Raises:
            ValueError: names the setting, the bound and the good value.
        """
        courant = getattr(controller, "courant_number", None)
        if courant is not None and courant > self.courant_limit * (1.0 + 1e-12):
            raise ValueError(
                f"{type(controller).__name__}: courant_number={courant:g} exceeds "
                f"{self.courant_limit:g}, above which NavierStokes2D's explicit "
                f"advection ({self.scheme.name}) silently amplifies the smallest "
                "scales; use "
                "courant_number <= 1 (0.5 is the tested value)."
            )

    def __repr__(self) -> str:
        forcing = "None" if self.forcing is None else repr(self.forcing)
        return (
            f"NavierStokes2D(num_points={self.num_points}, viscosity={self.viscosity}, "
            f"forcing={forcing}, scheme={self.scheme!r}, dtype={self.dtype}, "
            f"device={self.device})"
        )
