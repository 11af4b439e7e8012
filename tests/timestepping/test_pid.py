"""PIDController: formula checks with fake steppers, and tolerance proportionality on
viscous Burgers against its Cole-Hopf solution."""

import math

import pytest
import torch

from physim.solvers import Burgers1D, KuramotoSivashinsky1D, burgers_sine_solution
from physim.timestepping import (
    ConstantStep,
    PIDController,
    PIDState,
    StepRejectedError,
    StepResult,
    integrate,
)


class FakeErrorStepper:
    """Keeps ``y`` and reports ``error = y * (dt / dt_ref)^k``, ``k = order + 1`` (as
    step doubling: the estimate's own order is ``order``)."""

    def __init__(self, order: int = 2, dt_ref: float = 0.1):
        self.order = order
        self.embedded_order = order
        self.dt_ref = dt_ref
        self.steps: list[float] = []

    def step(self, y, t, dt):
        self.steps.append(dt)
        return StepResult(y, y * (dt / self.dt_ref) ** (self.order + 1))


def decide(controller, stepper, dt, err, state=None):
    """The decision on a step whose scaled error norm is ``err`` (y = 1, rtol = 1)."""
    state = PIDState() if state is None else state
    y = torch.ones(1, 4, dtype=torch.float64)
    result = StepResult(y, torch.full_like(y, err))
    return controller.adapt(stepper, 0.0, dt, y, result, state)


def test_elementary_controller_factor():
    # pcoeff=0, icoeff=1: dt_next = dt * safety * err^(-1/k), k = 3 here.
    stepper = FakeErrorStepper(order=2)
    controller = PIDController(rtol=1.0, atol=1e-300, pcoeff=0.0, icoeff=1.0)
    decision = decide(controller, stepper, 0.1, 0.5)
    assert decision.accept
    assert decision.dt_next == pytest.approx(0.1 * 0.9 * 0.5 ** (-1 / 3), rel=1e-12)


def test_pi_memory_term_uses_previous_accepted_error():
    stepper = FakeErrorStepper(order=1)  # k = 2
    controller = PIDController(rtol=1.0, atol=1e-300)  # Hairer: 0.7/k and 0.4/k
    state = PIDState(errors=(0.25, 1.0))
    decision = decide(controller, stepper, 1.0, 0.5, state)
    expected = 0.9 * 0.5 ** (-0.7 / 2) * 0.25 ** (0.4 / 2)
    assert decision.dt_next == pytest.approx(expected, rel=1e-12)
    assert decision.state.errors == (0.5, 0.25)


def test_rejection_shrinks_and_next_step_does_not_grow():
    stepper = FakeErrorStepper(order=2)  # k = 3
    controller = PIDController(rtol=1.0, atol=1e-300)
    rejected = decide(controller, stepper, 1.0, 8.0)
    assert not rejected.accept
    assert rejected.dt_next == pytest.approx(0.9 * 8.0 ** (-1 / 3), rel=1e-12)
    assert rejected.state.rejections == 1
    # A tiny error after a rejection: the factor is capped at 1, not factor_max.
    accepted = decide(controller, stepper, 0.5, 1e-6, rejected.state)
    assert accepted.accept and accepted.dt_next == pytest.approx(0.5)
    assert accepted.state.rejections == 0
    # Without the rejection the same step may grow up to factor_max.
    assert decide(controller, stepper, 0.5, 1e-6).dt_next == pytest.approx(5.0)
    # A NaN error is a rejection with the smallest factor.
    nan = decide(controller, stepper, 1.0, math.nan)
    assert not nan.accept and nan.dt_next == pytest.approx(0.2)


def test_error_norm_is_rms_per_trajectory_max_over_batch_complex_state():
    controller = PIDController(rtol=0.5, atol=1.0)
    y0 = torch.tensor([[1 + 1j, 0j], [2j, 0j]], dtype=torch.complex128)
    y1 = torch.tensor([[0j, 3 + 4j], [1j, 0j]], dtype=torch.complex128)
    error = torch.tensor([[1j, 7 + 0j], [0.5 + 0j, 0.5j]], dtype=torch.complex128)
    # scale = 1 + 0.5 * max(|y0|, |y1|): row 0 -> [1 + 0.5 sqrt 2, 3.5], row 1 -> [2, 1]
    row0 = math.sqrt(((1 / (1 + 0.5 * math.sqrt(2))) ** 2 + (7 / 3.5) ** 2) / 2)
    row1 = math.sqrt(((0.5 / 2) ** 2 + 0.5**2) / 2)
    norm = controller.error_norm(y0, StepResult(y1, error), FakeErrorStepper())
    assert norm == pytest.approx(max(row0, row1), rel=1e-12)


def test_initial_step_hits_the_tolerance():
    # err(dt) = (dt / 0.1)^3 for y = 1, rtol = 1: err = safety at dt = 0.1 * 0.9^(1/3).
    stepper = FakeErrorStepper(order=2, dt_ref=0.1)
    controller = PIDController(rtol=1.0, atol=1e-300)
    y0 = torch.ones(2, 3, dtype=torch.float64)
    dt, state = controller.init(stepper, 0.0, y0, None)
    assert dt == pytest.approx(0.1 * 0.9 ** (1 / 3), rel=1e-9)
    assert state == PIDState()
    assert len(stepper.steps) <= 3  # 1e-3 -> the answer in two trials
    assert controller.init(stepper, 0.0, y0, 0.02)[0] == 0.02


def test_too_many_rejections_names_time_and_dt():
    class Hopeless:
        order = 2

        def step(self, y, t, dt):
            return StepResult(y, torch.full_like(y, 1e3))

    controller = PIDController(rtol=1e-3, atol=1e-3, max_rejections=5)
    with pytest.raises(StepRejectedError, match=r"t=0\.5 .*5 times.*last dt=") as info:
        integrate(Hopeless(), controller, torch.ones(1, 2), 0.5, 1.0, dt0=0.1)
    assert info.value.t == 0.5
    assert info.value.rejections == 5
    assert info.value.dt == pytest.approx(0.1 * 0.2**4)


def test_tolerance_below_round_off_is_refused_before_any_step():
    # float32 cannot meet rtol = 1e-12: refused at init, naming rtol and the dtype.
    pde = Burgers1D(32, 0.1, 2 * math.pi, error_estimate=True, dtype="float32")
    x = pde.coordinates()["x"]
    u0 = pde.encode(torch.sin(x)[None, None])
    controller = PIDController(rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"rtol=1e-12 .*float32"):
        integrate(pde, controller, u0, 0.0, 1.0, dt0=0.1)
    controller.init(pde, 0.0, u0.double(), 0.1)  # float64 resolves it


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rtol": 0.0},
        {"atol": -1e-6},
        {"rtol": math.nan},
        {"safety": 1.0},
        {"factor_max": 0.5},
        {"max_rejections": 0},
        {"dt_grid_ratio": 1.0},
        {"dt_grid_ratio": math.inf},
    ],
)
def test_bad_settings_raise_at_construction(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        PIDController(**kwargs)


def test_needs_an_error_estimate():
    pde = Burgers1D(16, 0.1, dtype="float64")  # error_estimate=False
    with pytest.raises(TypeError, match="error estimate"):
        integrate(pde, PIDController(), torch.zeros(1, 16, dtype=torch.float64), 0, 1)


def test_burgers_error_tracks_tolerance_with_fewer_steps_than_constant():
    """Over tolerances 1e-3..1e-8 the error at t = 3 (fronts steepen, then decay) is
    within 10x of the tolerance, and a constant step with as many steps as the PI
    controller tried (rejections included) is less accurate."""
    length, viscosity, t1 = 2 * math.pi, 0.1, 3.0
    adaptive = Burgers1D(256, viscosity, length, error_estimate=True, dtype="float64")
    fixed = Burgers1D(256, viscosity, length, dtype="float64")
    x = adaptive.coordinates()["x"]
    u0 = adaptive.encode(torch.sin(x)[None, None])
    exact = burgers_sine_solution(x, t1, viscosity, 1.0, length)

    def error(y):
        return float((y[0, -1] - exact).norm() / exact.norm())

    for tol in [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]:
        controller = PIDController(rtol=tol, atol=tol)
        solution = integrate(adaptive, controller, u0, 0.0, t1)
        achieved = error(solution.ys)
        assert tol / 10 <= achieved <= 10 * tol, (tol, achieved)
        steps = solution.stats["n_steps"]
        constant = integrate(fixed, ConstantStep(t1 / steps), u0, 0.0, t1)
        assert error(constant.ys) > achieved, (tol, steps)


def test_step_grid_rounds_down_to_repeatable_values():
    ratio = 2 ** (1 / 8)
    controller = PIDController(dt_max=0.5, dt_grid_ratio=ratio)
    for dt in [0.5, 0.4999, 0.3, 0.01234, 1e-5]:
        on_grid = controller.on_grid(dt)
        n = round(math.log(0.5 / on_grid) / math.log(ratio))
        assert on_grid == 0.5 * ratio**-n  # the same float every time
        assert on_grid <= dt < on_grid * ratio * (1 + 1e-12)
        assert controller.on_grid(on_grid) == on_grid
    assert PIDController().on_grid(0.01234) == 0.01234  # no grid: unchanged
    assert (
        PIDController(dt_grid_ratio=2.0).on_grid(3.0) == 2.0
    )  # anchor 1 without dt_max


def test_step_grid_reuses_coefficients_and_keeps_the_error():
    """KS (the step size wanders): on the grid the ETDRK4 coefficients are built less
    than once per attempted step (without it, twice per step: dt and the doubling's
    dt / 2), and the error against a fine constant step stays as small."""
    t1, tol = 20.0, 1e-6
    x = torch.arange(256, dtype=torch.float64) / 256
    u0 = (torch.cos(2 * math.pi * x) + 0.5 * torch.sin(4 * math.pi * x))[None, None]
    fine = KuramotoSivashinsky1D(256, 64.0, dtype="float64")
    reference = integrate(fine, ConstantStep(0.01), fine.encode(u0), 0.0, t1).ys
    results = {}
    for ratio in (None, 2 ** (1 / 8)):
        pde = KuramotoSivashinsky1D(256, 64.0, error_estimate=True, dtype="float64")
        builds = []
        scheme = pde.scheme.scheme  # StepDoubling(ETDRK4)
        build = scheme.build
        scheme.build = lambda dt, b=build, log=builds: log.append(dt) or b(dt)
        controller = PIDController(rtol=tol, atol=tol, dt_grid_ratio=ratio)
        solution = integrate(pde, controller, pde.encode(u0), 0.0, t1)
        error = float((solution.ys - reference).abs().max())
        results[ratio] = (len(builds), solution.stats["n_steps"], error)
    (plain_builds, plain_steps, plain_error), (builds, steps, error) = results.values()
    assert plain_builds >= 2 * plain_steps  # the cost the grid removes
    assert builds < steps and builds < plain_builds / 2
    assert steps <= 1.25 * plain_steps
    assert error <= 2 * plain_error


def cole_hopf(x, t, viscosity, waves, length=2 * math.pi, fine=4096):
    """Exact Burgers solution from ``u0 = sum_j a_j sin(n_j 2 pi x / L)`` (Cole-Hopf).

    ``phi_0 = exp(-U0 / (2 nu))`` with the antiderivative ``U0`` of ``u0`` is sampled on
    a fine grid (its spectrum decays to round-off well inside it), its Fourier modes
    decay as the heat equation says, and ``u = -2 nu phi_x / phi``.
    """
    kappa = 2 * math.pi / length
    grid = torch.arange(fine, dtype=torch.float64) * length / fine
    antiderivative = sum(
        -a / (n * kappa) * torch.cos(n * kappa * grid) for a, n in waves
    )
    log_phi = -antiderivative / (2 * viscosity)
    modes = torch.fft.rfft(torch.exp(log_phi - log_phi.max()))
    m = torch.arange(fine // 2 + 1, dtype=torch.float64)
    modes = modes * torch.exp(-viscosity * (kappa * m) ** 2 * t)
    phi = torch.fft.irfft(modes, n=fine)
    phi_x = torch.fft.irfft(1j * kappa * m * modes, n=fine)
    u = -2 * viscosity * phi_x / phi
    return u[:: fine // len(x)]


def test_fewer_steps_than_the_constant_step_on_a_fast_transient():
    """sin(x) + 0.5 sin(16 x): the short wave interacts strongly with the long one and
    dies within ~0.1 time units (nu k^2 = 25.6), then the front of the long wave
    steepens slowly. The PI controller takes small steps only in the transient, so a
    constant step with as many steps as it tried (rejections included) is less
    accurate: the constant step reaching its error needs more steps."""
    viscosity, t1, waves = 0.1, 2.0, [(1.0, 1), (0.5, 16)]
    adaptive = Burgers1D(
        256, viscosity, 2 * math.pi, error_estimate=True, dtype="float64"
    )
    fixed = Burgers1D(256, viscosity, 2 * math.pi, dtype="float64")
    x = adaptive.coordinates()["x"]
    u0 = sum(a * torch.sin(n * x) for a, n in waves)
    torch.testing.assert_close(
        cole_hopf(x, 0.0, viscosity, waves), u0, rtol=0, atol=1e-8
    )
    exact = cole_hopf(x, t1, viscosity, waves)
    y0 = adaptive.encode(u0[None, None])

    def error(y):
        return float((y[0, -1] - exact).norm() / exact.norm())

    for tol in [1e-5, 1e-7]:
        solution = integrate(adaptive, PIDController(rtol=tol, atol=tol), y0, 0.0, t1)
        achieved = error(solution.ys)
        assert achieved <= 10 * tol, (tol, achieved)
        steps = solution.stats["n_steps"]
        constant = integrate(fixed, ConstantStep(t1 / steps), y0, 0.0, t1)
        assert error(constant.ys) > 5 * achieved, (tol, steps)
