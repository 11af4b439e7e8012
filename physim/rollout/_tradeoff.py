"""The accuracy/cost report of hybrid rollouts: a sweep of triggers, a table, a plot.

:func:`hybrid_tradeoff` runs, from the same initial windows and against the same
truth, the pure surrogate, the pure solver and one hybrid per trigger, timing each
whole rollout in this process; each run becomes a :class:`TradeoffPoint` (error,
wall time, fraction of frames made by the solver). :func:`indicator_thresholds` turns
quantiles of an indicator on the surrogate's own rollout into thresholds, so one
sweep spans "rarely" to "often" whatever the indicator's scale.
:func:`tradeoff_table` and :func:`plot_tradeoff` show the points: error against
solver share and against wall time, with the two end points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from . import metrics
from ._engine import as_window_stepper, rollout
from ._hybrid import (
    HybridStepper,
    OnIndicator,
    Trigger,
    _synchronize,
    hybrid_rollout,
)

__all__ = [
    "TradeoffPoint",
    "hybrid_tradeoff",
    "indicator_thresholds",
    "plot_tradeoff",
    "tradeoff_table",
]


@dataclass(frozen=True)
class TradeoffPoint:
    """One rollout of an accuracy/cost comparison.

    Attributes:
        name: a label (``"surrogate"``, ``"solver"``, the trigger's name).
        kind: ``"surrogate"``, ``"solver"`` or ``"hybrid"``.
        error: relative L2 error against the truth, mean over trajectories and steps.
        final_error: the same at the last step.
        seconds: wall time of the whole rollout.
        solver_fraction: fraction of predicted frames made by the solver.
        solver_seconds: wall time inside the solver (hybrids), else ``nan``.
    """

    name: str
    kind: str
    error: float
    final_error: float
    seconds: float
    solver_fraction: float
    solver_seconds: float = math.nan

    @classmethod
    def measure(
        cls,
        name: str,
        kind: str,
        pred: Float[Tensor, "B T C *S"],
        truth: Float[Tensor, "B T C *S"],
        *,
        seconds: float,
        solver_fraction: float,
        solver_seconds: float = math.nan,
    ) -> TradeoffPoint:
        """The point of a rollout ``pred`` of ``truth``."""
        errors = metrics.relative_l2(pred.double(), truth.double())  # [B, T]
        return cls(
            name,
            kind,
            error=float(errors.mean()),
            final_error=float(errors[:, -1].mean()),
            seconds=float(seconds),
            solver_fraction=float(solver_fraction),
            solver_seconds=float(solver_seconds),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON)."""
        return asdict(self)


def indicator_thresholds(
    surrogate: Callable[[Tensor], Tensor],
    indicator: Callable[[Tensor, Tensor], Tensor],
    initial: Float[Tensor, "B T_in C *S"],
    n_steps: int,
    quantiles: Sequence[float] = (0.9, 0.75, 0.5, 0.25),
) -> dict[float, float]:
    """``{q: threshold}``: the ``q``-quantiles of ``indicator`` on the surrogate's
    own ``n_steps`` rollout from ``initial`` (a hybrid at the ``q`` threshold sends
    roughly the ``1 - q`` worst-scored steps of that rollout to the solver).

    Raises:
        ValueError: a quantile outside ``[0, 1]``.
    """
    bad = [q for q in quantiles if not 0.0 <= q <= 1.0]
    if bad:
        raise ValueError(f"indicator_thresholds: quantiles must lie in [0, 1]: {bad}.")
    never = OnIndicator(indicator, math.inf)
    _, record = hybrid_rollout(
        HybridStepper(surrogate, _no_solver, never), initial, n_steps
    )
    scores = record.scores.flatten()
    scores = scores[~scores.isnan()]
    return {q: float(torch.quantile(scores, q)) for q in quantiles}


def _no_solver(frame: Tensor, rows: Tensor) -> Tensor:
    raise AssertionError("an infinite threshold never calls the solver")


def _timed(fn: Callable[[], Any], device_of: Tensor) -> tuple[Any, float]:
    """``fn()`` and its wall time, waiting for queued kernels on ``device_of``'s
    device."""
    _synchronize(device_of)
    start = time.perf_counter()
    out = fn()
    _synchronize(device_of)
    return out, time.perf_counter() - start


@torch.inference_mode()
def hybrid_tradeoff(
    surrogate: Callable[[Tensor], Tensor],
    solver: Callable[..., Tensor],
    initial: Float[Tensor, "B T_in C *S"],
    truth: Float[Tensor, "B T C *S"],
    triggers: Mapping[str, Trigger],
) -> list[TradeoffPoint]:
    """The pure surrogate, the pure solver and a hybrid per trigger, side by side.

    Args:
        surrogate: window stepper ``[B, T_in, C, *S] -> [B, T_out, C, *S]``.
        solver: frame stepper over one output interval (``solver(frame)`` and, for
            the hybrids, ``solver(frame, rows)``: an
            :class:`physim.rollout.IntervalSolver`).
        initial: the initial windows.
        truth: the true frames after them; the rollouts run ``T`` steps.
        triggers: ``{name: trigger}`` (:class:`~physim.rollout.OnIndicator`,
            :class:`~physim.rollout.Periodic`).

    Returns:
        The points, end points first, in the order run (each rollout timed alone).
    """
    steps = truth.shape[1]
    pred, seconds = _timed(lambda: rollout(surrogate, initial, steps).pred, initial)
    measure = TradeoffPoint.measure
    points = [
        measure(
            "surrogate", "surrogate", pred, truth, seconds=seconds, solver_fraction=0.0
        )
    ]
    pred, seconds = _timed(
        lambda: rollout(as_window_stepper(solver), initial, steps).pred, initial
    )
    points.append(
        measure("solver", "solver", pred, truth, seconds=seconds, solver_fraction=1.0)
    )
    for name, trigger in triggers.items():
        hybrid = HybridStepper(surrogate, solver, trigger)
        (result, record), seconds = _timed(
            lambda h=hybrid: hybrid_rollout(h, initial, steps), initial
        )
        points.append(
            measure(
                name,
                "hybrid",
                result.pred,
                truth,
                seconds=seconds,
                solver_fraction=record.solver_fraction,
                solver_seconds=record.solver_time,
            )
        )
    return points


def tradeoff_table(points: Sequence[TradeoffPoint], title: str = "") -> Any:
    """A ``rich`` table of the points, wall time also relative to the pure solver's
    (the first ``kind == "solver"`` point)."""
    from rich.table import Table

    solver = next((p for p in points if p.kind == "solver"), None)
    table = Table(title=title or None)
    for column in (
        "run",
        "solver share",
        "rel L2",
        "final rel L2",
        "wall s",
        "x solver",
    ):
        table.add_column(column, justify="right")
    for p in points:
        relative = p.seconds / solver.seconds if solver and solver.seconds else math.nan
        table.add_row(
            p.name,
            f"{p.solver_fraction:.3f}",
            f"{p.error:.3e}",
            f"{p.final_error:.3e}",
            f"{p.seconds:.2f}",
            f"{relative:.3f}",
        )
    return table


def plot_tradeoff(
    points: Sequence[TradeoffPoint], path: str | Path, title: str = ""
) -> Path:
    """Error against solver share (left) and wall time (right), as a PNG at ``path``.

    Squares: the pure surrogate; triangles: pure solvers; circles: hybrids.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    markers = {"surrogate": ("s", "C3"), "solver": ("^", "C0"), "hybrid": ("o", "C2")}
    for p in points:
        marker, color = markers.get(p.kind, ("x", "k"))
        for axis, x in ((left, p.solver_fraction), (right, p.seconds)):
            axis.scatter(x, p.error, marker=marker, color=color)
            axis.annotate(p.name, (x, p.error), fontsize=6)
    left.set_xlabel("fraction of frames made by the solver")
    right.set_xlabel("wall time [s]")
    right.set_xscale("log")
    for axis in (left, right):
        axis.set_yscale("log")
        axis.set_ylabel("relative L2 (mean over steps)")
        axis.grid(alpha=0.3)
    left.set_title("accuracy vs solver share")
    right.set_title("accuracy vs cost")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
