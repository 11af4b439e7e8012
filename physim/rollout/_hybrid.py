"""Hybrid rollouts: a surrogate that hands control back to the solver when needed.

A :class:`HybridStepper` is a window stepper for :func:`physim.rollout.rollout`. Each
call asks the surrogate for the next frames; a *trigger* decides which trajectories
are re-synchronised instead: for those, the solver advances the last trusted frame
(the last frame of the window, which the rollout has already accepted) over the same
output interval(s), and its frames replace the surrogate's. The surrogate then
restarts from the window that now ends in the solver's frame. Two triggers:

- :class:`Periodic` ``(period=M)``: every ``M``-th call goes to the solver for the
  whole batch (the surrogate is not called on those steps).
- :class:`OnIndicator` ``(indicator, threshold)``: per trajectory, when an error
  indicator of the surrogate's candidate (see :mod:`physim.rollout._indicators`)
  reaches the threshold. ``threshold=0`` sends every step to the solver (the hybrid
  *is* the solver rollout), ``threshold=inf`` none (it *is* the surrogate rollout).

The stepper records which frames the solver made and the wall time spent in the
surrogate, the indicator and the solver (:class:`HybridRecord`, from
:func:`hybrid_rollout`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ._engine import RolloutResult, rollout

__all__ = [
    "HybridRecord",
    "HybridStepper",
    "OnIndicator",
    "Periodic",
    "Trigger",
    "hybrid_rollout",
]


class Trigger(Protocol):
    """When a :class:`HybridStepper` re-synchronises with the solver."""

    def scheduled(self, call: int) -> bool:
        """Whether call ``call`` (0-based) goes to the solver for the whole batch,
        without asking the surrogate."""
        ...

    def fires(
        self, window: Tensor, candidate: Tensor
    ) -> tuple[Bool[Tensor, " B"], Float[Tensor, " B"] | None]:
        """Per trajectory: re-synchronise? And the indicator values (or ``None``)."""
        ...


@dataclass(frozen=True)
class Periodic:
    """Re-synchronise every ``period``-th call: calls ``M-1, 2M-1, ...`` are solver
    steps (``period=1``: the pure solver rollout).

    Raises:
        ValueError: ``period`` is not an integer >= 1.
    """

    period: int

    def __post_init__(self) -> None:
        period = self.period
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(
                f"Periodic: period must be an integer >= 1 (1: every step by the "
                f"solver), got {period!r}; for no re-synchronisation use the plain "
                "surrogate rollout (or OnIndicator(indicator, threshold=math.inf))."
            )

    def scheduled(self, call: int) -> bool:
        return (call + 1) % self.period == 0

    def fires(self, window: Tensor, candidate: Tensor) -> tuple[Tensor, None]:
        return torch.zeros(
            window.shape[0], dtype=torch.bool, device=window.device
        ), None


class OnIndicator:
    """Re-synchronise a trajectory when ``indicator(window, candidate) >= threshold``.

    A non-finite indicator value (a blown-up candidate) counts as ``+inf``, so it fires
    at every finite threshold; ``threshold=math.inf`` never fires.

    Args:
        indicator: ``(window [B, T_in, C, *S], candidate [B, T_out, C, *S]) -> [B]``,
            non-negative (e.g. :class:`physim.rollout.PDEResidual`).
        threshold: ``>= 0``; 0 always fires, ``inf`` never.

    Raises:
        ValueError: a negative or NaN ``threshold``; TypeError: a non-callable
            indicator.
    """

    def __init__(
        self,
        indicator: Callable[[Tensor, Tensor], Tensor],
        threshold: float,
    ) -> None:
        if not callable(indicator):
            raise TypeError(
                "OnIndicator: indicator must be callable as indicator(window, "
                f"candidate) -> [B], got {type(indicator).__name__}."
            )
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or math.isnan(threshold)
            or threshold < 0
        ):
            raise ValueError(
                f"OnIndicator: threshold must be a number >= 0 (0: always use the "
                f"solver, inf: never), got {threshold!r}."
            )
        self.indicator = indicator
        self.threshold = float(threshold)

    def scheduled(self, call: int) -> bool:
        return False

    def fires(self, window: Tensor, candidate: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.as_tensor(self.indicator(window, candidate))
        if scores.shape != (window.shape[0],):
            raise ValueError(
                f"OnIndicator: the indicator returned shape {tuple(scores.shape)}; "
                f"expected one value per trajectory, ({window.shape[0]},)."
            )
        scores = torch.nan_to_num(scores.detach(), nan=math.inf)
        if math.isinf(self.threshold):
            return torch.zeros_like(scores, dtype=torch.bool), scores
        return scores >= self.threshold, scores

    def __repr__(self) -> str:
        return f"OnIndicator({self.indicator!r}, threshold={self.threshold})"


@dataclass(frozen=True)
class HybridRecord:
    """What a hybrid rollout did.

    Attributes:
        solver_steps: ``[B, T]``, True where the solver produced predicted frame ``k``.
        scores: ``[B, T]`` indicator values of the surrogate's candidates (NaN where
            none was computed: scheduled solver steps, triggers without indicator).
        surrogate_time: wall seconds in the surrogate.
        indicator_time: wall seconds in the trigger (indicator evaluations).
        solver_time: wall seconds in the solver.
    """

    solver_steps: Bool[Tensor, "B T"]
    scores: Float[Tensor, "B T"]
    surrogate_time: float
    indicator_time: float
    solver_time: float

    @property
    def solver_fraction(self) -> float:
        """Fraction of predicted frames made by the solver (0: pure surrogate)."""
        if self.solver_steps.numel() == 0:
            return 0.0
        return float(self.solver_steps.float().mean())

    @property
    def resynchronised(self) -> Bool[Tensor, " B"]:
        """Per trajectory: whether the solver took over at least once."""
        return self.solver_steps.any(dim=1)

    @property
    def wall_time(self) -> float:
        """Seconds in surrogate, indicator and solver together."""
        return self.surrogate_time + self.indicator_time + self.solver_time


def _synchronize(x: Tensor) -> None:
    """Wait for queued kernels, so that wall times are attributed correctly."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


class HybridStepper:
    """Surrogate steps with solver re-synchronisation, as a window stepper.

    Call ``k`` of a rollout: if ``trigger.scheduled(k)``, the solver advances the
    window's last frame of every trajectory; otherwise the surrogate predicts
    ``T_out`` candidate frames, ``trigger.fires(window, candidate)`` picks trajectories,
    and for those the solver advances the window's last frame ``T_out`` times (one
    output interval each), replacing their candidates. The re-synchronised rows are
    solved as one batch (an adaptive controller then shares its steps between them).
    A trajectory whose last frame is already non-finite is left to the surrogate (no
    solver can continue it); the rollout reports it as non-finite.

    The stepper is stateful (call counter, record): :func:`hybrid_rollout` resets it
    and returns the record; call :meth:`reset` before reusing it with
    :func:`physim.rollout.rollout` directly. With a stochastic surrogate or indicator
    (sampling) the hybrid draws random numbers the plain surrogate rollout would not.

    Args:
        surrogate: window stepper ``[B, T_in, C, *S] -> [B, T_out, C, *S]``.
        solver: frame stepper over one output interval, ``solver(frames [b, C, *S],
            rows [b]) -> [b, C, *S]``, where ``rows`` are the frames' indices in the
            rollout batch (for per-trajectory parameters): an
            :class:`physim.rollout.IntervalSolver`.
        trigger: :class:`Periodic` or :class:`OnIndicator` (or any :class:`Trigger`).
    """

    def __init__(
        self,
        surrogate: Callable[[Tensor], Tensor],
        solver: Callable[[Tensor], Tensor],
        trigger: Trigger,
    ) -> None:
        for name, fn in (("surrogate", surrogate), ("solver", solver)):
            if not callable(fn):
                raise TypeError(
                    f"HybridStepper: {name} must be callable, got {type(fn).__name__}."
                )
        for method in ("scheduled", "fires"):
            if not callable(getattr(trigger, method, None)):
                raise TypeError(
                    f"HybridStepper: trigger must have `{method}` (use Periodic(M) or "
                    f"OnIndicator(indicator, threshold)), got {trigger!r}."
                )
        self.surrogate = surrogate
        self.solver = solver
        self.trigger = trigger
        self.reset()

    def reset(self) -> None:
        """Forget the calls so far (counter, record, timers)."""
        self._calls = 0
        self._solver_steps: list[Tensor] = []
        self._scores: list[Tensor] = []
        self._time = {"surrogate": 0.0, "indicator": 0.0, "solver": 0.0}

    def _timed(self, key: str, fn: Callable[..., object], *args: object) -> object:
        start = time.perf_counter()
        out = fn(*args)
        first = out[0] if isinstance(out, tuple) else out
        if isinstance(first, Tensor):
            _synchronize(first)
        self._time[key] += time.perf_counter() - start
        return out

    def _solve(self, window: Tensor, rows: Tensor, num_frames: int) -> Tensor:
        """``num_frames`` solver frames from the last frame of ``window[rows]``."""
        index = rows.nonzero().squeeze(1)
        frame = window[index, -1]
        frames = []
        for _ in range(num_frames):
            frame = self._timed("solver", self.solver, frame, index)
            frames.append(frame)
        return torch.stack(frames, dim=1)

    def __call__(self, window: Float[Tensor, "B T C *S"]) -> Float[Tensor, "B T C *S"]:
        call = self._calls
        self._calls += 1
        finite = torch.isfinite(window[:, -1]).flatten(1).all(dim=1)
        if self.trigger.scheduled(call):
            out = window[:, -1:].clone()  # non-finite rows stay non-finite
            if finite.any():
                out[finite] = self._solve(window, finite, 1).to(out.dtype)
            self._record(finite.cpu(), None, 1)
            return out
        candidate = self._timed("surrogate", self.surrogate, window)
        fire, scores = self._timed("indicator", self.trigger.fires, window, candidate)
        fire = fire.to(window.device) & finite
        t_out = candidate.shape[1]
        out = candidate
        if fire.any():
            out = candidate.clone()
            out[fire] = self._solve(window, fire, t_out).to(candidate.dtype)
        self._record(fire.cpu(), scores, t_out)
        return out

    def _record(self, fire: Tensor, scores: Tensor | None, t_out: int) -> None:
        self._solver_steps.append(fire.unsqueeze(1).expand(-1, t_out))
        if scores is None:
            scores = torch.full(fire.shape, math.nan, dtype=torch.float64)
        self._scores.append(
            scores.detach().double().cpu().unsqueeze(1).expand(-1, t_out)
        )

    def record(self, num_steps: int | None = None) -> HybridRecord:
        """The record of the calls since :meth:`reset`, cut to ``num_steps`` frames
        (the rollout drops surplus frames of a last multi-frame call)."""
        if self._solver_steps:
            steps = torch.cat(self._solver_steps, dim=1)[:, :num_steps]
            scores = torch.cat(self._scores, dim=1)[:, :num_steps]
        else:
            steps = torch.zeros(0, 0, dtype=torch.bool)
            scores = torch.zeros(0, 0, dtype=torch.float64)
        return HybridRecord(
            solver_steps=steps,
            scores=scores,
            surrogate_time=self._time["surrogate"],
            indicator_time=self._time["indicator"],
            solver_time=self._time["solver"],
        )

    def __repr__(self) -> str:
        return f"HybridStepper(trigger={self.trigger!r})"


def hybrid_rollout(
    hybrid: HybridStepper,
    initial: Float[Tensor, "B T_in C *S"],
    n_steps: int,
    **rollout_kwargs: object,
) -> tuple[RolloutResult, HybridRecord]:
    """:func:`physim.rollout.rollout` of a reset ``hybrid``, and its record.

    ``rollout_kwargs`` go to :func:`physim.rollout.rollout` (``history``,
    ``include_initial``, ``check_finite``, ``progress``); the record covers the
    ``n_steps`` predicted frames.
    """
    hybrid.reset()
    result = rollout(hybrid, initial, n_steps, **rollout_kwargs)
    return result, hybrid.record(n_steps)
