"""Short training runs (save, reload, predict, resume, vectorised environments), the
Hydra apps and the evaluation files.

The runs are seconds long: they check the plumbing, not that the agent learns (see
scripts/bench/bench_nbody_rl.py for training runs and the 100-seed yardstick).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hydra import compose, initialize_config_dir

from physim.nbody import (
    DEFAULT_FRONTS,
    Method,
    ThreeBodyTimestepEnv,
    evaluate_methods,
    fixed_methods,
    load_agent,
    sb3_policy,
    train_agent,
    write_evaluation,
    yardstick,
)

TINY_DQN = {"learning_starts": 20, "batch_size": 16, "buffer_size": 500}
PAPER_ENV = partial(ThreeBodyTimestepEnv)


def test_short_dqn_run_saves_reloads_predicts_and_resumes(tmp_path: Path) -> None:
    result = train_agent(
        tmp_path,
        PAPER_ENV,
        total_timesteps=60,
        max_steps=10,
        agent_kwargs=TINY_DQN,
        net_arch=(16,),
        eval_seeds=[1000, 1001],
        eval_freq=30,
        checkpoint_freq=30,
        log_formats=["csv"],
        progress_bar=False,
    )
    assert result.num_timesteps == 60
    assert result.best_model.name == "best_model.zip" and result.best_model.is_file()
    assert (tmp_path / "checkpoints" / "step_30_steps.zip").is_file()
    assert (tmp_path / "logs" / "progress.csv").stat().st_size > 0
    evaluations = np.load(tmp_path / "eval" / "evaluations.npz")
    assert evaluations["results"].shape == (2, 2)  # 2 evaluations x 2 seeds

    model = load_agent(result.last_model)  # algorithm from agent.json
    env = ThreeBodyTimestepEnv(max_steps=10)
    obs, _ = env.reset(seed=0)
    actions = [int(sb3_policy(model)(obs)) for _ in range(2)]
    assert actions[0] == actions[1] and 0 <= actions[0] < 10
    # The reloaded network is the trained one: same Q-values as the saved file.
    again = load_agent(result.last_model, "dqn")
    q = [m.q_net(m.policy.obs_to_tensor(obs)[0]).detach() for m in (model, again)]
    np.testing.assert_array_equal(q[0].numpy(), q[1].numpy())

    resumed = train_agent(
        tmp_path / "resumed",
        PAPER_ENV,
        total_timesteps=80,
        max_steps=10,
        agent_kwargs=TINY_DQN,
        eval_seeds=[],
        log_formats=["csv"],
        progress_bar=False,
        resume=tmp_path / "checkpoints" / "step_30_steps.zip",
    )
    # Continues from step 30 (not 0); DQN collects train_freq = 4 steps at a time.
    assert 80 <= resumed.num_timesteps < 84


def test_training_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="algorithm='sac' is unknown"):
        train_agent(tmp_path, PAPER_ENV, algorithm="sac")
    with pytest.raises(ValueError, match="vec_env='mpi' is unknown"):
        train_agent(tmp_path, PAPER_ENV, n_envs=2, vec_env="mpi")
    with pytest.raises(ValueError, match="n_envs=0"):
        train_agent(tmp_path, PAPER_ENV, n_envs=0)
    with pytest.raises(FileNotFoundError, match="resume=.*checkpoint not found"):
        train_agent(tmp_path, PAPER_ENV, max_steps=10, resume=tmp_path / "no.zip")
    with pytest.raises(FileNotFoundError, match="missing.zip: agent not found"):
        load_agent(tmp_path / "missing.zip")


def aligned_config() -> dict:
    return {
        "_target_": "physim.nbody.ThreeBodyEnv",
        "action": {"_target_": "physim.nbody.ResidualParameter"},
        "observation": {"_target_": "physim.nbody.InvariantObservation"},
        "reward": {"_target_": "physim.nbody.AlignedReward"},
    }


def test_vectorised_subprocess_training_records_its_seeds(tmp_path: Path) -> None:
    # Two subprocess environments, PPO on the aligned eta setting; agent.json names
    # the random streams (disjoint across training seeds) and the selection seeds.
    from physim.cli.rl_timestep import ConfiguredEnv

    make = ConfiguredEnv(aligned_config())
    result = train_agent(
        tmp_path,
        make,
        algorithm="ppo",
        total_timesteps=40,
        max_steps=5,
        n_envs=2,
        vec_env="subproc",
        agent_kwargs={"n_steps": 10, "batch_size": 10, "n_epochs": 1},
        eval_seeds=[1000],
        eval_freq=20,
        log_formats=["csv"],
        progress_bar=False,
        seed=1,
        metadata={"env": make.config},
    )
    assert result.num_timesteps == 40  # 2 updates x 2 environments x 10 steps
    info = json.loads((tmp_path / "checkpoints" / "agent.json").read_text())
    assert info["training_seeds"] == [11000, 11001]
    assert info["selection_seeds"] == [1000] and info["env"] == make.config
    evaluations = np.load(tmp_path / "eval" / "evaluations.npz")
    assert evaluations["results"].shape == (2, 1)  # every 20 steps of 40


def test_evaluation_files_and_yardstick(tmp_path: Path) -> None:
    methods = [
        *fixed_methods("hermite", [1e-1, 1e-2, 1e-3]),
        *fixed_methods("ias15", [1e-9]),
        Method(
            "switching",
            PAPER_ENV,
            lambda obs: 9 if obs[12] > 9 else 3,
            "policy",
        ),
    ]
    ds = evaluate_methods(methods, seeds=[0, 1], n_steps=4, progress=False)
    assert ds.final_energy_error.shape == (5, 2)
    # More accurate costs more: eta = 1e-3 beats 1e-1 in error, loses in cost.
    error = ds.final_energy_error.mean("seed").to_series()
    cost = ds.total_force_evaluations.mean("seed").to_series()
    assert error["hermite:0.001"] < error["hermite:0.1"]
    assert cost["hermite:0.001"] > cost["hermite:0.1"]
    # Force evaluations are the per-step sums of the environment's counts.
    total = ds.force_evaluations.sum("step")
    np.testing.assert_array_equal(ds.total_force_evaluations, total)
    table = yardstick(ds, DEFAULT_FRONTS, n_bootstrap=20)
    assert table.loc["hermite:0.01", "gap_eta"] == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(table.loc["switching", "mean_paper_reward"])
    paths = write_evaluation(ds, table, tmp_path, DEFAULT_FRONTS)
    assert all(p.is_file() for p in paths.values())
    back = xr.open_dataset(paths["netcdf"], engine="h5netcdf")
    np.testing.assert_array_equal(back.final_energy_error, ds.final_energy_error)
    back.close()


def compose_rl(config_name: str, overrides: list[str]):
    from physim.cli.rl_timestep import RL_CONFIG_DIR

    with initialize_config_dir(RL_CONFIG_DIR, version_base="1.3"):
        return compose(config_name, overrides=overrides)


def test_hydra_apps_train_and_evaluate(tmp_path: Path) -> None:
    from physim.cli.rl_evaluate import rl_evaluate
    from physim.cli.rl_timestep import rl_timestep

    cfg = compose_rl(
        "rl_timestep",
        [
            "+experiment=threebody_aligned_eta",
            f"paths.output_dir={tmp_path / 'train'}",
            "total_timesteps=40",
            "env.max_steps=5",
            "n_envs=2",
            "vec_env=dummy",
            "agent.kwargs.n_steps=10",
            "agent.kwargs.batch_size=10",
            "eval.num_seeds=1",
            "eval.freq=20",
            "checkpoint_freq=20",
            "log_formats=[csv]",
            "progress_bar=false",
        ],
    )
    assert cfg.agent.algorithm == "ppo" and cfg.task_name == "threebody_aligned_eta"
    result = rl_timestep(cfg)
    assert result.num_timesteps == 40
    evaluate = [
        f"+policies.eta=[{result.best_model}]",
        f"paths.output_dir={tmp_path / 'eval'}",
        "num_seeds=3",
        "n_steps=5",
        "sweeps.hermite.num=3",
        "sweeps.ias15.num=2",
        "baselines.error_model.num_seeds=2",
        "baselines.error_model.window=1",
        "baselines.error_model.prices=[1e-10]",
        "bootstrap.samples=20",
        "progress=false",
    ]
    table = rl_evaluate(compose_rl("rl_evaluate", evaluate))
    assert {"eta[0]", "error_model:1e-10", "forecast_switch:0.9", "hermite:0.1",
            "ias15:1e-10"} <= set(table.index)  # fmt: skip
    assert table.loc["eta[0]", "kind"] == "policy"
    assert (tmp_path / "eval" / "work_precision.png").is_file()
    # The evaluation refuses seeds the model was selected on (1000) ...
    with pytest.raises(ValueError, match=r"selection seeds of eta\[0\]: \[1000\]"):
        rl_evaluate(compose_rl("rl_evaluate", [*evaluate, "first_seed=999"]))
    # ... or the error model was fitted on (2000).
    with pytest.raises(ValueError, match=r"training seeds of the error model: \[2000"):
        rl_evaluate(compose_rl("rl_evaluate", [*evaluate, "first_seed=1999"]))


def test_paper_setting_app_trains_and_transfers(tmp_path: Path) -> None:
    from physim.cli.rl_evaluate import rl_evaluate
    from physim.cli.rl_timestep import rl_timestep

    cfg = compose_rl(
        "rl_timestep",
        [
            "+experiment=threebody_dqn",
            f"paths.output_dir={tmp_path / 'train'}",
            "total_timesteps=40",
            "env.max_steps=5",
            "agent.kwargs.learning_starts=10",
            "agent.kwargs.batch_size=8",
            "eval.num_seeds=1",
            "eval.freq=20",
            "log_formats=[csv]",
            "progress_bar=false",
        ],
    )
    result = rl_timestep(cfg)
    evaluate = [
        f"+policies.dqn=[{result.best_model}]",
        f"paths.output_dir={tmp_path / 'eval'}",
        "num_seeds=2",
        "n_steps=3",
        "transfer_to=[ias15]",
        "sweeps.hermite.num=2",
        "sweeps.ias15=null",
        "baselines.error_model.enabled=false",
        "baselines.forecast_switch.enabled=false",
        "bootstrap.samples=10",
        "progress=false",
    ]
    table = rl_evaluate(compose_rl("rl_evaluate", evaluate))
    assert table.loc["dqn[0]@ias15", "kind"] == "transfer"
    assert set(table.index) == {"dqn[0]", "dqn[0]@ias15", "hermite:0.0001",
                                "hermite:0.1"}  # fmt: skip


def test_paper_setting_trains_and_selects_on_the_evaluation_length() -> None:
    # Training on 100-step episodes left the late, spread-out systems of the 300-step
    # evaluation unseen (the policy took eta = 0.1 on 26% of steps 101-300), and the
    # best model was chosen on 100-step episodes.
    overrides = ["+experiment=threebody_dqn", "paths.output_dir=x"]
    train = compose_rl("rl_timestep", overrides)
    evaluate = compose_rl("rl_evaluate", ["paths.output_dir=x"])
    assert train.env.max_steps == train.eval.max_steps == evaluate.n_steps == 300
    assert train.env._target_ == "physim.nbody.ThreeBodyTimestepEnv"
    paper = compose_rl(
        "rl_timestep", ["+experiment=threebody_dqn_paper", "paths.output_dir=x"]
    )
    assert paper.env.max_steps == 100  # the paper's training episodes


def test_yardstick_defaults_meet_the_issue() -> None:
    cfg = compose_rl("rl_evaluate", ["paths.output_dir=x"])
    assert cfg.sweeps.hermite.num >= 20  # a dense fixed-eta sweep
    assert cfg.sweeps.ias15.num >= 3  # IAS15 at several tolerances
    evaluation = set(range(cfg.first_seed, cfg.first_seed + cfg.num_seeds))
    model = cfg.baselines.error_model
    fitted = set(range(model.first_seed, model.first_seed + model.num_seeds))
    assert not evaluation & fitted


@pytest.mark.parametrize(
    "name",
    [
        "threebody_dqn_paper",
        "threebody_ppo",
        "threebody_aligned_eta",
        "threebody_switch",
    ],
)
def test_experiments_compose_and_build_their_env(name: str) -> None:
    from physim.cli.rl_timestep import ConfiguredEnv

    cfg = compose_rl("rl_timestep", [f"+experiment={name}", "paths.output_dir=x"])
    assert cfg.agent.algorithm in ("dqn", "ppo")
    env = ConfiguredEnv.from_config(cfg.env)(max_steps=3)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    if name.endswith("_paper"):
        assert list(cfg.agent.net_arch) == [200] * 10
        assert cfg.agent.kwargs.buffer_size == 10000
    if name in ("threebody_aligned_eta", "threebody_switch"):
        assert cfg.agent.kwargs.gamma == 1.0 and cfg.n_envs > 1
        assert env.reward.horizon_is_terminal
