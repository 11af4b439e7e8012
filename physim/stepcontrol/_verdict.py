"""The verdict: work-precision points, the gap to the tuned PI front, proportionality.

Per family and method, each setting (tolerance, or number of constant steps) is one
point: ``x = log10`` of the mean right-hand-side evaluations and ``y`` = the mean
``log10`` global error over the held-out problems (failed runs count as error 1).
The tuned PI controller's points form the *front* (:class:`physim.nbody.Front`,
piecewise linear in these axes, no extrapolation); a point's *gap* is its ``y``
minus the front's at its ``x`` (decades of error at equal cost, < 0 better), its
*cost factor* its cost over the front's at its ``y`` (< 1: fewer evaluations at
equal error). Intervals: paired bootstrap over the problems (initial states of
held-out parameters), the front rebuilt in every resample
(:func:`physim.nbody._front.bootstrap_weights`). Tolerance proportionality is the
least-squares slope of ``y`` against ``log10 tol``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from physim.nbody._front import bootstrap_weights, gaps_to_front, percentile_interval

__all__ = ["work_precision"]


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``y`` against ``x``."""
    xc = x - x.mean()
    return (y - y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)


def work_precision(
    runs: pd.DataFrame,
    front: str = "pi_tuned",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Points and per-method summary of an evaluation (:func:`~._runs.evaluate`).

    Args:
        runs: one row per run.
        front: the method whose points form the front.
        n_bootstrap: bootstrap resamples of the problems.
        confidence: of the intervals.
        seed: of the bootstrap.

    Returns:
        ``points``: per family, method and setting the means, the gap and cost factor
        to the front (with intervals), failures and rejections; ``summary``: per
        family and method the mean gap and geometric-mean cost factor over its points
        inside the front's range (with intervals), the tolerance slope (with
        interval), the rejection rate, failed runs and the mean wall time per run.

    Raises:
        ValueError: for a missing front method or problems without every setting.
    """
    if n_bootstrap < 1 or not 0 < confidence < 1:
        raise ValueError(
            f"work_precision: n_bootstrap={n_bootstrap} must be >= 1 and "
            f"confidence={confidence} in (0, 1)."
        )
    point_rows, summary_rows = [], []
    rng = np.random.default_rng(seed)
    for family, fam in runs.groupby("family", sort=True):
        if front not in set(fam.method):
            raise ValueError(
                f"work_precision: no runs of the front method {front!r} for {family}."
            )
        units = sorted(fam.problem.unique())
        keys = fam[["method", "point"]].drop_duplicates().values.tolist()
        error = fam.pivot_table("log10_error", ["method", "point"], "problem")
        cost = fam.pivot_table("evaluations", ["method", "point"], "problem")
        if error.isna().any().any() or list(error.columns) != units:
            raise ValueError(
                f"work_precision: every method and setting must run on every problem "
                f"of {family}."
            )
        weights = bootstrap_weights(len(units), n_bootstrap, rng)
        weights = np.vstack([np.full(len(units), 1.0 / len(units)), weights])
        mean_error = weights @ error.to_numpy().T  # [1 + B, K]
        log_cost = np.log10(weights @ cost.to_numpy().T)
        index = list(error.index)
        members = [i for i, (m, _) in enumerate(index) if m == front]
        gap, factor = gaps_to_front(log_cost, mean_error, members)
        for k, (method, point) in enumerate(index):
            sel = fam[(fam.method == method) & (fam.point == point)]
            row = {
                "family": family,
                "method": method,
                "kind": sel.kind.iloc[0],
                "point": point,
                "mean_log10_error": mean_error[0, k],
                "mean_evaluations": 10 ** log_cost[0, k],
                "failed": int(sel.failed.sum()),
                "runs": len(sel),
                "rejected": int(sel.rejected[~sel.failed].sum()),
                "steps": int(sel.steps[~sel.failed].sum()),
                "mean_wall_time": float(sel.wall_time.mean()),
            }
            for name, values in (("gap", gap), ("cost_factor", factor)):
                row[name] = values[0, k]
                inside = np.isfinite(values[0, k])
                lo, hi = (
                    percentile_interval(values[1:, k], confidence)
                    if inside
                    else (np.nan, np.nan)
                )
                row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
            point_rows.append(row)
        for method in dict.fromkeys(m for m, _ in keys):
            ks = [i for i, (m, _) in enumerate(index) if m == method]
            inside = [k for k in ks if np.isfinite(gap[0, k])]
            sel = fam[fam.method == method]
            ok = sel[~sel.failed]
            row = {
                "family": family,
                "method": method,
                "kind": sel.kind.iloc[0],
                "points": len(ks),
                "points_inside": len(inside),
                "failed": int(sel.failed.sum()),
                "runs": len(sel),
                "rejection_rate": float(ok.rejected.sum() / max(ok.steps.sum(), 1)),
                "mean_wall_time": float(sel.wall_time.mean()),
                "mean_evaluations": float(sel.evaluations.mean()),
            }
            if inside:
                with warnings.catch_warnings():  # resamples with every point outside
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean_gap = np.nanmean(gap[:, inside], axis=1)
                    mean_factor = 10 ** np.nanmean(np.log10(factor[:, inside]), axis=1)
                for name, values in (("gap", mean_gap), ("cost_factor", mean_factor)):
                    row[name] = values[0]
                    row[f"{name}_lo"], row[f"{name}_hi"] = percentile_interval(
                        values[1:], confidence
                    )
            if sel.kind.iloc[0] != "constant" and len(ks) > 1:
                x = np.log10(np.asarray([index[k][1] for k in ks], dtype=np.float64))
                slopes = _slopes(x, mean_error[:, ks])
                row["tolerance_slope"] = slopes[0]
                lo, hi = percentile_interval(slopes[1:], confidence)
                row["tolerance_slope_lo"], row["tolerance_slope_hi"] = lo, hi
            summary_rows.append(row)
    return pd.DataFrame(point_rows), pd.DataFrame(summary_rows)
