"""Pseudo-spectral Kuramoto-Sivashinsky solver (ETDRK4 by default)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ._spectral1d import Convection1D
from .schemes import ETDRK4, SchemeFactory

__all__ = ["KuramotoSivashinsky1D"]

#: Per-trajectory parameters that :meth:`KuramotoSivashinsky1D.bind` understands.
BIND_KEYS = {"domain_extent": "domain_extent", "frame_interval": "time_scale"}


class KuramotoSivashinsky1D(Convection1D):
    """The 1-D Kuramoto-Sivashinsky equation, pseudo-spectral, ETDRK4 in time.

    Equation on ``[0, L)`` (periodic)::

        u_t + u u_x + u_xx + u_xxxx = 0

    Channels: one, ``"u"``; physical fields are ``[B, 1, N]`` at ``x_i = i L / N``.
    Coordinates are stored in *units of the domain*, ``x_i / L = i / N`` (so that
    trajectories with different ``L`` share one grid); the physical positions are
    ``x * domain_extent``. The state is the field ``[B, N]`` (real), so that
    :class:`~physim.timestepping.PIDController` tolerances are values of ``u``.

    Space: Fourier, wavenumbers ``k = 2 pi m / L``, linear symbol ``k^2 - k^4``; the
    nonlinear term in conservative form, ``-(i k / 2) rfft(u^2)``, with Orszag's 2/3
    rule (``dealias=True``) or without de-aliasing (``dealias=False``, the product of
    all modes in physical space, as the LPSDA/PDE-Refiner data were made with
    ``scipy.fftpack.diff``; at 256 points and ``L ~ 64`` the modes above ``N/3`` are
    damped by ``exp(-k^4 t)`` and the two agree to about 1e-8 over 20 time units). The
    mean is conserved exactly. (The grid, de-aliasing and stepping are
    :class:`~physim.solvers.SpectralPDE1D`'s.)

    Time: ETDRK4 (Cox & Matthews) by default (its phi functions of KS's real ``L`` by
    series and recurrences: :func:`~physim.solvers.phi_functions`);
    fourth order, four nonlinear evaluations (ten real FFTs of length ``N`` with the
    two of the physical state) per step. ``scheme=`` takes any scheme of
    :mod:`physim.solvers.schemes` (e.g. ``IMEXCrankNicolsonHeun``, second order with
    a free error estimate). ``error_estimate=True`` adds a step-doubling estimate
    (3x the work) for error-based step-size control; constant-step generation leaves
    it off. For :class:`~physim.timestepping.CFLController`, ``grid_spacing`` is
    ``1/N`` (domain units) and ``max_speed`` is ``tau max|u| / L`` per trajectory (the
    advection speed ``u`` in domain units per solver time unit); for ETDRK4 the Courant
    number limits accuracy, not stability.

    Per-trajectory parameters: ``domain_extent`` and ``time_scale`` may be 1-D tensors
    with one value per trajectory of the batch (:meth:`bind` builds such a solver). A
    ``time_scale`` ``tau`` makes the solver's time unit ``tau`` physical time units: it
    integrates ``du/ds = tau (L u + N(u))``, ``t = tau s``. The ``ks1d`` datasets
    draw the output interval per trajectory and solve in *frame units* (``tau =``
    the trajectory's output interval, so that frame ``j`` is at ``s = j`` for every
    trajectory): their ``time`` coordinate counts frames, and the physical time of a
    frame is ``time * frame_interval`` of that trajectory.

    Good values: ``num_points=256, domain_extent=64``, steps of 1/4 frame for frames
    0.2 apart (physical ``dt = 0.05``; relative error ~1e-7 at t = 5 against a tight
    reference, ``scripts/bench/bench_solvers.py``); float64 for reference solutions,
    float32 for training data.

    Args:
        num_points: grid points ``N``, even, >= 8; enough that the highest kept
            wavenumber exceeds 1 (KS grows every mode with ``|k| < 1``: a grid that
            keeps no damped mode blows up).
        domain_extent: ``L`` (> 0), a number or one value per trajectory ``[B]``.
        time_scale: physical time per solver time unit (> 0), a number or ``[B]``.
        dealias: apply the 2/3 rule to the nonlinear term.
        error_estimate: return a step-doubling error estimate from :meth:`step`.
        contour_points: points of the phi-function contour integral of the default
            scheme (used with ``phi_method="contour"``; KS's real ``L`` takes the
            series by default; kept in :meth:`parameters`, the fingerprint keys).
        scheme: the time scheme (a class of :mod:`physim.solvers.schemes` or a
            ``functools.partial`` of one); default ETDRK4 with ``contour_points``.
        dtype: ``float32`` or ``float64`` (or their names).
        device: where the state and operators live.

    Raises:
        ValueError: for an odd or too small ``num_points`` (too few for the dealiasing
            rule to keep a damped mode), a non-positive or non-finite
            ``domain_extent``/``time_scale`` or an unsupported dtype.

    References:
        Kassam & Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J. Sci.
        Comput. 26 (2005). Brandstetter, Welling & Worrall, "Lie point symmetry data
        augmentation for neural PDE solvers", ICML 2022 (the KS data of PDE-Refiner).
    """

    name = "kuramoto_sivashinsky_1d"
    equation = "u_t + u u_x + u_xx + u_xxxx = 0"

    def __init__(
        self,
        num_points: int = 256,
        domain_extent: float | Tensor = 64.0,
        time_scale: float | Tensor = 1.0,
        *,
        dealias: bool = True,
        error_estimate: bool = False,
        contour_points: int = 32,
        scheme: SchemeFactory | None = None,
        dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        self.contour_points = int(contour_points)
        super().__init__(
            num_points,
            domain_extent,
            time_scale,
            dealias=dealias,
            error_estimate=error_estimate,
            scheme=scheme or functools.partial(ETDRK4, contour_points=contour_points),
            dtype=dtype,
            device=device,
        )
        highest = self.highest_kept_wavenumber()
        if highest <= 1.0:
            raise ValueError(
                f"KuramotoSivashinsky1D: num_points={self.num_points} keeps "
                f"wavenumbers only up to k={highest:.3g} for domain_extent="
                f"{float(self.domain_extent.max()):g} (dealias={self.dealias}); KS "
                "amplifies every mode with |k| < 1, so the solution would blow up. "
                f"Use num_points >= {self._min_points():d} (256 for L ~ 64)."
            )
        self.grid_spacing = 1.0 / self.num_points
        self._speed_scale = (self.time_scale / self.domain_extent).to(self.device)

    def symbol(self, k: Tensor) -> Tensor:
        """``k^2 - k^4``: anti-diffusion below ``|k| = 1``, hyper-diffusion above."""
        return k**2 - k**4

    def _min_points(self) -> int:
        """The smallest even ``N`` whose highest kept wavenumber exceeds 1."""
        top = float(self.domain_extent.max()) / (2.0 * math.pi)  # modes m <= top grow
        per_mode = 3 if self.dealias else 2
        return 2 * math.ceil((per_mode * (math.floor(top) + 1) + 1) / 2)

    # ------------------------------------------------------------------ binding
    def bind(self, parameters: Mapping[str, Tensor]) -> KuramotoSivashinsky1D:
        """A solver for one batch with per-trajectory parameters.

        Args:
            parameters: ``{"domain_extent": [B], "frame_interval": [B]}`` (either may
                be missing: this solver's value is kept). ``frame_interval`` becomes
                the ``time_scale``, so the bound solver runs in frame units.

        Raises:
            ValueError: an unknown parameter name or a bad value.
        """
        unknown = sorted(set(parameters) - set(BIND_KEYS))
        if unknown:
            raise ValueError(
                f"KuramotoSivashinsky1D.bind: unknown per-trajectory parameter(s) "
                f"{unknown}; it understands {sorted(BIND_KEYS)}."
            )
        values = {"domain_extent": self.domain_extent, "time_scale": self.time_scale}
        values.update({BIND_KEYS[key]: value for key, value in parameters.items()})
        return KuramotoSivashinsky1D(
            self.num_points,
            **values,
            dealias=self.dealias,
            error_estimate=self.error_estimate,
            contour_points=self.contour_points,
            scheme=self._scheme_factory,
            dtype=self.dtype,
            device=self.device,
        )

    # ------------------------------------------------------------------ grid
    def coordinates(self, num_points: int | None = None) -> dict[str, Tensor]:
        """Cell positions in units of the domain, ``i / M`` (float64, CPU).

        Args:
            num_points: ``M``; default the solver's ``N``.
        """
        m = self.num_points if num_points is None else int(num_points)
        return {"x": torch.arange(m, dtype=torch.float64) / m}

    def parameters(self) -> dict[str, Any]:
        """Plain values for file attributes: :class:`SpectralPDE1D`'s, the units of
        ``x`` and the contour points (the keys of the ``ks1d`` fingerprints)."""
        return {
            **super().parameters(),
            "x_units": "fraction of the domain (x / domain_extent)",
            "contour_points": self.contour_points,
        }

    def max_speed(self, y: Float[Tensor, "B N"]) -> Float[Tensor, " B"]:
        """``tau max|u| / L`` per trajectory (domain units per solver time unit)."""
        return y.abs().amax(dim=-1).double() * self._speed_scale
