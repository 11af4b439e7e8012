"""Hybrid surrogate/solver rollouts and the error indicators (ns2d at 32^2)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from physim.rollout import (
    EnstrophyBudget,
    HybridStepper,
    IntervalSolver,
    OnIndicator,
    PDEResidual,
    Periodic,
    SampleSpread,
    as_window_stepper,
    hybrid_rollout,
    rollout,
)
from physim.solvers import GaussianRandomField, NavierStokes2D
from physim.timestepping import CFLController, integrate

N = 32
DT = 1.0


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def pde() -> NavierStokes2D:
    return NavierStokes2D(N, 1e-3, dtype="float64")


@pytest.fixture(scope="module")
def frames(pde) -> torch.Tensor:
    """A solver trajectory ``[3, 5, 1, N, N]`` at t = 2..6 (smooth by then)."""
    ic = GaussianRandomField(num_points=N, alpha=2.5, tau=7.0)
    u0 = ic.sample(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    times = [2.0, 3.0, 4.0, 5.0, 6.0]
    solution = integrate(
        pde,
        CFLController(0.5, 0.05),
        pde.encode(u0),
        0.0,
        times[-1],
        save_at=times,
        save_fn=pde.decode,
    )
    return solution.ys


def solver(pde) -> IntervalSolver:
    return IntervalSolver(pde, CFLController(0.5, 0.05), DT)


class TinySurrogate(nn.Module):
    """A fixed, deterministic window stepper: last frame + a circular conv of the
    two last frames (a stand-in for a trained network)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1, padding_mode="circular").double()
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in self.conv.parameters():
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            change = 0.05 * self.conv(window[:, -2:, 0])
        return (window[:, -1] + change).unsqueeze(1)


def residual_trigger(pde, threshold: float) -> OnIndicator:
    return OnIndicator(PDEResidual(pde, DT), threshold)


# ---------------------------------------------------------------- the two end points
def test_threshold_zero_is_the_solver_rollout(pde, frames):
    initial = frames[:, :2]
    truth = rollout(as_window_stepper(solver(pde)), initial, 3).pred
    hybrid = HybridStepper(TinySurrogate(), solver(pde), residual_trigger(pde, 0.0))
    result, record = hybrid_rollout(hybrid, initial, 3)
    assert torch.equal(result.pred, truth)
    assert record.solver_fraction == 1.0
    assert record.solver_time > 0 and record.surrogate_time > 0
    # ... which is the continuous solve (the stored data's way) up to round-off: the
    # CFL restart at each frame takes the steps the continued run takes.
    torch.testing.assert_close(truth, frames[:, 2:5], rtol=1e-12, atol=1e-12)


def test_infinite_threshold_is_the_surrogate_rollout(pde, frames):
    initial = frames[:, :2]
    surrogate = TinySurrogate()
    expected = rollout(surrogate, initial, 3).pred
    hybrid = HybridStepper(surrogate, solver(pde), residual_trigger(pde, math.inf))
    result, record = hybrid_rollout(hybrid, initial, 3)
    assert torch.equal(result.pred, expected)
    assert record.solver_fraction == 0.0 and record.solver_time == 0.0
    # The indicator was still evaluated (and recorded) at every step.
    assert torch.isfinite(record.scores).all()


def test_period_one_is_the_solver_rollout_without_surrogate_calls(pde, frames):
    initial = frames[:, :2]
    truth = rollout(as_window_stepper(solver(pde)), initial, 2).pred
    result, record = hybrid_rollout(
        HybridStepper(TinySurrogate(), solver(pde), Periodic(1)), initial, 2
    )
    assert torch.equal(result.pred, truth)
    assert record.surrogate_time == 0.0 and record.solver_fraction == 1.0


def test_periodic_resync_every_second_step(pde, frames):
    initial = frames[:, :2]
    surrogate, exact = TinySurrogate(), solver(pde)
    result, record = hybrid_rollout(
        HybridStepper(surrogate, exact, Periodic(2)), initial, 4
    )
    pred = result.pred
    assert record.solver_steps.tolist() == [[False, True, False, True]] * 3
    # Solver frames continue the previous (surrogate) frame; surrogate frames continue
    # the window that ends in the solver's frame.
    assert torch.equal(pred[:, 1], exact(pred[:, 0]))
    assert torch.equal(pred[:, 2:3], surrogate(pred[:, :2]))
    assert torch.equal(pred[:, 3], exact(pred[:, 2]))


def test_indicator_resyncs_only_the_drifting_trajectory(pde, frames):
    """Trajectory 1's surrogate is off by 5% of its step, the others are exact."""
    exact = solver(pde)
    noise = torch.randn(frames[:1, 0].shape, generator=torch.Generator().manual_seed(1))

    def surrogate(window):
        nxt = exact(window[:, -1])
        step = nxt[1] - window[1, -1]
        nxt[1] += 0.05 * noise[0] * step.norm() / noise.norm()
        return nxt.unsqueeze(1)

    initial = frames[:, :2]
    result, record = hybrid_rollout(
        HybridStepper(surrogate, exact, residual_trigger(pde, 0.05)), initial, 3
    )
    assert record.solver_steps.tolist() == [[False] * 3, [True] * 3, [False] * 3]
    assert record.resynchronised.tolist() == [False, True, False]
    assert record.solver_fraction == pytest.approx(1 / 3)
    # Every frame is then the solver's (trajectory 1 re-solved as a batch of one: the
    # CFL step of a smaller batch may differ, hence the tolerance).
    truth = rollout(as_window_stepper(exact), initial, 3).pred
    torch.testing.assert_close(result.pred, truth, rtol=1e-6, atol=1e-9)
    unchecked = rollout(surrogate, initial, 3).pred
    assert (unchecked[1] - truth[1]).norm() > 1e-3 * truth[1].norm()


def test_non_finite_trajectory_is_left_alone(pde, frames):
    initial = frames[:, :2].clone()
    initial[2, -1] = math.nan
    result, record = hybrid_rollout(
        HybridStepper(TinySurrogate(), solver(pde), Periodic(1)),
        initial,
        1,
        check_finite=False,
    )
    assert record.solver_steps[:, 0].tolist() == [True, True, False]
    assert torch.isnan(result.pred[2]).all()


# ---------------------------------------------------------------- indicators
def perturbed(frames: torch.Tensor, size: float) -> torch.Tensor:
    """The step 4 -> 5 with white noise of ``size`` times the step's norm added."""
    step = frames[:, 3] - frames[:, 2]
    noise = torch.randn(step.shape, generator=torch.Generator().manual_seed(2))
    scale = step.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)
    return (frames[:, 3] + size * scale.view(-1, 1, 1, 1) * noise).unsqueeze(1)


def test_residual_is_small_on_solver_steps_and_grows_with_a_perturbation(pde, frames):
    residual = PDEResidual(pde, DT)
    window = frames[:, :3]
    on_solver = residual(window, frames[:, 3:4])
    # Trapezoidal rule over dt = 1 on the solver's own steps: ~5e-3 (quadrature error).
    assert (on_solver < 1e-2).all()
    scores = [residual(window, perturbed(frames, size)) for size in (0.02, 0.1, 0.5)]
    # Each perturbation adds about |e| (1 + dt/2 |dF/du|) / |step| >= its size.
    assert (scores[0] > 2 * on_solver).all()
    for size, score in zip((0.02, 0.1, 0.5), scores, strict=True):
        assert (score > size).all()
    assert (scores[1] > 3 * scores[0]).all() and (scores[2] > 3 * scores[1]).all()


def test_residual_of_a_two_frame_candidate_is_the_worse_step(pde, frames):
    residual = PDEResidual(pde, DT)
    window = frames[:, :2]
    bad = torch.cat([frames[:, 2:3], perturbed(frames, 0.2)], dim=1)
    second = residual(frames[:, :3], perturbed(frames, 0.2))
    torch.testing.assert_close(residual(window, bad), second)


def test_residual_at_the_storage_resolution_of_a_finer_solver(pde, frames):
    """Frames stored at 32^2 from a 64^2 solver: resampled up for the residual."""
    fine = NavierStokes2D(2 * N, 1e-3, dtype="float64")
    score = PDEResidual(fine, DT)(frames[:, :3], frames[:, 3:4])
    assert (score < 1e-2).all()


def test_enstrophy_budget_balances_on_solver_steps(pde, frames):
    budget = EnstrophyBudget.from_solver(pde, DT)
    window = frames[:, :3]
    on_solver = budget(window, frames[:, 3:4])
    assert (on_solver < 1e-2).all()
    # A step that overshoots the true change by 20% breaks the budget.
    overshoot = frames[:, 3:4] + 0.2 * (frames[:, 3:4] - frames[:, 2:3])
    assert (budget(window, overshoot) > 10 * on_solver).all()


def test_enstrophy_terms_of_a_single_mode():
    """w = sin(2 pi x): Z = 1/4, D = nu (2 pi)^2 / 2, P = <w f> for f = w."""
    x = torch.arange(16, dtype=torch.float64) / 16
    w = torch.sin(2 * math.pi * x)[:, None].expand(16, 16)
    budget = EnstrophyBudget(0.1, lambda a, b: torch.sin(2 * math.pi * a) + 0 * b, 1.0)
    z, p, d = budget.terms(w[None, None, None])
    assert z.item() == pytest.approx(0.25)
    assert d.item() == pytest.approx(0.1 * (2 * math.pi) ** 2 / 2)
    assert p.item() == pytest.approx(0.5)


def test_sample_spread_score_is_exact_for_two_known_samples():
    last = torch.randn(2, 1, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    change = torch.randn(2, 1, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    offset = torch.randn(2, 1, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    draws = iter([last + change + offset, last + change - offset])
    score = SampleSpread(lambda window: next(draws), num_samples=2)(last, last)
    rms = lambda x: x.flatten(1).square().mean(dim=1).sqrt()  # noqa: E731
    torch.testing.assert_close(score, math.sqrt(2) * rms(offset) / rms(change))
    deterministic = SampleSpread(lambda window: window[:, -1:] + 1.0, num_samples=3)
    assert torch.equal(deterministic(last, last), torch.zeros(2))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("threshold", [-1.0, -1e-12, math.nan, "0.1"])
def test_bad_threshold_is_refused(pde, threshold):
    with pytest.raises(ValueError, match="threshold must be a number >= 0"):
        OnIndicator(PDEResidual(pde, DT), threshold)


@pytest.mark.parametrize("period", [-3, 0, 1.5, True])
def test_bad_period_is_refused(period):
    with pytest.raises(ValueError, match="period must be an integer >= 1"):
        Periodic(period)


def test_residual_needs_a_solver_with_a_right_hand_side():
    class NoRhs:
        def encode(self, u): ...
        def decode(self, y): ...
        def coordinates(self, n=None): ...

    with pytest.raises(TypeError, match="time_derivative"):
        PDEResidual(NoRhs(), DT)


def test_bad_intervals_and_samples_are_refused(pde):
    with pytest.raises(ValueError, match="output_interval"):
        PDEResidual(pde, -1.0)
    with pytest.raises(ValueError, match="output_interval"):
        IntervalSolver(pde, CFLController(0.5, 0.05), 0.0)
    with pytest.raises(ValueError, match="num_samples must be >= 2"):
        SampleSpread(lambda w: w, num_samples=1)
    with pytest.raises(TypeError, match="trigger must have"):
        HybridStepper(TinySurrogate(), solver(pde), 0.5)
