"""Evaluation output: the netCDF of all runs, CSV tables and the work-precision plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ._front import Front

_FAMILY_STYLE = {"hermite": ("tab:blue", "o"), "ias15": ("tab:gray", "s"),
                 "leapfrog": ("tab:green", "^")}  # fmt: skip
_KIND_MARKER = {"policy": "*", "baseline": "D", "transfer": "P"}


def _draw(ax: Any, table: pd.DataFrame, fronts: Mapping[str, Sequence[str]]) -> None:
    fixed = table[table.kind == "fixed"]
    for family, rows in fixed.groupby("family"):
        colour, marker = _FAMILY_STYLE.get(str(family), ("tab:olive", "v"))
        rows = rows.sort_values("mean_force_evaluations")
        ax.plot(rows.mean_force_evaluations, rows.mean_log10_error, marker,
                color=colour, ms=4, alpha=0.6, label=f"fixed {family}")  # fmt: skip
        front = Front.envelope(
            np.log10(rows.mean_force_evaluations), rows.mean_log10_error
        )
        ax.plot(10**front.log_cost, front.error, "-", color=colour, lw=1.5)
    for name, families in fronts.items():
        rows = fixed[fixed.family.isin(list(families))]
        if len(families) > 1 and rows.family.nunique() > 1:
            front = Front.envelope(
                np.log10(rows.mean_force_evaluations), rows.mean_log10_error
            )
            ax.plot(10**front.log_cost, front.error, "--", color="k", lw=1,
                    label=f"front of {name} ({', '.join(families)})")  # fmt: skip
    others = _others(table)
    colours = plt_colours(others)
    for name, row in others.iterrows():
        marker = _KIND_MARKER.get(str(row.kind), "X")
        x, y = row.mean_force_evaluations, row.mean_log10_error
        xerr = [
            [x - row.mean_force_evaluations_lo],
            [row.mean_force_evaluations_hi - x],
        ]
        yerr = [[y - row.mean_log10_error_lo], [row.mean_log10_error_hi - y]]
        label = f"{name} ({row.failed} failed)"
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, color=colours[name],
                    ms=8, mec="k", capsize=2, label=label)  # fmt: skip
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)


def _others(table: pd.DataFrame) -> pd.DataFrame:
    """The non-fixed methods, without the rows averaging training seeds."""
    return table[(table.kind != "fixed") & ~table.index.str.contains(r"\(mean of")]


def plt_colours(others: pd.DataFrame) -> dict[str, Any]:
    """One colour per group (training seeds of one setting share it)."""
    import matplotlib.pyplot as plt

    cycle = plt.get_cmap("tab10").colors[3:]
    keys = [row.group or name for name, row in others.iterrows()]
    palette = {k: cycle[i % len(cycle)] for i, k in enumerate(dict.fromkeys(keys))}
    return {name: palette[k] for name, k in zip(others.index, keys, strict=True)}


def plot_work_precision(
    table: pd.DataFrame,
    path: str | Path,
    fronts: Mapping[str, Sequence[str]],
    title: str = "",
) -> Path:
    """Mean ``log10 |dE|`` against mean force evaluations: each fixed sweep with its
    front, the front of all fixed choices (dashed), and every other method with its
    95% bootstrap interval in both axes; the right panel zooms on those methods."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = _others(table)
    panels = 2 if len(others) else 1
    fig, axes = plt.subplots(1, panels, figsize=(8 * panels, 6), squeeze=False)
    for ax in axes[0]:
        _draw(ax, table, fronts)
        ax.set(xlabel="mean force evaluations per episode")
    axes[0, 0].set(
        ylabel="mean log10 |dE| (failed runs: 0)",
        title=title or "Work-precision: fixed sweeps, fronts and policies",
    )
    if panels == 2:
        x_lo, x_hi = others.mean_force_evaluations_lo, others.mean_force_evaluations_hi
        y_lo, y_hi = others.mean_log10_error_lo, others.mean_log10_error_hi
        axes[0, 1].set(
            xlim=(x_lo.min() / 1.3, x_hi.max() * 1.3),
            ylim=(y_lo.min() - 0.3, y_hi.max() + 0.3),
            title="zoom on the policies and baselines",
        )
        axes[0, 1].legend(fontsize=7, loc="best")
    else:
        axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_evaluation(
    ds: xr.Dataset,
    table: pd.DataFrame,
    out_dir: str | Path,
    fronts: Mapping[str, Sequence[str]],
) -> dict[str, Path]:
    """Write ``evaluation.nc`` (every run and step), ``runs.csv`` (one row per run),
    ``yardstick.csv`` (:func:`physim.nbody.yardstick`) and ``work_precision.png`` to
    ``out_dir``; return their paths. The netCDF is written to a temporary name first."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "netcdf": out / "evaluation.nc",
        "runs": out / "runs.csv",
        "yardstick": out / "yardstick.csv",
        "plot": out / "work_precision.png",
    }
    tmp = paths["netcdf"].with_suffix(".nc.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(paths["netcdf"])
    per_run = [v for v in ds.data_vars if ds[v].dims == ("method", "seed")]
    ds[per_run].to_dataframe().to_csv(paths["runs"])
    table.to_csv(paths["yardstick"])
    plot_work_precision(table, paths["plot"], fronts)
    return paths
