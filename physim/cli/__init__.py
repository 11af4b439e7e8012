"""Hydra entry points, one module each: ``physim.cli.train`` (train.py),
``physim.cli.evaluate`` (scripts/evaluate.py) and ``physim.cli.generate``
(scripts/generate.py); each has a ``main`` and a function of the same name that runs
a composed config. Nothing here imports Lightning until an entry point is used (the
callbacks below are imported on first use, PEP 562)."""

from typing import TYPE_CHECKING, Any

from ._config import report_user_errors

__all__ = ["LogProgress", "ModelCheckpoint", "progress_bar", "report_user_errors"]

if TYPE_CHECKING:
    from ._callbacks import LogProgress, ModelCheckpoint, progress_bar


def __getattr__(name: str) -> Any:
    if name in ("LogProgress", "ModelCheckpoint", "progress_bar"):
        from . import _callbacks

        return getattr(_callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
