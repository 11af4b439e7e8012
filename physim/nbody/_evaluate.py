"""Running methods on held-out systems: every method, every seed, the same intervals.

A *method* is a way of choosing how each interval is integrated: a trained policy,
a fixed parameter of a sweep, a non-learned baseline. Each runs in its own
environment (:class:`ThreeBodyEnv`) on the same seeded systems for the same number
of intervals; the result is one :class:`xarray.Dataset` with dims ``method``,
``seed`` and ``step``, which :mod:`._yardstick` turns into the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import xarray as xr

from physim._progress import Progress

from ._actions import Menu
from ._env import ThreeBodyEnv
from ._rewards import timestep_reward
from ._simulation import INTEGRATORS

#: ``make_env(max_steps=n) -> environment`` (called with the keyword).
EnvFactory = Callable[..., gym.Env]
#: ``obs -> action``.
Policy = Callable[[np.ndarray], Any]
#: Method kinds: a trained ``policy``, a policy ``transfer``-red to another
#: integrator, a non-learned ``baseline``, a ``fixed`` setting of a sweep.
KINDS = ("policy", "transfer", "baseline", "fixed")
#: Integer codes of the integrators in the per-step ``integrator`` variable.
INTEGRATOR_CODES = {name: i for i, name in enumerate(INTEGRATORS)}


@dataclass(frozen=True)
class Method:
    """One way of choosing how each interval is integrated.

    Attributes:
        name: label in the tables, files and plot (``hermite:0.01``, ``eta[0]``).
        make_env: builds its environment for a given episode length.
        policy: the agent; ``None`` always takes action 0 (a fixed setting).
        kind: one of :data:`KINDS`.
        family: for a ``fixed`` method, the sweep it belongs to (``hermite``,
            ``ias15``...): the fronts are built per family and over all of them.
        group: methods that differ only by training seed share a group (their
            spread is reported).
    """

    name: str
    make_env: EnvFactory
    policy: Policy | None = None
    kind: str = "fixed"
    family: str = ""
    group: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Method {self.name!r}: kind={self.kind!r} not in {KINDS}."
            )


def fixed_name(integrator: str, value: float) -> str:
    """The method name of a fixed parameter: ``hermite:0.03``."""
    return f"{integrator}:{value:.3g}"


@dataclass(frozen=True)
class FixedEnv:
    """Picklable factory of a one-option environment (a fixed setting)."""

    integrator: str
    value: float
    shared: tuple[tuple[str, Any], ...] = ()

    def __call__(self, max_steps: int) -> ThreeBodyEnv:
        option = [(self.integrator, self.value)]
        return ThreeBodyEnv(Menu(option), max_steps=max_steps, **dict(self.shared))


def fixed_methods(
    integrator: str, values: Sequence[float], **shared: Any
) -> list[Method]:
    """One fixed :class:`Method` per value (family ``integrator``).

    ``shared``: :class:`ThreeBodyEnv` arguments (``step_interval_yr``,
    ``max_energy_error``); the reward is the paper's (a secondary column).
    """
    items = tuple(sorted(shared.items()))
    return [
        Method(
            fixed_name(integrator, v),
            FixedEnv(integrator, float(v), items),
            family=integrator,
        )
        for v in dict.fromkeys(float(v) for v in values)
    ]


def sweep_values(low: float, high: float, num: int) -> list[float]:
    """``num`` log-spaced values from ``low`` to ``high`` (a dense fixed sweep)."""
    if not (0 < low < high and num >= 2):
        raise ValueError(
            f"sweep: need 0 < low < high and num >= 2, got low={low}, high={high}, "
            f"num={num}."
        )
    return [float(v) for v in np.logspace(np.log10(low), np.log10(high), int(num))]


def sb3_policy(model: Any) -> Policy:
    """A deterministic :data:`Policy` from a stable-baselines3 model."""

    def act(obs: np.ndarray) -> Any:
        action, _ = model.predict(obs, deterministic=True)
        return action

    return act


def evaluate_methods(
    methods: Sequence[Method],
    seeds: Sequence[int],
    n_steps: int = 300,
    progress: bool = True,
) -> xr.Dataset:
    """Run every method on every seed for ``n_steps`` intervals (or until it ends).

    Args:
        methods: what to evaluate (distinct names).
        seeds: the systems (``reset(seed=s)``).
        n_steps: intervals per episode (the paper's evaluation: 300).
        progress: a rich bar in a terminal, one line per method otherwise.

    Returns:
        A dataset with per-step ``energy_error``, ``parameter``, ``integrator`` (codes
        of :data:`INTEGRATOR_CODES`), ``force_evaluations``, ``reward`` (``[method,
        seed, step]``, NaN after an early end) and per-run ``final_energy_error``,
        ``failed`` (ended above the threshold or non-finite), ``nonfinite``,
        ``total_force_evaluations``, ``wall_time``, ``episode_reward`` (the method's
        own reward), ``paper_reward`` (the paper's, recomputed for every method),
        ``steps_completed`` (``[method, seed]``).

    Raises:
        ValueError: for no methods, no seeds, duplicate names or ``n_steps < 1``.
    """
    names = [m.name for m in methods]
    if not methods or not seeds or len(set(names)) != len(names) or n_steps < 1:
        raise ValueError(
            f"evaluate_methods: need methods with distinct names, seeds and n_steps "
            f">= 1; got methods {names}, {len(seeds)} seeds, n_steps={n_steps}."
        )
    shape = (len(methods), len(seeds), n_steps)
    keys = ("energy_error", "parameter", "integrator", "force_evaluations", "reward")
    per_step = {k: np.full(shape, np.nan) for k in keys}
    per_run = {
        k: np.zeros(shape[:2], dtype=dtype)
        for k, dtype in (
            ("wall_time", float),
            ("paper_reward", float),
            ("steps_completed", np.int64),
            ("failed", bool),
            ("nonfinite", bool),
        )
    }
    with Progress(disable=not progress) as bar:
        task = bar.add_task("Evaluating", total=len(methods) * len(seeds))
        for i, method in enumerate(methods):
            env = method.make_env(max_steps=n_steps)
            base = env.unwrapped
            act = method.policy or (lambda obs: 0)
            for j, seed in enumerate(seeds):
                bar.update(task, description=f"{method.name} seed {seed}")
                obs, _ = env.reset(seed=int(seed))
                paper = 0.0
                for k in range(n_steps):
                    obs, reward, terminated, truncated, info = env.step(act(obs))
                    per_step["energy_error"][i, j, k] = info["energy_error"]
                    per_step["parameter"][i, j, k] = info["parameter"]
                    per_step["integrator"][i, j, k] = INTEGRATOR_CODES[
                        info["integrator"]
                    ]
                    per_step["force_evaluations"][i, j, k] = info["force_evaluations"]
                    per_step["reward"][i, j, k] = reward
                    paper += timestep_reward(
                        info["energy_error"],
                        info["parameter"],
                        k + 1,
                        max_energy_error=base.max_energy_error,
                    )
                    if terminated or truncated:
                        break
                per_run["steps_completed"][i, j] = k + 1
                per_run["failed"][i, j] = info["failed"]
                per_run["nonfinite"][i, j] = (
                    info["nonfinite"] or info["max_steps_reached"]
                )
                per_run["wall_time"][i, j] = base.wall_time
                per_run["paper_reward"][i, j] = paper
                bar.advance(task)
            env.close()
    last = per_run["steps_completed"] - 1
    final = np.take_along_axis(per_step["energy_error"], last[..., None], axis=2)
    dims = ("method", "seed", "step")
    return xr.Dataset(
        {k: (dims, v) for k, v in per_step.items()}
        | {k: (dims[:2], v) for k, v in per_run.items()}
        | {
            "final_energy_error": (dims[:2], final[..., 0]),
            "total_force_evaluations": (
                dims[:2],
                np.nansum(per_step["force_evaluations"], axis=2),
            ),
            "episode_reward": (dims[:2], np.nansum(per_step["reward"], axis=2)),
            "kind": ("method", [m.kind for m in methods]),
            "family": ("method", [m.family for m in methods]),
            "group": ("method", [m.group for m in methods]),
        },
        coords={
            "method": names,
            "seed": np.asarray(seeds, dtype=np.int64),
            "step": np.arange(1, n_steps + 1),
        },
        attrs={
            "n_steps": n_steps,
            "integrator_codes": ", ".join(
                f"{v}={k}" for k, v in INTEGRATOR_CODES.items()
            ),
        },
    )
