"""Rollout metrics of a validation or test stage, written once for every task.

Every trajectory counts: a rollout that diverges contributes, from the step it
diverged on, the persistence forecast's error or 1, whichever is larger
(:func:`physim.rollout.metrics.score_rollout`). So the monitored ``rollout_rel_l2``
cannot prefer a model because its failures left the average, and it is defined even
when every rollout fails. Finite-only means are logged beside it (``*_finite``).

Everything here is safe under DDP: states are fixed-shape sums that torchmetrics
all-reduces, and whether a metric is logged is decided from every rank's update count
(one all-reduce), so no rank skips a collective that another enters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from jaxtyping import Float
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, SumMetric

from physim.rollout import metrics

__all__ = [
    "EvaluationEpochHooks",
    "MeanCurve",
    "RolloutMetrics",
    "log_metrics",
    "metric_key",
]


def metric_key(stage: str, name: str) -> str:
    """The one place log names are made: ``"val/rollout_rel_l2"``."""
    return f"{stage}/{name}"


class MeanCurve(Metric):
    """Per-step mean of ``[B, T]`` values over samples, for the first ``num_steps``.

    Fixed-shape sum and count states (float64), so DDP ranks reduce them exactly
    whatever their number of samples. Steps no sample reached are NaN.
    """

    full_state_update = False

    def __init__(self, num_steps: int) -> None:
        super().__init__()
        self.num_steps = int(num_steps)
        zeros = torch.zeros(self.num_steps, dtype=torch.float64)
        self.add_state("total", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("count", default=zeros.clone(), dist_reduce_fx="sum")

    def update(self, values: Float[Tensor, "B T"]) -> None:
        steps = min(values.shape[1], self.num_steps)
        self.total[:steps] += values[:, :steps].to(self.total).sum(dim=0)
        self.count[:steps] += values.shape[0]

    def compute(self) -> Tensor:
        return self.total / self.count


class RolloutMetrics(nn.Module):
    """The rollout metrics of one stage (``val`` or ``test``).

    Logged as ``<stage>/<name>``:

    - ``rollout_rel_l2``: relative L2 error, mean over steps and every trajectory,
      diverged ones counted (the checkpoint metric); ``rollout_rel_l2_finite``: the
      same over the trajectories that stayed finite (NaN if none did);
    - ``rollout_rel_l2_full``: the FNO paper's metric, the relative L2 of each whole
      predicted trajectory averaged over trajectories
      (:func:`physim.rollout.metrics.trajectory_relative_l2`; not the per-step mean
      above); ``rollout_rel_l2_full_finite``;
    - ``rollout_corr_time``: per-trajectory correlation time, mean (a diverged
      trajectory's correlation counts as ``min(persistence, 0)`` from its divergence
      step, so its time ends there); ``rollout_corr_time_finite``;
    - ``rollout_nonfinite``: the number of trajectories that diverged;
    - with ``horizon``: ``rollout_hc_duration`` (and ``_finite``), the time within
      the first ``horizon`` time units with sample-mean correlation above the
      threshold (:func:`physim.rollout.metrics.highly_correlated_duration`).

    Args:
        correlation_threshold: for the correlation time and duration.
        output_interval: time between predicted frames.
        horizon: time window of the highly correlated duration (``None``: not logged).
    """

    def __init__(
        self,
        correlation_threshold: float = 0.8,
        output_interval: float = 1.0,
        horizon: float | None = None,
    ) -> None:
        super().__init__()
        self.correlation_threshold = float(correlation_threshold)
        self.output_interval = float(output_interval)
        self.horizon = horizon
        self.means = nn.ModuleDict(
            {
                name: MeanMetric()
                for name in (
                    "rollout_rel_l2",
                    "rollout_rel_l2_finite",
                    "rollout_rel_l2_full",
                    "rollout_rel_l2_full_finite",
                    "rollout_corr_time",
                    "rollout_corr_time_finite",
                )
            }
        )
        self.nonfinite = SumMetric()
        self.curves = nn.ModuleDict()
        if horizon is not None:
            steps = max(1, int(horizon / self.output_interval + 1e-9))
            self.curves.update({"all": MeanCurve(steps), "finite": MeanCurve(steps)})

    def update(self, scores: metrics.RolloutScores) -> None:
        """Add a batch of :func:`physim.rollout.metrics.score_rollout` scores."""
        finite = scores.finite
        rel_l2 = scores.relative_l2.mean(dim=1)
        corr_time = metrics.correlation_time(
            scores.correlation, self.correlation_threshold, self.output_interval
        )
        for name, values in [
            ("rollout_rel_l2", rel_l2),
            ("rollout_rel_l2_full", scores.full_relative_l2),
            ("rollout_corr_time", corr_time),
        ]:
            self.means[name].update(values)
            self.means[f"{name}_finite"].update(values[finite])
        self.nonfinite.update((~finite).sum().to(rel_l2.dtype))
        if self.curves:
            self.curves["all"].update(scores.correlation)
            self.curves["finite"].update(scores.correlation[finite])

    def _durations(self) -> dict[str, Tensor]:
        out = {}
        for key, suffix in [("all", ""), ("finite", "_finite")]:
            curve = self.curves[key].compute()
            out[f"rollout_hc_duration{suffix}"] = metrics.highly_correlated_duration(
                curve[None],
                self.output_interval,
                self.correlation_threshold,
                self.horizon,
            )
        return out

    def metric_objects(self) -> dict[str, Metric]:
        """Every torchmetrics object, by logged name (curves by their key)."""
        objects: dict[str, Metric] = dict(self.means.items())
        objects["rollout_nonfinite"] = self.nonfinite
        objects.update({f"curve_{k}": v for k, v in self.curves.items()})
        return objects

    def compute(self) -> dict[str, Tensor]:
        """Every logged value (call on all ranks: it synchronises)."""
        out = {name: metric.compute() for name, metric in self.means.items()}
        out["rollout_nonfinite"] = self.nonfinite.compute()
        if self.curves:
            out.update(self._durations())
        return out

    def reset(self) -> None:
        for metric in self.metric_objects().values():
            metric.reset()


def _updated_anywhere(module: pl.LightningModule, objects: list[Metric]) -> list[bool]:
    """Per metric, whether any rank updated it (one all-reduce under DDP)."""
    counts = torch.tensor(
        [float(m.update_count) for m in objects], device=module.device
    )
    trainer = module._trainer
    if trainer is not None and trainer.world_size > 1 and counts.numel():
        counts = trainer.strategy.reduce(counts, reduce_op="sum")
    return [bool(c > 0) for c in counts]


def log_metrics(
    module: pl.LightningModule,
    stage: str,
    named: dict[str, Metric],
    rollout: RolloutMetrics | None = None,
    prog_bar: tuple[str, ...] = ("rollout_rel_l2",),
) -> None:
    """Compute, log (``<stage>/<name>``) and reset ``named`` metrics and ``rollout``.

    A metric is logged when any rank updated it, and then every rank computes it (a
    collective), so DDP runs neither hang nor log different keys on different ranks.
    """
    objects = list(named.values())
    if rollout is not None:
        objects.append(rollout.means["rollout_rel_l2"])
    updated = _updated_anywhere(module, objects)
    values: dict[str, Any] = {
        name: metric.compute()
        for (name, metric), flag in zip(named.items(), updated, strict=False)
        if flag
    }
    if rollout is not None and updated[-1]:
        values.update(rollout.compute())
    for name, value in values.items():
        module.log(metric_key(stage, name), value, prog_bar=name in prog_bar)
    for metric in named.values():
        metric.reset()
    if rollout is not None:
        rollout.reset()


class EvaluationEpochHooks:
    """Lightning hooks of a task's validation and test: each step scores its batch
    (``_evaluate``, which a task may extend), each epoch starts with fresh metrics
    and ends by logging them (:func:`log_metrics`).

    Mixed into a LightningModule that has ``rollout_metrics`` (a ``ModuleDict`` of
    :class:`RolloutMetrics` by stage), the rollout members of
    :class:`physim.tasks.EvaluableTask` (``rollout_batch``, ``time_history``), names
    its other metrics per stage in :meth:`stage_metrics` and scores loader 0's
    windows in :meth:`evaluate_windows`; loader 1's trajectories are rolled out and
    scored here (:meth:`update_rollout_metrics`).
    """

    rollout_metrics: nn.ModuleDict
    time_history: int
    rollout_batch: Callable[[dict[str, Any]], tuple[Tensor, Tensor]]
    #: Per-step correlation ``(pred, target) -> [B, T]`` of the rollout scores
    #: (``None``: :func:`physim.rollout.metrics.pearson_correlation`).
    rollout_correlation: Callable[[Tensor, Tensor], Tensor] | None = None

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        """The metrics besides the rollout's logged for ``stage``, by name."""
        raise NotImplementedError

    def evaluate_windows(self, batch: dict[str, Tensor], stage: str) -> None:
        """Score a batch of loader 0 (one-step windows) into ``stage``'s metrics."""
        raise NotImplementedError

    def update_rollout_metrics(self, batch: dict[str, Tensor], stage: str) -> None:
        """Roll out a trajectory batch from its first ``time_history`` frames and add
        its scores (diverged trajectories counted) to ``stage``'s rollout metrics."""
        trajectory = batch["trajectory"]
        pred, first_nonfinite = self.rollout_batch(batch)
        t_in = self.time_history
        scores = metrics.score_rollout(
            pred,
            trajectory[:, t_in:],
            trajectory[:, t_in - 1],
            first_nonfinite,
            correlation=self.rollout_correlation,
        )
        self.rollout_metrics[stage].update(scores)

    def _evaluate(
        self, batch: dict[str, Tensor], stage: str, dataloader_idx: int
    ) -> None:
        """Loader 0: :meth:`evaluate_windows`; loader 1: the rollout metrics."""
        if dataloader_idx == 0:
            self.evaluate_windows(batch, stage)
        else:
            self.update_rollout_metrics(batch, stage)

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val", dataloader_idx)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "test", dataloader_idx)

    def _reset_epoch(self, stage: str) -> None:
        # Fresh states per epoch: also un-shares them from the parent process after
        # a CPU ddp_spawn, which pickles tensors into shared memory.
        for metric in self.stage_metrics(stage).values():
            metric.reset()
        self.rollout_metrics[stage].reset()

    def _log_epoch(self, stage: str) -> None:
        log_metrics(self, stage, self.stage_metrics(stage), self.rollout_metrics[stage])

    def on_validation_epoch_start(self) -> None:
        self._reset_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._reset_epoch("test")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
