"""IMEX Crank-Nicolson (implicit linear part) with Heun (explicit nonlinear part)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from physim.timestepping import StepResult

from ._base import SemiLinearScheme
from ._term import State, cast_to_state

__all__ = ["IMEXCrankNicolsonHeun"]


class _Factors(NamedTuple):
    """Per-dt factors with ``G = dt / (1 - dt/2 L)`` (see the step)."""

    amplification: Tensor  # (1 + dt/2 L) / (1 - dt/2 L)
    minus_gain: Tensor  # -G W
    half_minus_gain: Tensor  # -G W / 2
    forcing: Tensor | None  # G f


class IMEXCrankNicolsonHeun(SemiLinearScheme):
    """Second-order IMEX: Crank-Nicolson on ``L``, Heun on ``N``; embedded estimate.

    For ``dy/dt = L y + N(y, t)`` (:class:`SemiLinear`, ``L`` diagonal, so the
    implicit "solves" are divisions)::

        (1 - dt/2 L) y*      = (1 + dt/2 L) y_n + dt N(y_n, t)
        (1 - dt/2 L) y_{n+1} = (1 + dt/2 L) y_n + dt/2 (N(y_n, t) + N(y*, t + dt))

    The predictor ``y*`` is first order, so ``error = y_{n+1} - y* = dt/2 (N(y*) -
    N(y_n)) / (1 - dt/2 L)`` is a free embedded estimate (``embedded_order`` 1) for
    :class:`~physim.timestepping.PIDController`. Two nonlinear evaluations per step.

    Why this scheme (the default of :class:`~physim.solvers.NavierStokes2D`): the FNO
    reference solver's Crank-Nicolson + explicit Euler is only first order; ETDRK2
    integrates ``L`` exactly but has no cheap embedded estimate; CNAB2 (one
    evaluation per step) needs the previous ``N`` as history, which breaks whenever a
    controller changes ``dt``; jax-cfd's ``crank_nicolson_rk4`` costs five
    evaluations. Heun keeps every step self-contained. Its explicit part is only
    weakly stable for pure advection (``|1 + z + z^2/2| > 1`` on the imaginary axis):
    keep Courant numbers around 0.5. Crank-Nicolson is A-stable but not L-stable: very
    stiff modes (``dt |L| >> 1``) flip sign each step instead of decaying.

    With ``N = f + W B(P y)`` (:class:`SemiLinear`) the forcing and the weight are
    folded into the per-``dt`` factors, so a step is two evaluations of ``B`` and five
    element-wise kernels (and the mask ``P`` of ``B``'s input, if the term has one).

    Args:
        term: the term to advance.
        cache_size: how many ``dt``'s factors are kept.

    References:
        Ascher, Ruuth & Wetton, "Implicit-explicit methods for time-dependent PDEs",
        SIAM J. Numer. Anal. 32 (1995).
    """

    name = "imex_crank_nicolson_heun"
    order = 2
    embedded_order = 1

    def build(self, dt: float) -> _Factors:
        term = self.term
        linear = term.linear
        denominator = 1.0 - 0.5 * dt * linear
        gain = dt / denominator
        # The weight enters with its sign flipped and the step subtracts it again
        # (``addcmul_(value=-1)``, ``b0 - b1``): the very operations of
        # NavierStokes2D before terms and schemes were split, whose W is -mask, so
        # that its datasets stay bit-identical.
        minus_gain = -gain if term.weight is None else -(gain * term.weight)
        half = -0.5 * gain if term.weight is None else -0.5 * gain * term.weight
        forcing = None
        if term.forcing is not None:
            forcing = cast_to_state(gain * term.forcing, term.dtype)
        return _Factors(
            amplification=cast_to_state(
                (1.0 + 0.5 * dt * linear) / denominator, term.dtype
            ),
            minus_gain=cast_to_state(minus_gain, term.dtype),
            half_minus_gain=cast_to_state(half, term.dtype),
            forcing=forcing,
        )

    def step(self, y: State, t: float, dt: float) -> StepResult:
        """One step; ``StepResult(y_{n+1}, y_{n+1} - y*)``."""
        # With N = f + W B (B of the masked state P y) and G = dt / (1 - dt/2 L):
        #   y*      = amp y_n + G f + G W B(y_n)
        #   y_{n+1} = y* + G W (B(y*) - B(y_n)) / 2
        # so f, W and G live in per-dt factors and each line is one kernel.
        factors = self.coefficients(dt)
        b0 = self.term.nonlinear(self.term.project(y), t)
        if factors.forcing is None:
            predictor = y * factors.amplification
        else:
            predictor = torch.addcmul(factors.forcing, factors.amplification, y)
        predictor.addcmul_(factors.minus_gain, b0, value=-1.0)
        b1 = self.term.nonlinear(self.term.project(predictor), t + dt)
        # Out of place: a term may return a tensor it keeps (a constant forcing).
        error = torch.sub(b0, b1).mul_(factors.half_minus_gain)
        return StepResult(y=predictor.add_(error), error=error)

    def advance(self, y: State, t: float, dt: float) -> State:
        """The state at ``t + dt`` (the embedded estimate costs nothing extra)."""
        return self.step(y, t, dt).y
