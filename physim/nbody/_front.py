"""The work-precision front of a fixed-parameter sweep and a method's gap to it.

Each method is one point: ``x = log10(mean force evaluations)``, ``y = mean log10
|dE|`` over the evaluation seeds (failed runs count as ``|dE| = 1``, i.e. ``y = 0``).
The *front* is the lower-left envelope of the sweep's points: the points no other
point beats in both cost and error, joined by straight lines in these log axes (the
interpolation the issue prescribes; a convex hull would also credit mixtures of two
settings). A method's *gap* is its ``y`` minus the front's ``y`` at its ``x``
(decades of error at equal cost; > 0 is worse), its *cost factor* the ratio of its
cost to the front's at its ``y`` (equal error). Outside the sweep's range there is
no front: the gap is ``nan`` and :meth:`Front.locate` says on which side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float
from numpy.typing import ArrayLike

#: Slack when comparing a cost or error with the front's ends (round-off of log10).
_SLACK = 1e-12


@dataclass(frozen=True)
class Front:
    """Piecewise-linear lower-left envelope, cost increasing, error decreasing.

    Attributes:
        log_cost: ``log10`` mean force evaluations of the envelope's vertices.
        error: their mean ``log10 |dE|`` (strictly decreasing).
    """

    log_cost: Float[np.ndarray, " K"]
    error: Float[np.ndarray, " K"]

    @classmethod
    def envelope(
        cls, log_cost: Sequence[float] | np.ndarray, error: Sequence[float] | np.ndarray
    ) -> Front:
        """The front of the points ``(log_cost[i], error[i])``.

        Raises:
            ValueError: for no points, mismatched lengths or non-finite values.
        """
        x = np.asarray(log_cost, dtype=np.float64).reshape(-1)
        y = np.asarray(error, dtype=np.float64).reshape(-1)
        if x.size == 0 or x.shape != y.shape or not np.isfinite([x, y]).all():
            raise ValueError(
                "Front.envelope: need one finite (log_cost, error) per sweep point; "
                f"got {x.size} costs and {y.size} errors."
            )
        keep, best = [], np.inf
        for i in np.lexsort((y, x)):  # by cost, then error
            if y[i] < best:
                keep.append(i)
                best = y[i]
        return cls(x[keep], y[keep])

    def locate(self, log_cost: float) -> str:
        """``inside`` the sweep's cost range, or ``cheaper``/``dearer`` than it."""
        if log_cost < self.log_cost[0] - _SLACK:
            return "cheaper"
        if log_cost > self.log_cost[-1] + _SLACK:
            return "dearer"
        return "inside"

    def error_at(self, log_cost: ArrayLike) -> np.ndarray:
        """The front's error at ``log_cost``; ``nan`` outside its cost range."""
        x = np.asarray(log_cost, dtype=np.float64)
        lo, hi = self.log_cost[0], self.log_cost[-1]
        inside = (x >= lo - _SLACK) & (x <= hi + _SLACK)
        y = np.interp(np.clip(x, lo, hi), self.log_cost, self.error)
        return np.where(inside, y, np.nan)

    def log_cost_at(self, error: ArrayLike) -> np.ndarray:
        """The front's ``log10`` cost at ``error``; ``nan`` outside its error range."""
        y = np.asarray(error, dtype=np.float64)
        lo, hi = self.error[-1], self.error[0]
        inside = (y >= lo - _SLACK) & (y <= hi + _SLACK)
        # np.interp needs increasing abscissae: the error decreases along the front.
        x = np.interp(-np.clip(y, lo, hi), -self.error, self.log_cost)
        return np.where(inside, x, np.nan)

    def gap(self, log_cost: ArrayLike, error: ArrayLike) -> np.ndarray:
        """Decades of error above the front at equal cost (``nan`` outside)."""
        return np.asarray(error, dtype=np.float64) - self.error_at(log_cost)

    def cost_factor(self, log_cost: ArrayLike, error: ArrayLike) -> np.ndarray:
        """Cost over the front's cost at equal error (``nan`` outside)."""
        return 10.0 ** (np.asarray(log_cost, np.float64) - self.log_cost_at(error))


def gaps_to_front(
    log_cost: Float[np.ndarray, "R K"],
    error: Float[np.ndarray, "R K"],
    members: Sequence[int] | np.ndarray,
) -> tuple[Float[np.ndarray, "R K"], Float[np.ndarray, "R K"]]:
    """Gap and cost factor of every point to the front of ``members``, per row.

    Each row ``r`` (the full sample, then bootstrap resamples) gets its own front,
    built from the points ``members`` of that row, so the intervals account for the
    front's own uncertainty.

    Returns:
        ``(gap, cost_factor)``, ``nan`` where a point lies outside its row's front.
    """
    gap = np.full_like(error, np.nan)
    factor = np.full_like(error, np.nan)
    for r in range(error.shape[0]):
        front = Front.envelope(log_cost[r, members], error[r, members])
        gap[r] = front.gap(log_cost[r], error[r])
        factor[r] = front.cost_factor(log_cost[r], error[r])
    return gap, factor


def bootstrap_weights(
    n_seeds: int, n_samples: int, rng: np.random.Generator
) -> Float[np.ndarray, "B S"]:
    """Resampling weights: row ``b`` counts how often each seed is drawn, / n_seeds.

    All methods share the rows, so the bootstrap is paired over seeds (the same
    systems for the policy and the sweep, as in the evaluation).
    """
    counts = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), n_samples)
    return counts / n_seeds


def percentile_interval(
    samples: np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """The percentile interval of the finite ``samples`` (``nan`` if none)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return np.nan, np.nan
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)
