"""Training an agent (stable-baselines3 DQN or PPO) on several environments at once.

The training environments run in stable-baselines3's vectorised environments
(``make_vec_env``): ``n_envs`` copies, in subprocesses (``SubprocVecEnv``, one core
each) or in this process (``DummyVecEnv``, for tiny runs and tests). Each copy draws
its systems from its own random stream (:func:`physim.nbody._seeds.training_seeds`);
the streams and the selection seeds are written to ``agent.json`` so that the
evaluation can refuse overlapping seeds.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from torch import nn, optim

from ._env import SeedCycle
from ._evaluate import EnvFactory
from ._seeds import training_seeds

#: Agents by name; any stable-baselines3 algorithm for Discrete actions would fit.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO}
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
OPTIMIZERS: dict[str, type[optim.Optimizer]] = {
    "adam": optim.Adam,
    "adamw": optim.AdamW,
}
VEC_ENVS: dict[str, type[VecEnv]] = {"subproc": SubprocVecEnv, "dummy": DummyVecEnv}

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
    make: EnvFactory, max_steps: int, seeds: Sequence[int] | None = None
) -> gym.Env:
    """A monitored environment of ``max_steps``, cycling through ``seeds`` if given."""
    env: gym.Env = make(max_steps=max_steps)
    if seeds is not None:
        env = SeedCycle(env, seeds)
    return Monitor(env)


@dataclass(frozen=True)
class _Episode:
    """Picklable ``() -> env`` for ``make_vec_env`` (subprocesses pickle it)."""

    make: EnvFactory
    max_steps: int

    def __call__(self) -> gym.Env:
        return self.make(max_steps=self.max_steps)


def make_training_envs(
    make: EnvFactory,
    max_steps: int,
    n_envs: int = 1,
    vec_env: str = "dummy",
    seed: int = 0,
) -> VecEnv:
    """``n_envs`` monitored training environments seeded with
    :func:`~physim.nbody._seeds.training_seeds` (one environment always runs in this
    process: a subprocess would only add pickling)."""
    cls = _choice(VEC_ENVS, vec_env, "vec_env") if n_envs > 1 else DummyVecEnv
    streams = training_seeds(seed, n_envs)
    # Build one here first: a bad config fails with its own message, not as a
    # broken pipe from a subprocess.
    make(max_steps=max_steps).close()
    return make_vec_env(
        _Episode(make, max_steps), n_envs=n_envs, seed=streams[0], vec_env_cls=cls
    )


def train_agent(
    out_dir: str | Path,
    make: EnvFactory,
    *,
    algorithm: str = "dqn",
    total_timesteps: int = 50_000,
    max_steps: int = 100,
    n_envs: int = 1,
    vec_env: str = "dummy",
    agent_kwargs: Mapping[str, Any] | None = None,
    net_arch: Sequence[int] = (64, 64),
    activation: str = "relu",
    optimizer: str = "adam",
    policy_kwargs: Mapping[str, Any] | None = None,
    eval_seeds: Sequence[int] = tuple(range(1000, 1010)),
    eval_freq: int = 5_000,
    eval_max_steps: int | None = None,
    checkpoint_freq: int = 10_000,
    log_formats: Sequence[str] = ("stdout", "csv", "tensorboard"),
    progress_bar: bool = True,
    resume: str | Path | None = None,
    seed: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train an agent on the environments ``make`` builds and checkpoint it.

    Training environment ``i`` draws its systems from the stream
    ``10_000 + 1_000 * seed + i`` (:func:`~physim.nbody._seeds.training_seeds`), away
    from the evaluation seeds 0..99 and the held-out ``eval_seeds``; the agent is
    seeded with the first stream. Every ``eval_freq`` environment steps the
    deterministic policy runs on the ``eval_seeds`` systems and the model with the
    best mean return is kept (``best_model.zip``). Checkpoints (model and replay
    buffer) are written every ``checkpoint_freq`` steps and at the end
    (``last.zip``); ``resume`` continues from one, up to ``total_timesteps`` in all.
    Logs (``log_formats`` of stdout, csv, tensorboard) go to ``out_dir/logs``;
    ``checkpoints/agent.json`` records the algorithm, the seeds and ``metadata``
    (the CLI stores the environment's config there).

    Args:
        out_dir: run folder (``checkpoints/``, ``logs/``, ``eval/``).
        make: ``max_steps -> environment`` (picklable for ``vec_env=subproc``).
        algorithm: ``dqn`` or ``ppo``.
        total_timesteps: environment steps in all (over all environments).
        max_steps: RL steps per training episode.
        n_envs: training environments stepped together.
        vec_env: ``subproc`` (one process each) or ``dummy`` (this process).
        agent_kwargs: arguments of the SB3 algorithm (learning_rate, buffer_size...).
        net_arch: hidden layer widths of the Q-network (policy and value for PPO).
        activation: ``relu`` or ``tanh``.
        optimizer: ``adam`` or ``adamw``.
        policy_kwargs: further SB3 policy arguments (e.g. PPO's ``log_std_init``).
        eval_seeds: held-out systems for model selection (empty: none).
        eval_freq: environment steps between evaluations.
        eval_max_steps: episode length of the periodic evaluation (default: training's).
        checkpoint_freq: environment steps between checkpoints.
        log_formats: SB3 logger outputs.
        progress_bar: show SB3's progress bar (rich).
        resume: a ``.zip`` checkpoint to continue from.
        seed: seeds the agent and the training systems.
        metadata: extra JSON-able entries for ``agent.json``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: for an unknown algorithm, activation, optimizer or vec_env, or
            bad counts.
        FileNotFoundError: when ``resume`` does not exist.
    """
    agent_class = _choice(ALGORITHMS, algorithm, "algorithm")
    policy_kwargs = {
        "net_arch": [int(w) for w in net_arch],
        "activation_fn": _choice(ACTIVATIONS, activation, "activation"),
        "optimizer_class": _choice(OPTIMIZERS, optimizer, "optimizer"),
        **dict(policy_kwargs or {}),
    }
    for name, value in {
        "total_timesteps": total_timesteps,
        "eval_freq": eval_freq,
        "checkpoint_freq": checkpoint_freq,
        "max_steps": max_steps,
    }.items():
        if int(value) < 1:
            raise ValueError(f"{name}={value}: must be >= 1.")
    streams = training_seeds(seed, n_envs)
    out = Path(out_dir)
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    env = make_training_envs(make, max_steps, n_envs, vec_env, seed)

    if resume is not None:
        path = Path(resume)
        if not path.is_file():
            env.close()
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
            seed=streams[0],  # also the first training system's seed
            verbose=0,
            **dict(agent_kwargs or {}),
        )
    model.set_logger(configure(str(out / "logs"), list(log_formats)))
    info = {
        "algorithm": algorithm,
        "seed": seed,
        "training_seeds": streams,
        "selection_seeds": [int(s) for s in eval_seeds],
        "max_steps": int(max_steps),
        **dict(metadata or {}),
    }
    (checkpoints / AGENT_FILE).write_text(json.dumps(info, indent=2))

    # Callback frequencies count calls, and one call steps every environment.
    callbacks = [
        CheckpointCallback(
            max(checkpoint_freq // n_envs, 1),
            str(checkpoints),
            name_prefix="step",
            save_replay_buffer=True,
        )
    ]
    if eval_seeds:
        eval_env = make_env(make, eval_max_steps or max_steps, eval_seeds)
        callbacks.append(
            EvalCallback(
                eval_env,
                n_eval_episodes=len(eval_seeds),
                eval_freq=max(eval_freq // n_envs, 1),
                best_model_save_path=str(checkpoints),
                log_path=str(out / "eval"),
                deterministic=True,
            )
        )
    remaining = int(total_timesteps) - model.num_timesteps
    try:
        with warnings.catch_warnings():
            # Selection runs in this process whatever the training VecEnv is.
            warnings.filterwarnings(
                "ignore", "Training and eval env are not of the same"
            )
            if remaining > 0:
                model.learn(
                    remaining,
                    callback=callbacks,
                    progress_bar=progress_bar,
                    reset_num_timesteps=resume is None,
                )
    finally:
        env.close()
    last = checkpoints / "last.zip"
    model.save(last)
    if hasattr(model, "save_replay_buffer"):
        model.save_replay_buffer(checkpoints / "last_replay_buffer.pkl")
    best = checkpoints / "best_model.zip"
    return TrainResult(best if best.is_file() else last, last, model.num_timesteps)


def read_agent_info(path: str | Path) -> dict[str, Any]:
    """The ``agent.json`` beside a saved model (``{}`` if there is none)."""
    info = Path(path).with_name(AGENT_FILE)
    return json.loads(info.read_text()) if info.is_file() else {}


def load_agent(path: str | Path, algorithm: str | None = None) -> BaseAlgorithm:
    """Load a saved agent; the algorithm comes from ``agent.json`` beside it if omitted.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the algorithm is unknown or cannot be determined.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: agent not found; pass the best_model.zip or last.zip of a "
            "training run (outputs/<run>/checkpoints/; rl_evaluate: "
            "+policies.<name>=[...])."
        )
    if algorithm is None:
        algorithm = read_agent_info(path).get("algorithm")
        if algorithm is None:
            raise ValueError(
                f"{path}: no {AGENT_FILE} beside it to say which algorithm wrote it; "
                "pass algorithm=dqn or algorithm=ppo."
            )
    return _choice(ALGORITHMS, algorithm, "algorithm").load(path, device="cpu")
