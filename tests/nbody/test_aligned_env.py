"""The aligned setting: residual action, telescoped return, invariant features,
integrator switching, the non-learned baselines, and bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from physim.nbody import (
    AlignedReward,
    ErrorModelController,
    ForecastSwitch,
    Hermite,
    InvariantObservation,
    Menu,
    NBodySystem,
    ReboundIntegrator,
    ResidualParameter,
    Simulation,
    ThreeBodyEnv,
    collect_intervals,
    fit_error_model,
)
from physim.nbody._features import invariant_features, pericentre
from physim.nbody._observations import FORECAST_INDEX


def aligned_env(
    max_steps: int = 20, cost_weight: float = 3.0, **action
) -> ThreeBodyEnv:
    return ThreeBodyEnv(
        ResidualParameter("hermite", **({"baseline": 0.01} | action)),
        InvariantObservation(),
        AlignedReward(cost_weight),
        max_steps=max_steps,
    )


def test_zero_residual_reproduces_the_baseline_trajectory_exactly() -> None:
    residual = aligned_env(max_steps=40)
    fixed = ThreeBodyEnv(Menu([("hermite", 0.01)]), max_steps=40)
    residual.reset(seed=11)
    fixed.reset(seed=11)
    for _ in range(40):
        _, _, _, _, info = residual.step(np.zeros(1, np.float32))
        _, _, _, _, expected = fixed.step(0)
        assert info["parameter"] == 0.01  # 0.01 * 10 ** 0.0, exactly
        np.testing.assert_array_equal(residual.simulation.y, fixed.simulation.y)
        assert info["force_evaluations"] == expected["force_evaluations"]
        assert info["energy_error"] == expected["energy_error"]
    # A nonzero action does change the trajectory (the test above can fail).
    residual.reset(seed=11)
    residual.step(np.full(1, 0.5, np.float32))
    assert residual.simulation.last.force_evaluations != fixed_steps(11)


def fixed_steps(seed: int) -> int:
    env = ThreeBodyEnv(Menu([("hermite", 0.01)]), max_steps=1)
    env.reset(seed=seed)
    return env.step(0)[4]["force_evaluations"]


def test_residual_action_is_a_bounded_log_multiplier() -> None:
    action = ResidualParameter("hermite", baseline=0.01, max_log10_factor=1.0)
    assert action.decode(np.array([1.0]))[1] == pytest.approx(0.1)
    assert action.decode(np.array([-0.5]))[1] == pytest.approx(0.01 / 10**0.5)
    assert action.decode(np.array([7.0]))[1] == pytest.approx(0.1)  # clipped
    assert action.decode(action.encode(0.003))[1] == pytest.approx(0.003, rel=1e-12)
    # The grid's bounds clip a multiplier that would leave them.
    near_top = ResidualParameter("hermite", baseline=0.05, max_log10_factor=1.0)
    assert near_top.decode(np.array([1.0]))[1] == 0.1


def test_return_is_final_log_error_plus_cost() -> None:
    env = aligned_env(max_steps=30, cost_weight=2.5)
    env.reset(seed=4)
    total = 0.0
    rng = np.random.default_rng(0)
    for step in range(1, 31):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 1))
        total += reward
        assert not truncated and terminated == (step == 30)
    # The horizon is terminal (the error is judged there), not a truncation.
    expected = -math.log10(info["energy_error"]) - 2.5 * (
        info["total_force_evaluations"] / 1e4
    )
    assert total == pytest.approx(expected, abs=1e-9)


def test_a_failed_run_returns_unit_error(colliding_system: NBodySystem) -> None:
    # Leapfrog steps of 0.5 put bodies 0 and 1 on the same point: non-finite forces.
    env = ThreeBodyEnv(
        Menu([("leapfrog", 0.5)]), InvariantObservation(), AlignedReward(1.0)
    )
    env.reset(options={"system": colliding_system})
    obs, reward, terminated, _, info = env.step(0)
    assert terminated and info["failed"] and info["nonfinite"]
    assert np.isfinite(obs).all()
    # |dE| = 1: log10 = 0, so the return is the cost alone (none was spent).
    assert reward == pytest.approx(-1.0 * info["total_force_evaluations"] / 1e4)


def rotate(y: np.ndarray, angle: float, order: list[int]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    out = np.hstack([y[:, :3] @ rotation.T, y[:, 3:] @ rotation.T])
    return out[order]


def test_features_are_rotation_and_relabelling_invariant() -> None:
    env = aligned_env()
    env.reset(seed=2)
    system = env.system
    masses = system.masses
    base = invariant_features(system.y, masses, 1.0, 1.0, 2.0)
    turned = invariant_features(
        rotate(system.y, 1.234, [2, 0, 1]), masses, 1.0, 1.0, 2.0
    )
    np.testing.assert_allclose(turned, base, rtol=1e-9, atol=1e-12)
    obs = env.observation(env.simulation, env.max_steps)
    assert obs.shape == env.observation_space.shape == (14,)
    assert obs[-1] == 0.0  # step fraction
    env.step(np.zeros(1))
    assert env.observation(env.simulation, env.max_steps)[-1] == pytest.approx(0.05)


def test_pericentre_time_and_distance_of_a_kepler_orbit() -> None:
    # At apocentre of an ellipse (a = 1, e = 0.6, mu = 2) the pericentre r = a(1 - e)
    # comes half a period later; approaching at 90 degrees before it, Kepler's
    # equation gives the time from the mean anomaly.
    a, e, mu = 1.0, 0.6, 2.0
    period = 2 * math.pi * math.sqrt(a**3 / mu)
    r_apo = a * (1 + e)
    v_apo = math.sqrt(mu * (1 - e) / r_apo)
    r_p, t_p = pericentre(r_apo, 0.0, 0.0, 0.0, v_apo, 0.0, mu)
    assert r_p == pytest.approx(a * (1 - e), rel=1e-12)
    assert t_p == pytest.approx(period / 2, rel=1e-9)
    # Just after pericentre (receding): nearly a whole period to the next one.
    r_peri = a * (1 - e)
    v_peri = math.sqrt(mu * (1 + e) / r_peri)
    angle = 1e-4
    r = (r_peri * math.cos(angle), r_peri * math.sin(angle))
    v = (-v_peri * math.sin(angle), v_peri * math.cos(angle))
    assert pericentre(*r, 0.0, *v, 0.0, mu)[1] == pytest.approx(period, rel=1e-3)
    # An unbound pair moving apart has no pericentre ahead.
    assert pericentre(1.0, 0.0, 0.0, 5.0, 0.1, 0.0, 1.0)[1] == math.inf


def test_switching_integrators_counts_restarts_and_stays_accurate() -> None:
    menu = Menu([("hermite", 0.006), ("ias15", 1e-6)])
    env = ThreeBodyEnv(menu, InvariantObservation(), AlignedReward(2.0), max_steps=12)
    env.reset(seed=3)
    actions = [0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0]
    infos = [env.step(a)[4] for a in actions]
    assert [i["integrator"] for i in infos[:3]] == ["hermite", "hermite", "ias15"]
    assert (
        sum(i["force_evaluations"] for i in infos) == env.simulation.force_evaluations
    )
    assert infos[-1]["energy_error"] < 1e-8  # IAS15 legs keep the error small


def test_a_restart_costs_its_force_evaluation() -> None:
    env = ThreeBodyEnv(Menu([("hermite", 0.006)]), max_steps=5)
    env.reset(seed=3)
    sim = Simulation(env.system, ["hermite", "ias15"], env.step_interval)
    sim.advance("ias15", 1e-6)
    y, t0 = sim.y.copy(), sim.steps * sim.interval
    restarted = sim.advance("hermite", 0.006).force_evaluations
    # The same interval from the same state by a fresh Hermite: its steps alone.
    hermite = Hermite(env.system.masses)
    steps = hermite.advance(hermite.start(y), t0, t0 + sim.interval, 0.006)
    assert (
        restarted
        == steps.force_evaluations + Hermite.restart_evaluations
        == (steps.force_evaluations + 1)
    )
    # REBOUND evaluates the forces inside its first step: no restart charge.
    assert ReboundIntegrator.restart_evaluations == 0


def test_forecast_switch_takes_ias15_before_an_encounter() -> None:
    rule = ForecastSwitch(threshold_intervals=0.9)
    obs = np.zeros(14, np.float32)
    obs[FORECAST_INDEX] = math.log10(0.5)
    assert rule(obs) == 1
    obs[FORECAST_INDEX] = math.log10(3.0)
    assert rule(obs) == 0


def test_error_model_recovers_its_scalings_and_trades_error_for_cost() -> None:
    # Synthetic intervals: log10 increment = 4 log10 eta + 2 obs[0] - 1 and
    # log10 evaluations = -log10 eta + obs[1] + 0.5, exactly.
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, 3))
    log_eta = rng.uniform(-3, -1, 200)
    error = 4 * log_eta + 2 * obs[:, 0] - 1
    cost = -log_eta + obs[:, 1] + 0.5
    model = fit_error_model(obs, log_eta, error, cost)
    np.testing.assert_allclose(model.error_coef, [2, 0, 0, 4, -1], atol=1e-5)
    np.testing.assert_allclose(model.cost_coef, [0, 1, 0, -1, 0.5], atol=1e-5)
    fixed = fit_error_model(obs, log_eta, error, cost, exponents=(4.0, -1.0))
    np.testing.assert_allclose(fixed.error_coef, model.error_coef, atol=1e-5)
    # min A eta^4 + price B / eta  =>  eta = (price B / (4 A))^(1/5).
    action = ResidualParameter("hermite", baseline=0.01)
    state = np.array([0.5, 0.3, -0.2])
    a, b = 10 ** (2 * 0.5 - 1), 10 ** (0.3 + 0.5)
    price = 1e-9
    expected = (price * b / (4 * a)) ** 0.2
    controller = ErrorModelController(model, action, price, grid_points=2001)
    eta = action.decode(controller(state))[1]
    assert math.log10(eta) == pytest.approx(math.log10(expected), abs=2e-3)
    dearer = ErrorModelController(model, action, 1e3 * price, grid_points=2001)
    assert action.decode(dearer(state))[1] > eta  # dearer evaluations: larger eta
    with pytest.raises(ValueError, match="does not grow with the parameter"):
        fit_error_model(obs, log_eta, -error, cost)
    with pytest.raises(ValueError, match="price=0"):
        ErrorModelController(model, action, 0)


def test_error_model_data_from_the_environment() -> None:
    obs, log_eta, error, cost = collect_intervals(
        lambda max_steps: aligned_env(max_steps), [2000], [0.005, 0.02], n_steps=15
    )
    assert obs.shape == (30, 14) and log_eta.shape == error.shape == (30,)
    # Larger eta: larger interval errors (Hermite: ~eta^4), fewer evaluations.
    assert error[15:].mean() > error[:15].mean() + 1
    assert cost[15:].mean() < cost[:15].mean() - 0.3
    windowed = collect_intervals(
        lambda max_steps: aligned_env(max_steps), [2000], [0.005], 15, window=5
    )
    assert windowed[0].shape == (11, 14)  # 15 - 5 + 1 windows
    with pytest.raises(ValueError, match="outside the grid the action reaches"):
        collect_intervals(lambda max_steps: aligned_env(max_steps), [0], [0.5], 2)


def test_aligned_env_passes_sb3_checker() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Box observation space")
        sb3_check_env(aligned_env(max_steps=5), warn=True)
    sb3_check_env(
        ThreeBodyEnv(
            Menu([("hermite", 0.01), ("ias15", 1e-6)]),
            InvariantObservation(),
            AlignedReward(),
            max_steps=5,
        )
    )


def test_bad_input_names_the_key_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"options\[1\]\[0\]='rk4' is unknown"):
        Menu([("hermite", 0.01), ("rk4", 0.1)])
    with pytest.raises(ValueError, match=r"options\[0\]\[1\]=2.0: hermite's parameter"):
        Menu([("hermite", 2.0)])
    with pytest.raises(ValueError, match=r"cost_weight=-1.*must be >= 0"):
        AlignedReward(cost_weight=-1.0)
    with pytest.raises(ValueError, match=r"baseline=0.5 is outside the grid"):
        ResidualParameter("hermite", baseline=0.5)
    with pytest.raises(ValueError, match="integrator='rk4' is unknown"):
        ResidualParameter("rk4")
    env = aligned_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one finite number"):
        env.step(np.array([np.nan]))
