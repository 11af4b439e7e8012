"""A hand-written integrator switch: the rule an integrator-choice agent must beat."""

from __future__ import annotations

import math

import numpy as np

from ._observations import FORECAST_INDEX


class ForecastSwitch:
    """IAS15 (``careful``) when an encounter is forecast, Hermite (``cheap``) otherwise.

    A :data:`~physim.nbody.Policy` for a :class:`~physim.nbody.Menu` environment with
    :class:`~physim.nbody.InvariantObservation`: it takes action ``careful`` when the
    two-body forecast (the shortest free-fall time expected over the observation's
    horizon) is below ``threshold_intervals`` intervals. Not learned: the threshold
    (0.9 intervals with a two-interval horizon) was picked by hand on seeds 0-19 while
    the features were designed (BENCHMARKS.md), so evaluate it on other seeds.

    Args:
        threshold_intervals: the forecast below which to take ``careful``.
        careful, cheap: the two action indices.
    """

    def __init__(
        self, threshold_intervals: float = 0.9, careful: int = 1, cheap: int = 0
    ) -> None:
        if not (math.isfinite(threshold_intervals) and threshold_intervals > 0):
            raise ValueError(
                f"threshold_intervals={threshold_intervals!r}: must be > 0."
            )
        self.log_threshold = math.log10(threshold_intervals)
        self.careful, self.cheap = int(careful), int(cheap)

    def __call__(self, obs: np.ndarray) -> int:
        return self.careful if obs[FORECAST_INDEX] < self.log_threshold else self.cheap
