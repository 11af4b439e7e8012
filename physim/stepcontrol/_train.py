"""Training the correction: CMA-ES on the objective, or PPO through the environment.

Both optimise the same thing, :func:`~._objective.relative_score` against the tuned
PI controller on the training problems (PPO through the episode return of
:class:`~._env.PDEStepControlEnv`, which is minus that score per run), and both give
a :class:`~physim.timestepping.CorrectionNetwork`.

- **CMA-ES** (Hansen's ``cma``) searches the network's weights directly on the
  whole objective: every candidate runs every training problem at every training
  tolerance, with the same initial states (common random numbers, so the objective is
  deterministic and candidates are compared on equal terms). A few hundred
  candidates of a linear or one-small-layer network are minutes on a CPU, and the
  tolerance-proportionality constraint enters as a penalty on the whole run set,
  which a per-episode reward cannot express.
- **PPO** (stable-baselines3, :func:`physim.nbody.train_agent`) learns from one
  episode at a time; the return is known only at the end of a run (the global
  error), and the action changes it little per step, so the signal is weak against
  the spread between problems.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from physim.timestepping import CorrectionNetwork

from ._objective import front_slope, relative_score, tolerance_slope
from ._problems import Problem
from ._runs import Method, evaluate

__all__ = [
    "TrainingSet",
    "network_objective",
    "prepare_training",
    "train_cmaes",
    "train_ppo",
]


@dataclass
class TrainingSet:
    """The training problems and tolerances, the base controller's runs on them and
    each family's front slope ``q`` (from the base's runs)."""

    problems: list[Problem]
    tolerances: list[float]
    coefficients: dict[str, dict[str, float]]
    base_runs: pd.DataFrame
    slopes: dict[str, float]
    max_steps: int = 20_000


def prepare_training(
    problems: Sequence[Problem],
    tolerances: Sequence[float],
    coefficients: Mapping[str, Mapping[str, float]],
    max_steps: int = 20_000,
) -> TrainingSet:
    """Run the base (tuned PI) on the training problems; fit each family's slope."""
    base = Method("base", "pi", {f: dict(c) for f, c in coefficients.items()})
    runs = evaluate(
        problems, [base], {"base": list(tolerances)}, False, max_steps=max_steps
    )
    slopes = {f: front_slope(r) for f, r in runs.groupby("family")}
    return TrainingSet(
        list(problems),
        [float(t) for t in tolerances],
        {f: dict(c) for f, c in coefficients.items()},
        runs,
        slopes,
        max_steps,
    )


def network_objective(
    network: CorrectionNetwork,
    training: TrainingSet,
    max_log10_correction: float,
    slope_band: tuple[float, float] = (0.85, 1.15),
    slope_weight: float = 1.0,
) -> tuple[float, dict[str, float]]:
    """The objective of a network: mean score per family against the base, plus
    ``slope_weight`` times how far each family's tolerance slope leaves
    ``slope_band`` (users rely on error ~ tolerance); lower is better.

    Returns:
        The objective and its parts (``score_<family>``, ``slope_<family>``,
        ``failed``).
    """
    method = Method(
        "learned",
        "learned",
        training.coefficients,
        network,
        max_log10_correction,
    )
    runs = evaluate(
        training.problems,
        [method],
        {"learned": training.tolerances},
        False,
        max_steps=training.max_steps,
    )
    parts: dict[str, float] = {"failed": float(runs.failed.sum())}
    total = 0.0
    for family, family_runs in runs.groupby("family"):
        base = training.base_runs[training.base_runs.family == family]
        score = relative_score(family_runs, base, training.slopes[family])
        slope = tolerance_slope(family_runs)
        low, high = slope_band
        penalty = slope_weight * max(low - slope, slope - high, 0.0)
        parts[f"score_{family}"] = score
        parts[f"slope_{family}"] = slope
        total += score + penalty
    return total / max(runs.family.nunique(), 1), parts


def train_cmaes(
    training: TrainingSet,
    template: CorrectionNetwork,
    *,
    max_log10_correction: float = 0.2,
    sigma0: float = 0.5,
    popsize: int | None = None,
    max_evaluations: int = 200,
    slope_band: tuple[float, float] = (0.85, 1.15),
    slope_weight: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> tuple[CorrectionNetwork, pd.DataFrame]:
    """Minimise :func:`network_objective` over the weights of ``template`` by CMA-ES.

    The search starts at ``template`` (output layer zero: the base controller) with
    step ``sigma0`` in every weight. The best candidate seen is returned (the
    objective is deterministic); the starting point is a candidate too, so the
    result is never worse than the base on the training problems.

    Returns:
        The best network and the history (one row per candidate: generation,
        objective and its parts).

    Raises:
        ValueError: for a budget below one generation or ``sigma0 <= 0``.
    """
    import cma

    if not (math.isfinite(sigma0) and sigma0 > 0):
        raise ValueError(f"train_cmaes: sigma0 must be > 0, got {sigma0!r}.")
    x0 = template.to_vector()
    options: dict[str, Any] = {
        "seed": int(seed) + 1,  # cma draws a random seed for 0
        "verbose": -9,
        "maxfevals": int(max_evaluations),
    }
    if popsize is not None:
        options["popsize"] = int(popsize)
    strategy = cma.CMAEvolutionStrategy(x0, sigma0, options)
    if max_evaluations < strategy.popsize:
        raise ValueError(
            f"train_cmaes: max_evaluations={max_evaluations} is below one generation "
            f"({strategy.popsize} candidates)."
        )
    history: list[dict[str, Any]] = []

    def objective(vector: np.ndarray, generation: int) -> float:
        value, parts = network_objective(
            template.with_vector(vector),
            training,
            max_log10_correction,
            slope_band,
            slope_weight,
        )
        history.append({"generation": generation, "objective": value, **parts})
        return value

    best_vector, best_value = x0, objective(x0, 0)
    generation = 0
    # cma checks its own maxfevals only after a generation; stop before exceeding it.
    while (
        not strategy.stop() and len(history) - 1 + strategy.popsize <= max_evaluations
    ):
        generation += 1
        candidates = strategy.ask()
        values = [objective(np.asarray(c), generation) for c in candidates]
        strategy.tell(candidates, values)
        i = int(np.argmin(values))
        if values[i] < best_value:
            best_vector, best_value = np.asarray(candidates[i]), values[i]
        if progress:
            print(
                f"cma-es generation {generation}: best {min(values):+.4f}, "
                f"best so far {best_value:+.4f} ({len(history)} candidates)",
                flush=True,
            )
    return template.with_vector(best_vector), pd.DataFrame(history)


def train_ppo(
    out_dir: str | Path,
    make: Any,
    features: Sequence[str],
    *,
    hidden: Sequence[int] = (8,),
    total_timesteps: int = 20_000,
    max_steps: int = 5000,
    n_envs: int = 1,
    eval_seeds: Sequence[int] = tuple(range(1000, 1008)),
    eval_freq: int = 5000,
    agent_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[CorrectionNetwork, Path]:
    """PPO (stable-baselines3) on the environments ``make`` builds; the best model on
    the selection seeds as a :class:`CorrectionNetwork` and its checkpoint.

    The actor is a ``tanh`` MLP of widths ``hidden`` (its deterministic action is
    the network's output, clipped to ``[-1, 1]`` as the controller clips it).
    """
    from physim.nbody import load_agent, train_agent

    result = train_agent(
        out_dir,
        make,
        algorithm="ppo",
        total_timesteps=int(total_timesteps),
        max_steps=int(max_steps),
        n_envs=int(n_envs),
        vec_env="dummy",
        agent_kwargs=dict(agent_kwargs or {}),
        activation="tanh",
        policy_kwargs={"net_arch": {"pi": list(hidden), "vf": [32, 32]}},
        eval_seeds=list(eval_seeds),
        eval_freq=int(eval_freq),
        checkpoint_freq=int(total_timesteps),
        log_formats=("csv",),
        progress_bar=progress,
        seed=int(seed),
        metadata=dict(metadata or {}),
    )
    model = load_agent(result.best_model, "ppo")
    return CorrectionNetwork.from_sb3(model, features), result.best_model
