"""The verdict: each method's gap to the fixed sweeps' fronts, with bootstrap intervals.

From an evaluation dataset (:func:`physim.nbody.evaluate_methods`): per run
``log10 |dE|`` of the final error (floored at 1e-16; a failed run, ended above the
threshold or non-finite, counts as ``|dE| = 1``) and the force evaluations; per
method the mean of each over the seeds; per front (the ``fixed`` methods of some
families, e.g. Hermite's eta sweep, or Hermite's and IAS15's together) the gap and
cost factor of :class:`~physim.nbody._front.Front`. 95% intervals come from a paired
bootstrap over the evaluation seeds (the front is rebuilt in every resample, so its
own noise is in the interval). Methods sharing a ``group`` (training seeds of one
setting) get a row of their mean, with the standard deviation across seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from rich.console import Console
from rich.table import Table

from ._front import Front, bootstrap_weights, gaps_to_front, percentile_interval
from ._simulation import ENERGY_ERROR_FLOOR

#: Default fronts: the fixed-eta (Hermite) sweep, and every fixed choice together.
DEFAULT_FRONTS: dict[str, tuple[str, ...]] = {
    "eta": ("hermite",),
    "fixed": ("hermite", "ias15", "leapfrog"),
}


def run_log_errors(ds: xr.Dataset) -> np.ndarray:
    """``log10 |dE|`` of every run ``[method, seed]``, failures as 0 (``|dE| = 1``)."""
    final = np.clip(ds.final_energy_error.values, ENERGY_ERROR_FLOOR, 1.0)
    log_error = np.log10(np.nan_to_num(final, nan=1.0))
    return np.where(ds.failed.values, 0.0, log_error)


def _front_members(ds: xr.Dataset, families: Sequence[str]) -> np.ndarray:
    kinds, fams = ds.kind.values, ds.family.values
    return np.flatnonzero((kinds == "fixed") & np.isin(fams, list(families)))


def yardstick(
    ds: xr.Dataset,
    fronts: Mapping[str, Sequence[str]] | None = None,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per method (and per group of training seeds); see the module doc.

    Columns: ``kind``, ``family``, ``group``, ``runs``, ``failed``,
    ``mean_log10_error`` (+ ``_lo``/``_hi``), ``mean_force_evaluations`` (+ interval),
    ``median_energy_error``, ``mean_wall_time``, ``mean_paper_reward`` (+ ``_se``), and
    per front ``f``: ``gap_f``, ``cost_factor_f`` (each + interval, + the fraction of
    resamples inside the sweep's range, + ``_sd`` across training seeds on group
    rows) and ``where_f`` (``inside``, ``cheaper`` or ``dearer`` than the sweep's cost
    range; outside, the gap is ``nan``, never extrapolated). A front with no members
    is skipped.

    Raises:
        ValueError: for ``n_bootstrap < 1`` or a confidence outside (0, 1).
    """
    if n_bootstrap < 1 or not 0 < confidence < 1:
        raise ValueError(
            f"yardstick: n_bootstrap={n_bootstrap} must be >= 1 and confidence="
            f"{confidence} in (0, 1)."
        )
    fronts = DEFAULT_FRONTS if fronts is None else fronts
    names = ds.method.values.tolist()
    log_error = run_log_errors(ds)  # [M, S]
    cost = ds.total_force_evaluations.values.astype(np.float64)
    n_seeds = log_error.shape[1]
    weights = bootstrap_weights(n_seeds, n_bootstrap, np.random.default_rng(seed))
    # Row 0: the point estimate (uniform weights); rows 1..B: the resamples.
    weights = np.vstack([np.full(n_seeds, 1.0 / n_seeds), weights])
    mean_error = weights @ log_error.T  # [1 + B, M]
    mean_cost = weights @ cost.T
    log_cost = np.log10(np.maximum(mean_cost, 1e-300))

    groups = {}
    for i, group in enumerate(ds.group.values.tolist()):
        if group:
            groups.setdefault(group, []).append(i)
    groups = {g: idx for g, idx in groups.items() if len(idx) > 1}
    row_names = names + [f"{g} (mean of {len(idx)} seeds)" for g, idx in groups.items()]

    def interval(samples: np.ndarray) -> tuple[float, float]:
        return percentile_interval(samples, confidence)

    table: dict[str, dict[str, object]] = {name: {} for name in row_names}
    for i, name in enumerate(names):
        run = ds.isel(method=i)
        row = table[name]
        row |= {
            "kind": str(run.kind.values),
            "family": str(run.family.values),
            "group": str(run.group.values),
            "runs": n_seeds,
            "failed": int(run.failed.values.sum()),
            "mean_log10_error": mean_error[0, i],
            "mean_force_evaluations": mean_cost[0, i],
            "median_energy_error": float(np.median(run.final_energy_error.values)),
            "mean_wall_time": float(run.wall_time.values.mean()),
            "mean_paper_reward": float(run.paper_reward.values.mean()),
            "mean_paper_reward_se": float(
                run.paper_reward.values.std(ddof=1) / np.sqrt(n_seeds)
                if n_seeds > 1
                else np.nan
            ),
        }
        lo, hi = interval(mean_error[1:, i])
        row |= {"mean_log10_error_lo": lo, "mean_log10_error_hi": hi}
        lo, hi = interval(mean_cost[1:, i])
        row |= {"mean_force_evaluations_lo": lo, "mean_force_evaluations_hi": hi}
    for group, idx in groups.items():
        row = table[row_names[len(names) + list(groups).index(group)]]
        members = ds.isel(method=idx)
        row |= {
            "kind": str(members.kind.values[0]),
            "family": "",
            "group": group,
            "runs": n_seeds * len(idx),
            "failed": int(members.failed.values.sum()),
            "mean_log10_error": mean_error[0, idx].mean(),
            "mean_force_evaluations": mean_cost[0, idx].mean(),
            "mean_paper_reward": float(members.paper_reward.values.mean()),
        }
        lo, hi = interval(mean_error[1:, idx].mean(axis=1))
        row |= {"mean_log10_error_lo": lo, "mean_log10_error_hi": hi}

    for front_name, families in fronts.items():
        members = _front_members(ds, families)
        if members.size == 0:
            continue
        gap, factor = gaps_to_front(log_cost, mean_error, members)
        point = Front.envelope(log_cost[0, members], mean_error[0, members])
        for i, name in enumerate(names):
            row = table[name]
            for key, values in (("gap", gap), ("cost_factor", factor)):
                column = f"{key}_{front_name}"
                row[column] = values[0, i]
                # Outside the sweep's range there is no estimate, hence no interval.
                inside = np.isfinite(values[0, i])
                lo, hi = interval(values[1:, i]) if inside else (np.nan, np.nan)
                row[f"{column}_lo"], row[f"{column}_hi"] = lo, hi
                row[f"{column}_resamples_inside"] = float(
                    np.isfinite(values[1:, i]).mean()
                )
            row[f"where_{front_name}"] = point.locate(float(log_cost[0, i]))
        for g, idx in enumerate(groups.values()):
            row = table[row_names[len(names) + g]]
            for key, values in (("gap", gap), ("cost_factor", factor)):
                row[f"{key}_{front_name}"] = np.nanmean(values[0, idx])
                lo, hi = interval(np.nanmean(values[1:, idx], axis=1))
                row[f"{key}_{front_name}_lo"], row[f"{key}_{front_name}_hi"] = lo, hi
                row[f"{key}_{front_name}_sd"] = (
                    float(np.std(values[0, idx], ddof=1))
                    if np.isfinite(values[0, idx]).all()
                    else np.nan
                )
            places = {point.locate(float(log_cost[0, i])) for i in idx}
            row[f"where_{front_name}"] = "/".join(sorted(places))
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("method")


def _num(value: float, digits: int = 3) -> str:
    if not np.isfinite(value):
        return "-"
    if value != 0 and not 1e-2 <= abs(value) < 1e5:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _with_interval(row: pd.Series, key: str, signed: bool = False) -> str:
    value = row.get(key, np.nan)
    if not np.isfinite(value):
        # Outside the sweep's range: say on which side rather than extrapolate.
        if key.startswith("gap_"):
            return f"outside ({row.get('where_' + key[4:], '?')})"
        if key.startswith("cost_factor_"):
            return "outside (error range)"
        return "-"
    fmt = "{:+.2f}" if signed else "{:.3g}"
    lo, hi = row.get(f"{key}_lo", np.nan), row.get(f"{key}_hi", np.nan)
    text = fmt.format(value)
    if np.isfinite(lo) and np.isfinite(hi):
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    sd = row.get(f"{key}_sd", np.nan)
    if isinstance(sd, float) and np.isfinite(sd):
        text += f" sd {sd:.2f}"
    return text


def print_yardstick(
    table: pd.DataFrame, fronts: Sequence[str], console: Console | None = None
) -> None:
    """A rich table of :func:`yardstick`'s main columns (fixed sweeps last)."""
    out = Table(title="Gap to the fixed sweeps' fronts (95% bootstrap intervals)")
    for title in ("method", "kind", "failed", "mean log10|dE|", "mean force evals"):
        out.add_column(title, justify="left" if title == "method" else "right")
    present = [f for f in fronts if f"gap_{f}" in table]
    for front in present:
        out.add_column(f"gap to {front} front [dec]", justify="right")
        out.add_column(f"cost factor vs {front}", justify="right")
    out.add_column("mean paper reward", justify="right")
    order = table.sort_values("kind", key=lambda k: k.eq("fixed")).index
    for name in order:
        row = table.loc[name]
        cells = [
            str(name),
            str(row["kind"]),
            f"{int(row['failed'])}/{int(row['runs'])}",
            _with_interval(row, "mean_log10_error", signed=True),
            _num(row["mean_force_evaluations"], 4),
        ]
        for front in present:
            cells.append(_with_interval(row, f"gap_{front}", signed=True))
            cells.append(_with_interval(row, f"cost_factor_{front}"))
        cells.append(_num(row["mean_paper_reward"], 4))
        out.add_row(*cells)
    console = console or Console()
    if not console.is_terminal:  # a log file: do not squeeze the table to 80 columns
        console.width = max(console.width, 200)
    console.print(out)
