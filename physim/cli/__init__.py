"""Hydra entry points, one module each: ``physim.cli.train`` (train.py),
``physim.cli.evaluate`` (scripts/evaluate.py) and ``physim.cli.generate``
(scripts/generate.py); each has a ``main`` and a function of the same name that runs
a composed config. Nothing here imports Lightning until an entry point is used."""

from ._config import report_user_errors

__all__ = ["report_user_errors"]
