"""Rollouts: the one autoregressive rollout engine, rollout metrics and the report.

``rollout(step_fn, initial, n_steps)`` serves surrogates, numerical solvers (through
:func:`as_window_stepper`) and hybrids alike; :mod:`physim.rollout.metrics` holds the
pure per-sample metric functions; :class:`RolloutReport` writes the evaluation (netCDF,
PNG figures, ``metrics.json`` and a rich table); :func:`hybrid_tradeoff` compares
hybrid surrogate/solver rollouts by accuracy and cost.
"""

from . import metrics
from ._engine import RolloutResult, as_window_stepper, rollout
from ._hybrid import (
    HybridRecord,
    HybridStepper,
    OnIndicator,
    Periodic,
    Trigger,
    hybrid_rollout,
)
from ._indicators import EnstrophyBudget, PDEResidual, SampleSpread
from ._report import RolloutReport
from ._solver_stepper import IntervalSolver
from ._tradeoff import (
    TradeoffPoint,
    hybrid_tradeoff,
    indicator_thresholds,
    plot_tradeoff,
    tradeoff_table,
)
from ._uncertainty import (
    estimated_correlation_time,
    sample_correlation,
    sample_rollouts,
    sample_spread,
    time_estimate_correlation,
)

__all__ = [
    "EnstrophyBudget",
    "HybridRecord",
    "HybridStepper",
    "IntervalSolver",
    "OnIndicator",
    "PDEResidual",
    "Periodic",
    "RolloutReport",
    "RolloutResult",
    "SampleSpread",
    "TradeoffPoint",
    "Trigger",
    "as_window_stepper",
    "estimated_correlation_time",
    "hybrid_rollout",
    "hybrid_tradeoff",
    "indicator_thresholds",
    "metrics",
    "plot_tradeoff",
    "rollout",
    "sample_correlation",
    "sample_rollouts",
    "sample_spread",
    "time_estimate_correlation",
    "tradeoff_table",
]
