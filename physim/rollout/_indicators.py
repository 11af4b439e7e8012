"""Error indicators of a surrogate's step, computed without the truth.

An indicator maps the rollout window ``[B, T_in, C, *space]`` and the surrogate's
candidate frames ``[B, T_out, C, *space]`` to one non-negative number per trajectory
(the largest over the ``T_out`` steps); :class:`physim.rollout.OnIndicator` compares
it with a threshold. All three are dimensionless, relative to the size of the step
``u_{n+1} - u_n``, so one threshold serves trajectories of different amplitude.

- :class:`PDEResidual`: how far the step is from satisfying the PDE, with the solver's
  own right-hand side (trapezoidal rule over the output interval).
- :class:`EnstrophyBudget`: drift of the enstrophy budget of forced viscous 2-D
  Navier-Stokes (advection conserves enstrophy; only viscosity and forcing change it).
- :class:`SampleSpread`: the spread of a stochastic surrogate's samples of the step
  (PDE-Refiner's uncertainty, Lippe et al. 2023), via
  :func:`physim.rollout.sample_spread`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from physim.solvers import rfft_wavenumber_grid, spectral_resample

from ._solver_stepper import check_parameters
from ._uncertainty import sample_spread

__all__ = ["EnstrophyBudget", "PDEResidual", "SampleSpread"]


def _steps(window: Tensor, candidate: Tensor) -> Tensor:
    """``[B, T_out + 1, C, *S]``: the last window frame followed by the candidates."""
    if candidate.ndim != window.ndim or candidate.shape[0] != window.shape[0]:
        raise ValueError(
            f"indicator: candidate {tuple(candidate.shape)} does not continue the "
            f"window {tuple(window.shape)}; both must be [B, T, C, *space]."
        )
    return torch.cat([window[:, -1:], candidate.to(window.dtype)], dim=1)


def _norm(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x.flatten(2), dim=-1)


def _check_interval(name: str, output_interval: float) -> float:
    if not (
        isinstance(output_interval, (int, float))
        and math.isfinite(output_interval)
        and output_interval > 0
    ):
        raise ValueError(
            f"{name}: output_interval must be a positive number (the time between "
            f"the frames the surrogate predicts), got {output_interval!r}."
        )
    return float(output_interval)


class PDEResidual:
    """Relative trapezoidal residual of a step, with the solver's right-hand side.

    For a step ``u_0 -> u_1`` over the output interval ``dt`` of ``du/dt = F(u)``::

        rho = || u_1 - u_0 - dt/2 (F(u_0) + F(u_1)) ||_2 / || u_1 - u_0 ||_2

    over channels and space, per trajectory (the maximum over a multi-frame
    candidate's steps). ``F`` is the solver's own discrete right-hand side
    (``pde.time_derivative``: for :class:`~physim.solvers.NavierStokes2D` the
    de-aliased advection, viscosity and forcing; for the 1-D spectral solvers the
    linear symbol and the de-aliased nonlinearity), evaluated on the solver's grid
    (frames at another resolution are resampled spectrally). The trapezoidal rule
    makes a step of the true solution leave ``rho ~ dt^2 |u'''| / (12 |u'|)``: small
    where the flow is smooth on the scale of ``dt`` (measured on ``ns2d``, dt = 1,
    t >= 2: about 5e-3), large where it is not (``ns2d`` from its rough initial field
    at t = 0: 0.4). A perturbation ``e`` of the step adds about
    ``|e| |1 + dt/2 dF/du| / |u_1 - u_0|``.

    Alternatives: a higher-order multistep residual (Adams-Moulton over the window's
    earlier frames: 2-5x smaller solver-step floor on ``ns2d``, but it trusts earlier
    surrogate frames too), or re-solving the step coarsely (a real error estimate at a
    solver's cost). The trapezoidal form needs two evaluations of ``F`` per step
    (about one internal solver step) and only the step itself.

    Per-trajectory PDE parameters (``ks1d``): give ``parameters`` (one value per
    trajectory of the rollout batch) and the unbound solver; the residual then uses
    ``pde.bind(parameters)`` and ``dt`` is in its time units (frames, for ``ks1d``).

    Args:
        pde: a solver with ``encode``, ``decode``, ``time_derivative(y, t)`` and
            ``coordinates`` (e.g. :class:`~physim.solvers.NavierStokes2D`,
            :class:`~physim.solvers.KuramotoSivashinsky1D`).
        output_interval: ``dt`` between the predicted frames.
        eps: floor of ``||u_1 - u_0||`` (a frozen step scores ``||residual|| / eps``).
        parameters: ``{name: [B]}`` for ``pde.bind``, or ``None``.
    """

    def __init__(
        self,
        pde: Any,
        output_interval: float,
        eps: float = 1e-12,
        parameters: Mapping[str, Tensor] | None = None,
    ) -> None:
        if parameters is not None:
            pde = pde.bind(check_parameters(pde, parameters))
        for name in ("encode", "decode", "time_derivative", "coordinates"):
            if not callable(getattr(pde, name, None)):
                raise TypeError(
                    f"PDEResidual: the solver {type(pde).__name__} has no `{name}`; "
                    "the residual needs a solver exposing its right-hand side "
                    "(time_derivative), e.g. NavierStokes2D. Use SampleSpread or a "
                    "Periodic trigger for other solvers."
                )
        self.pde = pde
        self.output_interval = _check_interval("PDEResidual", output_interval)
        self.eps = float(eps)
        self.solve_shape = tuple(len(v) for v in pde.coordinates(None).values())

    def time_derivative(self, u: Float[Tensor, "N C *S"]) -> Float[Tensor, "N C *S"]:
        """``F(u)`` in physical space on the solver's grid (``u`` resampled to it)."""
        return self.pde.decode(self.pde.time_derivative(self.pde.encode(u), 0.0))

    @torch.no_grad()
    def __call__(self, window: Tensor, candidate: Tensor) -> Float[Tensor, " B"]:
        frames = _steps(window, candidate)
        b, t = frames.shape[:2]
        flat = frames.flatten(0, 1).to(device=self.pde.device, dtype=self.pde.dtype)
        if tuple(flat.shape[2:]) != self.solve_shape:
            flat = spectral_resample(flat, self.solve_shape[0])
        u = flat.unflatten(0, (b, t))
        # Frame by frame: a solver bound to per-trajectory parameters takes [B].
        rhs = torch.stack([self.time_derivative(u[:, j]) for j in range(t)], dim=1)
        step = u[:, 1:] - u[:, :-1]
        residual = step - 0.5 * self.output_interval * (rhs[:, 1:] + rhs[:, :-1])
        rho = _norm(residual) / _norm(step).clamp_min(self.eps)
        return rho.amax(dim=1).to(window.device)

    def __repr__(self) -> str:
        return f"PDEResidual(output_interval={self.output_interval})"


class EnstrophyBudget:
    """Relative drift of the enstrophy budget of forced viscous 2-D Navier-Stokes.

    For the vorticity ``w`` on the unit torus, ``Z = <w^2> / 2`` (``<.>``: the mean
    over the domain) obeys ``dZ/dt = P - D`` with injection ``P = <w f>`` and
    dissipation ``D = nu <|grad w|^2>``: advection moves enstrophy between scales but
    conserves it. Over a step ``w_0 -> w_1`` of length ``dt`` (trapezoidal rule)::

        drift = |Z_1 - Z_0 - dt/2 (P_0 - D_0 + P_1 - D_1)| / (dt/2 (|P_0| + D_0 +
                 |P_1| + D_1))

    i.e. the budget's imbalance relative to its terms (the maximum over a multi-frame
    candidate's steps). A scalar check: it misses errors that leave the enstrophy
    budget intact (a shifted vortex), but costs a few FFTs of the frames only (no
    advection term) and is independent of the solver's discretisation. Gradients are
    spectral on the frames' own grid.

    Args:
        viscosity: ``nu`` (> 0).
        forcing: the steady forcing ``f(x, y)`` (a :class:`~physim.solvers.Forcing`)
            or ``None``.
        output_interval: ``dt`` between the predicted frames.
        eps: floor of the denominator.
    """

    def __init__(
        self,
        viscosity: float,
        forcing: Callable[[Tensor, Tensor], Tensor] | None,
        output_interval: float,
        eps: float = 1e-12,
    ) -> None:
        if not (isinstance(viscosity, (int, float)) and viscosity > 0):
            raise ValueError(
                f"EnstrophyBudget: viscosity must be > 0, got {viscosity!r}."
            )
        self.viscosity = float(viscosity)
        self.forcing = forcing
        self.output_interval = _check_interval("EnstrophyBudget", output_interval)
        self.eps = float(eps)

    @classmethod
    def from_solver(cls, pde: Any, output_interval: float) -> EnstrophyBudget:
        """From a :class:`~physim.solvers.NavierStokes2D` (its viscosity, forcing)."""
        return cls(pde.viscosity, pde.forcing, output_interval)

    def terms(self, w: Float[Tensor, "B T 1 N N"]) -> tuple[Tensor, Tensor, Tensor]:
        """``(Z, P, D)`` per frame, ``[B, T]`` each."""
        if w.ndim != 5 or w.shape[2] != 1 or w.shape[3] != w.shape[4]:
            raise ValueError(
                "EnstrophyBudget: expected vorticity frames [B, T, 1, N, N], got "
                f"{tuple(w.shape)}."
            )
        n = w.shape[-1]
        w = w[:, :, 0].to(torch.promote_types(w.dtype, torch.float32))
        kx, ky = (
            2.0 * math.pi * k
            for k in rfft_wavenumber_grid(n, 2, dtype=w.dtype, device=w.device)
        )
        w_hat = torch.fft.rfft2(w)
        grad_sq = sum(
            torch.fft.irfft2(1j * k * w_hat, s=(n, n)).square() for k in (kx, ky)
        )
        enstrophy = 0.5 * w.square().mean(dim=(-2, -1))
        dissipation = self.viscosity * grad_sq.mean(dim=(-2, -1))
        injection = torch.zeros_like(enstrophy)
        if self.forcing is not None:
            x = torch.arange(n, dtype=torch.float64, device=w.device) / n
            f = self.forcing(x[:, None], x[None, :]).to(w.dtype)
            injection = (w * f).mean(dim=(-2, -1))
        return enstrophy, injection, dissipation

    @torch.no_grad()
    def __call__(self, window: Tensor, candidate: Tensor) -> Float[Tensor, " B"]:
        z, p, d = self.terms(_steps(window, candidate))
        rate = p - d
        half = 0.5 * self.output_interval
        imbalance = (z[:, 1:] - z[:, :-1] - half * (rate[:, 1:] + rate[:, :-1])).abs()
        scale = half * (p.abs() + d)
        drift = imbalance / (scale[:, 1:] + scale[:, :-1]).clamp_min(self.eps)
        return drift.amax(dim=1)

    def __repr__(self) -> str:
        return (
            f"EnstrophyBudget(viscosity={self.viscosity}, "
            f"output_interval={self.output_interval})"
        )


class SampleSpread:
    """Spread of a stochastic surrogate's samples of the step, relative to the step.

    ``num_samples`` draws ``s_i = sampler(window)`` (e.g. PDE-Refiner's
    ``predict_next``) give ``spread = sample_spread(s)`` (the RMS over space of the
    pointwise sample standard deviation, :func:`physim.rollout.sample_spread`) and::

        score = spread / RMS(mean_i(s_i) - u_n)

    per trajectory (the maximum over the candidate's frames). The candidate itself is
    not one of the samples, so the rollout's frames follow the surrogate's own
    distribution; the indicator costs ``num_samples`` extra surrogate calls.
    PDE-Refiner uses the samples' decorrelation *time* as its uncertainty estimate
    (:func:`physim.rollout.estimated_correlation_time`); a per-step trigger needs the
    per-step spread instead.

    Args:
        sampler: a stochastic window stepper ``[B, T_in, C, *S] -> [B, T_out, C, *S]``.
        num_samples: draws per step, >= 2.
        eps: floor of the step's RMS.
    """

    def __init__(
        self,
        sampler: Callable[[Tensor], Tensor],
        num_samples: int = 2,
        eps: float = 1e-12,
    ) -> None:
        if not callable(sampler):
            raise TypeError(
                f"SampleSpread: sampler must be callable, got {type(sampler).__name__}."
            )
        if isinstance(num_samples, bool) or not isinstance(num_samples, int):
            raise ValueError(
                f"SampleSpread: num_samples must be an integer >= 2, got "
                f"{num_samples!r}."
            )
        if num_samples < 2:
            raise ValueError(
                f"SampleSpread: num_samples must be >= 2 (a spread needs two "
                f"samples), got {num_samples}."
            )
        self.sampler = sampler
        self.num_samples = num_samples
        self.eps = float(eps)

    @torch.no_grad()
    def __call__(self, window: Tensor, candidate: Tensor) -> Float[Tensor, " B"]:
        samples = torch.stack([self.sampler(window) for _ in range(self.num_samples)])
        spread = sample_spread(samples)  # [B, T_out]
        mean = samples.mean(dim=0)
        step = mean - _steps(window, mean)[:, :-1]
        rms = step.flatten(2).square().mean(dim=-1).sqrt()
        return (spread / rms.clamp_min(self.eps)).amax(dim=1)

    def __repr__(self) -> str:
        return f"SampleSpread(num_samples={self.num_samples})"
