"""Rollout metrics: pure per-sample, per-step functions of ``[B, T, C, *space]``.

Every error metric reduces over channels and space only, so it returns ``[B, T]`` (one
value per trajectory and step); averaging over trajectories and steps is left to the
caller (a task's :class:`physim.tasks.RolloutMetrics`, or
:class:`physim.rollout.RolloutReport`). A trajectory that diverges must neither turn
every mean into NaN nor silently drop out of it (survivorship bias: a model whose
rollouts blow up would look better than one whose rollouts merely drift):
:func:`score_rollout` counts it, from the step it diverged, with the error of the
persistence forecast or 1, whichever is larger (:func:`counted_relative_l2`).

Low-precision inputs (float16, bfloat16) are reduced in float32; float32 and float64
stay as they are. Nothing here changes the device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from physim.solvers import staggered_vorticity

__all__ = [
    "DIVERGED_ERROR_FLOOR",
    "RolloutScores",
    "batch_correlation_time",
    "correlation_time",
    "cosine_correlation",
    "counted_correlation",
    "counted_relative_l2",
    "diverged_steps",
    "earliest_nonfinite",
    "trajectory_relative_l2",
    "error_spectrum",
    "finite_mask",
    "first_nonfinite_step",
    "highly_correlated_duration",
    "mse",
    "pearson_correlation",
    "persistence_baseline",
    "power_spectrum",
    "relative_l2",
    "score_rollout",
    "vorticity_correlation",
]


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred and target must have the same shape [B, T, C, *space], got "
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)}."
        )
    if pred.ndim < 3:
        raise ValueError(
            f"{name}: expected tensors [B, T, C, *space] (at least 3 dims), got shape "
            f"{tuple(pred.shape)}; add the missing batch/time/channel dims with "
            "unsqueeze."
        )


def _reduce_dtype(x: Tensor) -> Tensor:
    """Upcast half precision for sums over many elements; keep float32/float64."""
    if x.dtype in (torch.float16, torch.bfloat16) or not x.is_floating_point():
        return x.float()
    return x


def _flat(x: Tensor) -> Tensor:
    """``[B, T, C, *space] -> [B, T, C * prod(space)]``."""
    return _reduce_dtype(x).flatten(2)


def mse(
    pred: Float[Tensor, "B T C *S"], target: Float[Tensor, "B T C *S"]
) -> Float[Tensor, "B T"]:
    """Mean squared error over channels and space, per sample and step."""
    _check_pair(pred, target, "mse")
    return (_flat(pred) - _flat(target)).square().mean(dim=-1)


def relative_l2(
    pred: Float[Tensor, "B T C *S"],
    target: Float[Tensor, "B T C *S"],
    eps: float = 1e-12,
) -> Float[Tensor, "B T"]:
    """Relative L2 error ``||pred - target||_2 / ||target||_2`` over channels and space.

    This is the FNO paper's test metric (Li et al. 2021, ``LpLoss`` with ``p=2``) and
    equals PDEBench's nRMSE (RMSE over the RMS of the truth) when taken over all
    channels together.

    Args:
        pred: predictions ``[B, T, C, *space]``.
        target: truth, same shape.
        eps: the truth's norm is clamped to at least ``eps`` so an all-zero target
            gives a large finite value instead of ``inf``/``NaN``. (Clamping rather
            than adding ``eps``, as some codes do, keeps the value exact whenever the
            norm exceeds ``eps``.)

    Returns:
        ``[B, T]`` relative errors.
    """
    _check_pair(pred, target, "relative_l2")
    diff = torch.linalg.vector_norm(_flat(pred) - _flat(target), dim=-1)
    norm = torch.linalg.vector_norm(_flat(target), dim=-1)
    return diff / norm.clamp_min(eps)


def trajectory_relative_l2(
    pred: Float[Tensor, "B T C *S"],
    target: Float[Tensor, "B T C *S"],
    eps: float = 1e-12,
) -> Float[Tensor, " B"]:
    """Relative L2 error of each whole predicted trajectory (all steps at once).

    ``||pred - target||_2 / ||target||_2`` over time, channels and space: the FNO
    paper's test metric for its time-dependent problems (Li et al. 2021,
    ``fourier_2d_time.py``: ``test_l2_full``, the relative L2 of the whole
    ``[S, S, T]`` prediction per sample, averaged over samples). It weights steps by
    the truth's norm and is not the mean of :func:`relative_l2` over steps (the
    per-step mean physim reports as ``rel_l2_mean``); for a decaying flow it weights
    the early, larger-norm steps more.
    """
    _check_pair(pred, target, "trajectory_relative_l2")
    p, t = _reduce_dtype(pred).flatten(1), _reduce_dtype(target).flatten(1)
    diff = torch.linalg.vector_norm(p - t, dim=-1)
    return diff / torch.linalg.vector_norm(t, dim=-1).clamp_min(eps)


def pearson_correlation(
    pred: Float[Tensor, "B T C *S"],
    target: Float[Tensor, "B T C *S"],
    eps: float = 1e-12,
) -> Float[Tensor, "B T"]:
    """Pearson correlation of prediction and truth per sample and step.

    Both fields are flattened over channels and space and their means removed, as in
    PDE-Refiner (Lippe et al. 2023) and the Kolmogorov-flow studies (Kochkov et al.
    2021) that define the "high-correlation time".

    Args:
        pred: predictions ``[B, T, C, *space]``.
        target: truth, same shape.
        eps: lower bound on the product of the two norms; a constant field (zero
            variance), whose correlation is undefined, then gets correlation 0 instead
            of ``NaN`` (so it counts as decorrelated).

    Returns:
        ``[B, T]`` correlations in ``[-1, 1]`` (``NaN`` where ``pred`` is non-finite).
    """
    _check_pair(pred, target, "pearson_correlation")
    p = _flat(pred)
    t = _flat(target)
    p = p - p.mean(dim=-1, keepdim=True)
    t = t - t.mean(dim=-1, keepdim=True)
    norms = torch.linalg.vector_norm(p, dim=-1) * torch.linalg.vector_norm(t, dim=-1)
    return (p * t).sum(dim=-1) / norms.clamp_min(eps)


def correlation_time(
    corr: Float[Tensor, "B T"], threshold: float = 0.8, dt: float = 1.0
) -> Float[Tensor, " B"]:
    """Time until the correlation first drops below ``threshold``, per trajectory.

    PDE-Refiner's convention: the number of *leading* steps whose correlation is at
    least ``threshold``, times ``dt`` (the output interval). A trajectory that never
    drops below gets ``T * dt``; one below threshold at its first step gets 0. A later
    recovery above the threshold does not count. ``NaN`` counts as below the threshold.

    Args:
        corr: correlations ``[B, T]`` (e.g. from :func:`pearson_correlation`).
        threshold: the correlation threshold (0.8 in PDE-Refiner; 0.95 is also common).
        dt: time between steps.

    Returns:
        ``[B]`` times (floating point, on ``corr``'s device).
    """
    if corr.ndim != 2:
        raise ValueError(
            f"correlation_time: corr must be [B, T], got shape {tuple(corr.shape)}; "
            "pass pearson_correlation(pred, target) (or add a batch dim)."
        )
    above = (corr >= threshold).long()
    # cumprod zeroes everything after the first drop, so the sum counts leading steps.
    steps = above.cumprod(dim=1).sum(dim=1)
    dtype = corr.dtype if corr.is_floating_point() else torch.get_default_dtype()
    return steps.to(dtype) * dt


def batch_correlation_time(
    corr: Float[Tensor, "B T"], threshold: float = 0.8, dt: float = 1.0
) -> Float[Tensor, ""]:
    """:func:`correlation_time` of the batch-mean correlation curve (a scalar tensor).

    This is the "high-correlation time" of Kochkov et al. (2021) and PDE-Refiner: first
    average the correlation over trajectories, then find where the mean drops. It is
    generally longer than the mean of per-trajectory times. Non-finite trajectories make
    the mean ``NaN`` (time 0): select the finite ones first (:func:`finite_mask`).
    """
    if corr.ndim != 2 or corr.shape[0] == 0:
        raise ValueError(
            "batch_correlation_time: corr must be [B, T] with B >= 1, got shape "
            f"{tuple(corr.shape)}."
        )
    return correlation_time(corr.mean(dim=0, keepdim=True), threshold, dt)[0]


def cosine_correlation(
    pred: Float[Tensor, "B T C *S"],
    target: Float[Tensor, "B T C *S"],
    eps: float = 1e-12,
) -> Float[Tensor, "B T"]:
    """Cosine similarity of prediction and truth per sample and step (no mean removal).

    ``<p, t> / (||p|| ||t||)`` over channels and space: the "vorticity correlation" of
    Kochkov et al. (2021) and TSM (Sun et al. 2023) when given vorticities. Unlike
    :func:`pearson_correlation` the means are kept, which makes no difference for
    zero-mean fields (vorticity on a periodic domain) and otherwise rewards a correct
    mean.

    Args:
        pred: predictions ``[B, T, C, *space]``.
        target: truth, same shape.
        eps: lower bound on the product of the norms (a zero field gives 0).

    Returns:
        ``[B, T]`` correlations in ``[-1, 1]``.
    """
    _check_pair(pred, target, "cosine_correlation")
    p, t = _flat(pred), _flat(target)
    norms = torch.linalg.vector_norm(p, dim=-1) * torch.linalg.vector_norm(t, dim=-1)
    return (p * t).sum(dim=-1) / norms.clamp_min(eps)


def vorticity_correlation(
    pred: Float[Tensor, "B T 2 X Y"], target: Float[Tensor, "B T 2 X Y"]
) -> Float[Tensor, "B T"]:
    """:func:`cosine_correlation` of the vorticities of two staggered (MAC) velocities.

    The vorticity ``dv/dx - du/dy`` is taken at the cell corners with periodic
    differences (:func:`physim.solvers.staggered_vorticity`); the grid spacing cancels.
    Channels are ``(u, v)`` with ``u`` on the x-faces and ``v`` on the y-faces.
    """
    _check_pair(pred, target, "vorticity_correlation")
    if pred.ndim != 5 or pred.shape[2] != 2:
        raise ValueError(
            "vorticity_correlation: expected 2-D velocities [B, T, 2, X, Y], got shape "
            f"{tuple(pred.shape)}."
        )
    return cosine_correlation(
        staggered_vorticity(pred).unsqueeze(2), staggered_vorticity(target).unsqueeze(2)
    )


def highly_correlated_duration(
    corr: Float[Tensor, "B T"],
    dt: float,
    threshold: float = 0.8,
    horizon: float = 20.0,
) -> Float[Tensor, ""]:
    """Time within the first ``horizon`` time units with mean correlation > threshold.

    TSM's metric (Sun et al. 2023, after Kochkov et al. 2021): the correlation is
    first averaged over samples, then the steps ``k`` with ``(k + 1) dt <= horizon``
    whose mean exceeds ``threshold`` are counted and multiplied by ``dt``. Unlike
    :func:`batch_correlation_time` it counts every such step, not only the leading
    ones (the two agree while the mean decays monotonically). NaN counts as below.

    Args:
        corr: ``[B, T]`` correlations; step ``k`` is ``(k + 1) dt`` after the start.
        dt: time between steps.
        threshold: 0.8 in the papers.
        horizon: 20 time units in the papers.

    Returns:
        A scalar tensor (time units).
    """
    if corr.ndim != 2 or corr.shape[0] == 0:
        raise ValueError(
            "highly_correlated_duration: corr must be [B, T] with B >= 1, got shape "
            f"{tuple(corr.shape)}."
        )
    if not dt > 0:
        raise ValueError(f"highly_correlated_duration: dt must be > 0, got {dt!r}.")
    steps = min(corr.shape[1], int(horizon / dt + 1e-9))  # (k + 1) dt <= horizon
    mean = corr[:, :steps].mean(dim=0)
    dtype = corr.dtype if corr.is_floating_point() else torch.get_default_dtype()
    return (mean > threshold).sum().to(dtype) * dt


def _shell_index(spatial_shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Integer wavenumber shell of every rfftn coefficient, clamped to ``K - 1``."""
    freqs = [torch.fft.fftfreq(n, d=1.0 / n, device=device) for n in spatial_shape[:-1]]
    freqs.append(
        torch.fft.rfftfreq(spatial_shape[-1], d=1.0 / spatial_shape[-1], device=device)
    )
    grids = torch.meshgrid(*freqs, indexing="ij")
    magnitude = torch.sqrt(sum(g.square() for g in grids))
    num_bins = max(spatial_shape) // 2 + 1
    # Nearest shell (|k| is never exactly half-integer on an integer lattice).
    return torch.round(magnitude).long().clamp_max(num_bins - 1)


def _rfft_weight(spatial_shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Multiplicity of each rfft coefficient in the full spectrum (1 or 2).

    The half spectrum stores ``k_last >= 0`` only; every coefficient with a distinct
    conjugate partner (``0 < k_last < n / 2``) stands for two modes of the full
    spectrum.
    The ``k_last = 0`` column and, for even ``n``, the Nyquist column are their own
    partners and count once.
    """
    n = spatial_shape[-1]
    weight = torch.full((n // 2 + 1,), 2.0, device=device)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return weight


def power_spectrum(u: Float[Tensor, "B T C *S"]) -> Float[Tensor, "B T K"]:
    """Power spectrum of ``u`` by integer wavenumber magnitude, summed over channels.

    Uses ``torch.fft.rfftn`` over the spatial dims with ``norm="forward"`` (coefficients
    are means, not sums). The power ``|u_hat_k|^2`` of every Fourier mode is added into
    the shell ``round(|k|)`` where ``k`` is the integer wave vector (mode index per
    axis, i.e. wavenumber in units of 2 pi over the domain length). There are
    ``K = max(space) // 2 + 1`` shells; in 2-D/3-D the corner modes with
    ``|k| > K - 1`` are added into the last shell, so nothing is lost: by Parseval the
    spectrum sums to the mean square of ``u`` (summed over channels),
    ``power_spectrum(u).sum(-1) == u.square().mean(space).sum(channel)``.

    Numerics: alternatives are dropping the corner modes (common in turbulence plots;
    it breaks Parseval), or ``K = ceil(sqrt(d) * N / 2)`` shells (keeps them apart but
    makes the top shells sparsely filled); physim keeps ``N // 2 + 1`` shells so that
    the error and truth spectra of different resolutions line up, and keeps Parseval.

    Args:
        u: fields ``[B, T, C, *space]`` with at least one spatial dim.

    Returns:
        ``[B, T, K]`` power per shell, real, on ``u``'s device.
    """
    if u.ndim < 4:
        raise ValueError(
            "power_spectrum: expected [B, T, C, *space] with at least one spatial "
            f"dim, got shape {tuple(u.shape)}."
        )
    spatial_shape = tuple(u.shape[3:])
    dims = tuple(range(3, u.ndim))
    u_hat = torch.fft.rfftn(_reduce_dtype(u), dim=dims, norm="forward")
    power = u_hat.real.square() + u_hat.imag.square()
    power = (power * _rfft_weight(spatial_shape, u.device)).sum(dim=2)  # over channels
    shells = _shell_index(spatial_shape, u.device).flatten()
    num_bins = max(spatial_shape) // 2 + 1
    out = power.new_zeros(*power.shape[:2], num_bins)
    return out.index_add(-1, shells, power.flatten(2))


def error_spectrum(
    pred: Float[Tensor, "B T C *S"], target: Float[Tensor, "B T C *S"]
) -> Float[Tensor, "B T K"]:
    """Power spectrum (:func:`power_spectrum`) of the error ``pred - target``."""
    _check_pair(pred, target, "error_spectrum")
    return power_spectrum(_reduce_dtype(pred) - _reduce_dtype(target))


def persistence_baseline(
    history_last: Float[Tensor, "B C *S"], n_steps: int
) -> Float[Tensor, "B T C *S"]:
    """The persistence forecast: the last known frame repeated ``n_steps`` times.

    Returns a broadcast view (no copy) of shape ``[B, n_steps, C, *space]``; clone it
    before writing into it.
    """
    if n_steps < 0:
        raise ValueError(f"persistence_baseline: n_steps must be >= 0, got {n_steps}.")
    if history_last.ndim < 2:
        raise ValueError(
            "persistence_baseline: history_last must be one frame per trajectory "
            f"[B, C, *space], got shape {tuple(history_last.shape)}."
        )
    b, *rest = history_last.shape
    return history_last.unsqueeze(1).expand(b, n_steps, *rest)


def finite_mask(pred: Float[Tensor, "B T C *S"]) -> Bool[Tensor, "B T"]:
    """``True`` where every value of the frame (all channels and points) is finite."""
    if pred.ndim < 3:
        raise ValueError(
            f"finite_mask: expected [B, T, C, *space], got shape {tuple(pred.shape)}."
        )
    return torch.isfinite(pred).flatten(2).all(dim=-1)


def first_nonfinite_step(pred: Float[Tensor, "B T C *S"]) -> Int[Tensor, " B"]:
    """Per trajectory, the first step index with a non-finite value, or -1 if none."""
    bad = ~finite_mask(pred)
    # argmax returns the first maximal index; rows with no bad step are masked to -1.
    first = (
        bad.long().argmax(dim=1) if bad.shape[1] else bad.new_zeros(bad.shape[0]).long()
    )
    return torch.where(bad.any(dim=1), first, torch.full_like(first, -1))


def earliest_nonfinite(
    found: Int[Tensor, " B"], given: Int[Tensor, " B"] | None
) -> Int[Tensor, " B"]:
    """The earlier of two first-non-finite-step records per trajectory (-1: none).

    -1 only where both say finite; ``given`` may be ``None`` (then ``found``).
    """
    if given is None:
        return found
    given = given.to(found.device, torch.long).reshape(-1)
    if given.shape != found.shape:
        raise ValueError(
            f"first_nonfinite must have one entry per trajectory ({found.shape[0]}), "
            f"got shape {tuple(given.shape)}."
        )
    big = torch.iinfo(torch.long).max
    merged = torch.minimum(given.where(given >= 0, big), found.where(found >= 0, big))
    return merged.where(merged < big, -1)


# --------------------------------------------------------------------------- diverged
#: The smallest relative L2 error a diverged step counts as: a forecast that has lost
#: the state entirely is at least as wrong as predicting zero.
DIVERGED_ERROR_FLOOR = 1.0


def diverged_steps(
    first_nonfinite: Int[Tensor, " B"], values: Float[Tensor, "B T"]
) -> Bool[Tensor, "B T"]:
    """``True`` from the step each trajectory diverged on, ``False`` before it.

    A trajectory diverges at its first non-finite frame (``first_nonfinite``, -1 for
    none) or at the first step whose metric ``values`` is itself non-finite (a finite
    but overflowing prediction), whichever comes first; it stays diverged after.
    """
    if values.ndim != 2 or first_nonfinite.shape != values.shape[:1]:
        raise ValueError(
            "diverged_steps: expected first_nonfinite [B] and values [B, T], got "
            f"shapes {tuple(first_nonfinite.shape)} and {tuple(values.shape)}."
        )
    steps = torch.arange(values.shape[1], device=values.device)
    first = first_nonfinite.to(values.device)[:, None]
    from_nonfinite = (first >= 0) & (steps[None, :] >= first)
    from_metric = (~torch.isfinite(values)).long().cummax(dim=1).values.bool()
    return from_nonfinite | from_metric


def counted_relative_l2(
    rel_l2: Float[Tensor, "B T"],
    first_nonfinite: Int[Tensor, " B"],
    baseline: Float[Tensor, "B T"] | None = None,
) -> Float[Tensor, "B T"]:
    """Relative L2 per step with diverged trajectories counted, never dropped.

    The rule: from the step a trajectory diverged on (:func:`diverged_steps`), it
    contributes the persistence baseline's error at that step or
    :data:`DIVERGED_ERROR_FLOOR` (1), whichever is larger; before it, its own error.
    So a model that blows up can never score better than persistence on those steps,
    and a mean over every trajectory stays finite.

    Args:
        rel_l2: the model's :func:`relative_l2` ``[B, T]``.
        first_nonfinite: first non-finite step per trajectory (-1: none).
        baseline: the persistence forecast's relative L2 ``[B, T]`` (``None``: 1).
    """
    diverged = diverged_steps(first_nonfinite, rel_l2)
    floor = torch.full_like(rel_l2, DIVERGED_ERROR_FLOOR)
    penalty = floor if baseline is None else torch.maximum(baseline.to(floor), floor)
    return torch.where(diverged, penalty, rel_l2)


def counted_correlation(
    corr: Float[Tensor, "B T"],
    first_nonfinite: Int[Tensor, " B"],
    baseline: Float[Tensor, "B T"] | None = None,
) -> Float[Tensor, "B T"]:
    """Correlation per step with diverged trajectories counted (the mirror rule).

    From the step a trajectory diverged on it contributes the persistence baseline's
    correlation or 0, whichever is smaller: a diverged forecast counts as
    decorrelated, so it ends its correlation time and pulls the batch mean down.
    """
    diverged = diverged_steps(first_nonfinite, corr)
    zero = torch.zeros_like(corr)
    penalty = zero if baseline is None else torch.minimum(baseline.to(zero), zero)
    return torch.where(diverged, penalty, corr)


class RolloutScores(NamedTuple):
    """Per-step scores of a batch of rollouts, diverged trajectories counted.

    Attributes:
        relative_l2: :func:`counted_relative_l2` ``[B, T]``.
        correlation: :func:`counted_correlation` ``[B, T]``.
        finite: ``[B]``, whether the trajectory never diverged (for the finite-only
            metrics, which are reported beside the counted ones, never instead).
        full_relative_l2: ``[B]`` :func:`trajectory_relative_l2` (the FNO paper's
            metric); a diverged trajectory counts the persistence forecast's value or
            1, whichever is larger.
    """

    relative_l2: Float[Tensor, "B T"]
    correlation: Float[Tensor, "B T"]
    finite: Bool[Tensor, " B"]
    full_relative_l2: Float[Tensor, " B"]


def score_rollout(
    pred: Float[Tensor, "B T C *S"],
    target: Float[Tensor, "B T C *S"],
    last_input: Float[Tensor, "B C *S"],
    first_nonfinite: Int[Tensor, " B"] | None = None,
    correlation: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> RolloutScores:
    """Score rollouts against the truth, counting diverged trajectories.

    The persistence forecast (``last_input`` repeated) supplies the penalty of a
    diverged step (:func:`counted_relative_l2`, :func:`counted_correlation`).

    Args:
        pred: predictions ``[B, T, C, *space]``.
        target: truth, same shape.
        last_input: the last frame the model saw ``[B, C, *space]``.
        first_nonfinite: from :func:`physim.rollout.rollout` (``None``: found here).
        correlation: per-step correlation ``(pred, target) -> [B, T]``
            (default :func:`pearson_correlation`; :func:`vorticity_correlation` for
            staggered velocities).
    """
    correlation = correlation or pearson_correlation
    found = earliest_nonfinite(first_nonfinite_step(pred), first_nonfinite)
    baseline = persistence_baseline(last_input, pred.shape[1])
    raw = relative_l2(pred, target)
    rel_l2 = counted_relative_l2(raw, found, relative_l2(baseline, target))
    corr = counted_correlation(
        correlation(pred, target), found, correlation(baseline, target)
    )
    finite = ~diverged_steps(found, raw).any(dim=1)
    full = trajectory_relative_l2(pred, target)
    full_penalty = trajectory_relative_l2(baseline, target).clamp_min(
        DIVERGED_ERROR_FLOOR
    )
    full = torch.where(finite, full, full_penalty.to(full))
    return RolloutScores(rel_l2, corr, finite, full)
