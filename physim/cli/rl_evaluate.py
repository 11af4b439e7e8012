"""`python scripts/rl_evaluate.py model_path=<run>/checkpoints/best_model.zip`.

Runs the policy, every fixed parameter of the action grid, the baseline eta = 0.03,
the reference integrators (IAS15) and the policy transferred to other integrators on
held-out systems (seeds 0..99, 300 steps), then writes ``evaluation.nc``,
``runs.csv``, ``summary.csv`` and ``pareto.png`` and prints the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from physim.nbody import (
    INTEGRATORS,
    Method,
    dominating,
    evaluate_methods,
    fixed_methods,
    fixed_name,
    load_agent,
    print_summary,
    sb3_policy,
    summarize,
    write_evaluation,
)
from physim.nbody._env import ThreeBodyTimestepEnv

from ._config import log, report_user_errors
from .rl_timestep import RL_CONFIG_DIR, register_shared_groups


def build_methods(cfg: DictConfig) -> list[Method]:
    """The policy, its transfers, the fixed parameters and the references."""
    env_kwargs: dict[str, Any] = OmegaConf.to_container(cfg.env, resolve=True)
    integrator = env_kwargs.pop("integrator")
    grid = env_kwargs.pop("parameter_grid")
    for name in [*cfg.transfer_to, *cfg.references]:
        if name not in INTEGRATORS:
            raise ValueError(
                f"{name!r} in transfer_to/references is not an integrator; choose "
                f"from {sorted(INTEGRATORS)}."
            )
    policy = sb3_policy(load_agent(cfg.model_path, cfg.get("algorithm")))
    methods = [
        Method(
            "policy",
            {"integrator": integrator, "parameter_grid": grid},
            policy,
            "policy",
        )
    ]
    methods += [
        Method(f"policy@{name}", {"integrator": name}, policy, "transfer")
        for name in cfg.transfer_to
    ]
    fixed = cfg.fixed
    if fixed is None:
        fixed = grid or ThreeBodyTimestepEnv(integrator).parameter_grid
    methods += fixed_methods(list(fixed), list(cfg.baseline), integrator)
    methods += [
        Method(
            fixed_name(name, value),
            {"integrator": name, "parameter_grid": [value]},
            kind="reference",
        )  # fmt: skip
        for name, value in cfg.references.items()
    ]
    return methods


def rl_evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Evaluate from a composed ``conf/rl/rl_evaluate.yaml``; return the summary."""
    torch.set_num_threads(int(cfg.torch_threads))
    methods = build_methods(cfg)
    shared = OmegaConf.to_container(cfg.env, resolve=True)
    shared = {
        k: v for k, v in shared.items() if k not in ("integrator", "parameter_grid")
    }
    seeds = range(cfg.first_seed, cfg.first_seed + cfg.num_seeds)
    ds = evaluate_methods(methods, seeds, cfg.n_steps, shared, progress=cfg.progress)
    ds.attrs["model_path"] = str(cfg.model_path)
    out_dir = Path(cfg.paths.output_dir)
    paths = write_evaluation(ds, out_dir)
    summary = summarize(ds)
    print_summary(summary)
    fixed = [m.name for m in methods if m.kind == "fixed"]
    better = dominating(summary, "policy", fixed)
    log.info(
        "Fixed parameters better than the policy in both median error and mean cost: "
        "%s",
        better or "none",
    )
    for value in cfg.baseline:
        name = fixed_name(cfg.env.integrator, value)
        log.info(
            "Mean episode reward: policy %.4g, %s %.4g",
            summary["policy"]["mean_reward"],
            name,
            summary[name]["mean_reward"],
        )
    log.info("Evaluation written to %s", ", ".join(str(p) for p in paths.values()))
    return summary


register_shared_groups()


@hydra.main(version_base="1.3", config_path=RL_CONFIG_DIR, config_name="rl_evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    rl_evaluate(cfg)


if __name__ == "__main__":
    main()
