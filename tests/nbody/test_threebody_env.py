"""The gymnasium environment: API checkers, determinism, reward, bad input."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from physim.nbody import (
    ENV_ID,
    HERMITE_ETA_GRID,
    NBodySystem,
    NBodyUnits,
    SeedCycle,
    ThreeBodyTimestepEnv,
    paper_initial_conditions,
    timestep_reward,
)
from physim.nbody import _kernels as K


def test_registered_and_passes_gymnasium_checker() -> None:
    env = gym.make(ENV_ID, max_steps=5)
    assert isinstance(env.unwrapped, ThreeBodyTimestepEnv)
    with warnings.catch_warnings():
        # The observation box is unbounded (-log10|dE| and velocities have no bound);
        # the checker only warns about that.
        warnings.filterwarnings("ignore", message=".*Box observation space")
        gym_check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_passes_sb3_checker() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        sb3_check_env(ThreeBodyTimestepEnv(max_steps=5), warn=True)


def rollout(env: ThreeBodyTimestepEnv, seed: int, actions: list[int]) -> list:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs, reward, terminated, truncated, info["force_evaluations"]]
    return out


def test_deterministic_for_a_seed() -> None:
    actions = [9, 3, 0, 5, 7]
    a = rollout(ThreeBodyTimestepEnv(), 7, actions)
    b = rollout(ThreeBodyTimestepEnv(), 7, actions)
    c = rollout(ThreeBodyTimestepEnv(), 8, actions)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_observation_layout_and_units() -> None:
    env = ThreeBodyTimestepEnv()
    obs, _ = env.reset(seed=3)
    system = paper_initial_conditions(np.random.default_rng(3))
    y = env.system.y
    np.testing.assert_allclose(y, system.y)
    assert obs.shape == (13,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:6], (y[:, :2] / 10).ravel(), rtol=1e-6)
    np.testing.assert_allclose(obs[6:12], y[:, 3:5].ravel(), rtol=1e-6)
    assert obs[12] == 0.0
    # Centre-of-mass frame, planar, three bodies of one third.
    np.testing.assert_allclose(env.system.masses, [1 / 3] * 3)
    np.testing.assert_allclose((system.masses[:, None] * y).sum(0), 0, atol=1e-15)
    assert (y[:, 2] == 0).all() and (y[:, 5] == 0).all()
    # T = sqrt(au^3 / (3 G Msun)) = 2.8998e6 s: 0.1 yr = 1.08826 T; 10 km/s = 0.193841.
    assert env.step_interval == pytest.approx(1.08826, rel=1e-5)
    assert NBodyUnits().velocity(10.0) == pytest.approx(0.193841, rel=1e-5)
    obs, _, _, _, info = env.step(4)
    energy0 = K.energy(system.y, system.masses, 1.0)
    energy1 = K.energy(env.simulation.y, system.masses, 1.0)
    assert info["energy_error"] == pytest.approx(abs(energy1 / energy0 - 1))
    assert obs[12] == pytest.approx(-math.log10(info["energy_error"]), rel=1e-6)
    assert info["parameter"] == HERMITE_ETA_GRID[4]
    assert info["time"] == pytest.approx(env.step_interval)


def test_paper_distribution_ranges() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        system = paper_initial_conditions(rng)
        y = system.y
        # Relative positions are shift-invariant: body 1 - body 0 in the boxes.
        d1, d2 = y[1, :2] - y[0, :2], y[2, :2] - y[0, :2]
        assert 5 <= d1[0] <= 20 and 0 <= d1[1] <= 10
        assert -10 <= d2[0] <= 0 and 5 <= d2[1] <= 20
        v = NBodyUnits().velocity(10.0)
        np.testing.assert_allclose(y[1, 3:5] - y[2, 3:5], [-v, 0], atol=1e-15)
        np.testing.assert_allclose(y[0, 3:5] - y[2, 3:5], [0, v], atol=1e-15)


@pytest.mark.parametrize(
    ("error", "eta", "step", "expected"),
    [
        # -3000 * log10(1e-8 / 1e-10) / (|-8|^3 * 5) + 4 / |log10 1e-2|
        (1e-8, 1e-2, 5, -3000 * 2 / (512 * 5) + 2.0),
        # An error below 1e-10 is rewarded: -3000 * (-2) / (12^3 * 2) + 4 / 4
        (1e-12, 1e-4, 2, 3000 * 2 / (1728 * 2) + 1.0),
        # |dE| = 1e-10 exactly: only the parameter term, 4 / 1
        (1e-10, 1e-1, 3, 4.0),
        # First step: 0 whatever the error
        (1e-3, 1e-1, 1, 0.0),
        # Beyond the threshold (0.1) and non-finite: clipped to 0.1 (log10 = -1)
        (0.5, 1e-1, 4, -3000 * 9 / 4 + 4.0),
        (math.inf, 1e-1, 4, -3000 * 9 / 4 + 4.0),
    ],
)
def test_reward_formula(error: float, eta: float, step: int, expected: float) -> None:
    assert timestep_reward(error, eta, step) == pytest.approx(expected, rel=1e-12)


def test_reward_weights_configurable() -> None:
    value = timestep_reward(1e-8, 1e-2, 5, w_energy=1.0, w_parameter=0.0)
    assert value == pytest.approx(-2 / (512 * 5), rel=1e-12)


def test_env_reward_is_the_formula() -> None:
    env = ThreeBodyTimestepEnv(w_energy=100.0, w_parameter=2.0)
    env.reset(seed=1)
    for step, action in enumerate([9, 8, 9], start=1):
        _, reward, _, _, info = env.step(action)
        expected = timestep_reward(
            info["energy_error"],
            HERMITE_ETA_GRID[action],
            step,
            w_energy=100.0,
            w_parameter=2.0,
        )
        assert reward == expected


def test_truncation_and_early_termination() -> None:
    env = ThreeBodyTimestepEnv(max_steps=3)
    env.reset(seed=0)
    flags = [env.step(5)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    # A tiny threshold ends the episode at the first step that exceeds it.
    env = ThreeBodyTimestepEnv(max_energy_error=1e-12)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(9)
    assert info["energy_error"] > 1e-12 and terminated and not truncated


def test_policy_transfers_by_action_index() -> None:
    env = ThreeBodyTimestepEnv(integrator="ias15")
    env.reset(seed=2)
    _, _, _, _, info = env.step(0)
    assert info["parameter"] == 1e-10  # the most accurate IAS15 tolerance
    assert info["energy_error"] < 1e-12 and info["force_evaluations"] > 0


def test_seed_cycle_replays_held_out_systems() -> None:
    env = SeedCycle(ThreeBodyTimestepEnv(), [5, 6])
    first = [env.reset()[0] for _ in range(3)]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first[0], ThreeBodyTimestepEnv().reset(seed=5)[0])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="integrator='rk4' is unknown; choose one of"):
        ThreeBodyTimestepEnv(integrator="rk4")
    env = ThreeBodyTimestepEnv()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    for action in (10, -1):
        with pytest.raises(
            ValueError, match=r"outside the action space Discrete\(10\)"
        ):
            env.step(action)
    with pytest.raises(ValueError, match="parameter_grid"):
        ThreeBodyTimestepEnv(parameter_grid=[0.01, -1.0])
    y = np.zeros((3, 6))
    y[:, 0] = (0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="bodies 0 and 1 overlap"):
        NBodySystem(np.ones(3), y)
    y[:, 0] = (-1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"masses\[2\] = -1.0"):
        NBodySystem(np.array([1.0, 1.0, -1.0]), y)
    with pytest.raises(ValueError, match="three-body NBodySystem"):
        env.reset(options={"system": NBodySystem(np.ones(2), y[:2])})


def test_nonfinite_step_ends_the_episode_with_a_flag(
    colliding_system: NBodySystem,
) -> None:
    # Leapfrog steps of 0.5 put bodies 0 and 1 on the same point: 0 / 0 forces.
    env = ThreeBodyTimestepEnv(integrator="leapfrog", parameter_grid=[0.5])
    env.reset(options={"system": colliding_system})
    obs, reward, terminated, truncated, info = env.step(0)
    assert terminated and not truncated
    assert info["nonfinite"] and not info["max_steps_reached"]
    assert info["energy_error"] == math.inf
    assert np.isfinite(obs).all()  # the last finite state is observed
    assert reward == 0.0  # first step


def test_step_cap_ends_the_episode_with_a_flag(colliding_system: NBodySystem) -> None:
    # Hermite's eta * t_coll steps shrink without bound towards the collision.
    env = ThreeBodyTimestepEnv()
    env.reset(options={"system": colliding_system})
    env.simulation.integrator("hermite").max_steps = 2_000
    _, _, terminated, _, info = env.step(0)
    assert terminated and info["max_steps_reached"] and not info["nonfinite"]
