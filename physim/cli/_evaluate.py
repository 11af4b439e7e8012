"""Rollout evaluation of a trained task on a data split, written as a report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from physim.data import (
    TrajectoryDataModule,
    TrajectoryDataset,
    TrajectoryFile,
    track,
)
from physim.rollout import RolloutReport, metrics
from physim.tasks import DataNames, EvaluableTask, check_evaluable


def data_names(file: TrajectoryFile, parameter_names: Sequence[str]) -> DataNames:
    """What a task may be conditioned on in ``file`` (with the data module's
    ``parameter_names``), for :meth:`physim.tasks.EvaluableTask.set_data_names`."""
    return DataNames(
        tuple(parameter_names), tuple(file.constant_names), tuple(file.scalar_names)
    )


@torch.inference_mode()
def write_rollout_report(
    task: EvaluableTask,
    datamodule: TrajectoryDataModule,
    out_dir: str | Path,
    *,
    split: str = "test",
    sample: int = 0,
    plot_times: int = 4,
    batch_size: int | None = None,
) -> dict[str, float]:
    """Roll ``task`` out over every trajectory of ``split`` and write the report.

    Each trajectory's first ``time_history`` frames are the initial window; the rest are
    predicted autoregressively and compared with the truth and with the persistence
    baseline (the last input frame repeated). Writes ``rollout.nc``, ``metrics.json``
    and PNG figures to ``out_dir``, prints the metrics table, and returns the summary.

    Raises:
        TypeError: ``task`` lacks a member of :class:`physim.tasks.EvaluableTask`
            (the message names it).
    """
    datamodule.setup("test")
    return write_trajectory_report(
        task,
        datamodule.rollout_dataset(split),
        datamodule.files[split],
        out_dir,
        time_stride=datamodule.time_stride,
        parameter_names=datamodule.parameter_names,
        batch_size=batch_size or datamodule.eval_batch_size,
        attrs={"split": split},
        sample=sample,
        plot_times=plot_times,
    )


def rollout_seeded(
    task: EvaluableTask, batch: dict[str, Any], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``task.rollout_batch(batch)`` with torch's global generators seeded by ``seed``
    and restored afterwards: a stochastic task (PDE-Refiner's sampling noise) gives
    the same report at the end of training and from ``scripts/evaluate.py``, whatever
    was drawn before."""
    devices = [task.device] if task.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return task.rollout_batch(batch)


@torch.inference_mode()
def write_trajectory_report(
    task: EvaluableTask,
    dataset: TrajectoryDataset,
    file: TrajectoryFile,
    out_dir: str | Path,
    *,
    time_stride: int,
    parameter_names: Sequence[str],
    batch_size: int,
    attrs: dict[str, Any],
    sample: int = 0,
    plot_times: int = 4,
) -> dict[str, float]:
    """:func:`write_rollout_report` on the trajectories of ``dataset`` (from ``file``,
    every ``time_stride``-th frame), whatever made them (a data split, a solver run).

    Raises:
        TypeError: ``task`` lacks a member of :class:`physim.tasks.EvaluableTask`
            (the message names it).
    """
    check_evaluable(task, "The rollout report")
    task.eval()
    task.set_data_names(data_names(file, parameter_names))
    loader = DataLoader(dataset, batch_size=batch_size)
    t_in = task.time_history
    preds, targets, baselines, first_nonfinite = [], [], [], []
    batches = track(loader, description=f"Rollout ({attrs.get('split', '')})")
    for index, batch in enumerate(batches):
        batch = {
            k: v.to(task.device) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()
        }
        trajectory = batch["trajectory"]
        pred, nonfinite = rollout_seeded(task, batch, seed=index)
        preds.append(pred.cpu())
        targets.append(trajectory[:, t_in:].cpu())
        baselines.append(
            metrics.persistence_baseline(trajectory[:, t_in - 1], pred.shape[1]).cpu()
        )
        first_nonfinite.append(nonfinite.cpu())
    frames = slice(t_in * time_stride, None, time_stride)
    steps = preds[0].shape[1]
    times = file.times[frames][:steps]
    # Trajectories with their own times or grids keep them in the report.
    varying = getattr(file, "varying_coordinates", ())
    rows = dataset.trajectories
    sample_times = (
        np.stack([file.times_of(i)[frames][:steps] for i in rows])
        if "time" in varying
        else None
    )
    sample_coords = {
        d: np.stack([file.coords_of(i)[d] for i in rows])
        for d in varying
        if d != "time"
    }
    report = RolloutReport(
        torch.cat(preds),
        torch.cat(targets),
        times=times,
        coords=file.coords,
        channel_names=file.channel_names,
        first_nonfinite=torch.cat(first_nonfinite),
        baseline=torch.cat(baselines),
        correlation_threshold=task.correlation_threshold,
        attrs={"dataset": str(file.path), **attrs, "time_history": t_in},
        sample_times=sample_times,
        sample_coords=sample_coords,
    )
    report.write(out_dir, sample=sample, n_times=plot_times)
    report.print_table()
    return report.metrics()
