"""Accuracy/cost of hybrid surrogate/solver rollouts (issue 11), ns2d.

Run::

    PHYSIM_BENCH_CKPT=<ns2d checkpoint> python scripts/bench/bench_hybrid.py

Environment: ``PHYSIM_BENCH_CKPT`` (required: a checkpoint of ``python train.py
+experiment=ns2d``), ``PHYSIM_BENCH_TRAJECTORIES`` (default 4),
``PHYSIM_BENCH_STEPS`` (default: the data's rollout length), ``PHYSIM_BENCH_SEED``
(generator seed of the fresh initial states, default 1000), ``PHYSIM_BENCH_THREADS``
(torch threads, default 1), ``PHYSIM_BENCH_DEVICE`` (default cpu),
``PHYSIM_BENCH_OUT`` (default ``outputs/bench_hybrid``: table, JSON, plot).

In one run, from the same fresh initial windows (the checkpoint's own data generator,
solved afresh with another seed and cached, as ``evaluate reference=solver`` does):

- ``truth``: the generator's solve (the data's solver, resolution and controller);
- ``solver``: the pure-solver end point, :class:`physim.rollout.IntervalSolver` on the
  data's grid, one output interval per call;
- ``solver@M``: the same solver on coarser ``M^2`` grids (the cost of a solver at the
  accuracy the hybrid reaches);
- ``surrogate``: the pure-surrogate end point;
- ``residual<=q`` / ``enstrophy<=q``: :class:`physim.rollout.OnIndicator` with
  :class:`~physim.rollout.PDEResidual` / :class:`~physim.rollout.EnstrophyBudget`, the
  threshold set to the ``q``-quantile of the indicator on the surrogate's own rollout;
- ``every M``: :class:`physim.rollout.Periodic` re-synchronisation.

Error: relative L2 against ``truth``, mean over trajectories and predicted steps.
Wall time: the whole rollout (surrogate + indicator + solver), same process, same
threads. Target (issue 11): some hybrid with <= 1/3 of the surrogate's error at <= 1/3
of the wall time of the cheapest solver (any resolution above) whose error is at most
the hybrid's.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from physim.cli._solver_reference import solve_reference  # noqa: E402
from physim.cli.evaluate import load_task  # noqa: E402
from physim.data import TrajectoryFile  # noqa: E402
from physim.rollout import (  # noqa: E402
    EnstrophyBudget,
    HybridStepper,
    IntervalSolver,
    OnIndicator,
    PDEResidual,
    Periodic,
    as_window_stepper,
    hybrid_rollout,
    metrics,
    rollout,
)
from physim.solvers import spectral_resample  # noqa: E402

QUANTILES = (0.9, 0.75, 0.5, 0.25)
PERIODS = (4, 2)
COARSE = (48, 32, 24, 16, 12, 8)


def env(name: str, default: str) -> str:
    return os.environ.get(f"PHYSIM_BENCH_{name}", default)


def error(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Relative L2, mean over trajectories and steps (the report's rel_l2_mean)."""
    return float(metrics.relative_l2(pred.double(), truth.double()).mean())


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def build_solver(generator_cfg: dict, num_points: int | None, interval: float):
    """The data's PDE and controller (optionally on a coarser grid) per interval."""
    pde_cfg = OmegaConf.create(generator_cfg["pde"])
    if num_points is not None:
        pde_cfg.num_points = num_points
    pde = instantiate(pde_cfg)
    controller = instantiate(OmegaConf.create(generator_cfg["controller"]))
    return pde, IntervalSolver(pde, controller, interval)


def coarse_rollout(solver: IntervalSolver, frame: torch.Tensor, steps: int, n: int):
    """Pure solver on a coarser grid, frames resampled back to ``n`` points."""
    coarse = spectral_resample(frame.to(solver.pde.dtype), solver.solve_shape[0])
    pred = rollout(as_window_stepper(solver), coarse.unsqueeze(1), steps).pred
    return spectral_resample(pred.flatten(0, 1), n).unflatten(0, pred.shape[:2])


def main() -> None:
    torch.set_num_threads(int(env("THREADS", "1")))
    device = torch.device(env("DEVICE", "cpu"))
    ckpt = os.environ.get("PHYSIM_BENCH_CKPT")
    if not ckpt:
        raise SystemExit(
            "Set PHYSIM_BENCH_CKPT to an ns2d checkpoint (python train.py "
            "+experiment=ns2d)."
        )
    out_dir = Path(env("OUT", "outputs/bench_hybrid"))
    out_dir.mkdir(parents=True, exist_ok=True)
    task = load_task(ckpt, map_location=str(device)).eval()
    data = task.run_config["data"]
    generator_cfg = data["generator"]
    if device.type != "cpu":
        generator_cfg["pde"]["device"] = str(device)
    path = solve_reference(
        data,
        seed=int(env("SEED", "1000")),
        num_trajectories=int(env("TRAJECTORIES", "4")),
        cache_dir=out_dir / "reference",
        source=ckpt,
    )
    stride = int(data.get("time_stride", 1))
    t_in = task.hparams.time_history
    with TrajectoryFile(path) as file:
        frames = torch.stack([torch.from_numpy(file.read(i)) for i in range(len(file))])
        interval = float(file.times[1] - file.times[0]) * stride
    frames = frames[:, ::stride].to(device)
    steps = int(env("STEPS", str(frames.shape[1] - t_in)))
    initial, truth = frames[:, :t_in], frames[:, t_in : t_in + steps]
    n = frames.shape[-1]

    pde, solver = build_solver(generator_cfg, None, interval)

    def surrogate(window):
        return task.predict_next(window)

    rows: list[dict] = []

    def add(name, kind, pred, seconds, fraction, **extra):
        rows.append(
            {
                "name": name,
                "kind": kind,
                "rel_l2": error(pred, truth),
                "rel_l2_final": float(
                    metrics.relative_l2(
                        pred[:, -1:].double(), truth[:, -1:].double()
                    ).mean()
                ),
                "seconds": seconds,
                "solver_fraction": fraction,
                **extra,
            }
        )

    with torch.inference_mode():
        pred, seconds = timed(lambda: rollout(surrogate, initial, steps).pred)
        add("surrogate", "surrogate", pred, seconds, 0.0)
        pred, seconds = timed(
            lambda: rollout(as_window_stepper(solver), initial, steps).pred
        )
        add(f"solver@{n}", "solver", pred, seconds, 1.0)
        for m in COARSE:
            if m >= n:
                continue
            _, coarse = build_solver(generator_cfg, m, interval)
            pred, seconds = timed(
                lambda c=coarse: coarse_rollout(c, initial[:, -1], steps, n)
            )
            add(f"solver@{m}", "solver", pred, seconds, 1.0)

        indicators = {
            "residual": PDEResidual(pde, interval),
            "enstrophy": EnstrophyBudget.from_solver(pde, interval),
        }
        for label, indicator in indicators.items():
            # The indicator on the surrogate's own rollout sets the thresholds.
            _, record = hybrid_rollout(
                HybridStepper(surrogate, solver, OnIndicator(indicator, math.inf)),
                initial,
                steps,
            )
            scores = record.scores.flatten()
            for q in QUANTILES:
                threshold = float(torch.quantile(scores, q))
                hybrid = HybridStepper(
                    surrogate, solver, OnIndicator(indicator, threshold)
                )
                (result, record), seconds = timed(
                    lambda h=hybrid: hybrid_rollout(h, initial, steps)
                )
                add(
                    f"{label}<=q{q:g}",
                    "hybrid",
                    result.pred,
                    seconds,
                    record.solver_fraction,
                    threshold=threshold,
                    solver_seconds=record.solver_time,
                    indicator_seconds=record.indicator_time,
                )
        for period in PERIODS:
            hybrid = HybridStepper(surrogate, solver, Periodic(period))
            (result, record), seconds = timed(
                lambda h=hybrid: hybrid_rollout(h, initial, steps)
            )
            add(
                f"every {period}",
                "hybrid",
                result.pred,
                seconds,
                record.solver_fraction,
                solver_seconds=record.solver_time,
            )

    verdict = judge(rows)
    report(rows, verdict, out_dir, n, steps, len(initial))


def judge(rows: list[dict]) -> dict:
    """The best hybrid by the issue's target, and whether it meets it."""
    surrogate = next(r for r in rows if r["kind"] == "surrogate")
    solvers = [r for r in rows if r["kind"] == "solver"]
    best = None
    for row in rows:
        if row["kind"] != "hybrid":
            continue
        error_gain = surrogate["rel_l2"] / max(row["rel_l2"], 1e-300)
        # The cheapest solver (any resolution) at least as accurate as the hybrid.
        matching = [s for s in solvers if s["rel_l2"] <= row["rel_l2"]]
        if not matching:  # more accurate than every solver run: the finest one
            matching = [min(solvers, key=lambda s: s["rel_l2"])]
        reference = min(matching, key=lambda s: s["seconds"])
        speedup = reference["seconds"] / row["seconds"]
        row.update(
            error_gain=error_gain, matched_solver=reference["name"], speedup=speedup
        )
        score = min(error_gain, speedup)
        if best is None or score > best[0]:
            best = (score, row)
    _, row = best
    return {
        "best": row["name"],
        "error_gain": row["error_gain"],
        "speedup": row["speedup"],
        "matched_solver": row["matched_solver"],
        "meets_target": row["error_gain"] >= 3 and row["speedup"] >= 3,
    }


def report(rows, verdict, out_dir: Path, n: int, steps: int, batch: int) -> None:
    solver = next(r for r in rows if r["name"] == f"solver@{n}")
    table = Table(
        title=f"Hybrid rollouts, ns2d {n}^2, {batch} trajectories x {steps} steps "
        "(shared, noisy CPU: compare ratios)"
    )
    for column in (
        "run",
        "solver frac",
        "rel L2",
        "final rel L2",
        "wall s",
        "x solver time",
        "err gain",
        "matched solver",
        "speedup",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['solver_fraction']:.3f}",
            f"{r['rel_l2']:.3e}",
            f"{r['rel_l2_final']:.3e}",
            f"{r['seconds']:.2f}",
            f"{r['seconds'] / solver['seconds']:.3f}",
            f"{r.get('error_gain', float('nan')):.2f}",
            r.get("matched_solver", ""),
            f"{r.get('speedup', float('nan')):.2f}",
        )
    console = Console(width=160)
    console.print(table)
    console.print(
        f"best: {verdict['best']}: {verdict['error_gain']:.2f}x lower error than the "
        f"surrogate, {verdict['speedup']:.2f}x faster than {verdict['matched_solver']}"
        f" -> target (>= 3x, >= 3x) {'MET' if verdict['meets_target'] else 'NOT met'}"
    )
    (out_dir / "bench_hybrid.json").write_text(
        json.dumps({"rows": rows, "verdict": verdict}, indent=2) + "\n"
    )
    with open(out_dir / "bench_hybrid.txt", "w") as handle:
        Console(file=handle, width=160).print(table)
    plot(rows, out_dir / "bench_hybrid.png")


def plot(rows: list[dict], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"surrogate": ("s", "C3"), "solver": ("^", "C0"), "hybrid": ("o", "C2")}
    for r in rows:
        marker, color = styles[r["kind"]]
        if "residual" in r["name"]:
            color = "C2"
        elif "enstrophy" in r["name"]:
            color = "C1"
        elif r["kind"] == "hybrid":
            color = "C4"
        for axis, x in ((left, r["solver_fraction"]), (right, r["seconds"])):
            axis.scatter(x, r["rel_l2"], marker=marker, color=color)
            axis.annotate(r["name"], (x, r["rel_l2"]), fontsize=6)
    left.set_xlabel("fraction of steps done by the solver")
    right.set_xlabel("wall time [s]")
    right.set_xscale("log")
    for axis in (left, right):
        axis.set_yscale("log")
        axis.set_ylabel("rollout relative L2 (mean over steps)")
        axis.grid(alpha=0.3)
    left.set_title("accuracy vs solver share")
    right.set_title("accuracy vs cost (triangles: pure solver at M^2)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
