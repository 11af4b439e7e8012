"""`INSR`: time integration in the weights of neural fields (Chen et al. 2023)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from physim._progress import track
from physim.rollout import metrics

from ._evaluation import RolloutEvaluation
from ._insr_problems import FieldFn, INSRProblem, Stage
from ._losses import check_finite_loss
from ._rollout_metrics import RolloutMetrics, log_metrics, metric_key

__all__ = ["INSR"]

#: Iterations per optimisation and points per iteration under
#: ``Trainer(fast_dev_run=True)`` (a smoke run).
FAST_DEV_ITERATIONS = 2
FAST_DEV_POINTS = 64


def _positive(name: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and value > 0
    if integer:
        ok = ok and int(value) == value
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"INSR: {name} must be {kind}, got {value!r}.")


class INSR(RolloutEvaluation, pl.LightningModule):
    """Implicit neural spatial representation solver (manual optimisation).

    The state is held in the weights of small networks (``fields``, e.g. SIRENs).
    Fitting is solving: step ``-1 -> 0`` fits the state networks to the initial frame
    of one trajectory of the data module (``split``, ``trajectory``); every later
    training step advances one time step ``dt``, running the problem's *stages* in
    order. Each stage starts from the current weights, freezes a gradient-free copy of
    every network (the previous state), and minimises the stage's loss with a fresh
    Adam and ``ReduceLROnPlateau`` (``factor``, ``patience``) stepped every
    iteration, on points resampled every iteration, until ``max_iterations`` or until
    the learning rate falls to ``min_lr`` (early stopping). The field is sampled on
    the data's grid at every stored time, so test metrics and the rollout report
    compare it with the reference trajectory. Training stops after the last step.

    Lightning's progress bar advances once per time step (each training step is one
    time step; the batch is only a clock), showing ``t``, the iterations and the loss.
    ``trainer.global_step`` counts optimiser iterations. Checkpoints hold the networks
    (the field), the step, the stored frames and the point sampler's state, so a run
    resumed with ``ckpt_path`` continues at the same step with the same points.

    Test: :meth:`rollout` of a trajectory whose first frame is the solved one returns
    the stored frames (integrating any remaining steps first, e.g. after a
    ``fast_dev_run``); other trajectories are solved from scratch on a copy.

    Args:
        fields: name -> network mapping points ``[P, D]`` to values ``[P, k]``.
        problem: the PDE (:class:`physim.tasks.AdvectionProblem`,
            :class:`physim.tasks.InviscidFluidProblem`).
        dt: time step; the data's output interval must be a multiple of it.
        lr: initial learning rate of each time step's optimisations (1e-4 in the paper).
        max_iterations: iteration cap per stage (20000 in the paper).
        initial_lr: learning rate of the initial fit.
        initial_iterations: iteration cap of the initial fit.
        factor: ``ReduceLROnPlateau`` factor (0.1).
        patience: ``ReduceLROnPlateau`` patience in iterations (500).
        min_lr: stop a stage once the learning rate is at or below this (1e-8).
        num_points: random interior points per iteration.
        num_boundary_points: random boundary points per iteration.
        split: data split of the solved trajectory.
        trajectory: index of the solved trajectory in ``split``.
        seed: seeds the point sampler.
        correlation_threshold: for the correlation time in the test metrics.
        time_history: frames the rollout report treats as given; always 1.

    Raises:
        ValueError: for a non-positive ``dt``, learning rate or iteration count, or
            networks that do not fit the problem.
    """

    def __init__(
        self,
        fields: Mapping[str, nn.Module],
        problem: INSRProblem,
        *,
        dt: float,
        lr: float = 1e-4,
        max_iterations: int = 20_000,
        initial_lr: float = 1e-4,
        initial_iterations: int = 20_000,
        factor: float = 0.1,
        patience: int = 500,
        min_lr: float = 1e-8,
        num_points: int = 5000,
        num_boundary_points: int = 50,
        split: str = "test",
        trajectory: int = 0,
        seed: int = 0,
        correlation_threshold: float = 0.8,
        time_history: int = 1,
    ) -> None:
        super().__init__()
        if time_history != 1:
            raise ValueError(
                "INSR: time_history must be 1 (the solve starts from the initial "
                f"frame alone), got {time_history!r}."
            )
        for name, value, integer in [
            ("dt", dt, False),
            ("lr", lr, False),
            ("initial_lr", initial_lr, False),
            ("min_lr", min_lr, False),
            ("max_iterations", max_iterations, True),
            ("initial_iterations", initial_iterations, True),
            ("patience", patience, True),
            ("num_points", num_points, True),
            ("num_boundary_points", num_boundary_points, True),
        ]:
            _positive(name, value, integer)
        if not 0 < factor < 1:
            raise ValueError(f"INSR: factor must lie in (0, 1), got {factor!r}.")
        self.save_hyperparameters(ignore=["fields", "problem"], logger=False)
        self.automatic_optimization = False
        self.fields = nn.ModuleDict(dict(fields))
        problem.check_fields(self.fields)
        self.problem = problem
        self.generator = torch.Generator().manual_seed(seed)
        self.step_index = -1  # completed time steps; -1: initial state not fitted
        self.frames: list[Tensor] = []  # the field on the data grid at stored times
        self.initial_frame: Tensor | None = None
        self.coords: list[Tensor] = []
        self.times: list[float] = []
        self.steps_per_frame = 1
        # Every trajectory counts, diverged ones included (RolloutMetrics); the
        # output interval is set once the reference is configured.
        self.rollout_metrics = RolloutMetrics(correlation_threshold)

    # ------------------------------------------------------------------ reference
    def configure_reference(
        self, initial_frame: Tensor, coords: Sequence[Tensor], times: Sequence[float]
    ) -> None:
        """Set the initial frame ``[C, *S]``, its grid and the stored times to solve.

        Raises:
            ValueError: when the grid leaves the problem's domain or the output
                interval is not a multiple of ``dt``.
        """
        self.coords = [torch.as_tensor(c, dtype=torch.float64) for c in coords]
        grid = self.grid_points(torch.float64)
        if not self.problem.domain.contains(grid):
            spans = [(float(c[0]), float(c[-1])) for c in self.coords]
            raise ValueError(
                f"INSR: the data grid spans {spans}"
                f" but the problem's domain is {self.problem.domain.bounds}; set the "
                "problem's domain to the data's."
            )
        self.times = [float(t) for t in times]
        interval = self.times[1] - self.times[0] if len(self.times) > 1 else 0.0
        steps = round(interval / self.hparams.dt)
        if len(self.times) > 1 and (
            steps < 1
            or not math.isclose(steps * self.hparams.dt, interval, rel_tol=1e-6)
        ):
            raise ValueError(
                f"INSR: the data's output interval {interval:g} is not a multiple of "
                f"dt={self.hparams.dt:g}; choose dt = interval / k for an integer k."
            )
        self.steps_per_frame = max(steps, 1)
        self.initial_frame = initial_frame.detach().cpu().float()

    def setup(self, stage: str) -> None:
        datamodule = (
            getattr(self.trainer, "datamodule", None) if self._trainer else None
        )
        if datamodule is None or (stage != "fit" and self.initial_frame is not None):
            return
        split = self.hparams.split
        dataset = datamodule.rollout_dataset(split)
        if not 0 <= self.hparams.trajectory < len(dataset):
            raise ValueError(
                f"INSR: trajectory={self.hparams.trajectory} is out of range for the "
                f"{len(dataset)} trajectories of split '{split}'."
            )
        trajectory = dataset[self.hparams.trajectory]["trajectory"]
        file = datamodule.files[split]
        times = file.times[:: datamodule.time_stride][: trajectory.shape[0]]
        self.configure_reference(trajectory[0], list(file.coords.values()), times)

    @property
    def num_steps(self) -> int:
        """Time steps to the last stored time."""
        return self.steps_per_frame * (len(self.times) - 1)

    def grid_points(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The data grid as points ``[P, D]`` (``ij`` order, as ``[C, *S]`` frames)."""
        mesh = torch.meshgrid(*self.coords, indexing="ij")
        return torch.stack(mesh, dim=-1).reshape(-1, len(self.coords)).to(dtype)

    def sample_grid(self, fields: nn.ModuleDict | None = None) -> Tensor:
        """The problem's channels of ``fields`` (default: the current state) on the
        data grid, ``[C, *S]``."""
        fields = self.fields if fields is None else fields
        with torch.inference_mode(False), torch.enable_grad():
            points = self.grid_points().to(self.device)
            values = self.problem.observe(fields, points).detach()
        shape = [len(c) for c in self.coords]
        return values.T.reshape(-1, *shape).cpu()

    def exact_error(self) -> float:
        """Relative L2 error of the current field on the data grid against the
        problem's exact solution ``problem.exact(points, t)`` at the current time.

        Raises:
            ValueError: when the problem has no exact solution or nothing is solved.
        """
        exact = getattr(self.problem, "exact", None)
        if exact is None:
            raise ValueError(
                f"INSR: {type(self.problem).__name__} has no exact solution to compute "
                "metrics against; compare with a reference trajectory instead "
                "(trainer.test with the data module)."
            )
        if self.step_index < 0:
            raise ValueError("INSR.exact_error: nothing solved yet; fit the task.")
        t = self.times[0] + self.step_index * self.hparams.dt
        truth = exact(self.grid_points(torch.float64), t).T.reshape(
            -1, *[len(c) for c in self.coords]
        )
        pred = self.sample_grid().double()
        return float((pred - truth).norm() / truth.norm())

    def evaluate(self, points: Tensor) -> Tensor:
        """The problem's channels of the current state at any points ``[P, D]``."""
        with torch.inference_mode(False), torch.enable_grad():
            return self.problem.observe(self.fields, points.clone()).detach()

    # ------------------------------------------------------------------ optimisation
    @property
    def _fast_dev_run(self) -> bool:
        return self._trainer is not None and bool(self.trainer.fast_dev_run)

    def _iterations(self, configured: int) -> int:
        fast = self._fast_dev_run
        return min(configured, FAST_DEV_ITERATIONS) if fast else configured

    def _minimise(
        self,
        loss_fn: Callable[[], Tensor],
        optimizer: Any,
        *,
        lr: float,
        max_iterations: int,
        backward: Callable[[Tensor], None],
    ) -> tuple[Tensor, int]:
        """Adam from a fresh state with reduce-on-plateau; returns last loss, count."""
        raw = getattr(optimizer, "optimizer", optimizer)  # LightningOptimizer or not
        raw.state.clear()
        for group in raw.param_groups:
            group["lr"] = lr
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            raw, factor=self.hparams.factor, patience=self.hparams.patience
        )
        for iteration in range(1, self._iterations(max_iterations) + 1):
            loss = loss_fn()
            check_finite_loss(loss, self.step_index + 1, iteration)
            optimizer.zero_grad(set_to_none=True)
            backward(loss)
            optimizer.step()
            plateau.step(loss.item())
            if raw.param_groups[0]["lr"] <= self.hparams.min_lr * (1 + 1e-6):
                break
        return loss.detach(), iteration

    def _samples(self):
        counts = [self.hparams.num_points, self.hparams.num_boundary_points]
        if self._fast_dev_run:
            counts = [min(n, FAST_DEV_POINTS) for n in counts]
        return self.problem.domain.sample(*counts, self.generator, device=self.device)

    def fit_initial(
        self,
        fields: nn.ModuleDict,
        targets: Mapping[str, FieldFn],
        optimizers: Mapping[str, Any],
        backward: Callable[[Tensor], None],
    ) -> tuple[Tensor, int]:
        """Fit each state network to its target by MSE at random points."""
        total, count = torch.zeros(()), 0
        for name, target in targets.items():

            def loss_fn(name=name, target=target) -> Tensor:
                x = self._samples().interior
                return (fields[name](x) - target(x)).square().mean()

            loss, iterations = self._minimise(
                loss_fn,
                optimizers[name],
                lr=self.hparams.initial_lr,
                max_iterations=self.hparams.initial_iterations,
                backward=backward,
            )
            total, count = total + loss.cpu(), count + iterations
        return total, count

    def advance(
        self,
        fields: nn.ModuleDict,
        optimizers: Mapping[str, Any],
        backward: Callable[[Tensor], None],
    ) -> tuple[Tensor, int]:
        """One time step: the problem's stages in order; returns last loss, count."""
        count = 0
        for stage in self.problem.stages():
            loss, iterations = self._run_stage(fields, stage, optimizers, backward)
            count += iterations
        return loss, count

    def _run_stage(self, fields, stage: Stage, optimizers, backward):
        frozen = copy.deepcopy(fields).requires_grad_(False)

        def loss_fn() -> Tensor:
            return stage.loss(fields, frozen, self._samples(), self.hparams.dt)

        return self._minimise(
            loss_fn,
            optimizers[stage.field],
            lr=self.hparams.lr,
            max_iterations=self.hparams.max_iterations,
            backward=backward,
        )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # One Adam per network, reset at every stage (`_minimise`), so each stage
        # starts a fresh optimiser as in the reference, while Lightning counts the
        # iterations in `global_step` (checkpoint and logging cadence).
        return [
            torch.optim.Adam(net.parameters(), lr=self.hparams.lr)
            for net in self.fields.values()
        ]

    def _lightning_optimizers(self) -> dict[str, Any]:
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        return dict(zip(self.fields.keys(), optimizers, strict=True))

    # ------------------------------------------------------------------ fit
    def training_step(self, batch: Any, batch_idx: int) -> None:
        if self.initial_frame is None:
            raise ValueError(
                "INSR: no initial state; fit with a data module (or call "
                "configure_reference first)."
            )
        if self.step_index >= self.num_steps:
            self.trainer.should_stop = True
            return
        optimizers = self._lightning_optimizers()
        if self.step_index < 0:
            targets = self.problem.initial_targets(self.initial_frame, self.coords)
            loss, iterations = self.fit_initial(
                self.fields, targets, optimizers, self.manual_backward
            )
        else:
            loss, iterations = self.advance(
                self.fields, optimizers, self.manual_backward
            )
        self.step_index += 1
        if self.step_index % self.steps_per_frame == 0:
            self.frames.append(self.sample_grid())
        for name, value in [
            ("loss", loss),
            ("iterations", float(iterations)),
            ("time", self.times[0] + self.step_index * self.hparams.dt),
        ]:
            self.log(
                metric_key("train", name),
                value,
                on_step=True,
                on_epoch=name == "loss",
                prog_bar=True,
                batch_size=1,
            )
        if self.step_index >= self.num_steps:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ solve / test
    def rollout(
        self, trajectory: Tensor, params: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The field at the stored times ``1..T-1`` of each trajectory ``[B, T, ...]``.

        Returns the frames ``[B, T-1, C, *S]`` and the first non-finite frame per
        trajectory (-1: none), like :meth:`AutoregressiveSurrogate.rollout`
        (``params`` is accepted for that interface and ignored: the problem is fixed).

        Raises:
            ValueError: when the task has no reference times (not fitted) or the
                trajectories are longer than them.
        """
        if not self.times:
            raise ValueError(
                "INSR.rollout: no reference times; fit the task (or call "
                "configure_reference) before evaluating it."
            )
        frames = trajectory.shape[1]
        if frames > len(self.times):
            raise ValueError(
                f"INSR.rollout: trajectories have {frames} frames but the task solves "
                f"{len(self.times)} stored times; evaluate on the data it was fitted "
                "to."
            )
        preds = [
            self._solve(trajectory[b, 0])[1:frames] for b in range(len(trajectory))
        ]
        pred = torch.stack(preds).to(trajectory.device, trajectory.dtype)
        return pred, metrics.first_nonfinite_step(pred)

    def _solve(self, initial_frame: Tensor) -> Tensor:
        """Frames ``[T, C, *S]`` from ``initial_frame``: the task's own solve (continued
        to the end and kept, if needed) when it is the fitted one, else a new solve on
        a copy."""
        own = self.initial_frame is not None and torch.allclose(
            initial_frame.cpu().float(), self.initial_frame, rtol=1e-5, atol=1e-6
        )
        if own and len(self.frames) == len(self.times):
            return torch.stack(self.frames)
        frames = list(self.frames) if own else []
        step = self.step_index if own else -1
        with torch.inference_mode(False), torch.enable_grad():
            fields = copy.deepcopy(self.fields)  # here: normal, not inference, tensors
            optimizers = {
                name: torch.optim.Adam(net.parameters()) for name, net in fields.items()
            }
            backward = Tensor.backward
            if step < 0:
                frame = initial_frame.detach().cpu().float().clone()
                targets = self.problem.initial_targets(frame, self.coords)
                self.fit_initial(fields, targets, optimizers, backward)
                frames = [self.sample_grid(fields)]
                step = 0
            for next_step in track(
                range(step + 1, self.num_steps + 1),
                description="INSR solve",
                transient=True,
            ):
                self.advance(fields, optimizers, backward)
                if next_step % self.steps_per_frame == 0:
                    frames.append(self.sample_grid(fields))
            if own:  # the task's solve is now complete: keep it
                self.fields.load_state_dict(fields.state_dict())
                self.frames, self.step_index = frames, self.num_steps
        return torch.stack(frames)

    def test_step(
        self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0
    ):
        if dataloader_idx != 1:  # loader 0 holds one-step windows: nothing to do
            return
        trajectory = batch["trajectory"]
        pred, first_nonfinite = self.rollout_batch(batch)
        target = trajectory[:, 1 : pred.shape[1] + 1]
        scores = metrics.score_rollout(pred, target, trajectory[:, 0], first_nonfinite)
        self.rollout_metrics.update(scores)

    def _output_interval(self) -> float:
        return self.steps_per_frame * self.hparams.dt

    def on_test_epoch_start(self) -> None:
        self.rollout_metrics.reset()
        self.rollout_metrics.output_interval = self._output_interval()

    def on_test_epoch_end(self) -> None:
        log_metrics(self, "test", {}, self.rollout_metrics)
        # Memory next to the error: INSR's claim is accuracy per stored value.
        self.log(metric_key("test", "num_parameters"), float(self.num_parameters))

    @property
    def num_parameters(self) -> int:
        """Parameters of all networks: INSR's memory footprint."""
        return sum(p.numel() for p in self.fields.parameters())

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["insr"] = {
            "step_index": self.step_index,
            "frames": torch.stack(self.frames) if self.frames else None,
            "initial_frame": self.initial_frame,
            "coords": self.coords,
            "times": self.times,
            "steps_per_frame": self.steps_per_frame,
            "generator_state": self.generator.get_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["insr"]
        self.step_index = int(state["step_index"])
        self.frames = [] if state["frames"] is None else list(state["frames"])
        self.initial_frame = state["initial_frame"]
        self.coords = list(state["coords"])
        self.times = list(state["times"])
        self.steps_per_frame = int(state["steps_per_frame"])
        self.generator.set_state(state["generator_state"])
