"""Rollouts: the one autoregressive rollout engine, rollout metrics and the report.

``rollout(step_fn, initial, n_steps)`` serves surrogates, numerical solvers (through
:func:`as_window_stepper`) and hybrids alike; :mod:`physim.rollout.metrics` holds the
pure per-sample metric functions; :class:`RolloutReport` writes the evaluation (netCDF,
PNG figures, ``metrics.json`` and a rich table).
"""

from . import metrics
from ._engine import RolloutResult, as_window_stepper, rollout
from ._report import RolloutReport

__all__ = [
    "RolloutReport",
    "RolloutResult",
    "as_window_stepper",
    "metrics",
    "rollout",
]
