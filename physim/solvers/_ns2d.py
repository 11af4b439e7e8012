"""Pseudo-spectral solver for 2-D incompressible Navier-Stokes in vorticity form."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from jaxtyping import Complex, Float
from torch import Tensor

from physim.timestepping import StepResult

from ._spectral import dealias_mask, rfft_wavenumber_grid

__all__ = [
    "FNOForcing",
    "Forcing",
    "NavierStokes2D",
    "taylor_green_vorticity",
]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "torch.float32": torch.float32,
    "torch.float64": torch.float64,
}
_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    resolved = _DTYPES.get(dtype) if isinstance(dtype, str) else dtype
    if resolved not in _COMPLEX:
        raise ValueError(
            f"NavierStokes2D: dtype must be float32 or float64 (a torch.dtype or its "
            f"name), got {dtype!r}."
        )
    return resolved


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


class _CNFactors(NamedTuple):
    """Per-dt factors of the IMEX step (see :meth:`NavierStokes2D.step`)."""

    amplification: Tensor  # (1 + dt/2 L) / (1 - dt/2 L), real
    masked_gain: Tensor  # mask * dt / (1 - dt/2 L), real
    half_masked_gain: Tensor  # half of the above
    forcing: Tensor | None  # dt / (1 - dt/2 L) * f_hat, complex


class NavierStokes2D:
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
    batched transforms and about a dozen element-wise kernels.

    Time: IMEX, second order, Crank-Nicolson on the viscous term and Heun (the explicit
    trapezoidal rule) on advection + forcing::

        (1 - dt/2 L) w*      = (1 + dt/2 L) w_n + dt N(w_n)
        (1 - dt/2 L) w_{n+1} = (1 + dt/2 L) w_n + dt/2 (N(w_n) + N(w*))

    with ``L = -nu |k|^2`` (diagonal, so the "solves" are divisions). The predictor
    ``w*`` is a first-order solution, so ``error = w_{n+1} - w* = dt/2 (N(w*) - N(w_n))
    / (1 - dt/2 L)`` is a free embedded error estimate (order 1 vs 2) for PI control.
    Why this scheme: the FNO reference solver's Crank-Nicolson + explicit Euler is only
    first order in time; ETDRK2 (Cox & Matthews 2002) integrates the linear part exactly
    but needs phi-function coefficients per dt and has no cheap embedded estimate;
    CNAB2 (Crank-Nicolson Adams-Bashforth, common in spectral DNS codes) costs one
    nonlinear evaluation per step instead of two but needs the previous ``N`` as
    history, which breaks (or needs variable-step coefficients) whenever a controller
    changes ``dt``; jax-cfd's ``crank_nicolson_rk4`` is more accurate per step but
    costs four evaluations. Heun keeps every step self-contained. Its explicit part
    is only weakly stable for pure advection, so keep the Courant number around 0.5 or
    below (the viscosity damps the de-aliased band's edge).

    Cost: dt-dependent Crank-Nicolson factors are cached per ``float(dt)`` (a few
    entries), wavenumbers, ``1/|k|^2``, the de-aliasing mask and the forcing spectrum
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
    order = 2
    scheme = "imex_crank_nicolson_heun"
    _cache_size = 8

    def __init__(
        self,
        num_points: int = 64,
        viscosity: float = 1e-3,
        forcing: Forcing | None = FNOForcing(),  # noqa: B008  (frozen, immutable)
        *,
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
        self.dtype = _resolve_dtype(dtype)
        self.complex_dtype = _COMPLEX[self.dtype]
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
        self._advection_op = advection[..., : self._num_kept].to(self.complex_dtype)
        self._mask = mask.to(torch.float64)
        self._linear = -self.viscosity * k2  # float64 symbol of nu lap
        self._forcing_hat: Tensor | None = None
        if forcing is not None:
            x = torch.arange(n, dtype=torch.float64, device=self.device) / n
            f = forcing(x[:, None], x[None, :]).to(torch.float64)
            self._forcing_hat = torch.fft.rfft2(f)
        self._cn_cache: OrderedDict[float, _CNFactors] = OrderedDict()

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

    def parameters(self) -> dict[str, float | int | str]:
        """Plain values for file attributes."""
        return {
            "pde": self.name,
            "viscosity": self.viscosity,
            "num_points": self.num_points,
            "domain_extent": 1.0,
            "forcing": "none" if self.forcing is None else self.forcing.describe(),
            "scheme": self.scheme,
            "dealiasing": "2/3 rule, |k_i| < N/3",
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    # ------------------------------------------------------------------ physics
    def _advection(self, w_hat: Complex[Tensor, "B N K"]) -> Complex[Tensor, "B N K"]:
        """``rfft2(u . grad(w))`` from de-aliased factors (not yet masked itself)."""
        n = self.num_points
        # One batched inverse transform of the stack (u, v, w_x, w_y), one forward
        # transform of the product. The inverse is split into its two 1-D passes so that
        # the k_y >= N/3 columns, zero after de-aliasing, are never transformed: same
        # result as irfft2 on the zero-padded stack (irfft pads to n), ~25% cheaper.
        stack = w_hat[..., : self._num_kept].unsqueeze(1) * self._advection_op
        fields = torch.fft.irfft(torch.fft.ifft(stack, dim=-2), n=n, dim=-1)
        u, v, w_x, w_y = fields.unbind(1)
        return torch.fft.rfft2(torch.addcmul(u * w_x, v, w_y))

    def _crank_nicolson(self, dt: float) -> _CNFactors:
        """Crank-Nicolson factors for ``dt``, cached per ``float(dt)`` (LRU, a few)."""
        key = float(dt)
        factors = self._cn_cache.get(key)
        if factors is None:
            denominator = 1.0 - 0.5 * key * self._linear
            gain = key / denominator
            forcing = None
            if self._forcing_hat is not None:
                forcing = (gain * self._forcing_hat).to(self.complex_dtype)
            factors = _CNFactors(
                amplification=((1.0 + 0.5 * key * self._linear) / denominator).to(
                    self.dtype
                ),
                masked_gain=(gain * self._mask).to(self.dtype),
                half_masked_gain=(0.5 * gain * self._mask).to(self.dtype),
                forcing=forcing,
            )
            self._cn_cache[key] = factors
            if len(self._cn_cache) > self._cache_size:
                self._cn_cache.popitem(last=False)
        else:
            self._cn_cache.move_to_end(key)
        return factors

    def step(self, y: Complex[Tensor, "B N K"], t: float, dt: float) -> StepResult:
        """One IMEX Crank-Nicolson/Heun step of size ``dt`` from the spectral ``y``.

        Returns:
            ``StepResult(y=w_{n+1}, error=w_{n+1} - w*)`` (second-order solution and
            the difference to the embedded first-order predictor).
        """
        # With N(w) = f - mask * A(w), A = rfft2(u . grad w), G = dt / (1 - dt/2 L):
        #   w*      = amp w_n + G f - G mask A(w_n)
        #   w_{n+1} = w* + G mask (A(w_n) - A(w*)) / 2
        # so f, mask and G are folded into per-dt factors and each line is one kernel.
        cn = self._crank_nicolson(dt)
        a0 = self._advection(y)
        if cn.forcing is None:
            predictor = y * cn.amplification
        else:
            predictor = torch.addcmul(cn.forcing, cn.amplification, y)
        predictor.addcmul_(cn.masked_gain, a0, value=-1.0)
        a1 = self._advection(predictor)
        error = a0.sub_(a1).mul_(cn.half_masked_gain)
        return StepResult(y=predictor.add_(error), error=error)

    def time_derivative(
        self, y: Complex[Tensor, "B N K"], t: float = 0.0
    ) -> Complex[Tensor, "B N K"]:
        """The right-hand side the scheme integrates, ``dw_hat/dt`` (spectral).

        ``L w_hat + f_hat - mask * rfft2(u . grad w)`` with the de-aliased advection
        of :meth:`step` (used by residual error indicators, e.g.
        :class:`physim.rollout.PDEResidual`). The flow is autonomous; ``t`` is unused.
        """
        rhs = self._linear.to(self.dtype) * y
        rhs = rhs - self._mask.to(self.dtype) * self._advection(y)
        if self._forcing_hat is not None:
            rhs = rhs + self._forcing_hat.to(self.complex_dtype)
        return rhs

    def max_speed(self, y: Complex[Tensor, "B N K"]) -> Float[Tensor, " B"]:
        """``max |u|`` over the grid, per trajectory (for :class:`CFLController`)."""
        n = self.num_points
        velocity = torch.fft.irfft2(y.unsqueeze(1) * self._velocity_op, s=(n, n))
        return velocity.square().sum(dim=1).flatten(1).amax(dim=1).sqrt()

    def __repr__(self) -> str:
        forcing = "None" if self.forcing is None else repr(self.forcing)
        return (
            f"NavierStokes2D(num_points={self.num_points}, viscosity={self.viscosity}, "
            f"forcing={forcing}, dtype={self.dtype}, device={self.device})"
        )
