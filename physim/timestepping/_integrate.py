"""The driver loop: one loop for every stepper/controller pair."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from ._base import Decision, Stepper, StepResult, StepSizeController


class NonFiniteError(FloatingPointError):
    """A solve produced NaN or Inf. Names the trajectories and the time."""

    def __init__(self, t: float, indices: list[int], where: str = "") -> None:
        self.t = t
        self.indices = indices
        shown = indices[:10] + (["..."] if len(indices) > 10 else [])
        super().__init__(
            f"{where}state became non-finite at t={t:.6g} in trajectory(ies) "
            f"{shown} of the batch. Reduce the time step (courant_number / dt) or "
            "check the parameters (viscosity, resolution) for an unresolved flow."
        )


@dataclass
class Solution:
    """States saved at the requested times.

    Attributes:
        ts: the save times, ``[T]``.
        ys: the saved states ``[B, T, ...]`` (time on dim 1, after ``save_fn``).
        stats: ``n_steps`` (attempted), ``n_accepted``, ``n_rejected``, ``dt_min`` and
            ``dt_max`` (over accepted steps).
    """

    ts: Tensor
    ys: Tensor
    stats: dict[str, float] = field(default_factory=dict)


def _non_finite_rows(y: Tensor) -> list[int]:
    bad = ~torch.isfinite(y.reshape(y.shape[0], -1)).all(dim=1)
    return bad.nonzero().flatten().tolist()


class Attempt(NamedTuple):
    """One attempted step: from ``(t, y0)`` by ``dt``, giving ``result``.

    ``lands``: the step was clipped to end exactly on the target time.
    """

    t: float
    dt: float
    y0: Tensor
    result: StepResult
    lands: bool
    target: float


class Stepping:
    """The driver's book-keeping between two attempted steps.

    :func:`integrate` runs it to every save time; a caller that decides the steps one
    at a time (the step-control environment of :mod:`physim.stepcontrol`, which
    asks an agent between a step and its verdict) runs the same loop body, so the
    clipping to a target time, the roll-back of rejected steps, the step counters and
    the NaN handling exist once. The controller is initialised on construction.

    Args:
        stepper: takes the steps.
        controller: chooses the step sizes (its ``init`` runs here).
        y0: initial state, batch first.
        t0: initial time.
        dt0: first step to try (the controller may shrink it).
        max_steps: a safety cap on attempted steps.
    """

    def __init__(
        self,
        stepper: Stepper,
        controller: StepSizeController,
        y0: Tensor,
        t0: float,
        *,
        dt0: float | None = None,
        max_steps: int = 1_000_000,
    ) -> None:
        self.stepper = stepper
        self.t = float(t0)
        self.y = y0
        self.dt, self.state = controller.init(stepper, self.t, y0, dt0)
        self.max_steps = int(max_steps)
        self.n_steps = self.n_accepted = 0
        self.dt_min, self.dt_max = math.inf, 0.0

    def attempt(self, target: float) -> Attempt:
        """Take the next step towards ``target`` (clipped to land on it).

        Raises:
            RuntimeError: after ``max_steps`` attempts.
            NonFiniteError: when the controller proposed a non-finite or non-positive
                step.
        """
        t, dt = self.t, self.dt
        if self.n_steps >= self.max_steps:
            raise RuntimeError(
                f"integrate: reached max_steps={self.max_steps} at t={t:.6g} before "
                f"t={target:.6g}; raise max_steps or the step size."
            )
        if not (math.isfinite(dt) and dt > 0):
            raise NonFiniteError(
                t, _non_finite_rows(self.y) or list(range(self.y.shape[0]))
            )
        remaining = target - t
        lands = dt >= remaining - 1e-12 * max(1.0, abs(target))
        dt_try = remaining if lands else dt
        result = self.stepper.step(self.y, t, dt_try)
        return Attempt(t, dt_try, self.y, result, lands, target)

    def commit(self, attempt: Attempt, decision: Decision) -> None:
        """Apply the controller's verdict on ``attempt``.

        Raises:
            NonFiniteError: a rejected step with a non-finite proposal.
        """
        self.n_steps += 1
        if decision.accept:
            self.y, self.state = attempt.result.y, decision.state
            self.t = attempt.target if attempt.lands else attempt.t + attempt.dt
            self.n_accepted += 1
            self.dt_min = min(self.dt_min, attempt.dt)
            self.dt_max = max(self.dt_max, attempt.dt)
        elif not math.isfinite(decision.dt_next):
            raise NonFiniteError(
                attempt.t + attempt.dt, _non_finite_rows(attempt.result.y) or []
            )
        else:
            self.state = decision.state
        self.dt = decision.dt_next

    def stats(self) -> dict[str, float]:
        """``n_steps``, ``n_accepted``, ``n_rejected``, ``dt_min``, ``dt_max``."""
        return {
            "n_steps": self.n_steps,
            "n_accepted": self.n_accepted,
            "n_rejected": self.n_steps - self.n_accepted,
            "dt_min": self.dt_min if self.n_accepted else math.nan,
            "dt_max": self.dt_max if self.n_accepted else math.nan,
        }


def integrate(
    stepper: Stepper,
    controller: StepSizeController,
    y0: Tensor,
    t0: float,
    t1: float,
    *,
    save_at: Sequence[float] | None = None,
    dt0: float | None = None,
    save_fn: Callable[[Tensor], Tensor] | None = None,
    max_steps: int = 1_000_000,
    on_save: Callable[[int, float], None] | None = None,
) -> Solution:
    """Integrate from ``t0`` to ``t1`` and save at ``save_at`` (default: ``[t1]``).

    The loop owns the book-keeping (as diffrax's ``loop`` does): it clips a step so that
    it lands *exactly* on the next save time (the time is then set to the save time
    itself, so round-off never accumulates across output intervals), retries rejected
    steps, counts steps, and stops with :class:`NonFiniteError` when the state goes
    non-finite (checked at every save time and whenever a controller cannot propose a
    finite step).

    Args:
        stepper: takes the steps.
        controller: chooses the step sizes.
        y0: initial state, batch first.
        t0: initial time.
        t1: final time (> t0).
        save_at: increasing times in ``[t0, t1]``; ``t0`` itself saves ``y0``.
        dt0: first step to try (the controller may shrink it).
        save_fn: applied to a state before it is stored (e.g. to physical space and
            a coarser grid), so that only what is needed is kept.
        max_steps: a safety cap on attempted steps.
        on_save: called with ``(index, time)`` after each save (progress reporting).

    Returns:
        A :class:`Solution` with ``ys`` of shape ``[B, len(save_at), ...]``.
    """
    if not t1 > t0:
        raise ValueError(f"integrate: need t1 > t0, got t0={t0}, t1={t1}.")
    times = [float(t1)] if save_at is None else [float(s) for s in save_at]
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(
            f"integrate: save_at must be strictly increasing, got {times}."
        )
    if times[0] < t0 or times[-1] > t1:
        raise ValueError(f"integrate: save_at must lie in [t0, t1]=[{t0}, {t1}].")
    keep = save_fn or (lambda y: y)

    run = Stepping(stepper, controller, y0, t0, dt0=dt0, max_steps=max_steps)
    saved: list[Tensor] = []
    for index, target in enumerate(times):
        while run.t < target:
            attempt = run.attempt(target)
            decision = controller.adapt(
                stepper, attempt.t, attempt.dt, attempt.y0, attempt.result, run.state
            )
            run.commit(attempt, decision)
        bad = _non_finite_rows(run.y)
        if bad:
            raise NonFiniteError(run.t, bad)
        saved.append(keep(run.y))
        if on_save is not None:
            on_save(index, target)

    ts = torch.tensor(times, dtype=torch.float64)
    return Solution(ts=ts, ys=torch.stack(saved, dim=1), stats=run.stats())
