"""`AutoregressiveSurrogate`: one-step (or unrolled) training of any backbone."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchmetrics import MeanMetric

from physim.rollout import metrics, rollout
from physim.solvers import spectral_resample

from ._evaluation import DataNames, RolloutEvaluation
from ._losses import check_finite_loss
from ._optim import configure_optimization
from ._rollout_metrics import (
    EvaluationEpochHooks,
    RolloutMetrics,
    metric_key,
)

STAGES = ("train", "val", "test")
ONE_STEP_METRICS = ("loss", "rel_l2")


class AutoregressiveSurrogate(
    EvaluationEpochHooks, RolloutEvaluation, pl.LightningModule
):
    """A surrogate ``history [B, T_in, C, *S] -> next frames [B, T_out, C, *S]``.

    The backbone sees the ``T_in`` normalised history frames stacked as channels and
    returns ``T_out * C`` channels: either the normalised next frames, or (``residual``)
    the change from the last history frame scaled by the one-step difference std.
    Statistics come from the data module at ``fit`` and are stored as buffers, so a
    checkpoint carries its own normalisation.

    Training is one-step by default. With ``unroll_steps > 0`` in the data module, each
    sample has ``1 + unroll_steps`` future chunks: ``pushforward=True`` runs the first
    chunks without gradient and trains on the last (Brandstetter et al. 2022);
    ``pushforward=False`` backpropagates through the whole unroll (BPTT), the loss
    being the mean (``unroll_reduction="mean"``) or the sum (``"sum"``, the FNO
    scripts') of the per-call losses; ``gradient_checkpointing`` then recomputes each
    call in the backward pass instead of storing its activations, so memory grows with
    the unroll's inputs only (a 40-step unroll of the FNO paper fits).

    Validation/test loader 0 is one-step (loss, relative L2); loader 1 is a rollout from
    the first ``T_in`` frames of each trajectory over the rest, scored by
    :class:`physim.tasks.RolloutMetrics`: relative L2 averaged over steps and *every*
    trajectory (a diverged one counts, from its divergence step, the persistence
    error or 1, whichever is larger; ``val/rollout_rel_l2`` picks the best
    checkpoint), correlation time, the count of diverged rollouts, and the
    finite-only means (``*_finite``).

    Args:
        net: backbone ``(B, T_in*C, *S) -> (B, T_out*C, *S)``.
        optimizer: partial optimiser, called with the parameters.
        scheduler: partial LR scheduler, called with the optimiser (and ``total_steps``
            when it takes one, e.g. ``OneCycleLR``).
        loss: loss on normalised tensors (default: MSE).
        num_channels: field channels C.
        time_history: input frames T_in.
        time_future: output frames T_out per call.
        residual: predict the (scaled) change from the last frame.
        pushforward: for unrolled samples, gradient through the last call only.
        input_noise: std of Gaussian noise added to the training history, relative to
            the field std (Sanchez-Gonzalez et al. 2020). With ``residual`` the target
            is measured from the noisy last frame, so the model learns to undo input
            errors, as it must in a rollout. 0 disables it; it never applies in
            evaluation.
        train_points: train on windows spectrally resampled to this many points per
            axis (e.g. 32 for 64^2 data: 4x cheaper steps); validation, test and
            rollouts stay at the data's resolution. Only for resolution-independent
            backbones such as FNO. ``None`` trains at the data's resolution.
        output_interval: physical time per model step (the unit of correlation
            times). ``None`` (the configs' default) takes the data module's
            (frame interval x ``time_stride``) at set-up; a number must agree with
            it, so the logged times and the rollout report share their unit.
        correlation_threshold: for the correlation time.
        scheduler_interval: ``"epoch"`` or ``"step"``.
        conditioning: names of per-trajectory data parameters (e.g. ``["L", "dt"]``)
            given to the backbone as ``net(x, cond)``, ``cond [B, P]`` normalised with
            the training statistics. The backbone must accept them (``cond_dim = P``).
        normalize: scale inputs and outputs by the training statistics. ``False``
            feeds the physical fields as they are and reads the output as the
            physical frame (or, with ``residual``, the physical change): the FNO
            scripts' setting.
        unroll_reduction: ``"mean"`` or ``"sum"`` of the per-call losses of an
            unrolled (BPTT) sample.
        gradient_checkpointing: recompute each unrolled call in the backward pass.
        conditioning_fields: names of the data's constant fields (batches'
            ``constants``) and time-varying scalars (``scalars``) given to the
            backbone as extra input channels after the history, normalised with the
            training statistics: one channel per constant field, ``time_history``
            per scalar (its values at the history frames, uniform in space). They
            are never predicted; the backbone's ``in_channels`` is
            ``time_history * num_channels`` plus those channels.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        *,
        num_channels: int,
        time_history: int,
        time_future: int = 1,
        residual: bool = True,
        pushforward: bool = True,
        input_noise: float = 0.0,
        train_points: int | None = None,
        output_interval: float | None = None,
        correlation_threshold: float = 0.8,
        scheduler_interval: str = "epoch",
        conditioning: Sequence[str] | None = None,
        normalize: bool = True,
        unroll_reduction: str = "mean",
        gradient_checkpointing: bool = False,
        conditioning_fields: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        conditioning = [str(name) for name in conditioning or ()]
        conditioning_fields = [str(name) for name in conditioning_fields or ()]
        if unroll_reduction not in ("mean", "sum"):
            raise ValueError(
                f"unroll_reduction must be 'mean' or 'sum', got {unroll_reduction!r}."
            )
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                "scheduler_interval must be 'epoch' or 'step', got "
                f"{scheduler_interval!r}."
            )
        self.save_hyperparameters(
            ignore=["net", "optimizer", "scheduler", "loss"], logger=False
        )
        # Lightning collects the arguments from every subclass's frame too, where
        # ``conditioning`` may still be ``None``: store the normalised list.
        self.hparams["conditioning"] = conditioning
        self.hparams["conditioning_fields"] = conditioning_fields
        self._init_conditioning_fields(conditioning_fields)
        self.check_backbone(net)
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_fn = loss if loss is not None else nn.MSELoss()
        self.register_buffer("field_mean", torch.zeros(num_channels))
        self.register_buffer("field_std", torch.ones(num_channels))
        self.register_buffer("delta_std", torch.ones(num_channels))
        self.register_buffer("cond_mean", torch.zeros(len(conditioning)))
        self.register_buffer("cond_std", torch.ones(len(conditioning)))
        # Columns of the data's per-trajectory parameters, set from the data module.
        self.cond_columns: list[int] | None = None
        # One-step means over samples, per stage (NaN stays NaN: never dropped);
        # rollout metrics per stage.
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": MeanMetric(nan_strategy="disable")
                for stage in ("val", "test")
                for name in ONE_STEP_METRICS
            }
        )
        self.rollout_metrics = nn.ModuleDict(
            {
                stage: RolloutMetrics(
                    correlation_threshold,
                    1.0 if output_interval is None else output_interval,
                )
                for stage in ("val", "test")
            }
        )
        self.run_config: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    def check_backbone(self, net: nn.Module) -> None:
        """Raise ``ValueError`` unless ``net`` takes one value per conditioning name."""
        conditioning = self.hparams.conditioning
        cond_dim = getattr(net, "cond_dim", 0)
        if conditioning and cond_dim != len(conditioning):
            raise ValueError(
                f"conditioning={conditioning} gives {len(conditioning)} value(s) per "
                f"sample, but the backbone {type(net).__name__} takes cond_dim="
                f"{cond_dim}; set the backbone's cond_dim to {len(conditioning)}."
            )

    def setup(self, stage: str) -> None:
        datamodule = (
            getattr(self.trainer, "datamodule", None) if self._trainer else None
        )
        stats = getattr(datamodule, "statistics", None)
        if stage == "fit" and stats:
            self.set_statistics(stats)
        if self.hparams.conditioning and datamodule is not None:
            self.set_parameter_names(datamodule.parameter_names)
        if self.hparams.get("conditioning_fields") and datamodule is not None:
            self.set_field_names(datamodule.constant_names, datamodule.scalar_names)
        data_interval = getattr(datamodule, "output_interval", None)
        if data_interval is not None:
            self.set_output_interval(data_interval)

    @property
    def output_interval(self) -> float:
        """Physical time per model step, the unit of the correlation times."""
        return self.rollout_metrics["test"].output_interval

    def set_output_interval(self, data_interval: float) -> None:
        """Use the data's time per model step; raise ``ValueError`` if the
        configured ``output_interval`` says otherwise."""
        given = self.hparams.output_interval
        if given is not None and not math.isclose(given, data_interval, rel_tol=1e-6):
            raise ValueError(
                f"model.output_interval={given:g}, but the data's model steps are "
                f"{data_interval:g} apart (frame interval x data.time_stride); "
                "correlation times would be in the wrong unit. Leave "
                "model.output_interval unset (null) to take the data's, or set it to "
                f"{data_interval:g}."
            )
        for stage_metrics in self.rollout_metrics.values():
            stage_metrics.output_interval = float(data_interval)

    def set_parameter_names(self, names: Sequence[str]) -> None:
        """Locate the conditioning parameters among the data's ``params`` columns."""
        missing = [n for n in self.hparams.conditioning if n not in names]
        if missing:
            raise ValueError(
                f"model.conditioning names {missing}, but the data's per-trajectory "
                f"parameters are {list(names)}; condition on those or none."
            )
        self.cond_columns = [list(names).index(n) for n in self.hparams.conditioning]

    def set_data_names(self, names: DataNames) -> None:
        """Locate ``conditioning`` among the data's per-trajectory parameters and
        ``conditioning_fields`` among its constant fields and scalars (each only when
        the model has them; :class:`physim.tasks.EvaluableTask`)."""
        if self.hparams.conditioning:
            self.set_parameter_names(names.parameter_names)
        if self.hparams.get("conditioning_fields"):
            self.set_field_names(names.constant_names, names.scalar_names)

    def set_statistics(self, stats: dict[str, Any]) -> None:
        """Copy per-channel ``mean``, ``std`` and ``delta_std`` into the buffers.

        With ``normalize=False`` the buffers keep their identity values (mean 0,
        std 1), so the fields pass through unscaled; only the shapes are checked.
        """
        for buffer, key in [
            (self.field_mean, "mean"),
            (self.field_std, "std"),
            (self.delta_std, "delta_std"),
        ]:
            value = torch.as_tensor(stats[key], dtype=buffer.dtype)
            if value.shape != buffer.shape:
                raise ValueError(
                    f"Statistics '{key}' have shape {tuple(value.shape)} but the task "
                    f"has num_channels={buffer.numel()}; set model.num_channels to the "
                    "data's."
                )
            if not self.hparams.normalize:
                continue
            if key != "mean":  # a channel that never varies (e.g. a mask): unit scale
                value = torch.where(value > 0, value, torch.ones_like(value))
            buffer.copy_(value)
        for i, name in enumerate(self.hparams.conditioning):
            moments = stats.get("parameters", {}).get(name)
            if moments is None:
                raise ValueError(
                    f"The statistics hold no moments of the conditioning parameter "
                    f"{name!r}; recompute them (physim.data.compute_statistics)."
                )
            self.cond_mean[i] = moments["mean"]
            self.cond_std[i] = max(moments["std"], 1e-12)
        self._set_field_statistics(stats)

    def condition(self, params: Tensor | None) -> Tensor | None:
        """Normalised conditioning ``[B, P]`` from a batch's ``params``, or ``None``."""
        if not self.hparams.conditioning:
            return None
        if params is None or self.cond_columns is None:
            raise ValueError(
                f"The model is conditioned on {self.hparams.conditioning}, but no "
                "per-trajectory parameters came with the batch; use data that store "
                "them (or set model.conditioning=null)."
            )
        cond = params[:, self.cond_columns].to(self.cond_mean.dtype)
        return (cond - self.cond_mean) / self.cond_std

    def _per_channel(self, buffer: Tensor, like: Tensor) -> Tensor:
        return buffer.view(1, 1, -1, *([1] * (like.ndim - 3))).to(like.dtype)

    # ------------------------------------------------------------------ prediction
    def encode_history(self, history: Tensor, fields: Tensor | None = None) -> Tensor:
        """Physical history ``[B, T_in, C, *S]`` -> normalised ``[B, T_in*C, *S]``,
        followed by the normalised conditioning ``fields [B, F, *S]`` if given."""
        b, t_in, c, *space = history.shape
        if t_in != self.hparams.time_history or c != self.hparams.num_channels:
            raise ValueError(
                f"History has {t_in} frames x {c} channels; the model expects "
                f"time_history={self.hparams.time_history} x "
                f"num_channels={self.hparams.num_channels}."
            )
        x = (history - self._per_channel(self.field_mean, history)) / self._per_channel(
            self.field_std, history
        )
        x = x.reshape(b, t_in * c, *space)
        return x if fields is None else torch.cat([x, fields.to(x.dtype)], dim=1)

    def forward_normalized(
        self,
        history: Tensor,
        params: Tensor | None = None,
        *,
        fields: Tensor | None = None,
    ) -> Tensor:
        """Backbone output for a physical history, in normalised target units
        (``fields``: see :meth:`conditioning_inputs`)."""
        x = self.encode_history(history, fields)
        cond = self.condition(params)
        out = self.net(x) if cond is None else self.net(x, cond)
        b, _, c, *space = history.shape
        return out.reshape(b, self.hparams.time_future, c, *space)

    def decode(self, out: Tensor, history: Tensor) -> Tensor:
        """Normalised backbone output -> physical next frames."""
        if self.hparams.residual:
            return history[:, -1:] + out * self._per_channel(self.delta_std, out)
        return out * self._per_channel(self.field_std, out) + self._per_channel(
            self.field_mean, out
        )

    def encode_target(self, future: Tensor, history: Tensor) -> Tensor:
        """Physical future frames -> normalised training target."""
        if self.hparams.residual:
            return (future - history[:, -1:]) / self._per_channel(
                self.delta_std, future
            )
        return (
            future - self._per_channel(self.field_mean, future)
        ) / self._per_channel(self.field_std, future)

    def predict_next(
        self,
        history: Tensor,
        params: Tensor | None = None,
        *,
        fields: Tensor | None = None,
    ) -> Tensor:
        """Physical history ``[B, T_in, C, *S]`` -> next frames ``[B, T_out, ...]``.

        ``params [B, P]``: the trajectories' per-trajectory parameters (needed when the
        model is conditioned on them); ``fields [B, F, *S]``: the normalised
        conditioning fields of this window (:meth:`conditioning_inputs`).
        """
        out = self.forward_normalized(history, params, **_given(fields))
        return self.decode(out, history)

    def forward(self, history: Tensor, params: Tensor | None = None) -> Tensor:
        return self.predict_next(history, params)

    # ------------------------------------------------------------------ steps
    def model_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Loss, prediction and target (physical) for a window batch."""
        window, future = batch["history"], batch["future"]
        params = batch.get("params")
        inputs = self.conditioning_batch(batch)
        if self.training and self.hparams.train_points:
            window, future = (
                self._resample(x, self.hparams.train_points) for x in (window, future)
            )
            inputs = self._resample_inputs(inputs, self.hparams.train_points)
        offset = 0  # frames the window has advanced (for the scalars)
        if self.training and self.hparams.input_noise > 0:
            std = self.hparams.input_noise * self._per_channel(self.field_std, window)
            window = window + std * torch.randn_like(window)
        chunks = future.split(self.hparams.time_future, dim=1)
        if self.hparams.pushforward and len(chunks) > 1:
            with torch.no_grad():
                for chunk in chunks[:-1]:
                    fields = self._fields(inputs, offset, window)
                    window = self._slide(
                        window, self.predict_next(window, params, **fields)
                    )
                    offset += chunk.shape[1]
            chunks = chunks[-1:]
        loss = 0.0
        preds = []
        recompute = (
            self.training
            and self.hparams.gradient_checkpointing
            and torch.is_grad_enabled()
        )
        for chunk in chunks:
            fields = self._fields(inputs, offset, window)
            if recompute:
                chunk_loss, pred = checkpoint(
                    self.step_loss, window, chunk, params, use_reentrant=False, **fields
                )
            else:
                chunk_loss, pred = self.step_loss(window, chunk, params, **fields)
            loss = loss + chunk_loss
            preds.append(pred)
            window = self._slide(window, pred)
            offset += chunk.shape[1]
        if self.hparams.unroll_reduction == "mean":
            loss = loss / len(chunks)
        return loss, torch.cat(preds, dim=1), torch.cat(chunks, dim=1)

    def step_loss(
        self,
        history: Tensor,
        future: Tensor,
        params: Tensor | None = None,
        *,
        fields: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Training loss of one call on ``history`` and its physical prediction."""
        out = self.forward_normalized(history, params, **_given(fields))
        loss = self.loss_fn(out, self.encode_target(future, history))
        return loss, self.decode(out, history)

    @staticmethod
    def _resample(frames: Tensor, num_points: int) -> Tensor:
        b, t = frames.shape[:2]
        resampled = spectral_resample(frames.flatten(0, 1), num_points)
        return resampled.unflatten(0, (b, t))

    @staticmethod
    def _slide(window: Tensor, new: Tensor) -> Tensor:
        return torch.cat([window, new], dim=1)[:, -window.shape[1] :]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _, _ = self.model_step(batch)
        check_finite_loss(loss, self.global_step, batch_idx)
        self.log(
            metric_key("train", "loss"),
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch["history"].shape[0],
        )
        return loss

    def rollout(
        self,
        trajectory: Tensor,
        params: Tensor | None = None,
        *,
        constants: Tensor | None = None,
        scalars: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Predict ``trajectory[:, T_in:]`` from its first ``T_in`` frames.

        ``constants [B, K, *S]`` and ``scalars [B, T, S]`` (the trajectory batch's) are
        needed when the model has ``conditioning_fields``.

        Returns the prediction and, per trajectory, the first step that went non-finite
        (-1 when none).
        """
        t_in = self.hparams.time_history
        inputs = {"constants": constants, "scalars": scalars}
        offset = [0]

        def step(window: Tensor) -> Tensor:
            fields = self._fields(inputs, offset[0], window)
            offset[0] += self.hparams.time_future
            return self.predict_next(window, params, **fields)

        result = rollout(step, trajectory[:, :t_in], trajectory.shape[1] - t_in)
        return result.pred, result.first_nonfinite

    def rollout_batch(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """:meth:`rollout` of a trajectory batch, with its ``params`` and (for a model
        with ``conditioning_fields``) ``constants``/``scalars``
        (:class:`physim.tasks.EvaluableTask`)."""
        return self.rollout(
            batch["trajectory"], batch.get("params"), **self.conditioning_batch(batch)
        )

    def evaluate_windows(self, batch: dict[str, Tensor], stage: str) -> None:
        """One-step loss and relative L2 of a window batch (validation and test
        loader 0; loader 1's rollouts: :class:`EvaluationEpochHooks`)."""
        loss, pred, target = self.model_step(batch)
        values = {"loss": loss, "rel_l2": metrics.relative_l2(pred, target).mean()}
        for name, value in values.items():
            self.metrics[f"{stage}_{name}"].update(value, weight=pred.shape[0])

    def stage_metrics(self, stage: str) -> dict[str, MeanMetric]:
        """The one-step (and task-specific) metrics logged for ``stage``, by name."""
        prefix = f"{stage}_"
        return {
            key.removeprefix(prefix): metric
            for key, metric in self.metrics.items()
            if key.startswith(prefix)
        }

    # ------------------------------------------------------------ conditioning fields
    # Constant fields and time-varying scalars of the data (batches' ``constants``
    # and ``scalars``) enter as extra input channels after the history, never as
    # predicted channels; the backbone needs nothing but a larger ``in_channels``.
    # Alternatives: FiLM-style modulation by a pooled embedding (needs backbone
    # changes and loses the fields' spatial structure); stacking them as channels
    # predicted every step (what physim did before: the model was asked to predict
    # what never changes). Input channels are what The Well's own formatter does
    # (DefaultChannelsFirstFormatter concatenates constant_fields to the input).
    def _init_conditioning_fields(self, names: list[str]) -> None:
        self.field_columns: list[tuple[str, int]] | None = None
        if not names:
            return  # no buffers: checkpoints of unconditioned models load unchanged
        for method in (self.predict_next, self.step_loss):
            if "fields" not in inspect.signature(method).parameters:
                raise ValueError(
                    f"{type(self).__name__}.{method.__name__} takes no conditioning "
                    f"fields, so conditioning_fields={names} cannot be used with it."
                )
        self.register_buffer("field_cond_mean", torch.zeros(len(names)))
        self.register_buffer("field_cond_std", torch.ones(len(names)))

    @property
    def conditioning_channels(self) -> int:
        """Extra input channels: one per constant field, ``time_history`` per scalar
        (known once :meth:`set_field_names` has located the names)."""
        if self.field_columns is None:
            return 0
        t_in = self.hparams.time_history
        return sum(1 if kind == "constants" else t_in for kind, _ in self.field_columns)

    def set_field_names(
        self, constant_names: Sequence[str], scalar_names: Sequence[str]
    ) -> None:
        """Locate ``conditioning_fields`` among the data's constant fields and
        time-varying scalars (batches' ``constants`` and ``scalars`` columns)."""
        columns = []
        for name in self.hparams.get("conditioning_fields") or []:
            if name in constant_names:
                columns.append(("constants", list(constant_names).index(name)))
            elif name in scalar_names:
                columns.append(("scalars", list(scalar_names).index(name)))
            else:
                raise ValueError(
                    f"model.conditioning_fields names {name!r}, but the data's "
                    f"constant fields are {list(constant_names)} and its time-varying "
                    f"scalars {list(scalar_names)}; condition on those or none."
                )
        self.field_columns = columns
        self.check_input_channels()

    def check_input_channels(self) -> None:
        """Raise ``ValueError`` unless a backbone that declares ``input_channels``
        takes the history and the conditioning fields' channels."""
        actual = getattr(self.net, "input_channels", None)
        t_in, channels = self.hparams.time_history, self.hparams.num_channels
        expected = t_in * channels + self.conditioning_channels
        if actual is None or actual == expected:
            return
        raise ValueError(
            f"model.net.in_channels={actual}, but the model feeds {expected}: "
            f"{t_in} history frame(s) x {channels} channel(s) + "
            f"{self.conditioning_channels} for conditioning_fields "
            f"{list(self.hparams.get('conditioning_fields') or [])} (one per "
            f"constant field, {t_in} per time-varying scalar); set "
            f"model.net.in_channels={expected}."
        )

    def _set_field_statistics(self, stats: dict[str, Any]) -> None:
        for i, name in enumerate(self.hparams.get("conditioning_fields") or []):
            for kind in ("constant", "scalar"):
                names = stats.get(f"{kind}_names", [])
                if name in names:
                    column = names.index(name)
                    self.field_cond_mean[i] = stats[f"{kind}_mean"][column]
                    self.field_cond_std[i] = max(stats[f"{kind}_std"][column], 1e-12)
                    break
            else:
                raise ValueError(
                    f"The statistics hold no moments of the conditioning field "
                    f"{name!r}; recompute them (physim.data.compute_statistics)."
                )

    def conditioning_batch(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The batch's ``constants``/``scalars`` if the model uses them, else ``{}``."""
        if not self.hparams.get("conditioning_fields"):
            return {}
        return {k: batch[k] for k in ("constants", "scalars") if k in batch}

    def conditioning_inputs(
        self, inputs: dict[str, Tensor], offset: int, window: Tensor
    ) -> Tensor:
        """Normalised conditioning fields ``[B, F, *S]`` of the window that starts
        ``offset`` frames into ``inputs["scalars"]`` (constant fields need none)."""
        if self.field_columns is None:
            raise ValueError(
                f"The model is conditioned on {self.hparams.conditioning_fields}; "
                "call set_field_names with the data's constant_names and scalar_names "
                "(the Trainer does it from the data module)."
            )
        b, t_in, _, *space = window.shape
        parts = []
        for i, (kind, column) in enumerate(self.field_columns):
            values = inputs.get(kind)
            if values is None:
                raise ValueError(
                    f"conditioning field {self.hparams.conditioning_fields[i]!r} "
                    f"needs the batch's '{kind}', which it lacks."
                )
            if kind == "constants":
                part = values[:, column : column + 1]
            else:  # [B, t_in] values of the window's frames, uniform in space
                part = values[:, offset : offset + t_in, column]
                part = part[(..., *([None] * len(space)))].expand(b, t_in, *space)
            mean, std = self.field_cond_mean[i], self.field_cond_std[i]
            parts.append((part.to(window.dtype) - mean) / std)
        return torch.cat(parts, dim=1)

    def _fields(
        self, inputs: dict[str, Tensor | None], offset: int, window: Tensor
    ) -> dict[str, Tensor]:
        """``{"fields": ...}`` for :meth:`predict_next`/:meth:`step_loss`, or ``{}``
        for a model without conditioning fields (overrides need not take them)."""
        if not self.hparams.get("conditioning_fields"):
            return {}
        return {"fields": self.conditioning_inputs(inputs, offset, window)}

    def _resample_inputs(
        self, inputs: dict[str, Tensor], num_points: int
    ) -> dict[str, Tensor]:
        if "constants" not in inputs:
            return inputs
        constants = self._resample(inputs["constants"].unsqueeze(1), num_points)
        return {**inputs, "constants": constants.squeeze(1)}

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        return configure_optimization(
            self,
            self.optimizer_factory,
            self.scheduler_factory,
            self.hparams.scheduler_interval,
            monitor=metric_key("val", "rollout_rel_l2"),
        )

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The resolved run configuration (plain containers), so that `evaluate` can
        # rebuild the backbone from the checkpoint alone.
        if self.run_config is not None:
            checkpoint["physim_config"] = self.run_config


def _given(fields: Tensor | None) -> dict[str, Tensor]:
    """``fields`` as a keyword only when given, so that subclasses whose overrides
    take no conditioning fields keep working."""
    return {} if fields is None else {"fields": fields}
