"""Accuracy/cost of hybrid surrogate/solver rollouts (issue 11), ns2d and ks1d.

Run::

    PHYSIM_BENCH_CKPT=<checkpoint> python scripts/bench/bench_hybrid.py

Environment: ``PHYSIM_BENCH_CKPT`` (required: a checkpoint of ``python train.py
+experiment=ns2d`` or ``+experiment=ks1d``), ``PHYSIM_BENCH_TRAJECTORIES`` (default
4 for ns2d, 16 for ks1d), ``PHYSIM_BENCH_STEPS`` (default: the data's rollout
length), ``PHYSIM_BENCH_SEED`` (generator seed of the fresh initial states, default
1000), ``PHYSIM_BENCH_THREADS`` (torch threads, default 1), ``PHYSIM_BENCH_DEVICE``
(default cpu), ``PHYSIM_BENCH_OUT`` (default ``outputs/bench_hybrid/<data>``: table,
JSON, plot).

In one run, from the same fresh initial windows (the checkpoint's own data generator,
solved afresh with another seed and cached, as ``evaluate reference=solver`` does),
:func:`physim.rollout.hybrid_tradeoff` times and scores:

- ``surrogate`` and ``solver`` (:class:`physim.rollout.IntervalSolver` on the data's
  own grid, one output interval per call, each trajectory with its own parameters): the
  two end points;
- ``solver@M``: the same solver on coarser grids (the cost of a solver at the
  accuracy a hybrid reaches);
- ``residual<=q`` / ``enstrophy<=q`` (ns2d only): :class:`physim.rollout.OnIndicator`
  with :class:`~physim.rollout.PDEResidual` / :class:`~physim.rollout.EnstrophyBudget`,
  the threshold at the ``q``-quantile of the indicator on the surrogate's own rollout
  (:func:`physim.rollout.indicator_thresholds`);
- ``every M``: :class:`physim.rollout.Periodic` re-synchronisation.

Error: relative L2 against the generator's solve (the truth), mean over trajectories
and predicted steps. Wall time: the whole rollout (surrogate + indicator + solver),
same process, same threads. Target (issue 11): some hybrid with <= 1/3 of the
surrogate's error at <= 1/3 of the wall time of the cheapest solver (any resolution
above) whose error is at most the hybrid's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from rich.console import Console

from physim.cli._solver_reference import solve_reference
from physim.cli.evaluate import load_task
from physim.data import TrajectoryFile
from physim.rollout import (
    EnstrophyBudget,
    IntervalSolver,
    OnIndicator,
    PDEResidual,
    Periodic,
    TradeoffPoint,
    as_window_stepper,
    hybrid_tradeoff,
    indicator_thresholds,
    plot_tradeoff,
    rollout,
    tradeoff_table,
)
from physim.solvers import spectral_resample

QUANTILES = (0.9, 0.75, 0.5, 0.25, 0.1, 0.03)
PERIODS = (4, 2)
COARSE = {"ns2d": (48, 32, 24, 16, 12, 8), "ks1d": (192, 128, 96, 64, 48)}


def env(name: str, default: str) -> str:
    return os.environ.get(f"PHYSIM_BENCH_{name}", default)


def build_solver(
    generator_cfg: dict,
    num_points: int | None,
    interval: float,
    parameters: dict[str, torch.Tensor] | None,
) -> IntervalSolver:
    """The data's PDE and controller (optionally on a coarser grid) per interval."""
    pde_cfg = OmegaConf.create(generator_cfg["pde"])
    if num_points is not None:
        pde_cfg.num_points = num_points
    pde = instantiate(pde_cfg)
    controller = instantiate(OmegaConf.create(generator_cfg["controller"]))
    return IntervalSolver(pde, controller, interval, parameters=parameters)


def coarse_point(
    solver: IntervalSolver, initial: torch.Tensor, truth: torch.Tensor
) -> TradeoffPoint:
    """Pure solver on a coarser grid from the last initial frame, frames resampled
    back to the data's grid."""
    n = truth.shape[-1]
    start = time.perf_counter()
    size = solver.solve_shape[0]
    coarse = spectral_resample(initial[:, -1].to(solver.pde.dtype), size)
    pred = rollout(as_window_stepper(solver), coarse.unsqueeze(1), truth.shape[1]).pred
    pred = spectral_resample(pred.flatten(0, 1), n).unflatten(0, pred.shape[:2])
    if pred.device.type == "cuda":  # time the kernels, not their queueing
        torch.cuda.synchronize(pred.device)
    seconds = time.perf_counter() - start
    name = f"solver@{solver.solve_shape[0]}"
    return TradeoffPoint.measure(
        name, "solver", pred, truth, seconds=seconds, solver_fraction=1.0
    )


def main() -> None:
    torch.set_num_threads(int(env("THREADS", "1")))
    device = torch.device(env("DEVICE", "cpu"))
    ckpt = os.environ.get("PHYSIM_BENCH_CKPT")
    if not ckpt:
        raise SystemExit(
            "Set PHYSIM_BENCH_CKPT to an ns2d or ks1d checkpoint (python train.py "
            "+experiment=ns2d, or +experiment=ks1d)."
        )
    task = load_task(ckpt, map_location=str(device)).eval()
    data = task.run_config["data"]
    generator_cfg = data["generator"]
    dataset = "ks1d" if "Kuramoto" in generator_cfg["pde"]["_target_"] else "ns2d"
    if device.type != "cpu":
        generator_cfg["pde"]["device"] = str(device)
    out_dir = Path(env("OUT", f"outputs/bench_hybrid/{dataset}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = solve_reference(
        data,
        seed=int(env("SEED", "1000")),
        num_trajectories=int(env("TRAJECTORIES", "16" if dataset == "ks1d" else "4")),
        cache_dir=out_dir / "reference",
        source=ckpt,
    )
    stride = int(data.get("time_stride", 1))
    t_in = task.hparams.time_history
    with TrajectoryFile(path) as file:
        frames = torch.stack([torch.from_numpy(file.read(i)) for i in range(len(file))])
        interval = float(file.times[1] - file.times[0]) * stride
        names = file.parameter_names
        table = file.sample_parameters
    # Per-trajectory parameters: the surrogate's [B, P] and the solver's bind values.
    params = None
    parameters = None
    if names:
        params = torch.from_numpy(np.stack([table[n] for n in names], axis=1))
        params = params.to(device)
        parameters = {n: torch.from_numpy(table[n]).double() for n in names}
        task.set_parameter_names(names)
    frames = frames[:, ::stride].to(device)
    steps = int(env("STEPS", str(frames.shape[1] - t_in)))
    initial, truth = frames[:, :t_in], frames[:, t_in : t_in + steps]
    n = frames.shape[-1]

    solver = build_solver(generator_cfg, None, interval, parameters)
    pde = solver.pde

    def surrogate(window: torch.Tensor) -> torch.Tensor:
        return task.predict_next(window, params)

    indicators: dict[str, Any] = {
        "residual": PDEResidual(pde, interval, parameters=parameters)
    }
    if dataset == "ns2d":
        indicators["enstrophy"] = EnstrophyBudget.from_solver(pde, interval)
    triggers: dict[str, Any] = {}
    with torch.inference_mode():
        for label, indicator in indicators.items():
            thresholds = indicator_thresholds(
                surrogate, indicator, initial, steps, QUANTILES
            )
            for q, threshold in thresholds.items():
                triggers[f"{label}<=q{q:g}"] = OnIndicator(indicator, threshold)
        triggers.update({f"every {m}": Periodic(m) for m in PERIODS})
        points = hybrid_tradeoff(surrogate, solver, initial, truth, triggers)
        for m in COARSE[dataset]:
            if m < n:
                coarse = build_solver(generator_cfg, m, interval, parameters)
                points.append(coarse_point(coarse, initial, truth))

    verdict = judge(points)
    title = (
        f"Hybrid rollouts, {dataset} at {n} points per side, {len(initial)} "
        f"trajectories x {steps} steps (compare ratios: shared CPU)"
    )
    console = Console(width=160)
    console.print(tradeoff_table(points, title))
    console.print(
        f"best: {verdict['best']}: {verdict['error_gain']:.2f}x lower error than the "
        f"surrogate, {verdict['speedup']:.2f}x faster than {verdict['matched_solver']}"
        f" -> target (>= 3x, >= 3x) {'MET' if verdict['meets_target'] else 'NOT met'}"
    )
    (out_dir / "bench_hybrid.json").write_text(
        json.dumps(
            {"points": [p.as_dict() for p in points], "verdict": verdict}, indent=2
        )
        + "\n"
    )
    with open(out_dir / "bench_hybrid.txt", "w") as handle:
        Console(file=handle, width=160).print(tradeoff_table(points, title))
    plot_tradeoff(points, out_dir / "bench_hybrid.png", title)
    print(f"written to {out_dir}")


def judge(points: list[TradeoffPoint]) -> dict[str, Any]:
    """The best hybrid by the issue's target, and whether it meets it."""
    surrogate = next(p for p in points if p.kind == "surrogate")
    solvers = [p for p in points if p.kind == "solver"]
    best: tuple[float, dict[str, Any]] | None = None
    for point in points:
        if point.kind != "hybrid":
            continue
        error_gain = surrogate.error / max(point.error, 1e-300)
        # The cheapest solver (any resolution) at least as accurate as the hybrid.
        matching = [s for s in solvers if s.error <= point.error]
        if not matching:  # more accurate than every solver run: the finest one
            matching = [min(solvers, key=lambda s: s.error)]
        reference = min(matching, key=lambda s: s.seconds)
        speedup = reference.seconds / point.seconds
        row = {
            "best": point.name,
            "error_gain": error_gain,
            "speedup": speedup,
            "matched_solver": reference.name,
            "meets_target": error_gain >= 3 and speedup >= 3,
        }
        score = min(error_gain, speedup)
        if best is None or score > best[0]:
            best = (score, row)
    assert best is not None, "no hybrid run"
    return best[1]


if __name__ == "__main__":
    main()
