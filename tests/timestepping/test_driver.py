"""Driver and controller tests with small exact problems (no PDE solver involved)."""

import math

import pytest
import torch

from physim.timestepping import (
    CFLController,
    ConstantStep,
    NonFiniteError,
    StepResult,
    integrate,
)


class ExponentialDecay:
    """y' = -rate * y, advanced exactly; records every step it is asked to take."""

    order = 2
    grid_spacing = 1.0

    def __init__(self, rate: float = 1.0, speed: float = 1.0) -> None:
        self.rate = rate
        self.speed = speed
        self.steps: list[tuple[float, float]] = []

    def step(self, y, t, dt):
        self.steps.append((t, dt))
        return StepResult(y * math.exp(-self.rate * dt))

    def max_speed(self, y):
        return self.speed * y.abs().flatten(1).max(dim=1).values


def test_constant_step_lands_exactly_on_save_times():
    stepper = ExponentialDecay()
    save_at = [0.1 * k for k in range(1, 11)]
    sol = integrate(
        stepper, ConstantStep(0.03), torch.ones(2, 1), 0.0, 1.0, save_at=save_at
    )
    assert sol.ts.tolist() == save_at
    expected = torch.exp(-torch.tensor(save_at, dtype=torch.float64))
    torch.testing.assert_close(sol.ys[0, :, 0].double(), expected, rtol=1e-6, atol=0)
    # Every interval [0.1k, 0.1(k+1)] of 0.1 is covered by steps of 0.03 plus one clip.
    assert all(dt <= 0.03 + 1e-15 for _, dt in stepper.steps)
    assert sol.stats["n_accepted"] == 10 * 4


def test_constant_step_count_has_no_round_off_drift():
    stepper = ExponentialDecay()
    sol = integrate(
        stepper,
        ConstantStep(0.01),
        torch.ones(1, 1, dtype=torch.float64),
        0.0,
        1.0,
        save_at=[0.5, 1.0],
    )
    # 0.01 divides the interval: exactly 50 steps per interval, no sliver steps.
    assert sol.stats["n_accepted"] == 100
    assert min(dt for _, dt in stepper.steps) > 0.01 * (1 - 1e-9)


def test_initial_time_in_save_at_saves_initial_state():
    y0 = torch.tensor([[3.0]], dtype=torch.float64)
    sol = integrate(
        ExponentialDecay(), ConstantStep(0.1), y0, 0.0, 1.0, save_at=[0.0, 1.0]
    )
    assert sol.ys[0, 0, 0].item() == 3.0
    assert sol.ys[0, 1, 0].item() == pytest.approx(3.0 * math.exp(-1.0), rel=1e-12)


def test_cfl_controller_respects_bound_at_both_ends():
    # Growing speed: y' = +y; the speed of the state grows during each step, so the
    # bound at the end of the step is the binding one and rejections must happen.
    stepper = ExponentialDecay(rate=-3.0, speed=1.0)
    controller = CFLController(courant_number=0.5, dt_max=1.0)
    y0 = torch.tensor([[1.0], [0.5]], dtype=torch.float64)
    sol = integrate(stepper, controller, y0, 0.0, 1.0, save_at=[0.25, 0.5, 1.0])
    assert sol.ts.tolist() == [0.25, 0.5, 1.0]
    # Replay the accepted steps: each satisfies
    # dt * max(speed(y0), speed(y1)) / dx <= C.
    y = 1.0
    t = 0.0
    accepted = 0
    for t_step, dt in stepper.steps:
        if abs(t_step - t) > 1e-12:
            continue  # a rejected attempt from an earlier time
        y1 = y * math.exp(3.0 * dt)
        if dt * max(y, y1) <= 0.5 * (1 + 1e-12):
            y, t = y1, t_step + dt
            accepted += 1
    assert accepted == sol.stats["n_accepted"]
    assert sol.stats["n_rejected"] > 0
    assert sol.ys[0, -1, 0].item() == pytest.approx(math.exp(3.0), rel=1e-12)


def test_cfl_controller_caps_at_dt_max_for_fluid_at_rest():
    stepper = ExponentialDecay(speed=0.0)
    sol = integrate(stepper, CFLController(0.5, dt_max=0.2), torch.ones(1, 1), 0.0, 1.0)
    assert sol.stats["n_accepted"] == 5


def test_cfl_controller_needs_speed():
    class NoSpeed:
        order = 1

        def step(self, y, t, dt):
            return StepResult(y)

    with pytest.raises(TypeError, match="max_speed"):
        integrate(NoSpeed(), CFLController(0.5, 1.0), torch.ones(1, 1), 0.0, 1.0)


def test_non_finite_state_names_trajectory_and_time():
    class BlowUp:
        order = 1

        def step(self, y, t, dt):
            y = y.clone()
            if t + dt > 0.5:
                y[1] = float("nan")
            return StepResult(y)

    with pytest.raises(NonFiniteError, match=r"t=0\.6.*\[1\]") as info:
        integrate(
            BlowUp(),
            ConstantStep(0.1),
            torch.ones(3, 1),
            0.0,
            1.0,
            save_at=[0.2, 0.4, 0.6, 0.8, 1.0],
        )
    assert info.value.indices == [1]


@pytest.mark.parametrize("dt", [0.0, -1.0, math.nan])
def test_constant_step_rejects_bad_dt(dt):
    with pytest.raises(ValueError, match="dt"):
        ConstantStep(dt)


def test_save_times_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        integrate(
            ExponentialDecay(),
            ConstantStep(0.1),
            torch.ones(1, 1),
            0.0,
            1.0,
            save_at=[0.5, 0.2],
        )
