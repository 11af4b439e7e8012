"""LearnedController: a zero-initialised correction is PI bit for bit, the clip bounds
every factor, the accept rule is PI's, and bad input is refused before any step."""

import json
import math

import numpy as np
import pytest
import torch

from physim.solvers import Burgers1D, KuramotoSivashinsky1D
from physim.timestepping import (
    FEATURES,
    CorrectionNetwork,
    LearnedController,
    LearnedState,
    Observation,
    PIDController,
    PIDState,
    StepResult,
    integrate,
)

pytestmark = pytest.mark.usefixtures("single_thread")

ALL = tuple(FEATURES)


class Recording:
    """Passes steps through and records every ``(t, dt)`` tried."""

    def __init__(self, stepper):
        self.stepper = stepper
        self.calls = []

    def step(self, y, t, dt):
        self.calls.append((t, dt))
        return self.stepper.step(y, t, dt)

    def __getattr__(self, name):
        return getattr(self.stepper, name)


def burgers(n=32):
    pde = Burgers1D(n, 0.02, error_estimate=True, dtype="float64")
    x = pde.coordinates()["x"]
    u0 = torch.sin(2 * math.pi * x) + 0.5 * torch.sin(6 * math.pi * x + 1.0)
    return pde, u0[None]


def ks(n=32):
    pde = KuramotoSivashinsky1D(n, 16.0, error_estimate=True, dtype="float64")
    x = pde.coordinates()["x"]
    return pde, torch.cos(2 * math.pi * x)[None] + 0.1 * torch.sin(4 * math.pi * x)[
        None
    ]


def steps_of(pde, controller, u0, t1):
    recorder = Recording(pde)
    solution = integrate(recorder, controller, u0, 0.0, t1)
    return recorder.calls, solution


@pytest.mark.parametrize("make, t1", [(burgers, 0.4), (ks, 3.0)])
@pytest.mark.parametrize("hidden", [(), (8,)])
def test_zero_initialised_controller_is_pi_bit_for_bit(make, t1, hidden):
    pde, u0 = make()
    for kwargs in ({}, {"pcoeff": 0.0, "icoeff": 0.7, "safety": 0.8}):
        pi = PIDController(1e-6, 1e-6, **kwargs)
        network = CorrectionNetwork(ALL, hidden, seed=3)
        learned = LearnedController(PIDController(1e-6, 1e-6, **kwargs), network)
        steps_pi, solution_pi = steps_of(pde, pi, u0, t1)
        steps_learned, solution_learned = steps_of(pde, learned, u0, t1)
        assert steps_learned == steps_pi  # every trial, accepted and rejected step
        assert solution_learned.stats == solution_pi.stats
        assert torch.equal(solution_learned.ys, solution_pi.ys)
        assert len(steps_pi) > 10


def test_untrained_network_outputs_zero_and_round_trips(tmp_path):
    network = CorrectionNetwork(ALL, (8, 4), seed=1)
    assert network(np.ones(len(ALL))) == 0.0
    vector = np.random.default_rng(0).normal(size=network.num_parameters)
    trained = network.with_vector(vector)
    path = trained.save(tmp_path / "controller.json", max_log10_correction=0.3)
    back, metadata = CorrectionNetwork.read(path, ALL)
    np.testing.assert_array_equal(back.to_vector(), vector)  # float64 via JSON
    x = np.linspace(-1, 1, len(ALL))
    assert back(x) == trained(x)
    assert metadata == {"max_log10_correction": 0.3}
    loaded = LearnedController.load(path, PIDController())
    assert loaded.max_log10_correction == 0.3


class FakeStepper:
    """Returns ``y`` with an error set by the test (``y = 1``, ``rtol = 1``: the scaled
    error is the error value)."""

    order = 4
    embedded_order = 4
    grid_spacing = 0.1

    def max_speed(self, y):
        return y.abs().amax(dim=-1)

    def step(self, y, t, dt):
        return StepResult(y, torch.full_like(y, self.err))


def test_clip_bounds_every_factor_and_errors_above_one_are_rejected():
    stepper = FakeStepper()
    base = PIDController(rtol=1.0, atol=1e-300)
    clip = 0.25
    rng = np.random.default_rng(0)
    template = CorrectionNetwork(ALL, (8,), seed=0)
    y = torch.ones(1, 4, dtype=torch.float64)
    for trial in range(300):
        # A large random network: its raw output saturates the clip either way.
        network = template.with_vector(10 * rng.normal(size=template.num_parameters))
        learned = LearnedController(base, network, max_log10_correction=clip)
        err = float(10 ** rng.uniform(-4, 2))
        if trial % 50 == 0:
            err = 1.0 + 1e-12  # just above the bound: always rejected
        stepper.err = err
        pid_state = PIDState(
            errors=(float(10 ** rng.uniform(-3, 0)), 1.0),
            rejections=int(rng.integers(0, 3)),
        )
        state = LearnedState(pid_state, float(10 ** rng.uniform(-3, -1)))
        dt = float(10 ** rng.uniform(-3, -1))
        result = stepper.step(y, 0.0, dt)
        decision = learned.adapt(stepper, 0.0, dt, y, result, state)
        reference = base.adapt(stepper, 0.0, dt, y, result, pid_state)
        assert decision.accept == (err <= 1.0) == reference.accept
        factor, pi_factor = decision.dt_next / dt, reference.dt_next / dt
        tiny = 1e-12
        assert pi_factor * 10**-clip * (1 - tiny) <= factor
        assert factor <= pi_factor * 10**clip * (1 + tiny)
        assert base.factor_min * (1 - tiny) <= factor <= base.factor_max * (1 + tiny)
        if not decision.accept:
            assert factor <= base.safety * (1 + tiny)  # a rejected step shrinks


def test_agent_correction_is_clipped_and_saturates():
    stepper = FakeStepper()
    stepper.err = 0.5
    base = PIDController(rtol=1.0, atol=1e-300)
    learned = LearnedController(base, features=ALL, max_log10_correction=0.2)
    y = torch.ones(1, 4, dtype=torch.float64)
    observation = Observation(0.5, np.zeros(len(ALL)))
    pi = base.adapt(stepper, 0.0, 0.1, y, stepper.step(y, 0.0, 0.1), PIDState())
    for a, expected in [(5.0, 10**0.2), (1.0, 10**0.2), (-7.0, 10**-0.2), (0.0, 1.0)]:
        decision = learned.decide(stepper, 0.0, 0.1, observation, a, LearnedState())
        assert decision.dt_next == pytest.approx(pi.dt_next * expected, rel=1e-12)
    # A NaN error gets PI's smallest factor whatever the correction.
    nan = Observation(math.inf, np.zeros(len(ALL)))
    decision = learned.decide(stepper, 0.0, 0.1, nan, 1.0, LearnedState())
    assert not decision.accept
    assert decision.dt_next == pytest.approx(0.1 * base.factor_min)


def test_solver_without_error_estimate_is_refused_before_any_step():
    pde = Recording(Burgers1D(16, 0.1, dtype="float64"))  # error_estimate=False
    controller = LearnedController(PIDController(1e-5, 1e-5))
    with pytest.raises(TypeError, match="error estimate.*error_estimate=True"):
        integrate(pde, controller, torch.zeros(1, 16, dtype=torch.float64), 0.0, 1.0)
    assert pde.calls == []


def test_tolerance_below_the_dtype_floor_is_refused_before_any_step():
    pde = Recording(Burgers1D(16, 0.1, error_estimate=True, dtype="float32"))
    controller = LearnedController(PIDController(1e-9, 1e-9))
    with pytest.raises(ValueError, match=r"rtol=1e-09 .*float32"):
        integrate(pde, controller, torch.zeros(1, 16), 0.0, 1.0)
    assert pde.calls == []


def test_checkpoint_for_other_features_is_refused(tmp_path):
    path = CorrectionNetwork(ALL[:5], ()).save(tmp_path / "c.json")
    with pytest.raises(
        ValueError, match=r"trained on features .*log_tolerance'\].*courant"
    ):
        LearnedController.load(path, PIDController(), features=ALL)
    with pytest.raises(FileNotFoundError, match="no such controller checkpoint"):
        CorrectionNetwork.read(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a controller checkpoint"):
        CorrectionNetwork.read(tmp_path / "bad.json")


def test_courant_feature_needs_a_wave_speed():
    class NoSpeed:
        order = 2
        embedded_order = 1

        def step(self, y, t, dt):
            raise AssertionError("no step may be taken")

    controller = LearnedController(PIDController(), features=ALL)
    with pytest.raises(TypeError, match="max_speed"):
        controller.init(NoSpeed(), 0.0, torch.ones(1, 2, dtype=torch.float64), 0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"features": ["log_error", "speed"]}, "unknown"),
        ({"max_log10_correction": 0.0}, "max_log10_correction"),
    ],
)
def test_bad_settings_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LearnedController(PIDController(), **kwargs)
