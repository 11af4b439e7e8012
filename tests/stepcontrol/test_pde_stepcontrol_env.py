"""The PDE step-control environment, its objective and verdict, and its training."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from physim.solvers.schemes import (
    ETDRK4,
    RK4,
    ForwardEuler,
    IMEXCrankNicolsonHeun,
    SemiLinear,
    StepDoubling,
)
from physim.stepcontrol import (
    BurgersFamily,
    Method,
    PDEStepControlEnv,
    Problem,
    build_problems,
    evaluations_per_step,
    front_slope,
    make_env,
    network_objective,
    prepare_training,
    relative_score,
    run_method,
    tolerance_slope,
    train_cmaes,
    work_precision,
)
from physim.timestepping import FEATURES, CorrectionNetwork, StepResult

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_env(**kwargs) -> PDEStepControlEnv:
    return make_env(
        {"burgers": BurgersFamily(16, 0.05)},
        {"burgers": [0.05]},
        [10_000],
        [1e-4, 1e-6],
        features=tuple(FEATURES),
        reference_tolerance=1e-10,
        **kwargs,
    )


def test_environment_passes_gymnasium_and_sb3_checkers():
    env = tiny_env()
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)


def test_zero_actions_reproduce_the_base_run_and_return_zero():
    env = tiny_env(coefficients={"burgers": {"pcoeff": 0.0, "icoeff": 0.7}})
    obs, info = env.reset(seed=0, options={"problem": 0, "tolerance": 1e-6})
    assert env.observation_space.contains(obs)
    total, done = 0.0, False
    while not done:
        obs, reward, done, truncated, info = env.step(np.zeros(1, np.float32))
        total += reward
        assert not truncated
    assert total == pytest.approx(0.0, abs=1e-12)
    assert info["log10_error"] == info["base_log10_error"]
    assert info["evaluations"] == info["base_evaluations"]


class Drift:
    """``y' = 1`` taken as ``y + dt + q dt^2``; reports a scaled error of exactly
    ``0.81`` (so the elementary controller with safety 0.9 keeps ``dt``: 0.9 / 0.81
    ** (1/2) = 1)."""

    order = 1
    embedded_order = 1
    q = 0.01
    rtol = atol = 1e-3

    class scheme:  # noqa: N801  (evaluations_per_step reads scheme.name: 4 a step)
        name = "rk4"

    def step(self, y, t, dt):
        y1 = y + dt + self.q * dt**2
        scale = self.atol + self.rtol * torch.maximum(y.abs(), y1.abs())
        return StepResult(y1, 0.81 * scale)


def test_reward_on_a_hand_computed_three_step_case():
    y0 = torch.ones(1, 2, dtype=torch.float64)
    stepper = Drift()
    problem = Problem("drift", 0.0, 0, stepper, stepper, y0, 0.35, y0 + 0.35, dt0=0.1)
    env = PDEStepControlEnv(
        [problem],
        [1e-3],
        coefficients={"drift": {"pcoeff": 0.0, "icoeff": 1.0}},
        cost_weight=2.0,
        max_log10_correction=math.log10(1.5),
    )
    env.reset(seed=0)
    # Step 1 (dt 0.1) asks for 1.5x: dt 0.15, 0.15 reaches t = 0.25; the last step is
    # clipped to 0.1. The base keeps dt = 0.1: four steps, the last 0.05.
    rewards, infos = [], []
    for action in (1.0, 0.0, 0.0):
        _, reward, done, _, info = env.step(np.array([action], np.float32))
        rewards.append(reward)
        infos.append(info)
    assert done and [i["accepted"] for i in infos] == [True] * 3
    # Evaluations (4 per step, "rk4"): 4 after reset (the first step, paid before the
    # first decision), then 8, 12, 12; base: 16.
    assert [i["evaluations"] for i in infos] == [8, 12, 12]
    assert infos[-1]["base_evaluations"] == 16
    error = 0.01 * (0.1**2 + 0.15**2 + 0.1**2) / 1.35  # relative, y = 1.35 everywhere
    base_error = 0.01 * (3 * 0.1**2 + 0.05**2) / 1.35
    expected = [
        -2.0 * math.log10(8 / 4),
        -2.0 * math.log10(12 / 8),
        -(math.log10(error) - math.log10(base_error)) + 2.0 * math.log10(16 / 4),
    ]
    assert rewards == pytest.approx(expected, rel=1e-9)
    # The return is minus the objective of this run against the base.
    objective = math.log10(error / base_error) + 2.0 * math.log10(3 / 4)
    assert sum(rewards) == pytest.approx(-objective, rel=1e-9)


def test_environment_refuses_bad_input_before_any_step():
    class NoEstimate(Drift):
        error_estimate = False

    y0 = torch.ones(1, 2, dtype=torch.float64)
    stepper = NoEstimate()
    problem = Problem("drift", 0.0, 0, stepper, stepper, y0, 0.35, y0 + 0.35, dt0=0.1)
    with pytest.raises(TypeError, match="error estimate"):
        PDEStepControlEnv([problem], [1e-3])
    good = Drift()
    problem = Problem("drift", 0.0, 0, good, good, y0, 0.35, y0 + 0.35, dt0=0.1)
    with pytest.raises(ValueError, match=r"rtol=1e-20 .*float64"):
        PDEStepControlEnv([problem], [1e-20])
    family = BurgersFamily(16, 0.05, dtype="float32")
    with pytest.raises(ValueError, match=r"rtol=1e-09 .*float32"):
        make_env({"burgers": family}, {"burgers": [0.05]}, [0], [1e-9])


def counting_term(calls: list) -> SemiLinear:
    k = torch.arange(9, dtype=torch.float64)

    def nonlinear(y, t):
        calls.append(t)
        return -0.5j * k * torch.fft.rfft(torch.fft.irfft(y, n=16) ** 2)

    return SemiLinear(-(k**2), nonlinear, torch.complex128)


@pytest.mark.parametrize(
    "build", [ETDRK4, RK4, ForwardEuler, IMEXCrankNicolsonHeun, "doubling"]
)
def test_evaluations_per_step_counts_the_right_hand_side(build):
    calls: list = []
    term = counting_term(calls)
    scheme = StepDoubling(ETDRK4(term)) if build == "doubling" else build(term)
    y = torch.fft.rfft(torch.sin(torch.linspace(0, 6.28, 16, dtype=torch.float64)))
    scheme.step(y[None], 0.0, 0.01)
    assert len(calls) == evaluations_per_step(scheme)


def synthetic_runs() -> pd.DataFrame:
    """Two problems; ``pi_tuned``: error = tol, cost = 100 tol^(-1/4) (front slope
    -4); ``better``: half a decade less error at the same cost."""
    rows = []
    for method, shift in (("pi_tuned", 0.0), ("better", -0.5)):
        for tol in 10.0 ** -np.arange(2, 9):
            for problem, scale in (("a", 1.0), ("b", 2.0)):
                rows.append(
                    {
                        "family": "f",
                        "problem": problem,
                        "method": method,
                        "kind": "pi" if method == "pi_tuned" else "learned",
                        "point": tol,
                        "log10_error": math.log10(scale * tol) + shift,
                        "evaluations": 100 * tol**-0.25,
                        "failed": False,
                        "rejected": 1,
                        "steps": 10,
                        "wall_time": 0.01,
                    }
                )
    return pd.DataFrame(rows)


def test_objective_and_verdict_on_synthetic_fronts():
    runs = synthetic_runs()
    tuned, better = runs[runs.method == "pi_tuned"], runs[runs.method == "better"]
    assert front_slope(tuned) == pytest.approx(-4.0)
    assert relative_score(better, tuned, -4.0) == pytest.approx(-0.5)
    assert tolerance_slope(better) == pytest.approx(1.0)
    points, summary = work_precision(runs, "pi_tuned", n_bootstrap=50)
    row = summary.set_index("method").loc["better"]
    assert row.gap == pytest.approx(-0.5)
    # Half a decade of error on a slope-4 front: 10^(-0.5/4) of the cost.
    assert row.cost_factor == pytest.approx(10 ** (-0.5 / 4))
    assert row.points_inside == 7
    assert row.rejection_rate == pytest.approx(0.1)
    assert row.tolerance_slope == pytest.approx(1.0)
    assert summary.set_index("method").loc["pi_tuned", "gap"] == pytest.approx(0.0)


@pytest.fixture(scope="module")
def tiny_problems():
    return build_problems(BurgersFamily(16, 0.05), [0.05], [10_000], 1e-10)


def test_cmaes_never_returns_worse_than_its_start(tiny_problems):
    training = prepare_training(tiny_problems, [1e-4, 1e-6], {})
    template = CorrectionNetwork(tuple(FEATURES), ())
    start, _ = network_objective(template, training, 0.2)
    network, history = train_cmaes(
        training, template, max_evaluations=6, popsize=6, progress=False
    )
    assert len(history) == 7  # the start and one generation
    assert history.objective.iloc[0] == pytest.approx(start)
    best, _ = network_objective(network, training, 0.2)
    assert best == pytest.approx(history.objective.min()) and best <= start


def test_learned_method_runs_and_counts_trial_steps(tiny_problems):
    problem = tiny_problems[0]
    zero = CorrectionNetwork(tuple(FEATURES), (4,))
    pi = run_method(Method("pi", "pi"), problem, 1e-6)
    learned = run_method(Method("l", "learned", network=zero), problem, 1e-6)
    assert (learned.error, learned.evaluations) == (pi.error, pi.evaluations)
    # The initial-step search is paid for: attempts exceed the driver's steps.
    assert pi.attempts > pi.steps and pi.evaluations == 12 * pi.attempts


def test_sb3_actor_converts_to_the_same_correction():
    from stable_baselines3 import PPO
    from torch import nn

    env = tiny_env()
    model = PPO(
        "MlpPolicy",
        env,
        policy_kwargs={"net_arch": {"pi": [4], "vf": [4]}, "activation_fn": nn.Tanh},
        seed=0,
    )
    with torch.no_grad():
        for p in model.policy.parameters():
            p.normal_(0.0, 1.0)
    network = CorrectionNetwork.from_sb3(model, tuple(FEATURES))
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.uniform(-3, 3, len(FEATURES)).astype(np.float32)
        action, _ = model.predict(obs, deterministic=True)
        assert network(obs.astype(np.float64)) == pytest.approx(
            float(action[0]), abs=1e-5
        )
