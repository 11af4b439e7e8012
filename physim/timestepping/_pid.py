"""Error-based step-size control: a PI (optionally PID) controller on an embedded
error estimate."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ._base import Decision, Stepper, StepResult, require_attribute

__all__ = ["PIDController", "PIDState", "Proposal", "StepRejectedError", "error_ratio"]

# Bounds of one factor in the initial-step search (decades per trial step).
_SEARCH_FACTOR = 1e3
_SEARCH_TRIALS = 12
# Error ratios below this count as this (no division by zero for an exact step).
_TINY_ERROR = 1e-10
# The smallest rtol is this many machine epsilons of the state's precision (Hairer's
# DOPRI5 and RADAU5 refuse or raise tolerances below ~10 eps likewise).
_PRECISION_FACTOR = 10.0


class StepRejectedError(RuntimeError):
    """A step was rejected too many times in a row. Names the time and the last dt."""

    def __init__(self, t: float, dt: float, error: float, rejections: int) -> None:
        self.t = t
        self.dt = dt
        self.error = error
        self.rejections = rejections
        super().__init__(
            f"PIDController: the step at t={t:.6g} was rejected {rejections} times in "
            f"a row (last dt={dt:.3g}, scaled error {error:.3g} > 1). The tolerance "
            "may be below what the scheme reaches in this precision (try float64 or "
            "larger rtol/atol), the state may be blowing up (check the parameters), "
            "or raise max_rejections."
        )


class PIDState(NamedTuple):
    """Controller history: errors of the last two accepted steps and the rejections
    of the step being tried (0 after an accepted step)."""

    errors: tuple[float, float] = (1.0, 1.0)
    rejections: int = 0


class Proposal(NamedTuple):
    """What :meth:`PIDController.propose` decides about a step.

    Attributes:
        accept: whether the step is accepted (its scaled error is at most 1).
        factor: PI's factor of the next step (``dt_next = dt * factor``).
        low: the smallest factor allowed.
        high: the largest factor allowed.
        state: the controller state after the step.
    """

    accept: bool
    factor: float
    low: float
    high: float
    state: PIDState


def error_ratio(y0: Tensor, result: StepResult, rtol: float, atol: float) -> Tensor:
    """Per-trajectory RMS of ``error / (atol + rtol * max(|y0|, |y1|))``, ``[B]``.

    Complex states (Fourier spectra) use moduli. Non-finite values give ``inf``.
    """
    error = result.error
    scale = atol + rtol * torch.maximum(y0.abs(), result.y.abs())
    ratio = (error.abs() / scale).reshape(error.shape[0], -1)
    norm = ratio.square().mean(dim=1).sqrt()
    return torch.nan_to_num(norm, nan=math.inf)


class PIDController:
    """Hairer/Soderlind PI (or PID) step-size control on an embedded error estimate.

    A step from ``y0`` to ``y1`` with error estimate ``e`` (``StepResult.error``, same
    shape as the state) has the scaled error norm

        err = max over trajectories of RMS(e / (atol + rtol * max(|y0|, |y1|)))

    and is accepted when ``err <= 1`` (one ``dt`` for the whole batch, as
    :class:`CFLController`). The next step is ``dt * factor`` with

        factor = safety * err_n^(-b1) * err_{n-1}^(-b2) * err_{n-2}^(-b3),
        b1 = (pcoeff + icoeff + dcoeff) / k,  b2 = -(pcoeff + 2 dcoeff) / k,
        b3 = dcoeff / k,

    ``k = min(order, embedded_order) + 1`` (the local error estimate scales as
    ``dt^k``; ``order`` is the stepper's, ``embedded_order`` its attribute of that
    name or ``order - 1``: set it to ``order`` for step doubling), clipped to
    ``[factor_min, factor_max]`` and to ``dt_max``. The defaults ``pcoeff=0.4,
    icoeff=0.3`` are Hairer's PI controller (``err_n^(-0.7/k) err_{n-1}^(0.4/k)``,
    Hairer & Wanner IV.2); ``pcoeff=0, icoeff=1`` is the classical elementary
    controller. A rejected step is retried with the pure I factor ``safety *
    err^(-1/k)`` (at most ``safety``, at least ``factor_min``; a non-finite error gives
    ``factor_min``), and the step after a rejection may not grow (Hairer's DOPRI5
    rule). After ``max_rejections`` rejections in a row :class:`StepRejectedError`
    names the time and the last ``dt``.

    Step-size grid (``dt_grid_ratio = r``, off by default): every proposed step is
    rounded *down* to ``anchor * r^-n`` (``anchor`` = ``dt_max``, or 1 if that is
    infinite), so the step sizes repeat exactly and a scheme's per-``dt`` coefficients
    (ETDRK4's phi functions; step doubling's ``dt / 2`` too) come from its cache
    instead of being rebuilt for every new ``dt``. Rounding down keeps the error
    control (a step is only ever smaller than PI's); it costs about ``(r - 1) / 2``
    more steps. ``r = 2 ** (1 / 8)`` is a good value; ``scripts/bench/bench_phi.py``
    measures it.

    Choices: the error history is that of accepted steps only (as in Hairer's codes and
    diffrax); accepted steps may shrink (diffrax never shrinks an accepted step,
    Hairer's codes do). The tolerances apply to the stepper's state: for a spectral
    state (``NavierStokes2D`` keeps ``rfft2`` coefficients, unnormalised) ``atol`` is
    in those units, about ``N^d / 2`` times a physical amplitude.

    Initial step (``dt0=None``): Hairer & Wanner (I, II.4) choose ``dt0`` so that the
    predicted local error is about the tolerance, from norms of ``f`` and its
    derivative. A stepper exposes no right-hand side, so the same target is reached
    with trial steps of the stepper itself: from ``dt_max`` (or 1e-3 if that is
    infinite), each trial sets ``dt <- dt * (safety / err)^(1/k)`` (within a factor of
    1000 per trial, a non-finite trial divides by 1000) until the prediction changes
    by less than 2x. Costs 1-3 extra steps (up to 12 when the scale is far off); they
    are not in the driver's step counts.

    Args:
        rtol: relative tolerance, > 0.
        atol: absolute tolerance, > 0 (in the units of the stepper's state).
        pcoeff: proportional coefficient, >= 0.
        icoeff: integral coefficient, > 0.
        dcoeff: derivative coefficient, >= 0 (0 for a PI controller).
        safety: factor applied to every proposal, in (0, 1).
        factor_min: smallest factor per step, in (0, 1).
        factor_max: largest factor per step, > 1.
        dt_max: largest step.
        max_rejections: rejections in a row before giving up, >= 1.
        dt_grid_ratio: round steps down to a geometric grid of this ratio (> 1);
            ``None`` (default) keeps PI's steps as they are.

    Raises:
        ValueError: for a tolerance <= 0 or another out-of-range setting (names it);
            from :meth:`init`, for ``rtol`` below 10 machine epsilons of the state.

    References:
        Hairer, Norsett & Wanner, "Solving Ordinary Differential Equations I", II.4
        (1993). Hairer & Wanner, "Solving Ordinary Differential Equations II", IV.2
        (1996). Soderlind, "Digital filters in adaptive time-stepping", ACM TOMS 29
        (2003). diffrax's ``PIDController`` (Kidger, 2021).
    """

    def __init__(
        self,
        rtol: float = 1e-5,
        atol: float = 1e-8,
        *,
        pcoeff: float = 0.4,
        icoeff: float = 0.3,
        dcoeff: float = 0.0,
        safety: float = 0.9,
        factor_min: float = 0.2,
        factor_max: float = 10.0,
        dt_max: float = math.inf,
        max_rejections: int = 10,
        dt_grid_ratio: float | None = None,
    ) -> None:
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"PIDController: {name} must be a positive number, got {value!r}; "
                    "an error tolerance <= 0 can never be met (use e.g. rtol=1e-5, "
                    "atol=1e-8)."
                )
        checks = [
            ("pcoeff", pcoeff, math.isfinite(pcoeff) and pcoeff >= 0, ">= 0"),
            ("icoeff", icoeff, math.isfinite(icoeff) and icoeff > 0, "> 0"),
            ("dcoeff", dcoeff, math.isfinite(dcoeff) and dcoeff >= 0, ">= 0"),
            ("safety", safety, 0 < safety < 1, "in (0, 1)"),
            ("factor_min", factor_min, 0 < factor_min < 1, "in (0, 1)"),
            ("factor_max", factor_max, 1 < factor_max < math.inf, "> 1 and finite"),
            ("dt_max", dt_max, dt_max > 0, "> 0"),
            (
                "dt_grid_ratio",
                dt_grid_ratio,
                dt_grid_ratio is None or 1 < dt_grid_ratio < math.inf,
                "> 1 and finite (or None)",
            ),
        ]
        for name, value, valid, bound in checks:
            if not valid:
                raise ValueError(
                    f"PIDController: {name} must be {bound}, got {value!r}."
                )
        if (
            isinstance(max_rejections, bool)
            or int(max_rejections) != max_rejections
            or max_rejections < 1
        ):
            raise ValueError(
                "PIDController: max_rejections must be an integer >= 1, got "
                f"{max_rejections!r}."
            )
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.pcoeff = float(pcoeff)
        self.icoeff = float(icoeff)
        self.dcoeff = float(dcoeff)
        self.safety = float(safety)
        self.factor_min = float(factor_min)
        self.factor_max = float(factor_max)
        self.dt_max = float(dt_max)
        self.max_rejections = int(max_rejections)
        self.dt_grid_ratio = None if dt_grid_ratio is None else float(dt_grid_ratio)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def error_exponent(stepper: Stepper) -> int:
        """``k``: the local error estimate of ``stepper`` scales as ``dt^k``."""
        order = int(require_attribute(stepper, "order", "PIDController"))
        embedded = int(getattr(stepper, "embedded_order", order - 1))
        return min(order, embedded) + 1

    def error_norm(self, y0: Tensor, result: StepResult, stepper: Stepper) -> float:
        """The scaled error ``err`` of a step (max over the batch; ``inf`` if NaN)."""
        if result.error is None:
            raise TypeError(
                f"PIDController needs a stepper with an error estimate; "
                f"{type(stepper).__name__}.step returned error=None. Use a scheme with "
                "an embedded estimate (or the solver's error_estimate=True / step "
                "doubling), or ConstantStep / CFLController instead."
            )
        return float(error_ratio(y0, result, self.rtol, self.atol).max())

    def _first_step(self, stepper: Stepper, t0: float, y0: Tensor) -> float:
        k = self.error_exponent(stepper)
        dt = self.dt_max if math.isfinite(self.dt_max) else 1e-3
        for _ in range(_SEARCH_TRIALS):
            err = self.error_norm(y0, stepper.step(y0, t0, dt), stepper)
            if not math.isfinite(err):
                factor = 1.0 / _SEARCH_FACTOR
            else:
                factor = (self.safety / max(err, _TINY_ERROR)) ** (1.0 / k)
                factor = min(max(factor, 1.0 / _SEARCH_FACTOR), _SEARCH_FACTOR)
            dt = min(dt * factor, self.dt_max)
            if 0.5 <= factor <= 2.0 or dt == self.dt_max:
                break
        return dt

    # ------------------------------------------------------------------ protocol
    def check_precision(self, dtype: torch.dtype) -> None:
        """Refuse an ``rtol`` below 10 machine epsilons of a state of ``dtype``.

        Raises:
            ValueError: naming ``rtol``, the dtype and the smallest usable value.
        """
        precision = dtype.to_real() if dtype.is_complex else dtype
        if not precision.is_floating_point:
            return
        floor = _PRECISION_FACTOR * torch.finfo(precision).eps
        if self.rtol < floor:
            raise ValueError(
                f"PIDController: rtol={self.rtol:g} is below what a "
                f"{str(precision).removeprefix('torch.')} state resolves "
                f"({_PRECISION_FACTOR:g} x machine epsilon = {floor:.2g}); the "
                "error estimate would be round-off. Use rtol >= "
                f"{floor:.2g} or a float64 solver."
            )

    def init(
        self, stepper: Stepper, t0: float, y0: Tensor, dt0: float | None
    ) -> tuple[float, PIDState]:
        self.error_exponent(stepper)  # fails early for a stepper without `order`
        self.check_precision(y0.dtype)
        dt = self._first_step(stepper, t0, y0) if dt0 is None else float(dt0)
        return self.on_grid(min(dt, self.dt_max)), PIDState()

    def propose(
        self, t: float, dt: float, err: float, k: int, state: PIDState
    ) -> Proposal:
        """The verdict on a step of scaled error ``err`` and the factor of the next.

        The factor lies in ``[proposal.low, proposal.high]``: ``[factor_min,
        factor_max]`` after an accepted step (``[factor_min, 1]`` right after a
        rejection), ``[factor_min, safety]`` after a rejected one, so a rejected step
        always shrinks. A residual controller
        (:class:`~physim.timestepping.LearnedController`) moves the factor within
        these bounds and keeps the verdict.

        Raises:
            StepRejectedError: after ``max_rejections`` rejections in a row.
        """
        if err <= 1.0:
            e0 = max(err, _TINY_ERROR)
            e1, e2 = state.errors
            b1 = (self.pcoeff + self.icoeff + self.dcoeff) / k
            b2 = -(self.pcoeff + 2.0 * self.dcoeff) / k
            b3 = self.dcoeff / k
            factor = self.safety * e0**-b1 * e1**-b2 * e2**-b3
            ceiling = 1.0 if state.rejections else self.factor_max
            factor = min(max(factor, self.factor_min), ceiling)
            return Proposal(
                True,
                factor,
                self.factor_min,
                ceiling,
                PIDState(errors=(e0, e1), rejections=0),
            )
        rejections = state.rejections + 1
        if rejections >= self.max_rejections:
            raise StepRejectedError(t, dt, err, rejections)
        factor = self.factor_min
        if math.isfinite(err):
            factor = max(self.safety * err ** (-1.0 / k), self.factor_min)
        return Proposal(
            False,
            factor,
            self.factor_min,
            max(self.safety, self.factor_min),
            PIDState(errors=state.errors, rejections=rejections),
        )

    def next_step(self, dt: float, proposal: Proposal, factor: float) -> float:
        """``dt * factor``, capped at ``dt_max`` after an accepted step (and rounded
        down to the step-size grid, if there is one)."""
        if proposal.accept:
            return self.on_grid(min(dt * factor, self.dt_max))
        return self.on_grid(dt * factor)

    def on_grid(self, dt: float) -> float:
        """The largest ``anchor * dt_grid_ratio^-n <= dt`` (``dt`` without a grid)."""
        ratio = self.dt_grid_ratio
        if ratio is None or not (math.isfinite(dt) and dt > 0):
            return dt
        anchor = self.dt_max if math.isfinite(self.dt_max) else 1.0
        # The same n gives the same float, so a scheme's cache sees repeated steps;
        # the 1e-9 keeps a grid value on itself despite the logs' round-off (a dt
        # within 1e-10 relative below a grid value may round up to it).
        n = math.ceil(math.log(anchor / dt) / math.log(ratio) - 1e-9)
        return anchor * ratio**-n

    def adapt(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: PIDState,
    ) -> Decision[PIDState]:
        err = self.error_norm(y0, result, stepper)
        proposal = self.propose(t, dt, err, self.error_exponent(stepper), state)
        return Decision(
            accept=proposal.accept,
            dt_next=self.next_step(dt, proposal, proposal.factor),
            state=proposal.state,
        )

    def __repr__(self) -> str:
        return (
            f"PIDController(rtol={self.rtol}, atol={self.atol}, pcoeff={self.pcoeff}, "
            f"icoeff={self.icoeff}, dcoeff={self.dcoeff}, safety={self.safety}, "
            f"factor_min={self.factor_min}, factor_max={self.factor_max}, "
            f"dt_max={self.dt_max}, max_rejections={self.max_rejections}"
            + (
                ""
                if self.dt_grid_ratio is None
                else f", dt_grid_ratio={self.dt_grid_ratio}"
            )
            + ")"
        )
