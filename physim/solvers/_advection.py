"""Linear advection in 1-D: the exact solution as a solver, and classical grid schemes
(first-order upwind, Lax-Wendroff, Fourier + RK4) as baselines."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import StepResult

from ._dtypes import COMPLEX_DTYPES, resolve_dtype
from ._spectral import fft_wavenumbers

__all__ = ["Advection1D", "GaussianPulse"]


def _upwind(solver: Advection1D, u: Tensor, dt: float) -> Tensor:
    # u_i - C (u_i - u_{i-1}) for C > 0, from the other side for C < 0.
    courant = solver.velocity * dt / solver.grid_spacing
    if courant >= 0:
        return u - courant * (u - torch.roll(u, 1, dims=-1))
    return u - courant * (torch.roll(u, -1, dims=-1) - u)


def _lax_wendroff(solver: Advection1D, u: Tensor, dt: float) -> Tensor:
    # u_i - C/2 (u_{i+1} - u_{i-1}) + C^2/2 (u_{i+1} - 2 u_i + u_{i-1}).
    courant = solver.velocity * dt / solver.grid_spacing
    right, left = torch.roll(u, -1, dims=-1), torch.roll(u, 1, dims=-1)
    return (
        u - 0.5 * courant * (right - left) + 0.5 * courant**2 * (right - 2.0 * u + left)
    )


def _spectral_rk4(solver: Advection1D, u: Tensor, dt: float) -> Tensor:
    # RK4 on the linear system u_hat' = z/dt u_hat is multiplication by its stability
    # polynomial R(z) = 1 + z + z^2/2 + z^3/6 + z^4/24, z = -i c k dt (the same
    # numbers as the four stages, in one kernel).
    z = solver._derivative * (-solver.velocity * dt)
    amplification = 1.0 + z * (1.0 + z / 2.0 * (1.0 + z / 3.0 * (1.0 + z / 4.0)))
    u_hat = torch.fft.rfft(u) * amplification.to(COMPLEX_DTYPES[solver.dtype])
    return torch.fft.irfft(u_hat, n=solver.num_points)


def _exact(solver: Advection1D, u: Tensor, dt: float) -> Tensor:
    # Shift of the trigonometric interpolant: u_hat e^{-i c k dt} (the Nyquist mode
    # included, whose grid values are then scaled by cos(c k_N dt), as the shifted
    # interpolant's are).
    shift = torch.exp(solver._wavenumbers * (-1j * solver.velocity * dt))
    u_hat = torch.fft.rfft(u) * shift.to(COMPLEX_DTYPES[solver.dtype])
    return torch.fft.irfft(u_hat, n=solver.num_points)


@dataclass(frozen=True)
class _Scheme:
    """A time-stepping scheme for ``u_t + c u_x = 0``: its order in time, its bound on
    the Courant number ``|c| dt / dx`` and its update."""

    order: int
    courant_limit: float
    advance: Callable[[Advection1D, Tensor, float], Tensor]


# Courant bounds: upwind and Lax-Wendroff are stable for |C| <= 1 (von Neumann). RK4's
# stability region reaches 2 sqrt(2) on the imaginary axis and the Fourier derivative's
# largest eigenvalue is |c| pi / dx, hence |C| <= 2 sqrt(2) / pi ~ 0.90.
SCHEMES: dict[str, _Scheme] = {
    "exact": _Scheme(order=0, courant_limit=math.inf, advance=_exact),
    "upwind": _Scheme(order=1, courant_limit=1.0, advance=_upwind),
    "lax_wendroff": _Scheme(order=2, courant_limit=1.0, advance=_lax_wendroff),
    "spectral": _Scheme(
        order=4, courant_limit=2.0 * math.sqrt(2.0) / math.pi, advance=_spectral_rk4
    ),
}


def _domain(owner: str, domain: Sequence[float]) -> tuple[float, float]:
    values = tuple(float(v) for v in domain)
    if (
        len(values) != 2
        or not all(map(math.isfinite, values))
        or values[0] >= values[1]
    ):
        raise ValueError(
            f"{owner}: domain must be two finite numbers (left, right) with left < "
            f"right, got {list(domain)!r}."
        )
    return values  # type: ignore[return-value]


def _grid(domain: tuple[float, float], num_points: int) -> Tensor:
    """The periodic grid ``a + i (b - a) / M``, ``i < M`` (float64, CPU)."""
    left, right = domain
    steps = torch.arange(num_points, dtype=torch.float64)
    return left + (right - left) * steps / num_points


class Advection1D:
    """Linear advection ``u_t + c u_x = 0`` on a periodic interval, four schemes.

    Channels: one, ``"u"``; physical fields are ``[B, 1, N]`` at ``x_i = a + i (b - a)
    / N`` on ``[a, b)``; the state is the field ``[B, N]``. The exact solution is
    ``u(x, t) = u0(x - c t)`` (periodic).

    Schemes (``scheme=``), all without error estimate (use a constant or CFL step):

    - ``"exact"``: shifts the trigonometric interpolant of the state by ``c dt``
      (Fourier phase factors). Exact for band-limited data, any ``dt``; the data
      generator of ``advection1d``. ``order`` is reported as 0 (no time error).
    - ``"upwind"``: first-order upwind, first order in space and time, Courant number
      ``|c| dt / dx <= 1``. Numerical diffusion smears a pulse.
    - ``"lax_wendroff"``: second order, ``|C| <= 1``. Dispersive: trailing wiggles.
    - ``"spectral"``: Fourier derivative + classical RK4 (method of lines), spectral in
      space, fourth order in time, ``|C| <= 2 sqrt(2) / pi ~ 0.90``.

    A step above the scheme's Courant bound raises before computing anything
    (:attr:`max_stable_dt` gives the largest step).

    INSR's setup (Chen et al. 2023, the first example): ``velocity=0.25``, ``domain=(-2,
    2)``, a Gaussian ``u0 = exp(-0.5 (x + 1.5)^2 / 0.1^2)`` (:class:`GaussianPulse`),
    ``dt = 0.05``, 240 steps. INSR treats ``[-2, 2]`` as a bounded domain with ``u = 0``
    on the boundary; the pulse's tail there is below 4e-6 for ``t <= 12``, so the
    periodic problem solved here differs from it by less than that.

    Good values: ``num_points=256`` (``dx = 1/64``: 6.4 points per pulse width) with
    the exact scheme; grid schemes at ``dt = 0.05`` need ``|c| dt / dx <= 1``, i.e.
    ``num_points <= 320`` for upwind and Lax-Wendroff and ``<= 288`` for spectral.

    Args:
        velocity: ``c`` (any sign).
        domain: ``(a, b)``, ``a < b``.
        num_points: grid points ``N`` (>= 4).
        scheme: ``"exact"``, ``"upwind"``, ``"lax_wendroff"`` or ``"spectral"``.
        dtype: ``float32`` or ``float64`` (or their names).
        device: where the state lives.

    Raises:
        ValueError: for an unknown scheme, a bad domain, velocity, resolution or dtype
            (names the argument).

    References:
        LeVeque, "Finite Volume Methods for Hyperbolic Problems", 2002 (upwind,
        Lax-Wendroff). Chen et al., "Implicit Neural Spatial Representations for
        Time-dependent PDEs", ICML 2023.
    """

    name = "advection_1d"
    channel_names = ("u",)
    spatial_dims = ("x",)

    def __init__(
        self,
        velocity: float = 0.25,
        domain: Sequence[float] = (-2.0, 2.0),
        num_points: int = 256,
        scheme: str = "exact",
        *,
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if scheme not in SCHEMES:
            raise ValueError(
                f"Advection1D: unknown scheme {scheme!r}; choose one of "
                f"{sorted(SCHEMES)}."
            )
        if not math.isfinite(velocity):
            raise ValueError(f"Advection1D: velocity must be finite, got {velocity!r}.")
        if (
            isinstance(num_points, bool)
            or int(num_points) != num_points
            or num_points < 4
        ):
            raise ValueError(
                f"Advection1D: num_points must be an integer >= 4, got {num_points!r}."
            )
        resolved = resolve_dtype("Advection1D", dtype)
        self.velocity = float(velocity)
        self.domain = _domain("Advection1D", domain)
        self.num_points = n = int(num_points)
        self.scheme = scheme
        self._scheme = SCHEMES[scheme]
        self.order = self._scheme.order
        self.dtype = resolved
        self.device = torch.device(device)
        extent = self.domain[1] - self.domain[0]
        self.grid_spacing = extent / n
        # Angular wavenumbers in float64; the derivative drops the Nyquist mode (its
        # derivative is not real), the exact shift keeps it.
        modes = fft_wavenumbers(n, half=True, device=self.device)
        self._wavenumbers = 2.0 * math.pi * modes / extent
        nyquist = 2 * modes == n
        self._derivative = 1j * torch.where(nyquist, 0.0, self._wavenumbers)

    @property
    def courant_limit(self) -> float:
        """The scheme's bound on the Courant number ``|c| dt / dx``."""
        return self._scheme.courant_limit

    def check_controller(self, controller: object) -> None:
        """Refuse a controller whose steps would exceed the Courant bound.

        Called by :class:`~physim.solvers.DatasetGenerator` before any work: a
        ``CFLController`` with ``courant_number`` above :attr:`courant_limit`, or a
        ``ConstantStep`` with ``dt`` above :attr:`max_stable_dt`, raises.

        Raises:
            ValueError: names the setting, the bound and the scheme.
        """
        courant = getattr(controller, "courant_number", None)
        if courant is not None and courant > self.courant_limit * (1.0 + 1e-12):
            raise ValueError(
                f"{type(controller).__name__}: courant_number={courant:g} exceeds the "
                f"stability bound {self.courant_limit:.4g} of Advection1D scheme "
                f"{self.scheme!r}; use courant_number <= {self.courant_limit:.4g}."
            )
        dt = getattr(controller, "dt", None)
        if dt is not None and dt > self.max_stable_dt * (1.0 + 1e-12):
            raise ValueError(
                f"{type(controller).__name__}: dt={dt:g} gives the Courant number "
                f"{abs(self.velocity) * dt / self.grid_spacing:.4g}, above the "
                f"stability bound {self.courant_limit:.4g} of Advection1D scheme "
                f"{self.scheme!r}; use dt <= {self.max_stable_dt:.4g} (or fewer grid "
                "points)."
            )

    @property
    def max_stable_dt(self) -> float:
        """The largest ``dt`` within the scheme's Courant bound (``inf`` if none)."""
        if self.velocity == 0:
            return math.inf
        return self._scheme.courant_limit * self.grid_spacing / abs(self.velocity)

    # ------------------------------------------------------------------ conversions
    def encode(self, u: Float[Tensor, "B 1 N"]) -> Float[Tensor, "B N"]:
        """Physical ``u`` ``[B, 1, N]`` -> state ``[B, N]`` (solver dtype, device)."""
        n = self.num_points
        if u.ndim != 3 or tuple(u.shape[1:]) != (1, n) or u.is_complex():
            raise ValueError(
                f"Advection1D.encode: expected a real field of shape [B, 1, {n}], got "
                f"{tuple(u.shape)} ({u.dtype})."
            )
        return u[:, 0].to(device=self.device, dtype=self.dtype)

    def decode(self, y: Float[Tensor, "B N"]) -> Float[Tensor, "B 1 N"]:
        """State ``[B, N]`` -> physical ``u`` ``[B, 1, N]``."""
        return y.unsqueeze(1)

    def coordinates(self, num_points: int | None = None) -> dict[str, Tensor]:
        """Grid points ``a + i (b - a) / M`` (float64, CPU).

        Args:
            num_points: ``M``; default the solver's ``N``.
        """
        m = self.num_points if num_points is None else int(num_points)
        return {"x": _grid(self.domain, m)}

    def parameters(self) -> dict[str, Any]:
        """Plain values for file attributes."""
        return {
            "pde": self.name,
            "equation": "u_t + c u_x = 0",
            "velocity": self.velocity,
            "domain": list(self.domain),
            "num_points": self.num_points,
            "scheme": self.scheme,
            "boundary": "periodic",
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    # ------------------------------------------------------------------ stepping
    def step(self, y: Float[Tensor, "B N"], t: float, dt: float) -> StepResult:
        """Advance ``y`` by ``dt`` with the chosen scheme (``error=None``).

        Raises:
            ValueError: ``|c| dt / dx`` exceeds the scheme's bound.
        """
        if dt > self.max_stable_dt * (1.0 + 1e-12):
            courant = abs(self.velocity) * dt / self.grid_spacing
            limit = self._scheme.courant_limit
            raise ValueError(
                f"Advection1D(scheme={self.scheme!r}): the Courant number |c| dt / dx "
                f"= {courant:.4g} (dt={dt:.4g}, dx={self.grid_spacing:.4g}) exceeds "
                f"the scheme's stability bound {limit:.4g}; use dt <= "
                f"{self.max_stable_dt:.4g} (or fewer grid points, or CFLController "
                f"with courant_number <= {limit:.4g})."
            )
        return StepResult(self._scheme.advance(self, y, dt))

    def max_speed(self, y: Float[Tensor, "B N"]) -> Float[Tensor, " B"]:
        """``|c|`` per trajectory (for :class:`CFLController`)."""
        return torch.full((y.shape[0],), abs(self.velocity), dtype=torch.float64)

    def __repr__(self) -> str:
        return (
            f"Advection1D(velocity={self.velocity}, domain={list(self.domain)}, "
            f"num_points={self.num_points}, scheme={self.scheme!r}, "
            f"dtype={self.dtype}, device={self.device})"
        )


class GaussianPulse:
    """``u0(x) = amplitude exp(-0.5 (x - x0)^2 / width^2)`` on the grid of
    :class:`Advection1D`.

    The centre ``x0`` is ``center`` (INSR's pulse: ``center=-1.5, width=0.1``), or,
    with ``center_spread > 0``, drawn per trajectory from ``U[center - spread, center +
    spread]``.

    Args:
        num_points: grid points ``N``.
        domain: ``(a, b)``; grid ``a + i (b - a) / N``.
        center: pulse centre.
        width: standard deviation, > 0.
        amplitude: peak value.
        center_spread: half-width of the random centre's range, >= 0.
    """

    def __init__(
        self,
        num_points: int,
        domain: Sequence[float] = (-2.0, 2.0),
        center: float = -1.5,
        width: float = 0.1,
        amplitude: float = 1.0,
        center_spread: float = 0.0,
    ) -> None:
        if (
            isinstance(num_points, bool)
            or int(num_points) != num_points
            or num_points < 1
        ):
            raise ValueError(
                f"GaussianPulse: num_points must be a positive integer, got "
                f"{num_points!r}."
            )
        if not (math.isfinite(width) and width > 0):
            raise ValueError(f"GaussianPulse: width must be > 0, got {width!r}.")
        if not (math.isfinite(center_spread) and center_spread >= 0):
            raise ValueError(
                f"GaussianPulse: center_spread must be >= 0, got {center_spread!r}."
            )
        self.num_points = int(num_points)
        self.domain = _domain("GaussianPulse", domain)
        self.center = float(center)
        self.width = float(width)
        self.amplitude = float(amplitude)
        self.center_spread = float(center_spread)

    def profile(self, x: Tensor, center: float | Tensor | None = None) -> Tensor:
        """The pulse at positions ``x`` (default centre ``center``); the exact
        solution of ``u_t + c u_x = 0`` on the line is ``profile(x - c t)``."""
        x0 = self.center if center is None else center
        return self.amplitude * torch.exp(-0.5 * ((x - x0) / self.width) ** 2)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> Float[Tensor, "n 1 N"]:
        """``n`` pulses ``[n, 1, N]`` (centres drawn on the CPU in float64)."""
        x = _grid(self.domain, self.num_points)
        offset = torch.rand(n, 1, generator=generator, dtype=torch.float64)
        centers = self.center + self.center_spread * (2.0 * offset - 1.0)
        u0 = self.profile(x, centers)
        return u0.unsqueeze(1).to(dtype=dtype, device=device)

    def parameters(self) -> dict[str, Any]:
        """Plain values for file attributes."""
        return {
            "initial_condition": "gaussian_pulse",
            "num_points": self.num_points,
            "domain": list(self.domain),
            "center": self.center,
            "width": self.width,
            "amplitude": self.amplitude,
            "center_spread": self.center_spread,
        }

    def __repr__(self) -> str:
        return (
            f"GaussianPulse(num_points={self.num_points}, domain={list(self.domain)}, "
            f"center={self.center}, width={self.width}, amplitude={self.amplitude}, "
            f"center_spread={self.center_spread})"
        )
