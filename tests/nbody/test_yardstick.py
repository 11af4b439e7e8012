"""The yardstick against answers known by construction: fronts, gaps, failures,
bootstrap coverage, and the refusal of overlapping seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from physim.nbody import Front, check_disjoint_seeds, run_log_errors, yardstick
from physim.nbody._front import bootstrap_weights, percentile_interval

# A synthetic sweep on the line  mean log10|dE| = 4 - 3 * log10(cost).
SLOPE, OFFSET = -3.0, 4.0
SWEEP_LOG_COST = np.array([2.0, 2.5, 3.0, 3.5, 4.0])


def on_line(log_cost: np.ndarray | float) -> np.ndarray | float:
    return OFFSET + SLOPE * np.asarray(log_cost)


def test_front_gap_and_cost_factor_on_a_line() -> None:
    # A dominated sweep point (dearer and worse than its neighbour) is not on the front.
    x = np.append(SWEEP_LOG_COST, 3.2)
    y = np.append(on_line(SWEEP_LOG_COST), on_line(3.0) + 0.5)
    front = Front.envelope(x, y)
    np.testing.assert_array_equal(front.log_cost, SWEEP_LOG_COST)
    # A point 0.4 decades above the line at log cost 3.3: gap 0.4; equal error is
    # reached by the front at 0.4 / 3 decades less cost.
    gap = front.gap(3.3, on_line(3.3) + 0.4)
    assert gap == pytest.approx(0.4, abs=1e-12)
    factor = front.cost_factor(3.3, on_line(3.3) + 0.4)
    assert factor == pytest.approx(10 ** (0.4 / 3.0), rel=1e-12)
    # Better than the front: negative gap, cost factor < 1.
    assert front.gap(2.7, on_line(2.7) - 0.25) == pytest.approx(-0.25, abs=1e-12)
    assert front.cost_factor(2.7, on_line(2.7) - 0.25) < 1


def test_outside_the_sweep_is_reported_not_extrapolated() -> None:
    front = Front.envelope(SWEEP_LOG_COST, on_line(SWEEP_LOG_COST))
    assert front.locate(1.5) == "cheaper" and front.locate(4.5) == "dearer"
    assert front.locate(4.0) == front.locate(2.0) == "inside"
    assert math.isnan(front.gap(4.5, -10.0)) and math.isnan(front.gap(1.5, 0.0))
    # Error beyond the front's most accurate point: no cost at equal error.
    assert math.isnan(front.cost_factor(3.0, on_line(4.0) - 1.0))


def synthetic_dataset(
    rng: np.random.Generator,
    n_seeds: int,
    policy_offset: float,
    noise: float = 0.0,
    failed_policy_runs: int = 0,
) -> xr.Dataset:
    """Fixed sweep methods on the line and one policy ``policy_offset`` above it at
    log cost 3.25; per-seed errors = mean + a shared seed effect + own noise."""
    seed_effect = noise * rng.standard_normal(n_seeds)
    names, kinds, families, log_errors, costs = [], [], [], [], []
    points = [(f"hermite:{x}", "fixed", "hermite", x, 0.0) for x in SWEEP_LOG_COST]
    points.append(("policy", "policy", "", 3.25, policy_offset))
    for name, kind, family, x, offset in points:
        own = noise * rng.standard_normal(n_seeds)
        names.append(name)
        kinds.append(kind)
        families.append(family)
        log_errors.append(on_line(x) + offset + seed_effect + own)
        costs.append(np.full(n_seeds, 10.0**x))
    log_errors = np.array(log_errors)
    failed = np.zeros_like(log_errors, dtype=bool)
    failed[-1, :failed_policy_runs] = True
    final = np.where(failed, 0.5, 10.0**log_errors)  # a failed run ends above 0.1
    dims = ("method", "seed")
    return xr.Dataset(
        {
            "final_energy_error": (dims, final),
            "failed": (dims, failed),
            "total_force_evaluations": (dims, np.array(costs)),
            "wall_time": (dims, np.zeros_like(final)),
            "paper_reward": (dims, np.zeros_like(final)),
            "kind": ("method", kinds),
            "family": ("method", families),
            "group": ("method", [""] * len(names)),
        },
        coords={"method": names, "seed": np.arange(n_seeds)},
    )


def test_yardstick_gap_of_a_known_point() -> None:
    ds = synthetic_dataset(np.random.default_rng(0), 20, policy_offset=0.3)
    table = yardstick(ds, {"eta": ["hermite"]}, n_bootstrap=50)
    row = table.loc["policy"]
    assert row.gap_eta == pytest.approx(0.3, abs=1e-9)
    # No noise: every resample gives the same answer.
    assert row.gap_eta_lo == pytest.approx(0.3) and row.gap_eta_hi == pytest.approx(0.3)
    assert row.cost_factor_eta == pytest.approx(10 ** (0.3 / 3.0))
    assert row.where_eta == "inside"
    assert table.loc["hermite:2.0"].gap_eta == pytest.approx(0.0, abs=1e-12)


def test_failed_runs_count_as_unit_error_and_are_reported() -> None:
    ds = synthetic_dataset(
        np.random.default_rng(0), 10, policy_offset=0.0, failed_policy_runs=2
    )
    log_error = run_log_errors(ds)
    assert (log_error[-1, :2] == 0.0).all()  # |dE| = 1, not the 0.5 they ended at
    table = yardstick(ds, {"eta": ["hermite"]}, n_bootstrap=20)
    row = table.loc["policy"]
    assert row.failed == 2 and row.runs == 10
    expected = 0.8 * on_line(3.25)  # 8 runs on the line, 2 at 0
    assert row.mean_log10_error == pytest.approx(expected, abs=1e-9)
    assert row.gap_eta == pytest.approx(-0.2 * on_line(3.25), abs=1e-9)


def test_bootstrap_interval_covers_the_truth() -> None:
    # The truth is the population gap 0.3; seed effects shared by all methods and
    # each method's own noise make every estimate (the front's included) noisy.
    covered = []
    for replication in range(40):
        ds = synthetic_dataset(
            np.random.default_rng(replication), 30, policy_offset=0.3, noise=0.5
        )
        row = yardstick(ds, {"eta": ["hermite"]}, n_bootstrap=300, seed=1).loc["policy"]
        covered.append(row.gap_eta_lo <= 0.3 <= row.gap_eta_hi)
        if replication == 0:  # the seeded check
            assert covered[0], (row.gap_eta_lo, row.gap_eta_hi)
            assert row.gap_eta_hi - row.gap_eta_lo > 0.1  # not a degenerate interval
    # Nominal 95%; 40 replications: coverage below 80% means a broken bootstrap.
    assert np.mean(covered) >= 0.8, np.mean(covered)


def test_bootstrap_weights_resample_seeds() -> None:
    weights = bootstrap_weights(7, 100, np.random.default_rng(0))
    assert weights.shape == (100, 7)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    counts = weights * 7
    np.testing.assert_allclose(counts, np.round(counts))
    assert percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0]))[0] >= 1.0


def test_evaluation_refuses_overlapping_seeds() -> None:
    check_disjoint_seeds(range(100), {"training seeds of a": [10000, 10001]})
    with pytest.raises(ValueError) as error:
        check_disjoint_seeds(
            range(100),
            {
                "training seeds of eta[0]": range(0, 1000),  # the authors' 0-999
                "selection seeds of eta[0]": [1000, 1001],
            },
        )
    message = str(error.value)
    assert "training seeds of eta[0]: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, '...']" in message
    assert "selection seeds" not in message  # no overlap there
    assert "change first_seed/num_seeds" in message


def test_bad_yardstick_input() -> None:
    ds = synthetic_dataset(np.random.default_rng(0), 5, 0.0)
    with pytest.raises(ValueError, match="n_bootstrap=0"):
        yardstick(ds, n_bootstrap=0)
    with pytest.raises(ValueError, match="one finite"):
        Front.envelope([1.0, 2.0], [1.0])
