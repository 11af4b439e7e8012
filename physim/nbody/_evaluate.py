"""Evaluation: a policy against fixed parameters and IAS15 on held-out systems.

Every *method* (the policy, each fixed parameter, a reference integrator, the policy
transferred to another integrator) runs the same seeded systems for the same number
of RL steps. The result is one :class:`xarray.Dataset` with dims ``method``, ``seed``
and ``step``, summarised per method as median final energy error against mean cost
(force evaluations, wall time) and mean reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ._env import ENERGY_ERROR_FLOOR, ThreeBodyTimestepEnv

#: ``obs -> action index``.
Policy = Callable[[np.ndarray], int]


@dataclass(frozen=True)
class Method:
    """One way of choosing the parameter, evaluated on every seed.

    Attributes:
        name: label in the table, files and plot (``policy``, ``eta=0.03``...).
        env_kwargs: :class:`ThreeBodyTimestepEnv` arguments (integrator and grid)
            on top of the shared ones.
        policy: the agent; ``None`` always takes action 0 (a fixed parameter: give
            a one-value ``parameter_grid``).
        kind: ``policy``, ``fixed`` or ``reference`` (for the Pareto check and plot).
    """

    name: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    policy: Policy | None = None
    kind: str = "fixed"


def fixed_name(integrator: str, value: float) -> str:
    """The method name of a fixed parameter: ``hermite:0.03``."""
    return f"{integrator}:{value:.3g}"


def fixed_methods(
    grid: Sequence[float], extra: Sequence[float] = (0.03,), integrator: str = "hermite"
) -> list[Method]:
    """One :class:`Method` per fixed parameter of ``grid`` plus ``extra`` values."""
    values = list(grid) + [v for v in extra if v not in grid]
    return [
        Method(
            fixed_name(integrator, v),
            {"integrator": integrator, "parameter_grid": [v]},
        )
        for v in values
    ]


def sb3_policy(model: Any) -> Policy:
    """A deterministic :data:`Policy` from a stable-baselines3 model."""

    def act(obs: np.ndarray) -> int:
        action, _ = model.predict(obs, deterministic=True)
        return int(action)

    return act


def evaluate_methods(
    methods: Sequence[Method],
    seeds: Sequence[int],
    n_steps: int = 300,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Run every method on every seed for ``n_steps`` RL steps (or until it terminates).

    Args:
        methods: what to evaluate.
        seeds: the systems (``reset(seed=s)``).
        n_steps: RL steps per episode (the paper's evaluation: 300).
        env_kwargs: shared environment arguments (reward weights, threshold...).
        progress: show a rich progress bar.

    Returns:
        A dataset with per-step ``energy_error``, ``parameter``, ``force_evaluations``,
        ``reward`` (``[method, seed, step]``, NaN after an early end) and per-run
        ``final_energy_error``, ``total_force_evaluations``, ``wall_time``,
        ``episode_reward``, ``steps_completed``, ``nonfinite`` (``[method, seed]``).

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
    per_step = {
        k: np.full(shape, np.nan)
        for k in ("energy_error", "parameter", "force_evaluations", "reward")
    }
    wall = np.zeros(shape[:2])
    completed = np.zeros(shape[:2], dtype=np.int64)
    nonfinite = np.zeros(shape[:2], dtype=bool)
    base = dict(env_kwargs or {})
    with Progress(disable=not progress) as bar:
        task = bar.add_task("Evaluating", total=len(methods) * len(seeds))
        for i, method in enumerate(methods):
            env = ThreeBodyTimestepEnv(
                **{**base, **dict(method.env_kwargs), "max_steps": n_steps}
            )
            act = method.policy or (lambda obs: 0)
            for j, seed in enumerate(seeds):
                bar.update(task, description=f"{method.name} seed {seed}")
                obs, _ = env.reset(seed=int(seed))
                for k in range(n_steps):
                    obs, reward, terminated, truncated, info = env.step(act(obs))
                    per_step["energy_error"][i, j, k] = info["energy_error"]
                    per_step["parameter"][i, j, k] = info["parameter"]
                    per_step["force_evaluations"][i, j, k] = info["force_evaluations"]
                    per_step["reward"][i, j, k] = reward
                    if terminated or truncated:
                        break
                completed[i, j] = k + 1
                nonfinite[i, j] = info["nonfinite"] or info["max_steps_reached"]
                wall[i, j] = env.wall_time
                bar.advance(task)
    last = completed - 1
    final = np.take_along_axis(per_step["energy_error"], last[..., None], axis=2)
    dims = ("method", "seed", "step")
    ds = xr.Dataset(
        {k: (dims, v) for k, v in per_step.items()}
        | {
            "final_energy_error": (dims[:2], final[..., 0]),
            "total_force_evaluations": (
                dims[:2],
                np.nansum(per_step["force_evaluations"], axis=2),
            ),
            "wall_time": (dims[:2], wall),
            "episode_reward": (dims[:2], np.nansum(per_step["reward"], axis=2)),
            "steps_completed": (dims[:2], completed),
            "nonfinite": (dims[:2], nonfinite),
            "kind": ("method", [m.kind for m in methods]),
        },
        coords={
            "method": names,
            "seed": np.asarray(seeds, dtype=np.int64),
            "step": np.arange(1, n_steps + 1),
        },
        attrs={"n_steps": n_steps, **{k: str(v) for k, v in base.items()}},
    )
    return ds


def summarize(ds: xr.Dataset) -> dict[str, dict[str, float]]:
    """Per method: median final energy error, mean log10 of it (errors floored at
    1e-16, where round-off makes them 0), mean force evaluations, mean wall time,
    mean episode reward, runs ended early (error threshold or failure)."""
    n_steps = ds.sizes["step"]
    out = {}
    for name in ds.method.values.tolist():
        run = ds.sel({"method": name})
        out[name] = {
            "median_energy_error": float(run.final_energy_error.median()),
            "mean_log10_energy_error": float(
                np.log10(np.maximum(run.final_energy_error, ENERGY_ERROR_FLOOR)).mean()
            ),
            "mean_force_evaluations": float(run.total_force_evaluations.mean()),
            "mean_wall_time": float(run.wall_time.mean()),
            "mean_reward": float(run.episode_reward.mean()),
            "ended_early": int((run.steps_completed < n_steps).sum()),
        }
    return out


def dominating(
    summary: Mapping[str, Mapping[str, float]], target: str, candidates: Sequence[str]
) -> list[str]:
    """The ``candidates`` better than ``target`` in both median final energy error and
    mean force evaluations (each at least as good, one strictly better)."""
    mine = summary[target]
    better = []
    for name in candidates:
        other = summary[name]
        error = other["median_energy_error"], mine["median_energy_error"]
        cost = other["mean_force_evaluations"], mine["mean_force_evaluations"]
        if (
            error[0] <= error[1]
            and cost[0] <= cost[1]
            and (error[0] < error[1] or cost[0] < cost[1])
        ):
            better.append(name)
    return better


def print_summary(
    summary: Mapping[str, Mapping[str, float]], console: Console | None = None
) -> None:
    """A rich table of :func:`summarize`'s output."""
    table = Table(title="Final energy error vs cost (per method)")
    columns = {
        "median_energy_error": "median |dE|",
        "mean_log10_energy_error": "mean log10|dE|",
        "mean_force_evaluations": "mean force evals",
        "mean_wall_time": "mean wall s",
        "mean_reward": "mean reward",
        "ended_early": "ended early",
    }
    table.add_column("method")
    for title in columns.values():
        table.add_column(title, justify="right")
    for name, row in summary.items():
        table.add_row(name, *(_fmt(row[key]) for key in columns))
    console = console or Console()
    if not console.is_terminal:  # a log file: do not squeeze the table to 80 columns
        console.width = max(console.width, 140)
    console.print(table)


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value) or value == 0 or 1e-2 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def plot_pareto(ds: xr.Dataset, path: str | Path) -> Path:
    """Final energy error against force evaluations and wall time, one colour per
    method: every run as a dot, each method's (mean cost, median error) as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(ds)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    cmap = plt.get_cmap("viridis")
    kinds = dict(zip(ds.method.values.tolist(), ds.kind.values.tolist(), strict=True))
    fixed = [n for n, k in kinds.items() if k == "fixed"]
    for ax, cost, label in (
        (axes[0], "force_evaluations", "force evaluations per episode"),
        (axes[1], "wall_time", "wall time per episode [s]"),
    ):
        per_run = "total_force_evaluations" if cost == "force_evaluations" else cost
        mean_key = f"mean_{cost}"
        for index, name in enumerate(ds.method.values.tolist()):
            kind = kinds[name]
            colour = (
                "red"
                if kind == "policy"
                else "black"
                if kind == "reference"
                else cmap(index / max(1, len(fixed)))
            )
            run = ds.sel({"method": name})
            ax.scatter(
                run[per_run], run.final_energy_error, s=4, alpha=0.25, color=colour
            )
            ax.scatter(
                summary[name][mean_key],
                summary[name]["median_energy_error"],
                s=120 if kind != "fixed" else 50,
                marker="*" if kind == "policy" else "s" if kind == "reference" else "o",
                color=colour,
                edgecolor="k",
                label=name,
                zorder=3,
            )
        ax.set(xscale="log", yscale="log", xlabel=label)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("final relative energy error |dE|")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(
        f"{ds.sizes['seed']} systems x {ds.sizes['step']} steps: dots = runs, "
        "markers = (mean cost, median error)"
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_evaluation(ds: xr.Dataset, out_dir: str | Path) -> dict[str, Path]:
    """Write ``evaluation.nc`` (all runs, all steps), ``runs.csv`` (one row per run),
    ``summary.csv`` and ``pareto.png`` to ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "netcdf": out / "evaluation.nc",
        "runs": out / "runs.csv",
        "summary": out / "summary.csv",
        "plot": out / "pareto.png",
    }
    tmp = paths["netcdf"].with_suffix(".nc.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(paths["netcdf"])
    per_run = [v for v in ds.data_vars if ds[v].dims == ("method", "seed")]
    ds[per_run].to_dataframe().to_csv(paths["runs"])
    summary = summarize(ds)
    import pandas as pd

    pd.DataFrame(summary).T.rename_axis("method").to_csv(paths["summary"])
    plot_pareto(ds, paths["plot"])
    return paths
