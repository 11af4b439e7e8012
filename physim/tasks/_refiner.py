"""`PDERefiner`: a one-step prediction refined by a few denoising steps.

PDE-Refiner (Lippe, Veeling, Perdikaris, Turner, Brandstetter; NeurIPS 2023) trains one
conditioned backbone on ``K + 1`` noise levels of the next frame: at the top level the
input is pure noise and the backbone makes the ordinary one-step prediction; at the
lower levels it removes small amounts of noise, which forces it to fit the
low-amplitude (mostly high) frequencies that MSE training neglects. Sampling the
levels from the top down refines the prediction; different noise draws give different
samples, whose spread estimates the rollout's uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from jaxtyping import Float, Int
from pytorch_lightning.callbacks import Callback, EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn
from torchmetrics import MeanMetric, PearsonCorrCoef

from physim.rollout import (
    RolloutResult,
    estimated_correlation_time,
    metrics,
    sample_rollouts,
    sample_spread,
)

from ._surrogate import AutoregressiveSurrogate

__all__ = ["PDERefiner", "refinement_schedule"]

#: Part of each evaluation batch's noise seed, per stage.
STAGE_SEEDS = {"val": 1, "test": 2}

#: The level ``k`` reaches the backbone as ``k * LEVEL_SCALE / K`` (the reference's
#: diffusion "time" range), within the resolved range of the sinusoidal features.
LEVEL_SCALE = 1000.0


def refinement_schedule(
    num_refinement_steps: int, min_noise_variance: float = 4e-7
) -> Float[Tensor, " L"]:
    """Cumulative signal fraction ``alpha_bar_k`` of the ``K + 1`` levels (float64).

    ``beta_k = min_noise_variance^((K - k) / K)`` for ``k = 0..K`` (from
    ``min_noise_variance`` at ``k = 0`` to 1 at ``k = K``) and ``alpha_bar_k =
    prod_{j <= k} (1 - beta_j)``, as the reference implementation's DDPM schedule.
    Level ``k`` noises a target ``y`` as ``sqrt(alpha_bar_k) y + sqrt(1 - alpha_bar_k)
    eps``; the noise std ``sqrt(1 - alpha_bar)`` is about ``[6.3e-4, 7.4e-3, 0.086,
    1]`` for ``K = 3``: level ``K`` is pure noise (``alpha_bar_K = 0`` exactly), the
    others nearly clean.

    Args:
        num_refinement_steps: ``K >= 1``.
        min_noise_variance: ``beta_0`` in ``(0, 1)``, the noise *variance* of the
            lowest level (the reference calls it ``min_noise_std`` but uses it as a
            variance).

    Returns:
        ``[K + 1]`` values, decreasing from ``1 - min_noise_variance`` to 0.
    """
    if num_refinement_steps < 1:
        raise ValueError(
            "refinement_schedule: num_refinement_steps must be >= 1, got "
            f"{num_refinement_steps}."
        )
    k = num_refinement_steps
    exponents = torch.arange(k, -1, -1, dtype=torch.float64) / k
    betas = torch.as_tensor(min_noise_variance, dtype=torch.float64) ** exponents
    return torch.cumprod(1.0 - betas, dim=0)


def _check_args(
    num_refinement_steps: int,
    min_noise_variance: float,
    ema_decay: float | None,
    uncertainty_samples: int,
    difference_weight: float | None,
    residual: bool,
    level_probabilities: Sequence[float] | None,
) -> None:
    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not is_int(num_refinement_steps) or num_refinement_steps < 0:
        raise ValueError(
            "PDERefiner: num_refinement_steps must be an integer >= 0 (3 in the paper; "
            f"0 trains the plain MSE one-step surrogate), got {num_refinement_steps!r}."
        )
    if not 0.0 < min_noise_variance < 1.0:
        raise ValueError(
            "PDERefiner: min_noise_variance must lie in (0, 1) (the noise variance of "
            f"the lowest level; the paper uses 4e-7), got {min_noise_variance!r}."
        )
    if ema_decay is not None and not 0.0 < ema_decay < 1.0:
        raise ValueError(
            "PDERefiner: ema_decay must lie in (0, 1) (the paper uses 0.995) or be "
            f"null to train without a moving average, got {ema_decay!r}."
        )
    if not is_int(uncertainty_samples) or not (
        uncertainty_samples == 0 or uncertainty_samples >= 2
    ):
        raise ValueError(
            "PDERefiner: uncertainty_samples must be 0 (off) or an integer >= 2 (the "
            f"samples drawn per test trajectory), got {uncertainty_samples!r}."
        )
    if difference_weight is not None and not (residual and difference_weight > 0):
        raise ValueError(
            "PDERefiner: difference_weight scales the residual target (y - x_last) "
            "and must be > 0 with residual=true (0.3 on KS in the paper), or null to "
            f"scale by the data's one-step difference std; got {difference_weight!r} "
            f"with residual={residual!r}."
        )
    if level_probabilities is not None:
        probabilities = [float(p) for p in level_probabilities]
        if (
            num_refinement_steps == 0
            or len(probabilities) != num_refinement_steps + 1
            or min(probabilities) <= 0
            or abs(sum(probabilities) - 1.0) > 1e-6
        ):
            raise ValueError(
                "PDERefiner: level_probabilities must give K + 1 = "
                f"{num_refinement_steps + 1} positive probabilities of the levels "
                "0..K summing to 1 (null: uniform, the paper's), got "
                f"{list(level_probabilities)!r}."
            )


class PDERefiner(AutoregressiveSurrogate):
    """PDE-Refiner on any backbone that takes a conditioning vector.

    The backbone gets the normalised history frames and a noisy version ``y_k`` of the
    normalised target stacked as channels, ``(B, (T_in + T_out) C, *S) -> (B, T_out C,
    *S)``, and as conditioning the level ``k * 1000 / K`` followed by the normalised
    PDE parameters named in ``conditioning`` (``cond_dim = 1 + P``). The target ``y``
    is the surrogate's (``residual=True``: the one-step change scaled to unit std, the
    analogue of the paper's ``(y - x) / 0.3``; otherwise the normalised frame), so the
    noise levels of `refinement_schedule` are relative to a unit-scale signal.

    Training (v-prediction, Salimans & Ho 2022): a level ``k`` uniform in ``0..K`` per
    sample, ``y_k = sqrt(a_k) y + sqrt(1 - a_k) eps`` and the loss
    ``loss(net(...), sqrt(a_k) eps - sqrt(1 - a_k) y)``, with ``a_k = alpha_bar_k``.
    At ``k = K`` (``a_K = 0``) the input is pure noise and the target is ``-y``: the
    plain one-step prediction. ``level_probabilities`` replaces the uniform choice of
    the level: a deviation from the paper, for short training runs, in which the
    ``k = K`` call learns slowly (the low wavenumbers of its prediction, which no
    refinement step changes, carry the rollout; the near-clean levels' unpredictable
    noise is most of the gradient).

    Prediction: start from ``y_K ~ N(0, 1)`` and take ``K + 1`` DDPM posterior steps
    ``k = K..0`` (Ho et al. 2020, eq. 6-7, "fixed small" variance): ``y0_hat =
    sqrt(a_k) y_k - sqrt(1 - a_k) v_hat``, ``y_{k-1} = c0 y0_hat + c1 y_k + s_k eps``
    with the posterior's coefficients, and no noise at the last step (whose result is
    ``y0_hat``). That is ``K + 1`` backbone calls per time step, as the reference
    implementation (which uses ``diffusers.DDPMScheduler``; written directly here).
    The two halves are separate methods for diagnostics: `first_estimate` is the
    ``k = K`` call alone, and `refine` runs the levels ``K - 1..0`` from any estimate
    of the next frames (the ``k = K`` call's, or another model's).

    With ``num_refinement_steps = 0`` there is neither a noisy input nor a level: the
    task *is* the MSE-trained `AutoregressiveSurrogate` (same backbone in/out channels,
    ``cond_dim = P``), which makes it the baseline of a refiner comparison with
    everything else equal.

    An exponential moving average of the weights (``ema_decay`` per optimiser step;
    `FitOnlyEMA`, Lightning's `EMAWeightAveraging` added by `configure_callbacks`
    while fitting) is used for validation, replaces the weights at the end of
    training, and is what checkpoints hold as ``state_dict``, so ``test`` and
    ``load_from_checkpoint`` use it; the raw weights are in ``current_model_state``,
    and a resumed fit restores both. The average covers the buffers too (constant
    normalisation statistics, so harmless).

    Deviations from the reference: the residual target is scaled by the data's
    one-step difference std unless ``difference_weight`` is given (the paper's fixed
    0.3 on KS); PDE parameters are normalised with the training statistics before
    their sinusoidal embedding.

    Uncertainty (``uncertainty_samples = S >= 2``): in the test rollouts, ``S`` samples
    per trajectory are rolled out in one batch (`physim.rollout.sample_rollouts`); the
    test logs their spread, the estimate of the high-correlation time from their mutual
    correlation (`physim.rollout.estimated_correlation_time`), and the Pearson
    correlation over the test set between that estimate and the true time (the
    samples' mean high-correlation time against the truth).

    Good values (the paper's KS setting): ``num_refinement_steps=3``,
    ``min_noise_variance=4e-7``, ``ema_decay=0.995``, ``residual=True``, a 1-D modern
    U-Net conditioned on the level, ``dt`` and ``dx``.

    Args:
        net: backbone ``net(x, cond)`` with ``cond_dim = 1 + len(conditioning)`` (or
            ``len(conditioning)`` when ``num_refinement_steps = 0``).
        optimizer: partial optimiser.
        scheduler: partial LR scheduler.
        loss: loss on the v-target (default MSE).
        num_refinement_steps: ``K >= 0``.
        min_noise_variance: noise variance of the lowest level, in ``(0, 1)``.
        ema_decay: decay of the weight average per optimiser step, in ``(0, 1)``, or
            ``None`` for none.
        uncertainty_samples: samples per test trajectory for the uncertainty metrics
            (0: off; costs ``S`` extra rollouts of the test set).
        difference_weight: with ``residual``, the target is ``(y - x_last) /
            difference_weight`` in physical units (the paper's scaled difference, 0.3
            on KS) instead of the change scaled by the data's one-step difference std
            (``None``, physim's default).
        level_probabilities: training probability of each level ``0..K`` (``None``:
            uniform, as the paper); a deviation from the paper when set.
        evaluation_seed: seeds the noise of validation and test (levels, noise,
            sampling) per batch from ``(evaluation_seed, stage, loader, batch index,
            rank)`` with a dedicated generator, so a batch's metrics do not depend on
            which batches ran before it (e.g. ``limit_val_batches``) and evaluation
            never draws from the global generator that training uses.
        **kwargs: the `AutoregressiveSurrogate` arguments (``num_channels``,
            ``time_history``, ``residual``, ``conditioning``, ...).

    Raises:
        ValueError: ``K < 0``, ``min_noise_variance`` outside ``(0, 1)``, a bad
            ``ema_decay``/``uncertainty_samples``, or a backbone whose ``cond_dim`` is
            not ``1 + P`` (e.g. one that takes no conditioning).

    References:
        Lippe et al., "PDE-Refiner: Achieving accurate long rollouts with neural PDE
        solvers", NeurIPS 2023. Ho, Jain & Abbeel, "Denoising diffusion probabilistic
        models", NeurIPS 2020. Salimans & Ho, "Progressive distillation for fast
        sampling of diffusion models", ICLR 2022 (v-prediction).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        *,
        num_refinement_steps: int = 3,
        min_noise_variance: float = 4e-7,
        ema_decay: float | None = 0.995,
        uncertainty_samples: int = 0,
        difference_weight: float | None = None,
        level_probabilities: Sequence[float] | None = None,
        evaluation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        _check_args(
            num_refinement_steps,
            min_noise_variance,
            ema_decay,
            uncertainty_samples,
            difference_weight,
            kwargs.get("residual", True),
            level_probabilities,
        )
        super().__init__(net, optimizer, scheduler, loss, **kwargs)
        if level_probabilities is not None:  # plain floats in the checkpoint
            self.hparams["level_probabilities"] = [
                float(p) for p in level_probabilities
            ]
        self._evaluation_generator: torch.Generator | None = None
        if difference_weight is not None:
            self.delta_std.fill_(difference_weight)
        self._posterior: list[tuple[float, ...]] = []
        if num_refinement_steps:
            alpha_bar = refinement_schedule(num_refinement_steps, min_noise_variance)
            self.register_buffer("signal_scale", alpha_bar.sqrt(), persistent=False)
            self.register_buffer(
                "noise_scale", (1.0 - alpha_bar).sqrt(), persistent=False
            )
            self._posterior = _posterior_coefficients(alpha_bar.tolist())
        self.metrics.update(
            {
                "test_uncertainty_spread": MeanMetric(),
                "test_estimated_corr_time": MeanMetric(),
                "test_corr_time_estimate_r": PearsonCorrCoef(),
            }
        )

    # ------------------------------------------------------------------ set-up
    def set_statistics(self, stats: dict[str, Any]) -> None:
        """As the surrogate's; a fixed ``difference_weight`` replaces ``delta_std``."""
        super().set_statistics(stats)
        if self.hparams.difference_weight is not None:
            self.delta_std.fill_(self.hparams.difference_weight)

    def check_backbone(self, net: nn.Module) -> None:
        """Raise ``ValueError`` unless ``net`` takes the level and the parameters."""
        k = self.hparams.num_refinement_steps
        if not k:
            super().check_backbone(net)
            return
        conditioning = self.hparams.conditioning
        expected = 1 + len(conditioning)
        cond_dim = getattr(net, "cond_dim", 0)
        if cond_dim != expected:
            what = "the refinement level" + (
                f" and {conditioning}" if conditioning else ""
            )
            raise ValueError(
                f"PDERefiner with num_refinement_steps={k} conditions the backbone on "
                f"{what}: {expected} value(s) per sample, but {type(net).__name__} "
                f"takes cond_dim={cond_dim}; build it with cond_dim={expected} (a "
                "backbone without conditioning cannot be refined), or set "
                "num_refinement_steps=0 for plain MSE training."
            )

    def configure_callbacks(self) -> list[Callback]:
        """The weight average while fitting (none for validate/test/predict)."""
        if self.hparams.ema_decay is None or self.trainer.state.fn != TrainerFn.FITTING:
            return []
        return [FitOnlyEMA(decay=self.hparams.ema_decay)]

    # ------------------------------------------------------------------ denoising
    def denoise(
        self,
        history: Float[Tensor, "B Tc *S"],
        noisy: Float[Tensor, "B Fc *S"],
        levels: Int[Tensor, " B"],
        params: Tensor | None = None,
    ) -> Float[Tensor, "B Fc *S"]:
        """The backbone's v-prediction for encoded history and noisy target."""
        scale = LEVEL_SCALE / self.hparams.num_refinement_steps
        cond = [levels.to(noisy.dtype).unsqueeze(1) * scale]
        parameters = self.condition(params)
        if parameters is not None:
            cond.append(parameters.to(noisy.dtype))
        return self.net(torch.cat([history, noisy], dim=1), torch.cat(cond, dim=1))

    def refinement_loss(
        self,
        history: Tensor,
        future: Tensor,
        params: Tensor | None = None,
        levels: Int[Tensor, " B"] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The v-prediction loss and the denoised estimate (physical) of a batch.

        Args:
            history: physical history ``[B, T_in, C, *S]``.
            future: physical next frames ``[B, T_out, C, *S]``.
            params: per-trajectory parameters ``[B, P]`` when conditioned.
            levels: level per sample ``[B]`` (default: uniform in ``0..K``).
            generator: for the levels and the noise.

        Returns:
            The loss and ``y0_hat``, the estimate of ``future`` from this one call (the
            one-step prediction at level ``K``; nearly the truth, which it saw with
            little noise, below).
        """
        generator = generator or self._evaluation_generator
        x = self.encode_history(history)
        target = self.encode_target(future, history)
        y = target.flatten(1, 2)
        if levels is None:
            levels = self.draw_levels(y.shape[0], y.device, generator)
        shape = (-1, *([1] * (y.ndim - 1)))
        signal = self.signal_scale[levels].to(y.dtype).view(shape)
        noise_scale = self.noise_scale[levels].to(y.dtype).view(shape)
        noise = torch.randn(
            y.shape, generator=generator, device=y.device, dtype=y.dtype
        )
        noisy = signal * y + noise_scale * noise
        v_hat = self.denoise(x, noisy, levels, params)
        loss = self.loss_fn(v_hat, signal * noise - noise_scale * y)
        estimate = (signal * noisy - noise_scale * v_hat).reshape(target.shape)
        return loss, self.decode(estimate, history)

    def draw_levels(
        self, size: int, device: torch.device, generator: torch.Generator | None
    ) -> Int[Tensor, " B"]:
        """Training levels: uniform in ``0..K``, or from ``level_probabilities``."""
        probabilities = self.hparams.get("level_probabilities")
        if probabilities is None:
            return torch.randint(
                0,
                self.hparams.num_refinement_steps + 1,
                (size,),
                device=device,
                generator=generator,
            )
        weights = torch.tensor(probabilities, dtype=torch.float64, device=device)
        return torch.multinomial(weights, size, replacement=True, generator=generator)

    def step_loss(
        self, history: Tensor, future: Tensor, params: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """`refinement_loss` at random levels; in evaluation the prediction is the
        sampler's (`predict_next`), so one-step metrics judge what a rollout uses."""
        if not self.hparams.num_refinement_steps:
            return super().step_loss(history, future, params)
        loss, prediction = self.refinement_loss(history, future, params)
        if not self.training:
            prediction = self.predict_next(history, params)
        return loss, prediction

    def sample_normalized(
        self,
        history: Tensor,
        params: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Float[Tensor, "B T C *S"]:
        """Refine pure noise into the normalised next frames (``K + 1`` calls)."""
        x = self.encode_history(history)
        estimate = self._top_level(x, history, params, generator)
        return self._refine(x, estimate, params, generator).unflatten(
            1, (self.hparams.time_future, history.shape[2])
        )

    def _top_level(
        self,
        x: Tensor,
        history: Tensor,
        params: Tensor | None,
        generator: torch.Generator | None,
    ) -> Float[Tensor, "B Fc *S"]:
        """The ``k = K`` call on a pure-noise input: its estimate ``y0_hat``."""
        b, _, c, *space = history.shape
        k = self.hparams.num_refinement_steps
        y = torch.randn(
            (b, self.hparams.time_future * c, *space),
            generator=generator,
            device=x.device,
            dtype=x.dtype,
        )
        levels = torch.full((b,), k, device=x.device, dtype=torch.long)
        signal, noise_scale = self._posterior[k][:2]  # 0 and 1: the input is noise
        return signal * y - noise_scale * self.denoise(x, y, levels, params)

    def _refine(
        self,
        x: Tensor,
        estimate: Float[Tensor, "B Fc *S"],
        params: Tensor | None,
        generator: torch.Generator | None,
    ) -> Float[Tensor, "B Fc *S"]:
        """Levels ``K - 1..0`` from the estimate ``y0_hat`` of the ``k = K`` step.

        The posterior step out of level ``K`` needs no ``y_K``: ``alpha_bar_K = 0``
        makes its coefficient of ``y_K`` zero, so ``y_{K-1} = sqrt(a_{K-1}) y0_hat +
        sqrt(1 - a_{K-1}) eps`` (the estimate noised to level ``K - 1``), wherever
        the estimate came from.
        """
        k = self.hparams.num_refinement_steps
        _, _, c_estimate, _, std = self._posterior[k]
        y = c_estimate * estimate + std * torch.randn(
            estimate.shape, generator=generator, device=x.device, dtype=x.dtype
        )
        levels = torch.empty(x.shape[0], device=x.device, dtype=torch.long)
        for k in range(self.hparams.num_refinement_steps - 1, -1, -1):
            v_hat = self.denoise(x, y, levels.fill_(k), params)
            y = self._posterior_step(y, v_hat, k, generator)
        return y

    def first_estimate(
        self,
        history: Tensor,
        params: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The ``k = K`` call alone (before any refinement), physical.

        Args:
            history: physical history ``[B, T_in, C, *S]``.
            params: per-trajectory parameters ``[B, P]`` when conditioned.
            generator: for the pure-noise input.
        """
        x = self.encode_history(history)
        estimate = self._top_level(x, history, params, generator)
        shape = (self.hparams.time_future, history.shape[2])
        return self.decode(estimate.unflatten(1, shape), history)

    def refine(
        self,
        history: Tensor,
        estimate: Tensor,
        params: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Refine a physical estimate of the next frames (``K`` calls), physical.

        ``refine(h, first_estimate(h, generator=g), generator=g)`` is
        ``predict_next(h, generator=g)`` (the same draws in the same order);
        ``refine(h, other(h))`` refines another model's prediction.

        Args:
            history: physical history ``[B, T_in, C, *S]``.
            estimate: physical next frames ``[B, T_out, C, *S]``.
            params: per-trajectory parameters ``[B, P]`` when conditioned.
            generator: for the refinement noise.
        """
        x = self.encode_history(history)
        y0 = self.encode_target(estimate, history).flatten(1, 2)
        refined = self._refine(x, y0, params, generator)
        return self.decode(refined.unflatten(1, estimate.shape[1:3]), history)

    def _posterior_step(
        self, y: Tensor, v_hat: Tensor, k: int, generator: torch.Generator | None
    ) -> Tensor:
        """A sample of ``y_{k-1}`` given ``y_k`` and the v-prediction ``v_hat``."""
        signal, noise_scale, c_estimate, c_current, std = self._posterior[k]
        estimate = signal * y - noise_scale * v_hat
        y = c_estimate * estimate + c_current * y
        if std > 0:
            y = y + std * torch.randn(
                y.shape, generator=generator, device=y.device, dtype=y.dtype
            )
        return y

    def predict_next(
        self,
        history: Tensor,
        params: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Physical history ``[B, T_in, C, *S]`` -> a sample of the next frames.

        Args:
            history: physical history.
            params: per-trajectory parameters ``[B, P]`` when conditioned.
            generator: for the sampling noise (default: the global generator).
        """
        if not self.hparams.num_refinement_steps:
            return super().predict_next(history, params)
        generator = generator or self._evaluation_generator
        return self.decode(self.sample_normalized(history, params, generator), history)

    # ------------------------------------------------------------------ uncertainty
    def rollout_samples(
        self,
        trajectory: Tensor,
        params: Tensor | None = None,
        num_samples: int = 2,
        generator: torch.Generator | None = None,
    ) -> RolloutResult:
        """``S`` sample rollouts of ``trajectory[:, T_in:]``, batched.

        Args:
            trajectory: physical trajectories ``[B, T, C, *S]``; the first ``T_in``
                frames are the initial window.
            params: per-trajectory parameters ``[B, P]`` when conditioned.
            num_samples: ``S``.
            generator: for the sampling noise (default: the global generator).

        Returns:
            ``pred [S, B, T - T_in, C, *S]`` and ``first_nonfinite [S, B]``.
        """
        repeated = None if params is None else params.repeat(num_samples, 1)
        t_in = self.hparams.time_history
        return sample_rollouts(
            lambda window: self.predict_next(window, repeated, generator),
            trajectory[:, :t_in],
            trajectory.shape[1] - t_in,
            num_samples,
        )

    @contextmanager
    def evaluation_noise(
        self, stage: str, batch_idx: int, dataloader_idx: int = 0
    ) -> Iterator[torch.Generator]:
        """Within the block, noise comes from a generator seeded for this batch."""
        entropy = [
            self.hparams.evaluation_seed,
            STAGE_SEEDS[stage],
            dataloader_idx,
            batch_idx,
            self.global_rank,
        ]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self._evaluation_generator = generator
        try:
            yield generator
        finally:
            self._evaluation_generator = None

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        with self.evaluation_noise("val", batch_idx, dataloader_idx):
            super().validation_step(batch, batch_idx, dataloader_idx)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        with self.evaluation_noise("test", batch_idx, dataloader_idx):
            super().test_step(batch, batch_idx, dataloader_idx)

    def _evaluate(
        self, batch: dict[str, Tensor], stage: str, dataloader_idx: int
    ) -> None:
        super()._evaluate(batch, stage, dataloader_idx)
        if (
            stage == "test"
            and dataloader_idx == 1
            and self.hparams.uncertainty_samples
            and self.hparams.num_refinement_steps
        ):
            self._evaluate_uncertainty(batch["trajectory"], batch.get("params"))

    def _evaluate_uncertainty(self, trajectory: Tensor, params: Tensor | None) -> None:
        result = self.rollout_samples(
            trajectory, params, self.hparams.uncertainty_samples
        )
        finite = (result.first_nonfinite < 0).all(dim=0)
        if not finite.any():
            return
        samples = result.pred[:, finite]
        target = trajectory[finite, self.hparams.time_history :]
        threshold = self.hparams.correlation_threshold
        dt = self.output_interval
        estimated = estimated_correlation_time(samples, threshold, dt)
        true = torch.stack(
            [
                metrics.correlation_time(
                    metrics.pearson_correlation(sample, target), threshold, dt
                )
                for sample in samples
            ]
        ).mean(dim=0)
        self.metrics["test_uncertainty_spread"].update(
            sample_spread(samples).mean(dim=1)
        )
        self.metrics["test_estimated_corr_time"].update(estimated)
        self.metrics["test_corr_time_estimate_r"].update(
            estimated.float(), true.float()
        )


class FitOnlyEMA(EMAWeightAveraging):
    """Lightning's `EMAWeightAveraging`, inert outside ``fit``.

    Lightning keeps a callback returned by ``configure_callbacks`` for later
    ``trainer.test``/``validate`` calls on the same trainer. The stock callback would
    then load a checkpoint's *raw* weights (``current_model_state``) over the EMA ones
    and swap its stale average in for validation, so ``fit`` followed by
    ``test(ckpt_path="best")`` (what ``physim.cli.train`` does) would evaluate the raw
    weights. This one drops its average when fitting ends (after copying it into the
    model) and restores checkpoints only while fitting.
    """

    def teardown(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str
    ) -> None:
        if stage == "fit":
            self._average_model = None

    def on_load_checkpoint(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        checkpoint: dict[str, Any],
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


def _posterior_coefficients(alpha_bar: list[float]) -> list[tuple[float, ...]]:
    """Per level ``k``: ``(sqrt(a_k), sqrt(1 - a_k), c0, c1, s)`` in float64 maths.

    ``y0_hat = sqrt(a_k) y_k - sqrt(1 - a_k) v_hat`` (v-prediction), and the DDPM
    posterior ``q(y_{k-1} | y_k, y_0)`` has mean ``c0 y_0 + c1 y_k`` and variance
    ``s^2`` with ``c0 = sqrt(a_{k-1}) b_k / (1 - a_k)``, ``c1 = sqrt(1 - b_k) (1 -
    a_{k-1}) / (1 - a_k)``, ``s^2 = (1 - a_{k-1}) b_k / (1 - a_k)``, ``b_k = 1 - a_k /
    a_{k-1}`` and ``a_{-1} = 1`` (Ho et al. 2020, eq. 7; diffusers'
    ``DDPMScheduler.step``). At ``k = 0``, ``(c0, c1, s) = (1, 0, 0)``: the last step
    returns ``y0_hat``.
    """
    out = []
    for k, a_k in enumerate(alpha_bar):
        a_prev = alpha_bar[k - 1] if k else 1.0
        b_k = 1.0 - a_k / a_prev
        c_estimate = math.sqrt(a_prev) * b_k / (1.0 - a_k)
        c_current = math.sqrt(1.0 - b_k) * (1.0 - a_prev) / (1.0 - a_k)
        std = math.sqrt((1.0 - a_prev) * b_k / (1.0 - a_k))
        out.append((math.sqrt(a_k), math.sqrt(1.0 - a_k), c_estimate, c_current, std))
    return out
