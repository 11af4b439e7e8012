"""Training an agent (stable-baselines3 DQN or PPO) to choose the step parameter."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from torch import nn, optim

from ._env import SeedCycle, ThreeBodyTimestepEnv

#: Agents by name; any stable-baselines3 algorithm for Discrete actions would fit.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO}
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
OPTIMIZERS: dict[str, type[optim.Optimizer]] = {
    "adam": optim.Adam,
    "adamw": optim.AdamW,
}

#: Written next to the checkpoints: what :func:`load_agent` needs to rebuild the run.
AGENT_FILE = "agent.json"


@dataclass(frozen=True)
class TrainResult:
    """Where a training run left its models.

    Attributes:
        best_model: the checkpoint with the best mean reward on the held-out seeds
            (``best_model.zip``; the last model when no evaluation ran).
        last_model: the final model (``last.zip``; resume from it).
        num_timesteps: environment steps taken in all (including resumed runs).
    """

    best_model: Path
    last_model: Path
    num_timesteps: int


def _choice(table: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in table:
        raise ValueError(f"{what}={key!r} is unknown; choose one of {sorted(table)}.")
    return table[key]


def _replay_buffer_path(checkpoint: Path) -> Path:
    """The replay buffer saved with ``checkpoint``: ``last.zip`` ->
    ``last_replay_buffer.pkl``; CheckpointCallback's ``step_N_steps.zip`` ->
    ``step_replay_buffer_N_steps.pkl``."""
    match = re.fullmatch(r"(.*)_(\d+)_steps", checkpoint.stem)
    if match:
        name = f"{match[1]}_replay_buffer_{match[2]}_steps.pkl"
    else:
        name = f"{checkpoint.stem}_replay_buffer.pkl"
    return checkpoint.with_name(name)


def make_env(
    env_kwargs: Mapping[str, Any] | None = None, seeds: Sequence[int] | None = None
) -> gym.Env:
    """A monitored :class:`ThreeBodyTimestepEnv`, cycling through ``seeds`` if given."""
    env: gym.Env = ThreeBodyTimestepEnv(**dict(env_kwargs or {}))
    if seeds is not None:
        env = SeedCycle(env, seeds)
    return Monitor(env)


def train_agent(
    out_dir: str | Path,
    *,
    algorithm: str = "dqn",
    total_timesteps: int = 50_000,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_kwargs: Mapping[str, Any] | None = None,
    net_arch: Sequence[int] = (64, 64),
    activation: str = "relu",
    optimizer: str = "adam",
    eval_seeds: Sequence[int] = tuple(range(1000, 1010)),
    eval_freq: int = 5_000,
    eval_max_steps: int | None = None,
    checkpoint_freq: int = 10_000,
    log_formats: Sequence[str] = ("stdout", "csv", "tensorboard"),
    progress_bar: bool = True,
    resume: str | Path | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train an agent on ``physim/ThreeBodyTimestep-v0`` and checkpoint it.

    The agent and the training environment are seeded with ``10_000 + seed`` (away from
    the evaluation seeds 0..99 and the held-out ``eval_seeds``); the environment draws
    a new system every episode from its random stream. Every ``eval_freq`` steps the
    deterministic policy runs on the ``eval_seeds`` systems and the best model is kept
    (``best_model.zip``).
    Checkpoints (model and replay buffer) are written every ``checkpoint_freq`` steps
    and at the end (``last.zip``); ``resume`` continues from one, up to
    ``total_timesteps`` in all. Logs (``log_formats`` of stdout, csv, tensorboard)
    go to ``out_dir/logs``.

    Args:
        out_dir: run folder (``checkpoints/``, ``logs/``, ``eval/``).
        algorithm: ``dqn`` or ``ppo``.
        total_timesteps: environment steps in all.
        env_kwargs: :class:`ThreeBodyTimestepEnv` arguments.
        agent_kwargs: arguments of the SB3 algorithm (learning_rate, buffer_size...).
        net_arch: hidden layer widths of the Q-network (policy and value for PPO).
        activation: ``relu`` or ``tanh``.
        optimizer: ``adam`` or ``adamw``.
        eval_seeds: held-out systems for the periodic evaluation (empty: none).
        eval_freq: environment steps between evaluations.
        eval_max_steps: episode length of the periodic evaluation (default: training's).
        checkpoint_freq: environment steps between checkpoints.
        log_formats: SB3 logger outputs.
        progress_bar: show SB3's progress bar (rich).
        resume: a ``.zip`` checkpoint to continue from.
        seed: seeds the agent and the training systems.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: for an unknown algorithm, activation or optimizer, or bad counts.
        FileNotFoundError: when ``resume`` does not exist.
    """
    agent_class = _choice(ALGORITHMS, algorithm, "algorithm")
    policy_kwargs = {
        "net_arch": [int(w) for w in net_arch],
        "activation_fn": _choice(ACTIVATIONS, activation, "activation"),
        "optimizer_class": _choice(OPTIMIZERS, optimizer, "optimizer"),
    }
    for name, value in {
        "total_timesteps": total_timesteps,
        "eval_freq": eval_freq,
        "checkpoint_freq": checkpoint_freq,
    }.items():
        if int(value) < 1:
            raise ValueError(f"{name}={value}: must be >= 1.")
    env_kwargs = dict(env_kwargs or {})
    out = Path(out_dir)
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    env = make_env(env_kwargs)

    if resume is not None:
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(
                f"resume={path}: checkpoint not found; pass a .zip written by a "
                "training run (checkpoints/last.zip)."
            )
        model = agent_class.load(path, env=env)
        buffer = _replay_buffer_path(path)
        if buffer.is_file() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(buffer)
    else:
        model = agent_class(
            "MlpPolicy",
            env,
            policy_kwargs=policy_kwargs,
            seed=10_000 + seed,  # also the first training system's seed
            verbose=0,
            **dict(agent_kwargs or {}),
        )
    model.set_logger(configure(str(out / "logs"), list(log_formats)))
    (checkpoints / AGENT_FILE).write_text(
        json.dumps({"algorithm": algorithm, "env": env_kwargs}, indent=2)
    )

    callbacks = [
        CheckpointCallback(
            checkpoint_freq,
            str(checkpoints),
            name_prefix="step",
            save_replay_buffer=True,
        )
    ]
    if eval_seeds:
        eval_env = make_env(
            {
                **env_kwargs,
                "max_steps": eval_max_steps or env_kwargs.get("max_steps", 100),
            },
            eval_seeds,
        )
        callbacks.append(
            EvalCallback(
                eval_env,
                n_eval_episodes=len(eval_seeds),
                eval_freq=eval_freq,
                best_model_save_path=str(checkpoints),
                log_path=str(out / "eval"),
                deterministic=True,
            )
        )
    remaining = int(total_timesteps) - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=callbacks,
            progress_bar=progress_bar,
            reset_num_timesteps=resume is None,
        )
    last = checkpoints / "last.zip"
    model.save(last)
    if hasattr(model, "save_replay_buffer"):
        model.save_replay_buffer(checkpoints / "last_replay_buffer.pkl")
    best = checkpoints / "best_model.zip"
    return TrainResult(best if best.is_file() else last, last, model.num_timesteps)


def load_agent(path: str | Path, algorithm: str | None = None) -> BaseAlgorithm:
    """Load a saved agent; the algorithm comes from ``agent.json`` beside it if omitted.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the algorithm is unknown or cannot be determined.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model_path={path}: agent not found; pass the best_model.zip or last.zip "
            "of a training run (outputs/<run>/checkpoints/)."
        )
    if algorithm is None:
        info = path.with_name(AGENT_FILE)
        if not info.is_file():
            raise ValueError(
                f"{path}: no {AGENT_FILE} beside it to say which algorithm wrote it; "
                "pass algorithm=dqn or algorithm=ppo."
            )
        algorithm = json.loads(info.read_text())["algorithm"]
    return _choice(ALGORITHMS, algorithm, "algorithm").load(path, device="cpu")
