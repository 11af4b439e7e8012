"""`python scripts/rl_timestep.py +experiment=threebody_dqn`: train a step-size agent.

Trains a stable-baselines3 agent (``agent=dqn|dqn_paper|ppo|ppo_aligned``) on the
environment of ``env=`` (``threebody``: the paper's setting; ``aligned_eta``,
``aligned_switch``: the aligned settings) and writes ``checkpoints/`` (best on
held-out seeds, periodic, ``last.zip``, ``agent.json`` with the environment's config
and the seeds), ``logs/`` (CSV, TensorBoard) and ``eval/`` to the run folder.
``n_envs`` environments run at once (``vec_env=subproc``: one process each). The
config tree is ``conf/rl/`` (its ``experiment`` group is not train.py's). Sweep the
cost weight with ``-m env.reward.cost_weight=1,3,10`` to trace a policy's own front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import torch
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from physim.nbody import train_agent
from physim.nbody._train import TrainResult

from ._config import CONFIG_DIR, log, report_user_errors

RL_CONFIG_DIR = str(Path(CONFIG_DIR) / "rl")


def register_shared_groups(groups: tuple[str, ...] = ("paths", "hydra")) -> None:
    """Make ``conf/<group>/default.yaml`` available to the apps rooted at ``conf/rl``.

    Hydra searches only the primary config's folder; the config store is searched by
    every app, so the run folders and paths stay defined in one place.
    """
    store = ConfigStore.instance()
    for group in groups:
        node = OmegaConf.load(Path(CONFIG_DIR) / group / "default.yaml")
        store.store(group=group, name="default", node=node, package=group)


@dataclass(frozen=True)
class ConfiguredEnv:
    """``max_steps -> env`` from an environment config with ``_target_``.

    A plain dict, so that subprocess environments (``vec_env=subproc``) can pickle it
    and ``agent.json`` can store it for the evaluation.
    """

    config: dict[str, Any]

    def __call__(self, max_steps: int) -> gym.Env:
        return instantiate(self.config, max_steps=max_steps, _convert_="all")

    @classmethod
    def from_config(cls, node: DictConfig) -> ConfiguredEnv:
        config = OmegaConf.to_container(node, resolve=True)
        if "_target_" not in config:
            raise ValueError(
                "env: the environment config needs a _target_ (e.g. "
                "physim.nbody.ThreeBodyTimestepEnv); see conf/rl/env/."
            )
        config.pop("max_steps", None)  # given per use (training, selection, test)
        return cls(config)


def _start_wandb(cfg: DictConfig) -> Any:
    """A wandb run mirroring SB3's TensorBoard logs (``wandb.enabled=true``), or None.

    SB3 has no wandb logger format; ``sync_tensorboard`` uploads what its TensorBoard
    writer logs, so ``tensorboard`` must be in ``log_formats``. ``mode=offline`` needs
    no account (``wandb sync`` uploads later).
    """
    if not cfg.wandb.enabled:
        return None
    if "tensorboard" not in cfg.log_formats:
        raise ValueError(
            "wandb.enabled=true mirrors the TensorBoard logs; add tensorboard to "
            f"log_formats (got {list(cfg.log_formats)})."
        )
    import wandb

    return wandb.init(
        project=cfg.wandb.project,
        mode=cfg.wandb.mode,
        dir=cfg.paths.output_dir,
        config=OmegaConf.to_container(cfg.agent, resolve=True),
        sync_tensorboard=True,
    )


def rl_timestep(cfg: DictConfig) -> TrainResult:
    """Train from a composed ``conf/rl/rl_timestep.yaml`` config."""
    torch.set_num_threads(int(cfg.torch_threads))
    make = ConfiguredEnv.from_config(cfg.env)
    run = _start_wandb(cfg)
    agent = cfg.agent
    result = train_agent(
        cfg.paths.output_dir,
        make,
        algorithm=agent.algorithm,
        total_timesteps=int(cfg.total_timesteps),
        max_steps=int(cfg.env.max_steps),
        n_envs=int(cfg.n_envs),
        vec_env=cfg.vec_env,
        agent_kwargs=OmegaConf.to_container(agent.kwargs, resolve=True),
        net_arch=list(agent.net_arch),
        activation=agent.activation,
        optimizer=agent.optimizer,
        policy_kwargs=OmegaConf.to_container(agent.policy_kwargs)
        if agent.get("policy_kwargs")
        else None,
        eval_seeds=range(cfg.eval.first_seed, cfg.eval.first_seed + cfg.eval.num_seeds),
        eval_freq=int(cfg.eval.freq),
        eval_max_steps=int(cfg.eval.max_steps),
        checkpoint_freq=int(cfg.checkpoint_freq),
        log_formats=list(cfg.log_formats),
        progress_bar=bool(cfg.progress_bar),
        resume=cfg.get("resume"),
        seed=int(cfg.seed),
        metadata={"env": make.config, "task_name": cfg.task_name},
    )
    if run is not None:
        run.finish()
    log.info(
        "Trained %d steps; best model %s, last %s",
        result.num_timesteps,
        result.best_model,
        result.last_model,
    )
    return result


register_shared_groups()


@hydra.main(version_base="1.3", config_path=RL_CONFIG_DIR, config_name="rl_timestep")
@report_user_errors
def main(cfg: DictConfig) -> None:
    rl_timestep(cfg)


if __name__ == "__main__":
    main()
