"""Uncertainty of stochastic rollouts: several samples, their spread and agreement.

A stochastic stepper (PDE-Refiner's denoising sampler, an ensemble member chosen at
random, ...) rolled out ``S`` times from the same initial window gives ``S`` sample
trajectories ``[S, B, T, C, *space]``. Where the samples agree, the model is confident;
the time at which they stop agreeing estimates the time at which the rollout stops
agreeing with the truth (Lippe et al. 2023, Sec. 4.4: the samples' mutual correlation
falling below the same threshold as the correlation with the truth).

The ``S`` rollouts are run as one batch of ``S * B`` trajectories through
:func:`physim.rollout.rollout`, so a sample costs no extra Python loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor

from . import metrics
from ._engine import RolloutResult, rollout

__all__ = [
    "estimated_correlation_time",
    "sample_correlation",
    "sample_rollouts",
    "sample_spread",
    "time_estimate_correlation",
]


def _check_samples(samples: Tensor, name: str) -> None:
    if samples.ndim < 4 or samples.shape[0] < 2:
        raise ValueError(
            f"{name}: expected samples [S, B, T, C, *space] with S >= 2, got shape "
            f"{tuple(samples.shape)}; draw at least two samples (sample_rollouts)."
        )


def sample_rollouts(
    step_fn: Callable[[Tensor], Tensor],
    initial: Float[Tensor, "B T_in C *S"],
    n_steps: int,
    num_samples: int,
    *,
    history: int | None = None,
    progress: bool = False,
) -> RolloutResult:
    """Roll a stochastic ``step_fn`` out ``num_samples`` times, batched.

    ``step_fn`` sees the ``S`` copies of the batch stacked sample-major: row
    ``s * B + b`` of its window is sample ``s`` of trajectory ``b``. Per-trajectory
    inputs that ``step_fn`` closes over (PDE parameters) must be repeated the same way,
    ``params.repeat(S, 1)``.

    Args:
        step_fn: a stochastic window stepper (see :func:`physim.rollout.rollout`).
        initial: the initial frames ``[B, T, C, *space]``.
        n_steps: frames to predict.
        num_samples: ``S >= 1``.
        history: window length, as in :func:`physim.rollout.rollout`.
        progress: show a progress bar.

    Returns:
        :class:`RolloutResult` with ``pred [S, B, n_steps, C, *space]`` and
        ``first_nonfinite [S, B]``.

    Raises:
        ValueError: ``num_samples < 1`` (and whatever :func:`rollout` refuses).
    """
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int)
        or num_samples < 1
    ):
        raise ValueError(
            "sample_rollouts: num_samples must be an integer >= 1, got "
            f"{num_samples!r}."
        )
    batch = initial.shape[0]
    repeated = initial.repeat(num_samples, *([1] * (initial.ndim - 1)))
    result = rollout(step_fn, repeated, n_steps, history=history, progress=progress)
    return RolloutResult(
        result.pred.unflatten(0, (num_samples, batch)),
        result.first_nonfinite.unflatten(0, (num_samples, batch)),
    )


def sample_spread(samples: Float[Tensor, "S B T C *X"]) -> Float[Tensor, "B T"]:
    """Spread of the samples per trajectory and step.

    The standard deviation over samples (unbiased, ``S - 1`` in the denominator) at
    every point, as a root mean square over channels and space: the typical distance
    of a sample from the sample mean, in the field's units.
    """
    _check_samples(samples, "sample_spread")
    samples = samples.to(torch.promote_types(samples.dtype, torch.float32))
    variance = samples.var(dim=0, correction=1)  # [B, T, C, *space]
    return variance.flatten(2).mean(dim=-1).sqrt()


def sample_correlation(samples: Float[Tensor, "S B T C *X"]) -> Float[Tensor, "B T"]:
    """Mean Pearson correlation between distinct samples, per trajectory and step.

    The average of :func:`physim.rollout.metrics.pearson_correlation` over the
    ``S (S - 1) / 2`` pairs of samples. It starts near 1 and decays as the samples
    diverge.
    """
    _check_samples(samples, "sample_correlation")
    pairs = list(itertools.combinations(range(samples.shape[0]), 2))
    total = sum(metrics.pearson_correlation(samples[i], samples[j]) for i, j in pairs)
    return total / len(pairs)


def estimated_correlation_time(
    samples: Float[Tensor, "S B T C *X"],
    threshold: float = 0.8,
    dt: float | Tensor = 1.0,
) -> Float[Tensor, " B"]:
    """Estimate of the high-correlation time from the samples alone.

    The time until the samples' mutual correlation (:func:`sample_correlation`) first
    drops below ``threshold`` (:func:`physim.rollout.metrics.correlation_time`): an
    estimate, needing no truth, of when a rollout stops correlating with the truth.

    Args:
        samples: ``[S, B, T, C, *space]`` sample rollouts, ``S >= 2``.
        threshold: the correlation threshold (0.8 in PDE-Refiner).
        dt: time between steps, a number or one value per trajectory ``[B]``.

    Returns:
        ``[B]`` times.
    """
    return metrics.correlation_time(sample_correlation(samples), threshold, 1.0) * dt


def time_estimate_correlation(
    estimated: Float[Tensor, " N"], true: Float[Tensor, " N"]
) -> Float[Tensor, ""]:
    """Pearson correlation coefficient between estimated and true times over a set.

    How well the uncertainty estimate tracks the true failure time across the
    trajectories of a test set (1: perfectly, up to an affine map). ``NaN`` when
    either has no variance.

    Raises:
        ValueError: the two are not 1-D of the same length >= 2.
    """
    if estimated.ndim != 1 or estimated.shape != true.shape or estimated.numel() < 2:
        raise ValueError(
            "time_estimate_correlation: estimated and true must be 1-D with the same "
            f"length >= 2, got {tuple(estimated.shape)} and {tuple(true.shape)}."
        )
    stacked = torch.stack([estimated, true]).to(torch.float64)
    return torch.corrcoef(stacked)[0, 1].to(estimated.dtype)
