"""Solver steppers and hybrids with per-trajectory PDE parameters (ks1d's setting).

The ``ks1d`` data draw the domain length and frame interval per trajectory and solve
in frame units (``KuramotoSivashinsky1D.bind``); the interval solver, the residual
indicator and the hybrid must use each trajectory's own parameters.
"""

from __future__ import annotations

import math

import pytest
import torch

from physim.rollout import (
    HybridStepper,
    IntervalSolver,
    OnIndicator,
    PDEResidual,
    Periodic,
    as_window_stepper,
    hybrid_rollout,
    hybrid_tradeoff,
    indicator_thresholds,
    metrics,
    plot_tradeoff,
    rollout,
    tradeoff_table,
)
from physim.solvers import KuramotoSivashinsky1D, RandomSines
from physim.timestepping import ConstantStep, integrate

N = 128
STRIDE = 4.0  # frames per surrogate step, as ks1d's time_stride
PARAMS = {
    "domain_extent": torch.tensor([30.0, 34.0, 38.0], dtype=torch.float64),
    "frame_interval": torch.tensor([0.18, 0.2, 0.22], dtype=torch.float64),
}

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def base() -> KuramotoSivashinsky1D:
    return KuramotoSivashinsky1D(N, 32.0, dtype="float64")


@pytest.fixture(scope="module")
def frames(base) -> torch.Tensor:
    """Frames 40, 44, ..., 56 of three trajectories, each in its own frame units."""
    bound = base.bind(PARAMS)
    generator = torch.Generator().manual_seed(0)
    u0 = RandomSines(N).sample(3, generator=generator, dtype=torch.float64)
    times = [40.0 + STRIDE * j for j in range(5)]
    return integrate(
        bound,
        ConstantStep(0.25),
        bound.encode(u0),
        0.0,
        times[-1],
        save_at=times,
        save_fn=bound.decode,
    ).ys


def interval_solver(base) -> IntervalSolver:
    return IntervalSolver(base, ConstantStep(0.25), STRIDE, parameters=PARAMS)


def test_interval_solver_continues_each_trajectory_with_its_own_parameters(
    base, frames
):
    pred = rollout(as_window_stepper(interval_solver(base)), frames[:, :1], 4).pred
    torch.testing.assert_close(pred, frames[:, 1:], rtol=0, atol=1e-12)
    # One solver for all (the unbound base) would be a different trajectory.
    shared = IntervalSolver(base, ConstantStep(0.25), STRIDE)
    assert (shared(frames[:, 0]) - frames[:, 1]).norm() > 0.1 * frames[:, 1].norm()


def test_a_subset_of_rows_is_solved_with_those_rows_parameters(base, frames):
    solver = interval_solver(base)
    whole = solver(frames[:, 0])
    rows = torch.tensor([2, 0])
    torch.testing.assert_close(
        solver(frames[rows, 0], rows), whole[rows], rtol=0, atol=1e-13
    )


def test_time_derivative_residual_is_small_on_solver_steps_and_grows_off_them(
    base, frames
):
    residual = PDEResidual(base, STRIDE, parameters=PARAMS)
    window, step = frames[:, :1], frames[:, 1:2]
    on_solution = residual(window, step)
    assert float(on_solution.max()) < 0.05, on_solution
    # A smooth (mode 3) perturbation of 10% of the step's size.
    x = torch.arange(N, dtype=torch.float64) / N
    bump = torch.sin(6 * math.pi * x).expand_as(step)
    size = (step - window).flatten(1).norm(dim=1) / bump.flatten(1).norm(dim=1)
    perturbed = residual(window, step + 0.1 * size.view(-1, 1, 1, 1) * bump)
    assert bool((perturbed > 0.08).all()), perturbed
    assert bool((perturbed > 2 * on_solution).all())


class Drift:
    """A deterministic stand-in surrogate: the last frame, slightly damped."""

    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        return 0.97 * window[:, -1:]


def test_hybrid_end_points_with_per_trajectory_parameters(base, frames):
    initial = frames[:, :1]
    truth = rollout(as_window_stepper(interval_solver(base)), initial, 4).pred
    surrogate = rollout(Drift(), initial, 4).pred
    residual = PDEResidual(base, STRIDE, parameters=PARAMS)
    for threshold, expected in ((0.0, truth), (math.inf, surrogate)):
        hybrid = HybridStepper(
            Drift(), interval_solver(base), OnIndicator(residual, threshold)
        )
        result, record = hybrid_rollout(hybrid, initial, 4)
        assert torch.equal(result.pred, expected), threshold
        assert record.solver_fraction == (1.0 if threshold == 0 else 0.0)


def test_hybrid_resyncs_only_the_trajectories_that_fire(base, frames):
    initial = frames[:, :1]

    def fires_on_middle_row(window, candidate):
        return torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)

    hybrid = HybridStepper(
        Drift(), interval_solver(base), OnIndicator(fires_on_middle_row, 0.5)
    )
    result, record = hybrid_rollout(hybrid, initial, 2)
    assert record.solver_steps.tolist() == [[False, False], [True, True], [False] * 2]
    truth = rollout(as_window_stepper(interval_solver(base)), initial, 2).pred
    torch.testing.assert_close(result.pred[1], truth[1], rtol=0, atol=1e-13)
    assert torch.equal(result.pred[[0, 2]], rollout(Drift(), initial, 2).pred[[0, 2]])


def test_per_trajectory_parameters_are_checked(base):
    with pytest.raises(ValueError, match="one value per trajectory"):
        IntervalSolver(
            base,
            ConstantStep(0.25),
            STRIDE,
            parameters={"domain_extent": torch.ones(3), "time": torch.ones(2)},
        )


# --------------------------------------------------------------------- trade-off
def test_tradeoff_end_points_and_threshold_sweep(base, frames, tmp_path):
    initial, truth = frames[:, :1], frames[:, 1:]
    residual = PDEResidual(base, STRIDE, parameters=PARAMS)
    thresholds = indicator_thresholds(Drift(), residual, initial, 4, (0.0, 0.5, 1.0))
    assert thresholds[0.0] <= thresholds[0.5] <= thresholds[1.0]
    triggers = {
        "never": OnIndicator(residual, math.inf),
        "always": OnIndicator(residual, 0.0),
        "above median": OnIndicator(residual, thresholds[0.5]),
        "every 2": Periodic(2),
    }
    points = hybrid_tradeoff(Drift(), interval_solver(base), initial, truth, triggers)
    by_name = {p.name: p for p in points}
    assert [p.kind for p in points] == ["surrogate", "solver"] + ["hybrid"] * 4
    # The truth is this solver's own rollout: zero error up to round-off.
    assert by_name["solver"].error < 1e-12
    surrogate_error = float(
        metrics.relative_l2(rollout(Drift(), initial, 4).pred, truth).mean()
    )
    assert by_name["surrogate"].error == pytest.approx(surrogate_error, rel=1e-12)
    assert by_name["never"].error == by_name["surrogate"].error
    assert by_name["never"].solver_fraction == 0.0
    assert by_name["always"].error == by_name["solver"].error
    assert by_name["always"].solver_fraction == 1.0
    assert by_name["every 2"].solver_fraction == 0.5
    middle = by_name["above median"]
    assert 0.0 < middle.solver_fraction < 1.0
    assert by_name["solver"].error < middle.error < by_name["surrogate"].error
    table = tradeoff_table(points, "ks")
    assert table.row_count == len(points)
    png = plot_tradeoff(points, tmp_path / "tradeoff.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_indicator_thresholds_reject_bad_quantiles(base, frames):
    residual = PDEResidual(base, STRIDE, parameters=PARAMS)
    with pytest.raises(ValueError, match=r"quantiles must lie in \[0, 1\]"):
        indicator_thresholds(Drift(), residual, frames[:, :1], 2, (0.5, 1.5))
