"""Optimiser and LR-scheduler wiring shared by the tasks."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch


def configure_optimization(
    module: pl.LightningModule,
    optimizer: Callable[..., torch.optim.Optimizer],
    scheduler: Callable[..., Any] | None,
    interval: str,
    monitor: str | None = None,
) -> Any:
    """What ``configure_optimizers`` returns for partial optimiser/scheduler factories.

    A scheduler factory that takes ``total_steps`` (e.g. one-cycle) is given the
    trainer's estimate of the optimiser steps of the whole run.
    """
    opt = optimizer(params=module.parameters())
    if scheduler is None:
        return opt
    kwargs = {}
    if "total_steps" in inspect.signature(scheduler).parameters:
        kwargs["total_steps"] = max(1, int(module.trainer.estimated_stepping_batches))
    lr_scheduler: dict[str, Any] = {
        "scheduler": scheduler(optimizer=opt, **kwargs),
        "interval": interval,
    }
    if monitor is not None:
        lr_scheduler["monitor"] = monitor
    return {"optimizer": opt, "lr_scheduler": lr_scheduler}
