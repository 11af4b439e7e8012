"""`TemporalStencilModel`: learned interpolation inside a finite-volume solver.

TSM (Sun, Yang, Yoo; ICML 2023) and its learned-interpolation baseline LI (Kochkov et
al. 2021) as one task: a network picks the flux-interpolation stencils of a
differentiable finite-volume Navier-Stokes solver and is trained by backpropagating a
velocity MSE through unrolled solver steps. TSM feeds the network per-cell HiPPO
memory of a prefix of past frames and bundles several steps per network call; LI is the
same task with one input frame, no encoder and no bundling (a config).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchmetrics import MeanMetric

from physim.rollout import metrics, rollout
from physim.solvers import FiniteVolumeNS2D, check_time_step

from ._evaluation import RolloutEvaluation
from ._optim import configure_optimization
from ._rollout_metrics import (
    EvaluationEpochHooks,
    RolloutMetrics,
    metric_key,
)

__all__ = ["SkippedUpdatesError", "TemporalStencilModel"]


class SkippedUpdatesError(FloatingPointError):
    """Too many training updates were skipped for non-finite losses or gradients."""


@dataclass
class _Carry:
    """What a rollout carries between solver steps: velocity, encoder state and the
    number of frames seen (the encoder's 1-based step index)."""

    velocity: Tensor
    state: Tensor | None
    index: int


class TemporalStencilModel(EvaluationEpochHooks, RolloutEvaluation, pl.LightningModule):
    """Learned stencils for a finite-volume solver, trained through unrolled steps.

    Per solver step ``v_{n+1} = solver.advance(v_n, dt, interpolation)``, where the
    interpolation's stencils come from ``net(features)``. Features are the current
    velocity (``encoder=None``: LI), or the per-cell state of ``encoder`` (HiPPO: TSM),
    built from the ``time_history`` prefix frames (``encoder(history)``) and updated
    with every new frame (``encoder.update``). One ``net`` call serves the next
    ``net.bundle`` steps (temporal bundling).

    Training: the history is the prefix, the future the next ``T_f`` frames (the data
    module's ``time_future``), and the loss the MSE of the unrolled velocities against
    them, backpropagated through the solver. With ``gradient_checkpointing`` each
    bundle of steps is recomputed in the backward pass instead of stored, so memory
    grows with the bundles' inputs only. A non-finite loss or gradient on *any* rank
    skips the update on every rank (as in TSM's code; the parameters and optimiser
    state stay as they were; counted in ``train/skipped_updates``). Every rank still
    runs backward, so under DDP no rank waits for another in the gradient
    all-reduce, and the skip decision itself is all-reduced. Once more than
    ``max_skipped_fraction`` of ``max(updates so far, 20)`` were skipped the run
    stops with :class:`SkippedUpdatesError` (all ranks at once).

    Evaluation: loader 0 gives the unrolled loss, loader 1 rollouts from the first
    ``time_history`` frames of each trajectory through :func:`physim.rollout.rollout`,
    scored by :class:`physim.tasks.RolloutMetrics` with the vorticity correlation
    (relative L2 with diverged trajectories counted, non-finite count, and the highly
    correlated duration ``rollout_hc_duration``: time in the first ``horizon`` units
    with sample-mean correlation above ``correlation_threshold``; each also
    ``*_finite`` over the trajectories that stayed finite).

    Args:
        net: maps features ``[B, F, N, N]`` to a list of ``bundle`` face
            interpolations (e.g. :class:`physim.models.LearnedInterpolation`).
        solver: the finite-volume solver at the data's resolution.
        optimizer: partial optimiser.
        scheduler: partial LR scheduler (given ``total_steps`` when it takes one).
        encoder: temporal encoder (``forward(history) -> state``, ``update(state,
            frame, index)``, ``features(state)``), or ``None`` for LI.
        dt: solver step, equal to the data's frame interval.
        time_history: prefix frames (1 without an encoder).
        max_velocity: velocity scale of the flow for the stability check of ``dt``.
        gradient_checkpointing: recompute bundles in the backward pass.
        correlation_threshold: for the highly correlated duration.
        horizon: time window of the highly correlated duration.
        scheduler_interval: ``"step"`` or ``"epoch"``.
        max_skipped_fraction: the run fails once more than this fraction of
            ``max(updates so far, 20)`` was skipped (1 disables the check).

    Raises:
        ValueError: unstable ``dt``, or ``time_history > 1`` without an encoder.
    """

    # Rollouts are scored by the vorticity correlation of the staggered velocities.
    rollout_correlation = staticmethod(metrics.vorticity_correlation)

    def __init__(
        self,
        net: nn.Module,
        solver: FiniteVolumeNS2D,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        encoder: nn.Module | None = None,
        *,
        dt: float,
        time_history: int,
        max_velocity: float = 7.0,
        gradient_checkpointing: bool = True,
        correlation_threshold: float = 0.8,
        horizon: float = 20.0,
        scheduler_interval: str = "step",
        max_skipped_fraction: float = 0.1,
    ) -> None:
        super().__init__()
        check_time_step(dt, max_velocity, solver.grid_spacing)
        if not 0 <= max_skipped_fraction <= 1:
            raise ValueError(
                "TemporalStencilModel: max_skipped_fraction must lie in [0, 1], got "
                f"{max_skipped_fraction!r}."
            )
        if encoder is None and time_history != 1:
            raise ValueError(
                f"TemporalStencilModel: time_history={time_history} but without an "
                "encoder the network sees only the latest frame; set time_history=1 "
                "(LI) or give an encoder (HiPPO, for TSM)."
            )
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                "TemporalStencilModel: scheduler_interval must be 'epoch' or 'step', "
                f"got {scheduler_interval!r}."
            )
        self.save_hyperparameters(
            ignore=["net", "solver", "optimizer", "scheduler", "encoder"], logger=False
        )
        self.net = net
        self.encoder = encoder
        self.solver = solver
        self.bundle = int(getattr(net, "bundle", 1))
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.skipped_updates = 0
        self.attempted_updates = 0
        self.losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.rollout_metrics = nn.ModuleDict(
            {
                stage: RolloutMetrics(correlation_threshold, dt, horizon)
                for stage in ("val", "test")
            }
        )
        self.run_config: dict[str, Any] | None = None

    # ------------------------------------------------------------------ stepping
    def _solver_on(self, device: torch.device) -> FiniteVolumeNS2D:
        self.solver = self.solver.to(device)
        return self.solver

    def start(self, history: Float[Tensor, "B T 2 N N"]) -> _Carry:
        """The carry after the prefix: last frame, encoder state, frame count."""
        n = self.solver.num_points
        if history.ndim != 5 or tuple(history.shape[2:]) != (2, n, n):
            raise ValueError(
                f"TemporalStencilModel: expected velocities [B, T, 2, {n}, {n}] for "
                f"the solver's {n}^2 grid, got shape {tuple(history.shape)}; set the "
                "solver's num_points to the data's store_points."
            )
        state = None if self.encoder is None else self.encoder(history)
        return _Carry(history[:, -1], state, history.shape[1])

    def _bundle(
        self, velocity: Tensor, state: Tensor | None, index: int, num_steps: int
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One network call and ``num_steps <= bundle`` solver steps."""
        solver = self._solver_on(velocity.device)
        features = velocity if state is None else self.encoder.features(state)
        interpolations = self.net(features)
        frames = []
        for k in range(num_steps):
            velocity = solver.advance(velocity, self.hparams.dt, interpolations[k])
            if state is not None:
                state = self.encoder.update(state, velocity, index + k + 1)
            frames.append(velocity)
        return torch.stack(frames, dim=1), velocity, state

    def advance(self, carry: _Carry, num_steps: int) -> Float[Tensor, "B K 2 N N"]:
        """Predict the next ``num_steps`` frames, updating ``carry`` in place."""
        chunks = []
        for start in range(0, num_steps, self.bundle):
            count = min(self.bundle, num_steps - start)
            args = (carry.velocity, carry.state, carry.index, count)
            if self.training and self.hparams.gradient_checkpointing:
                out = checkpoint(self._bundle, *args, use_reentrant=False)
            else:
                out = self._bundle(*args)
            frames, carry.velocity, carry.state = out
            carry.index += count
            chunks.append(frames)
        return torch.cat(chunks, dim=1)

    def forward(
        self, history: Float[Tensor, "B T 2 N N"], num_steps: int
    ) -> Float[Tensor, "B K 2 N N"]:
        """The ``num_steps`` frames after ``history`` (its last ``time_history``)."""
        return self.advance(
            self.start(history[:, -self.hparams.time_history :]), num_steps
        )

    def rollout(
        self, trajectory: Float[Tensor, "B T 2 N N"], params: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Predict ``trajectory[:, T_in:]`` from its first ``T_in`` frames.

        Runs :func:`physim.rollout.rollout` with a window stepper that carries the
        velocity and encoder state between calls (one call per bundle), so the
        encoder sees every predicted frame, not only the engine's window.

        Returns:
            The prediction and, per trajectory, its first non-finite step (-1: none).
        """
        t_in = self.hparams.time_history
        carry = self.start(trajectory[:, :t_in])

        def step_fn(window: Tensor) -> Tensor:
            # The window's last frame is carry.velocity; the carry holds the rest.
            return self.advance(carry, self.bundle)

        result = rollout(step_fn, trajectory[:, :t_in], trajectory.shape[1] - t_in)
        return result.pred, result.first_nonfinite

    # ------------------------------------------------------------------ steps
    def model_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Unrolled MSE loss and prediction for a window batch."""
        future = batch["future"]
        pred = self(batch["history"], future.shape[1])
        return nn.functional.mse_loss(pred, future), pred

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The unrolled loss, returned even when non-finite.

        Returning ``None`` (Lightning's way to skip a step) would skip backward on
        this rank only, and under DDP the other ranks would wait for it forever in
        the gradient all-reduce. A non-finite loss gives non-finite gradients, which
        :meth:`on_before_optimizer_step` drops on every rank.
        """
        loss, _ = self.model_step(batch)
        if torch.isfinite(loss):
            self.log(
                metric_key("train", "loss"),
                loss,
                on_step=True,
                on_epoch=True,
                prog_bar=True,
                batch_size=batch["history"].shape[0],
            )
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Drop every gradient when one is non-finite on any rank.

        Optimisers skip parameters whose ``grad`` is ``None`` (no moment update, no
        weight decay), and gradient clipping, which runs after this hook, too. The
        decision is all-reduced, so every rank skips the same updates.
        """
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        local_bad = bool(grads) and not all(torch.isfinite(g).all() for g in grads)
        trainer = self._trainer
        skip = (
            trainer.strategy.reduce_boolean_decision(local_bad, all=False)
            if trainer is not None
            else local_bad
        )
        self.attempted_updates += 1
        if not skip:
            return
        for p in self.parameters():
            p.grad = None
        self.skipped_updates += 1
        if trainer is not None:
            self.log(
                metric_key("train", "skipped_updates"),
                float(self.skipped_updates),
                on_step=True,
            )
        allowed = self.hparams.max_skipped_fraction * max(self.attempted_updates, 20)
        if self.skipped_updates > allowed:
            raise SkippedUpdatesError(
                f"TemporalStencilModel: {self.skipped_updates} of "
                f"{self.attempted_updates} updates were skipped for non-finite losses "
                f"or gradients (more than max_skipped_fraction="
                f"{self.hparams.max_skipped_fraction} of max(updates, 20)). The "
                "unrolled solver is unstable: lower the learning rate or the unroll "
                "length, check dt against the Courant limit, or raise "
                "model.max_skipped_fraction."
            )

    def evaluate_windows(self, batch: dict[str, Tensor], stage: str) -> None:
        """Unrolled loss of a window batch (validation and test loader 0)."""
        loss, pred = self.model_step(batch)
        self.losses[stage].update(loss, weight=pred.shape[0])

    def stage_metrics(self, stage: str) -> dict[str, MeanMetric]:
        return {"loss": self.losses[stage]}

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        return configure_optimization(
            self,
            self.optimizer_factory,
            self.scheduler_factory,
            self.hparams.scheduler_interval,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The resolved run configuration, so that `evaluate` can rebuild the solver,
        # the network and the encoder from the checkpoint alone.
        if self.run_config is not None:
            checkpoint["physim_config"] = self.run_config
