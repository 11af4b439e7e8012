"""The training objective: decades of global error at equal cost, against a baseline.

On a work-precision diagram a controller's runs at several tolerances lie near a
line ``log10 error = a + q log10 evaluations`` (``q`` ~ -3.5 for ETDRK4 with step
doubling here: order 4, plus the cost of the estimate). Moving along that line
(another tolerance) is no gain; moving below it is. So a run is scored against the
baseline's run on the same problem and tolerance as

    score = (log10 error - log10 error_base) - q (log10 evals - log10 evals_base)

the gap in decades of error at equal cost to the baseline's local front, ``< 0``
better; ``10 ** (score / |q|)`` is the cost factor at equal error. ``q`` is fitted
per family on the baseline's own runs (:func:`front_slope`). Alternatives: the
yardstick's interpolated front (:class:`physim.nbody.Front`, used for the verdict)
is piecewise linear and undefined outside the baseline's cost range, which a
candidate may leave in training; the linear local front is smooth, defined
everywhere, and agrees with it where both exist.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._problems import Problem
from ._runs import Method, evaluate

__all__ = ["front_slope", "relative_score", "tolerance_slope", "tune_pi"]

_KEYS = ["problem", "point"]


def front_slope(runs: pd.DataFrame) -> float:
    """``d log10 error / d log10 evaluations`` of one method's runs, within problems.

    A pooled fit with one intercept per problem (each problem's points are demeaned),
    so problems of different difficulty do not tilt the slope; failed runs are left
    out.

    Raises:
        ValueError: fewer than two points per problem, or no spread in cost.
    """
    ok = runs[~runs.failed]
    x = np.log10(ok.evaluations.to_numpy(np.float64))
    y = ok.log10_error.to_numpy(np.float64)
    groups = ok.problem.to_numpy()
    xc, yc = x.copy(), y.copy()
    for name in np.unique(groups):
        member = groups == name
        xc[member] -= x[member].mean()
        yc[member] -= y[member].mean()
    denominator = float(xc @ xc)
    if denominator <= 0:
        raise ValueError(
            "front_slope: the runs need at least two settings per problem with "
            "different costs (several tolerances)."
        )
    return float(xc @ yc) / denominator


def relative_score(
    runs: pd.DataFrame, base: pd.DataFrame, slope: float | Mapping[str, float]
) -> float:
    """Mean score of ``runs`` against ``base`` (same problems and points), see the
    module doc; ``slope``: ``q``, or one per family.

    Raises:
        ValueError: when a run of ``runs`` has no baseline run.
    """
    merged = runs.merge(base, on=_KEYS, suffixes=("", "_base"), how="left")
    if merged.log10_error_base.isna().any():
        raise ValueError(
            "relative_score: some runs have no baseline run on the same problem and "
            "tolerance; run the baseline on the same problems and points."
        )
    q = (
        merged.family.map(dict(slope)).to_numpy(np.float64)
        if isinstance(slope, Mapping)
        else np.full(len(merged), float(slope))
    )
    d_error = merged.log10_error - merged.log10_error_base
    d_cost = np.log10(merged.evaluations) - np.log10(merged.evaluations_base)
    return float(np.mean(d_error - q * d_cost))


def tolerance_slope(runs: pd.DataFrame) -> float:
    """Slope of the mean ``log10 error`` (over problems) against ``log10 tol``."""
    means = runs.groupby("point").log10_error.mean()
    x = np.log10(means.index.to_numpy(np.float64))
    return float(np.polyfit(x, means.to_numpy(np.float64), 1)[0])


def tune_pi(
    problems: Sequence[Problem],
    tolerances: Sequence[float],
    grid: Mapping[str, Sequence[float]],
    progress: bool = False,
) -> tuple[dict[str, float], pd.DataFrame]:
    """PI coefficients with the best score against the default PI on ``problems``.

    Every combination of ``grid`` (e.g. ``pcoeff``, ``icoeff``, ``safety``) runs on
    every problem and tolerance; its score is :func:`relative_score` against the
    default controller with the default's own front slope. Hairer's default
    (``pcoeff=0.4, icoeff=0.3, safety=0.9``) scores 0 and stays unless a candidate
    beats it.

    Returns:
        The best keyword arguments and a table of every candidate (score, cost factor
        at equal error, failures, tolerance slope), best first.

    Raises:
        ValueError: for an empty grid or a bad coefficient (from PIDController).
    """
    if not grid or not all(grid.values()):
        raise ValueError(f"tune_pi: grid must give values per coefficient, got {grid}.")
    families = sorted({p.family for p in problems})
    if len(families) != 1:
        raise ValueError(
            f"tune_pi: tune one family at a time (PI is tuned per family), got "
            f"problems of {families}."
        )
    points = {"default": list(tolerances)}
    default = evaluate(problems, [Method("default", "pi")], points, progress=False)
    slope = front_slope(default)
    names = list(grid)
    rows: list[dict[str, Any]] = []
    for values in itertools.product(*(grid[n] for n in names)):
        kwargs = {n: float(v) for n, v in zip(names, values, strict=True)}
        method = Method("candidate", "pi", {families[0]: kwargs})
        runs = evaluate(problems, [method], {"candidate": list(tolerances)}, False)
        score = relative_score(runs, default, slope)
        rows.append(
            {
                **kwargs,
                "score": score,
                "cost_factor": 10 ** (score / abs(slope)),
                "failed": int(runs.failed.sum()),
                "tolerance_slope": tolerance_slope(runs),
                "mean_evaluations": float(runs.evaluations.mean()),
            }
        )
        if progress:
            print(f"tune_pi {kwargs}: score {score:+.3f}", flush=True)
    table = pd.DataFrame(rows).sort_values("score").reset_index(drop=True)
    table.attrs["front_slope"] = slope
    best = table.iloc[0]
    if best.score >= 0.0:  # nothing beats the default
        return {}, table
    return {n: float(best[n]) for n in names}, table
