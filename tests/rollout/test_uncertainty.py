"""Sample rollouts, their spread and agreement, and the failure-time estimate."""

import numpy as np
import pytest
import torch

from physim.rollout import (
    estimated_correlation_time,
    metrics,
    sample_correlation,
    sample_rollouts,
    sample_spread,
    time_estimate_correlation,
)


def test_sample_rollouts_are_one_batch_in_sample_major_order():
    calls = []

    def step(window):
        calls.append(window.shape[0])
        # Deterministic in the row: sample s of trajectory b moves by 10 s + b.
        rows = torch.arange(window.shape[0], dtype=window.dtype)
        shift = 10.0 * (rows // 3) + rows % 3
        return window[:, -1:] + shift.view(-1, 1, 1, 1)

    initial = torch.zeros(3, 1, 1, 4)
    result = sample_rollouts(step, initial, n_steps=5, num_samples=2)
    assert result.pred.shape == (2, 3, 5, 1, 4)
    assert calls == [6] * 5  # S * B rows per call, no loop over samples
    steps = torch.arange(1, 6, dtype=torch.float32)
    for s in range(2):
        for b in range(3):
            expected = (10.0 * s + b) * steps
            torch.testing.assert_close(result.pred[s, b, :, 0, 0], expected)
    assert (result.first_nonfinite == -1).all()


def test_sample_rollouts_rejects_a_bad_sample_count():
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        sample_rollouts(lambda w: w, torch.zeros(1, 1, 1, 4), 2, 0)


def test_spread_is_the_sample_standard_deviation():
    a = torch.randn(2, 3, 1, 16, dtype=torch.float64)
    b = a + 0.5  # every point differs by 0.5: unbiased std 0.5 / sqrt(2)
    spread = sample_spread(torch.stack([a, b]))
    torch.testing.assert_close(
        spread, torch.full((2, 3), 0.5 / np.sqrt(2.0), dtype=torch.float64)
    )


def test_sample_correlation_is_the_mean_pairwise_pearson():
    samples = torch.randn(3, 2, 4, 1, 32, dtype=torch.float64)
    expected = (
        metrics.pearson_correlation(samples[0], samples[1])
        + metrics.pearson_correlation(samples[0], samples[2])
        + metrics.pearson_correlation(samples[1], samples[2])
    ) / 3
    torch.testing.assert_close(sample_correlation(samples), expected)
    same = samples[:1].expand(3, -1, -1, -1, -1)
    torch.testing.assert_close(
        sample_correlation(same), torch.ones(2, 4, dtype=torch.float64)
    )


def test_estimated_time_is_when_the_samples_stop_agreeing():
    # Trajectory b: the two samples are identical for the first 3 + b steps, then
    # independent noise (correlation ~0): the estimate is (3 + b) steps * dt.
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(2, 8, 1, 256, generator=gen, dtype=torch.float64)
    other = base.clone()
    for b in range(2):
        other[b, 3 + b :] = torch.randn(8 - 3 - b, 1, 256, generator=gen).double()
    estimated = estimated_correlation_time(torch.stack([base, other]), 0.8, dt=0.25)
    torch.testing.assert_close(
        estimated, torch.tensor([0.75, 1.0], dtype=torch.float64)
    )
    # One dt per trajectory (e.g. per-trajectory frame intervals).
    per = estimated_correlation_time(
        torch.stack([base, other]),
        0.8,
        dt=torch.tensor([1.0, 2.0], dtype=torch.float64),
    )
    torch.testing.assert_close(per, torch.tensor([3.0, 8.0], dtype=torch.float64))


def test_time_estimate_correlation_is_pearson_over_the_set():
    est = torch.tensor([1.0, 2.0, 4.0, 3.5])
    true = torch.tensor([2.0, 2.5, 5.0, 3.0])
    r = time_estimate_correlation(est, true)
    assert r.item() == pytest.approx(
        np.corrcoef(est.numpy(), true.numpy())[0, 1], rel=1e-6
    )
    assert time_estimate_correlation(est, 3 * est + 1).item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "fn", [sample_spread, sample_correlation, estimated_correlation_time]
)
def test_one_sample_is_refused(fn):
    with pytest.raises(ValueError, match="S >= 2"):
        fn(torch.zeros(1, 2, 3, 1, 8))


def test_time_estimate_correlation_needs_matching_sets():
    with pytest.raises(ValueError, match="same length >= 2"):
        time_estimate_correlation(torch.zeros(3), torch.zeros(4))
