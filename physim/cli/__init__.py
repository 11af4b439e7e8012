"""Hydra entry points: ``train`` and ``evaluate`` (scripts/ holds the others)."""

from ._config import report_user_errors
from .evaluate import evaluate, load_task
from .train import train

__all__ = ["evaluate", "load_task", "report_user_errors", "train"]
