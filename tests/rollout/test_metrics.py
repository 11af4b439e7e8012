"""Rollout metrics against exact values, numpy references and Parseval's theorem."""

import itertools
import math

import numpy as np
import pytest
import torch

from physim.rollout import metrics as M

DTYPE = torch.float64


def random_fields(*shape, seed=0):
    return torch.randn(
        *shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE
    )


def grid(n):
    return torch.arange(n, dtype=DTYPE) / n


# --------------------------------------------------------------------- errors
def test_relative_l2_of_scaled_truth_is_the_scale_error():
    target = random_fields(3, 4, 2, 8, 8)
    rel = M.relative_l2(1.1 * target, target)
    assert rel.shape == (3, 4)
    torch.testing.assert_close(
        rel, torch.full((3, 4), 0.1, dtype=DTYPE), rtol=1e-12, atol=0
    )


def test_relative_l2_matches_a_numpy_reference_and_survives_a_zero_target():
    pred, target = random_fields(2, 3, 2, 5, seed=1), random_fields(2, 3, 2, 5, seed=2)
    p, t = pred.numpy().reshape(2, 3, -1), target.numpy().reshape(2, 3, -1)
    expected = np.linalg.norm(p - t, axis=-1) / np.linalg.norm(t, axis=-1)
    np.testing.assert_allclose(
        M.relative_l2(pred, target).numpy(), expected, rtol=1e-12
    )
    zero = M.relative_l2(
        torch.ones(1, 1, 1, 4, dtype=DTYPE), torch.zeros(1, 1, 1, 4, dtype=DTYPE)
    )
    assert torch.isfinite(zero).all()
    assert zero.item() == pytest.approx(2.0 / 1e-12)


def test_mse_exact():
    target = random_fields(2, 3, 1, 6, 6)
    torch.testing.assert_close(
        M.mse(target + 0.5, target), torch.full((2, 3), 0.25, dtype=DTYPE)
    )
    pred = random_fields(2, 3, 1, 6, 6, seed=3)
    expected = ((pred - target) ** 2).flatten(2).mean(-1)
    torch.testing.assert_close(M.mse(pred, target), expected)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"pred \(1, 2, 1, 4\) and target \(1, 2, 1, 5\)"
    ):
        M.mse(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 5))
    with pytest.raises(ValueError, match="at least 3 dims"):
        M.relative_l2(torch.zeros(4, 4), torch.zeros(4, 4))


# ---------------------------------------------------------------- correlation
def test_pearson_of_affine_maps_is_plus_or_minus_one():
    target = random_fields(3, 4, 2, 8, 8)
    one = torch.ones(3, 4, dtype=DTYPE)
    torch.testing.assert_close(M.pearson_correlation(2.5 * target - 7.0, target), one)
    torch.testing.assert_close(M.pearson_correlation(-target, target), -one)


def test_pearson_matches_numpy_corrcoef_per_sample_and_step():
    pred, target = (
        random_fields(2, 3, 2, 5, 5, seed=4),
        random_fields(2, 3, 2, 5, 5, seed=5),
    )
    pred = pred + 0.7 * target  # correlated, so the value is far from 0
    corr = M.pearson_correlation(pred, target).numpy()
    for b, t in itertools.product(range(2), range(3)):
        expected = np.corrcoef(
            pred[b, t].numpy().ravel(), target[b, t].numpy().ravel()
        )[0, 1]
        assert corr[b, t] == pytest.approx(expected, rel=1e-12)


def test_pearson_of_a_constant_field_is_zero_not_nan():
    target = random_fields(1, 2, 1, 8)
    assert torch.equal(
        M.pearson_correlation(torch.ones_like(target), target),
        torch.zeros(1, 2, dtype=DTYPE),
    )


def test_correlation_time_counts_leading_steps_above_threshold():
    corr = torch.tensor(
        [
            [0.90, 0.85, 0.70, 0.95],  # drops at step 2; the recovery does not count
            [0.90, 0.90, 0.90, 0.90],  # never drops: T * dt
            [0.50, 0.90, 0.90, 0.90],  # below at once: 0
            [0.80, math.nan, 0.9, 0.9],  # threshold itself counts; NaN counts as below
        ],
        dtype=DTYPE,
    )
    times = M.correlation_time(corr, threshold=0.8, dt=0.5)
    torch.testing.assert_close(times, torch.tensor([1.0, 2.0, 0.0, 0.5], dtype=DTYPE))


def test_batch_correlation_time_uses_the_mean_curve():
    corr = torch.tensor([[1.0, 0.9, 0.7, 0.6], [1.0, 0.9, 0.9, 0.6]], dtype=DTYPE)
    # Mean curve [1.0, 0.9, 0.8, 0.6]: three leading steps >= 0.8.
    assert M.batch_correlation_time(corr, 0.8, 2.0).item() == pytest.approx(6.0)
    # Mean of the per-trajectory times is different: (2 + 3) / 2 steps.
    assert M.correlation_time(corr, 0.8, 2.0).mean().item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"corr must be \[B, T\]"):
        M.correlation_time(torch.zeros(4), 0.8)


# ------------------------------------------------------------------- spectra
@pytest.mark.parametrize(
    ("shape", "mode", "shell"),
    [
        ((16,), (3,), 3),
        ((16, 16), (3, 4), 5),
        ((16, 12), (0, 5), 5),
        ((8, 8, 8), (1, 2, 2), 3),
    ],
)
def test_a_single_fourier_mode_lands_in_its_shell_with_its_power(shape, mode, shell):
    amplitude = 1.7
    coords = torch.meshgrid(*[grid(n) for n in shape], indexing="ij")
    phase = sum(2 * math.pi * k * x for k, x in zip(mode, coords, strict=True))
    u = (amplitude * torch.cos(phase + 0.3))[None, None, None]  # [1, 1, 1, *shape]
    spectrum = M.power_spectrum(u)[0, 0]
    assert spectrum.shape == (max(shape) // 2 + 1,)
    expected = torch.zeros_like(spectrum)
    expected[shell] = amplitude**2 / 2  # mean square of A cos(...)
    torch.testing.assert_close(spectrum, expected, atol=1e-12, rtol=0)


def test_constant_and_nyquist_modes_count_once():
    n = 8
    x = torch.arange(n, dtype=DTYPE)
    u = torch.stack([torch.full((n,), 2.0, dtype=DTYPE), 3.0 * (-1.0) ** x])
    spectrum = M.power_spectrum(u[:, None, None])  # [2, 1, K]
    torch.testing.assert_close(
        spectrum[0, 0], torch.tensor([4.0, 0, 0, 0, 0], dtype=DTYPE)
    )
    torch.testing.assert_close(
        spectrum[1, 0], torch.tensor([0, 0, 0, 0, 9.0], dtype=DTYPE)
    )


def test_corner_modes_go_into_the_last_shell():
    n = 8  # K = 5 shells (0..4); mode (4, 4) has |k| = 5.66
    x, y = torch.meshgrid(grid(n), grid(n), indexing="ij")
    u = torch.cos(2 * math.pi * (4 * x + 4 * y))[None, None, None]
    spectrum = M.power_spectrum(u)[0, 0]
    assert spectrum[:4].abs().max() < 1e-12
    assert spectrum[4].item() == pytest.approx(1.0)  # cos at Nyquist in both axes: +-1


@pytest.mark.parametrize("shape", [(16,), (15,), (16, 16), (12, 9), (7, 8, 6)])
def test_parseval_spectrum_sums_to_the_mean_square(shape):
    u = random_fields(2, 3, 2, *shape, seed=6)
    spectrum = M.power_spectrum(u)
    mean_square = u.square().flatten(3).mean(-1).sum(2)  # mean over space, sum channels
    torch.testing.assert_close(spectrum.sum(-1), mean_square, rtol=1e-12, atol=0)


@pytest.mark.parametrize("shape", [(12,), (9, 10), (6, 5, 4)])
def test_spectrum_matches_a_full_numpy_fft_binned_by_hand(shape):
    u = random_fields(1, 1, 1, *shape, seed=7)
    u_hat = np.fft.fftn(u[0, 0, 0].numpy()) / np.prod(shape)
    k = np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in shape], indexing="ij")
    shells = np.minimum(np.rint(np.sqrt(sum(g**2 for g in k))), max(shape) // 2).astype(
        int
    )
    expected = np.bincount(
        shells.ravel(), np.abs(u_hat.ravel()) ** 2, max(shape) // 2 + 1
    )
    np.testing.assert_allclose(M.power_spectrum(u)[0, 0].numpy(), expected, rtol=1e-10)


def test_error_spectrum_is_the_spectrum_of_the_difference():
    pred, target = (
        random_fields(2, 2, 1, 8, 8, seed=8),
        random_fields(2, 2, 1, 8, 8, seed=9),
    )
    torch.testing.assert_close(
        M.error_spectrum(pred, target), M.power_spectrum(pred - target)
    )
    assert M.error_spectrum(target, target).abs().max() == 0


def test_power_spectrum_needs_a_spatial_dim():
    with pytest.raises(ValueError, match="at least one spatial"):
        M.power_spectrum(torch.zeros(2, 3, 4))


# ------------------------------------------------------- baseline and finiteness
def test_persistence_baseline_repeats_the_last_frame():
    last = random_fields(2, 3, 4, 4)
    base = M.persistence_baseline(last, 5)
    assert base.shape == (2, 5, 3, 4, 4)
    for t in range(5):
        assert torch.equal(base[:, t], last)


def test_finite_mask_and_first_nonfinite_step():
    pred = torch.zeros(3, 5, 2, 4)
    pred[1, 2, 1, 3] = math.nan
    pred[1, 4, 0, 0] = math.inf
    pred[2, 0, 0, 0] = -math.inf
    mask = M.finite_mask(pred)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [
        [True] * 5,
        [True, True, False, True, False],
        [False, True, True, True, True],
    ]
    assert M.first_nonfinite_step(pred).tolist() == [-1, 2, 0]


def test_dtype_is_kept_and_half_precision_reduced_in_float32():
    target = random_fields(1, 2, 1, 8).float()
    assert M.relative_l2(target, target).dtype == torch.float32
    assert M.power_spectrum(target).dtype == torch.float32
    assert M.relative_l2(target.half(), target.half()).dtype == torch.float32


def test_trajectory_relative_l2_is_the_fno_papers_metric_by_hand():
    # 2 samples, 3 steps, 1 channel, 2 points. The FNO paper's number is the relative
    # L2 of the whole [T, C, *space] prediction per sample, averaged over samples; the
    # mean of per-step relative L2 is a different number.
    target = torch.tensor(
        [
            [[[3.0, 4.0]], [[0.0, 1.0]], [[1.0, 0.0]]],
            [[[1.0, 1.0]], [[2.0, 2.0]], [[0.0, 2.0]]],
        ]
    )
    pred = target.clone()
    pred[0, 1, 0, 1] = 2.0  # sample 0: one error of 1 at step 1
    pred[1, 2, 0, 0] = 3.0  # sample 1: one error of 3 at step 2
    # Norms: sqrt(9 + 16 + 1 + 1) = sqrt(27) and sqrt(1 + 1 + 4 + 4 + 4) = sqrt(14).
    expected = torch.tensor([1 / 27**0.5, 3 / 14**0.5])
    torch.testing.assert_close(M.trajectory_relative_l2(pred, target), expected)
    paper = (1 / 27**0.5 + 3 / 14**0.5) / 2
    assert M.trajectory_relative_l2(pred, target).mean().item() == pytest.approx(paper)
    # Per-step mean: sample 0 step 1 error 1/1, sample 1 step 2 error 3/2.
    per_step = M.relative_l2(pred, target).mean().item()
    assert per_step == pytest.approx((1.0 + 1.5) / 6)
    assert abs(per_step - paper) > 0.05  # 0.417 against 0.497


def test_score_rollout_counts_diverged_trajectories():
    target = torch.ones(3, 4, 1, 5)
    last = torch.full((3, 1, 5), 0.5)  # persistence error 0.5 every step
    pred = target + 0.1
    pred[1, 2:] = torch.nan  # diverges at step 2
    pred[2] = 1e300 * 1e10  # inf from the start (float32 overflow)
    scores = M.score_rollout(pred, target, last)
    assert scores.finite.tolist() == [True, False, False]
    torch.testing.assert_close(scores.relative_l2[0], torch.full((4,), 0.1))
    torch.testing.assert_close(
        scores.relative_l2[1],
        torch.tensor([0.1, 0.1, 1.0, 1.0]),  # max(0.5, 1)
    )
    torch.testing.assert_close(scores.relative_l2[2], torch.ones(4))
    assert scores.correlation[1, 2:].eq(0).all()
    torch.testing.assert_close(scores.full_relative_l2[1:], torch.ones(2))
    # A persistence error above 1 is the penalty instead.
    far = M.score_rollout(pred, target, torch.full((3, 1, 5), -2.0))
    torch.testing.assert_close(far.relative_l2[1, 2:], torch.full((2,), 3.0))
