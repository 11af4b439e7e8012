"""Pseudo-spectral viscous Burgers solver (ETDRK4 by default) and its Cole-Hopf
exact solution."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from scipy.special import ive
from torch import Tensor

from ._spectral1d import Convection1D
from .schemes import SchemeFactory

__all__ = ["Burgers1D", "burgers_sine_solution"]


class Burgers1D(Convection1D):
    """The 1-D viscous Burgers equation, periodic, pseudo-spectral, ETDRK4 in time.

    Equation on ``[0, L)`` (periodic)::

        u_t + u u_x = nu u_xx

    Channels: one, ``"u"``; physical fields are ``[B, 1, N]`` at ``x_i = i L / N``;
    the state is the physical field ``[B, N]``, so that
    :class:`~physim.timestepping.PIDController` tolerances are values of ``u``.

    Space: Fourier, ``k = 2 pi m / L``. The viscous symbol ``-nu k^2`` is diagonal; the
    advection term is taken in conservative form ``-(i k / 2) rfft(u^2)`` with
    Orszag's 2/3 rule. Momentum (the mean) is conserved exactly. (The grid,
    de-aliasing and stepping are :class:`~physim.solvers.SpectralPDE1D`'s.)

    Time: ETDRK4 (Cox & Matthews; :class:`~physim.solvers.schemes.ETDRK4`) unless
    ``scheme=`` names another scheme of :mod:`physim.solvers.schemes`: the
    diffusion is integrated exactly, so the step is limited by advection only (a
    Courant number ``max|u| dt / dx`` up to about 1; :class:`CFLController` uses
    ``grid_spacing`` and ``max_speed``). Fourth order. With ``error_estimate=True``
    every step is also taken as two half steps, and the error is Richardson's estimate
    (:class:`~physim.solvers.schemes.StepDoubling`). Alternatives: an
    integrating-factor Runge-Kutta pair (Lawson; a cheap embedded estimate, but larger
    error constants on stiff problems, Kassam & Trefethen 2005), an IMEX pair such as
    Kennedy & Carpenter's ARK4(3)6L (embedded estimate, but only L-stable, not exact,
    on the diffusion).

    Good values: ``num_points=256, viscosity=0.01`` on ``[0, 1)`` for PDEBench-style
    initial data (:class:`~physim.solvers.RandomSines`, amplitudes up to ~2; fronts of
    width ~``4 nu / |jump|`` need a few points each), with ``PIDController(rtol=1e-6,
    atol=1e-6)``. The viscosity of PDEBench's files is ``Nu / pi`` (they solve
    ``u_t + (u^2/2)_x = (Nu / pi) u_xx``).

    Args:
        num_points: grid points ``N``, even, >= 8 (the 2/3 rule keeps ``|m| < N/3``).
        viscosity: ``nu``, > 0 (a spectral method needs the viscous fronts resolved).
        domain_extent: ``L``, > 0.
        error_estimate: return a step-doubling error estimate from :meth:`step`.
        scheme: the time scheme (a class of :mod:`physim.solvers.schemes` or a
            ``functools.partial`` of one); default ETDRK4.
        dtype: ``float32`` or ``float64`` (or their names).
        device: where the state and operators live.

    Raises:
        ValueError: for an odd or too small ``num_points``, ``viscosity <= 0``,
            ``domain_extent <= 0`` or an unsupported dtype (names the argument).

    References:
        Cox & Matthews, J. Comput. Phys. 176 (2002). Kassam & Trefethen, SIAM J. Sci.
        Comput. 26 (2005). Takamoto et al., "PDEBench", NeurIPS 2022 Datasets and
        Benchmarks (the Burgers data).
    """

    name = "burgers_1d"
    equation = "u_t + u u_x = nu u_xx"

    def __init__(
        self,
        num_points: int = 256,
        viscosity: float = 0.01,
        domain_extent: float = 1.0,
        *,
        error_estimate: bool = False,
        scheme: SchemeFactory | None = None,
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if not (math.isfinite(viscosity) and viscosity > 0):
            raise ValueError(
                f"Burgers1D: viscosity must be a positive number, got {viscosity!r} "
                "(the inviscid or anti-diffusive equation has no smooth solution for "
                "a spectral method; use e.g. 0.01)."
            )
        if not (math.isfinite(domain_extent) and domain_extent > 0):
            raise ValueError(
                f"Burgers1D: domain_extent must be > 0, got {domain_extent!r}."
            )
        self.viscosity = float(viscosity)
        super().__init__(
            num_points,
            float(domain_extent),
            error_estimate=error_estimate,
            scheme=scheme,
            dtype=dtype,
            device=device,
        )

    def symbol(self, k: Tensor) -> Tensor:
        """``-nu k^2``: diffusion."""
        return -self.viscosity * k**2

    def parameters(self) -> dict[str, Any]:
        """Plain values for file attributes."""
        return {
            "pde": self.name,
            "equation": "u_t + u u_x = nu u_xx",
            "viscosity": self.viscosity,
            "num_points": self.num_points,
            "domain_extent": float(self.domain_extent),
            "scheme": self.scheme.name,
            "error_estimate": self.error_estimate,
            "dealiasing": "2/3 rule, |m| < N/3",
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def max_speed(self, y: Float[Tensor, "B N"]) -> Float[Tensor, " B"]:
        """``max |u|`` per trajectory (for :class:`CFLController`)."""
        return y.abs().amax(dim=-1)


def burgers_sine_solution(
    x: Tensor,
    t: float,
    viscosity: float,
    amplitude: float = 1.0,
    domain_extent: float = 1.0,
) -> Tensor:
    """Exact solution of ``u_t + u u_x = nu u_xx`` from ``u0 = A sin(2 pi x / L)``.

    Cole-Hopf: ``u = -2 nu phi_x / phi`` with ``phi`` solving the heat equation from
    ``phi_0 = exp(a cos(kappa x))``, ``kappa = 2 pi / L``, ``a = A / (2 nu kappa)``.
    Its Fourier series has modified Bessel coefficients::

        phi = I_0(a) + 2 sum_n I_n(a) exp(-nu kappa^2 n^2 t) cos(n kappa x)

    evaluated with the exponentially scaled ``scipy.special.ive`` (the common factor
    ``e^a`` cancels) and enough terms for ``I_n(a)`` to drop below 1e-17 of ``I_0``.
    Accurate to round-off for ``a`` up to a few hundred (``nu`` down to ~1e-3 A L).

    Args:
        x: positions (any shape), float64 recommended.
        t: time, >= 0.
        viscosity: ``nu`` > 0.
        amplitude: ``A``.
        domain_extent: ``L``.

    Returns:
        ``u(x, t)`` with ``x``'s shape and dtype.
    """
    kappa = 2.0 * math.pi / domain_extent
    a = abs(amplitude) / (2.0 * viscosity * kappa)
    terms = int(a + 20.0 * math.sqrt(a) + 40.0)
    n_np = np.arange(1, terms + 1, dtype=np.float64)
    weights = ive(n_np, a) * np.exp(-viscosity * kappa**2 * n_np**2 * t)
    n = torch.from_numpy(n_np)
    # -A sin(kappa x) = A sin(kappa (x + L/2)): a negative amplitude is a half shift.
    shift = 0.5 * domain_extent if amplitude < 0 else 0.0
    positions = x.detach().cpu().double().reshape(-1, 1) + shift
    phase = kappa * positions * n
    w = torch.from_numpy(weights)
    numerator = 4.0 * viscosity * kappa * (torch.sin(phase) * (n * w)).sum(-1)
    denominator = ive(0, a) + 2.0 * (torch.cos(phase) * w).sum(-1)
    u = numerator / denominator
    return u.reshape(x.shape).to(dtype=x.dtype, device=x.device)
