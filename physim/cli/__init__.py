"""Hydra entry points: ``train``, ``evaluate`` and ``generate`` (run via train.py and
scripts/). ``train`` and ``evaluate`` are imported on first use, so that ``generate``
does not load Lightning."""

from typing import TYPE_CHECKING, Any

from ._config import report_user_errors

__all__ = ["evaluate", "load_task", "report_user_errors", "train"]

if TYPE_CHECKING:
    from .evaluate import evaluate, load_task
    from .train import train


def __getattr__(name: str) -> Any:
    if name == "train":
        from .train import train

        return train
    if name in ("evaluate", "load_task"):
        from . import evaluate as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
