"""A short DQN run (save, reload, predict, resume), the Hydra apps and the evaluation.

The runs are seconds long: they check the plumbing, not that the agent learns (see
scripts/bench/bench_nbody_rl.py for a training run and the 100-seed evaluation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hydra import compose, initialize_config_dir

from physim.nbody import (
    Method,
    ThreeBodyTimestepEnv,
    dominating,
    evaluate_methods,
    fixed_methods,
    load_agent,
    sb3_policy,
    summarize,
    train_agent,
    write_evaluation,
)

TINY_DQN = {"learning_starts": 20, "batch_size": 16, "buffer_size": 500}
TINY_ENV = {"max_steps": 10}


def test_short_dqn_run_saves_reloads_predicts_and_resumes(tmp_path: Path) -> None:
    result = train_agent(
        tmp_path,
        total_timesteps=60,
        env_kwargs=TINY_ENV,
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
    env = ThreeBodyTimestepEnv(**TINY_ENV)
    obs, _ = env.reset(seed=0)
    actions = [sb3_policy(model)(obs) for _ in range(2)]
    assert actions[0] == actions[1] and 0 <= actions[0] < 10
    # The reloaded network is the trained one: same Q-values as the saved file.
    again = load_agent(result.last_model, "dqn")
    q = [m.q_net(m.policy.obs_to_tensor(obs)[0]).detach() for m in (model, again)]
    np.testing.assert_array_equal(q[0].numpy(), q[1].numpy())

    resumed = train_agent(
        tmp_path / "resumed",
        total_timesteps=80,
        env_kwargs=TINY_ENV,
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
        train_agent(tmp_path, algorithm="sac")
    with pytest.raises(FileNotFoundError, match="resume=.*checkpoint not found"):
        train_agent(tmp_path, env_kwargs=TINY_ENV, resume=tmp_path / "missing.zip")
    with pytest.raises(FileNotFoundError, match="model_path=.*agent not found"):
        load_agent(tmp_path / "missing.zip")


def test_evaluation_table_files_and_pareto_check(tmp_path: Path) -> None:
    methods = fixed_methods([1e-1, 1e-3], extra=[0.03]) + [
        Method(
            "ias15:1e-09",
            {"integrator": "ias15", "parameter_grid": [1e-9]},
            kind="reference",
        ),  # fmt: skip
        Method("switching", {}, lambda obs: 9 if obs[12] > 9 else 3, "policy"),
    ]
    ds = evaluate_methods(methods, seeds=[0, 1], n_steps=4, progress=False)
    assert ds.final_energy_error.shape == (5, 2)
    summary = summarize(ds)
    # More accurate costs more: eta = 1e-3 beats 1e-1 in error, loses in cost.
    fine, coarse = summary["hermite:0.001"], summary["hermite:0.1"]
    assert fine["median_energy_error"] < coarse["median_energy_error"]
    assert fine["mean_force_evaluations"] > coarse["mean_force_evaluations"]
    assert dominating(summary, "hermite:0.1", ["hermite:0.001"]) == []
    # Force evaluations are the per-step sums of the environment's counts.
    total = ds.force_evaluations.sum("step")
    np.testing.assert_array_equal(ds.total_force_evaluations, total)
    paths = write_evaluation(ds, tmp_path)
    assert all(p.is_file() for p in paths.values())
    back = xr.open_dataset(paths["netcdf"], engine="h5netcdf")
    np.testing.assert_array_equal(back.final_energy_error, ds.final_energy_error)
    back.close()


def test_dominating_is_strict_pareto() -> None:
    summary = {
        "policy": {"median_energy_error": 1e-8, "mean_force_evaluations": 100.0},
        "both": {"median_energy_error": 1e-9, "mean_force_evaluations": 50.0},
        "tie": {"median_energy_error": 1e-8, "mean_force_evaluations": 100.0},
        "one": {"median_energy_error": 1e-9, "mean_force_evaluations": 200.0},
    }
    assert dominating(summary, "policy", ["both", "tie", "one"]) == ["both"]


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
            "+experiment=threebody_dqn",
            f"paths.output_dir={tmp_path / 'train'}",
            "total_timesteps=40",
            "env.max_steps=5",
            "agent.kwargs.learning_starts=10",
            "agent.kwargs.batch_size=8",
            "eval.num_seeds=1",
            "eval.freq=20",
            "checkpoint_freq=20",
            "log_formats=[csv]",
            "progress_bar=false",
        ],
    )
    assert cfg.agent.algorithm == "dqn" and cfg.task_name == "threebody_dqn"
    result = rl_timestep(cfg)
    assert result.num_timesteps == 40
    cfg = compose_rl(
        "rl_evaluate",
        [
            f"model_path={result.best_model}",
            f"paths.output_dir={tmp_path / 'eval'}",
            "num_seeds=2",
            "n_steps=3",
            "fixed=[0.1]",
            "progress=false",
        ],
    )
    summary = rl_evaluate(cfg)
    assert set(summary) == {"policy", "policy@ias15", "hermite:0.1", "hermite:0.03",
                            "ias15:1e-09"}  # fmt: skip
    assert (tmp_path / "eval" / "pareto.png").is_file()


def test_cpu_default_trains_and_selects_on_the_evaluation_length() -> None:
    # Training on 100-step episodes left the late, spread-out systems of the 300-step
    # evaluation unseen (the policy took eta = 0.1 on 26% of steps 101-300), and the
    # best model was chosen on 100-step episodes.
    overrides = ["+experiment=threebody_dqn", "paths.output_dir=x"]
    train = compose_rl("rl_timestep", overrides)
    evaluate = compose_rl("rl_evaluate", ["model_path=m.zip", "paths.output_dir=x"])
    assert train.env.max_steps == train.eval.max_steps == evaluate.n_steps == 300
    paper = compose_rl(
        "rl_timestep", ["+experiment=threebody_dqn_paper", "paths.output_dir=x"]
    )
    assert paper.env.max_steps == 100  # the paper's training episodes


@pytest.mark.parametrize("name", ["threebody_dqn_paper", "threebody_ppo"])
def test_other_experiments_compose(name: str) -> None:
    cfg = compose_rl("rl_timestep", [f"+experiment={name}", "paths.output_dir=x"])
    assert cfg.agent.algorithm in ("dqn", "ppo")
    if name.endswith("_paper"):
        assert list(cfg.agent.net_arch) == [200] * 10
        assert cfg.agent.kwargs.buffer_size == 10000
