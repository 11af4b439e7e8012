"""Highly correlated duration and latency of TSM, LI, coarse solvers and DNS (CPU).

Run: ``python scripts/bench/bench_tsm.py`` (``PHYSIM_BENCH_SCALE=tiny`` for a smoke
test of a minute or two, ``small`` for a few CPU minutes; ``cpu``, the default,
about half an hour of one idle core; ``PHYSIM_BENCH_THREADS`` sets torch's thread
count, default 1).

Kolmogorov flow (Re = 1000, ``sin(4 y)`` forcing, drag 0.1) in one run:

1. a DNS at ``dns`` points per axis (jax-cfd's van Leer scheme, Lax-Wendroff limited
   by van Leer, implicit diffusion; Courant 0.5 at speed 7) from random
   filtered states, warmed up, face-averaged to the ``coarse`` grid every coarse step
   ``dt = 0.5 dx_coarse / 7``: the first trajectories train, the others evaluate;
2. LI (1 frame, no memory) and TSM (HiPPO-LagT prefix of 32 frames, 4-step bundling)
   trained with the same CNN, optimiser and number of updates on unrolls through the
   coarse solver (:class:`physim.tasks.TemporalStencilModel`, a plain loop here);
3. from the same start (after the 32-frame prefix), rollouts of the coarse solver with
   linear interpolation, with van Leer's limiter on linear face values (what an
   untrained LI computes) and with jax-cfd's van Leer scheme, DNS at 2x and 4x the
   coarse resolution
   (face-averaged to the coarse grid), LI and TSM; vorticity correlation with the truth
   and the highly correlated duration (sample-mean correlation > 0.8 within the
   horizon), plus wall time per simulated time unit for the evaluation batch.

Deviations from the paper (64^2 from a 2048^2 DNS, N = 256, 6 x 256-channel CNN,
32-step unrolls, 128 training trajectories, long training on a GPU): everything is
shrunk to fit a shared CPU (see ``SCALES``), so the figures show the pipeline and the
ordering at this scale, not the paper's numbers.
"""

from __future__ import annotations

import math
import os
import time
from functools import partial

import torch
from rich.console import Console
from rich.table import Table

from physim.models import HiPPO, LearnedInterpolation
from physim.rollout import metrics
from physim.solvers import (
    FilteredVelocityField,
    FiniteVolumeNS2D,
    KolmogorovForcing,
    LinearInterpolation,
    LinearVanLeerInterpolation,
    VanLeerInterpolation,
    downsample_staggered,
)
from physim.tasks import TemporalStencilModel

SCALES = {
    # coarse grid, DNS grid, warm-up and evaluation horizon (time units), training
    # and evaluation trajectories, training trajectory length (time units), updates.
    "tiny": dict(
        coarse=16,
        dns=64,
        warmup=0.5,
        horizon=1.0,
        train=2,
        test=2,
        length=1.5,
        updates=4,
        hidden=8,
        layers=2,
        state=8,
        unroll=8,
    ),
    "small": dict(
        coarse=16,
        dns=128,
        warmup=4.0,
        horizon=4.0,
        train=2,
        test=2,
        length=5.0,
        updates=60,
        hidden=16,
        layers=3,
        state=16,
        unroll=8,
    ),
    "cpu": dict(
        coarse=16,
        dns=128,
        warmup=8.0,
        horizon=6.0,
        train=4,
        test=4,
        length=7.0,
        updates=200,
        hidden=32,
        layers=4,
        state=16,
        unroll=16,
    ),
}
PREFIX = 32
BUNDLE = 4
MAX_VELOCITY = 7.0
VISCOSITY = 1e-3
THRESHOLD = 0.8


def coarse_dt(points: int) -> float:
    return 0.5 * (2 * math.pi / points) / MAX_VELOCITY


def run_solver(
    solver: FiniteVolumeNS2D, v: torch.Tensor, steps: int, substeps: int, coarse: int
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """``steps`` coarse frames (each ``substeps`` solver steps), face-averaged.

    Returns the frames ``[B, steps, 2, coarse, coarse]``, the wall time and the last
    fine state.
    """
    dt = coarse_dt(coarse) / substeps
    frames, start = [], time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            for _ in range(substeps):
                v = solver.advance(v, dt)
            frames.append(downsample_staggered(v, coarse))
    return torch.stack(frames, 1), time.perf_counter() - start, v


def make_task(cfg: dict, tsm: bool) -> TemporalStencilModel:
    torch.manual_seed(0)
    encoder = HiPPO(cfg["state"], "lagt") if tsm else None
    net = LearnedInterpolation(
        2 * cfg["state"] if tsm else 2,
        hidden_channels=cfg["hidden"],
        num_layers=cfg["layers"],
        bundle=BUNDLE if tsm else 1,
    )
    solver = FiniteVolumeNS2D(
        cfg["coarse"], viscosity=VISCOSITY, forcing=KolmogorovForcing()
    )
    return TemporalStencilModel(
        net,
        solver,
        partial(torch.optim.AdamW, lr=1e-3, betas=(0.9, 0.98), weight_decay=1e-4),
        encoder=encoder,
        dt=coarse_dt(cfg["coarse"]),
        time_history=PREFIX if tsm else 1,
    )


def train(task: TemporalStencilModel, data: torch.Tensor, cfg: dict) -> float:
    """AdamW on random windows, clip 0.25, cosine decay; returns the wall time."""
    optimizer = task.configure_optimizers()
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg["updates"])
    history, unroll = task.hparams.time_history, cfg["unroll"]
    generator = torch.Generator().manual_seed(1)
    task.train()
    start = time.perf_counter()
    for _ in range(cfg["updates"]):
        # Windows end inside the training frames; TSM and LI see the same targets.
        first = torch.randint(
            PREFIX - history,
            data.shape[1] - unroll - history + 1,
            (4,),
            generator=generator,
        )
        rows = torch.randint(0, data.shape[0], (4,), generator=generator)
        windows = torch.stack(
            [
                data[r, f : f + history + unroll]
                for r, f in zip(rows, first, strict=True)
            ]
        )
        batch = {"history": windows[:, :history], "future": windows[:, history:]}
        loss, _ = task.model_step(batch)
        optimizer.zero_grad()
        if torch.isfinite(loss):
            loss.backward()
            task.on_before_optimizer_step(optimizer)
            torch.nn.utils.clip_grad_norm_(task.parameters(), 0.25)
            optimizer.step()
        schedule.step()
    return time.perf_counter() - start


def main() -> None:
    scale = os.environ.get("PHYSIM_BENCH_SCALE", "cpu")
    if scale not in SCALES:
        raise SystemExit(f"PHYSIM_BENCH_SCALE must be one of {list(SCALES)}.")
    torch.set_num_threads(int(os.environ.get("PHYSIM_BENCH_THREADS", "1")))
    cfg = SCALES[scale]
    console = Console()
    n, dns = cfg["coarse"], cfg["dns"]
    factor = dns // n
    dt = coarse_dt(n)
    horizon_steps = round(cfg["horizon"] / dt)
    total = cfg["train"] + cfg["test"]

    # 1. DNS truth: warm-up, then face averages at every coarse step.
    torch.manual_seed(0)
    v0 = FilteredVelocityField(dns).sample(
        total, generator=torch.Generator().manual_seed(0)
    )
    truth_solver = FiniteVolumeNS2D(
        dns, viscosity=VISCOSITY, forcing=KolmogorovForcing()
    )
    warmup_steps = round(cfg["warmup"] / dt)
    _, seconds, v = run_solver(truth_solver, v0, warmup_steps, factor, n)
    # The prefix (the TSM history, ending at the common start frame), then the rest;
    # the fine state at the start frame seeds the DNS baselines.
    prefix, sec_prefix, start_fine = run_solver(truth_solver, v, PREFIX, factor, n)
    steps = max(round(cfg["length"] / dt), PREFIX + horizon_steps) - PREFIX
    rest, sec_rest, _ = run_solver(truth_solver, start_fine, steps, factor, n)
    frames = torch.cat([prefix, rest], dim=1)
    dns_seconds = sec_prefix + sec_rest
    console.print(
        f"DNS {dns}^2: warm-up {seconds:.0f} s, {frames.shape[1]} coarse frames in "
        f"{dns_seconds:.0f} s"
    )
    train_data, test_data = frames[: cfg["train"]], frames[cfg["train"] :]
    start_fine = start_fine[cfg["train"] :]
    start_frame = PREFIX - 1  # the common initial frame after the TSM prefix
    truth = test_data[:, start_frame + 1 : start_frame + 1 + horizon_steps]

    # 2. Coarse solvers and DNS baselines from the same start.
    rows: list[tuple[str, torch.Tensor, float]] = []
    for name, interpolation in [
        ("coarse, linear", LinearInterpolation()),
        ("coarse, van Leer on linear", LinearVanLeerInterpolation()),
        ("coarse, van Leer", VanLeerInterpolation()),
    ]:
        solver = FiniteVolumeNS2D(
            n,
            viscosity=VISCOSITY,
            forcing=KolmogorovForcing(),
            interpolation=interpolation,
        )
        pred, sec, _ = run_solver(
            solver, test_data[:, start_frame], horizon_steps, 1, n
        )
        rows.append((name, pred, sec))
    for mult in (2, 4):
        m = n * mult
        solver = FiniteVolumeNS2D(m, viscosity=VISCOSITY, forcing=KolmogorovForcing())
        pred, sec, _ = run_solver(
            solver, downsample_staggered(start_fine, m), horizon_steps, mult, n
        )
        rows.append((f"DNS {m}^2 ({mult}x)", pred, sec))

    # 3. LI and TSM: same CNN, optimiser, updates.
    train_seconds = {}
    for name, tsm in [("LI", False), ("TSM", True)]:
        task = make_task(cfg, tsm)
        train_seconds[name] = train(task, train_data, cfg)
        task.eval()
        first = start_frame + 1 - task.hparams.time_history
        history = test_data[:, first : start_frame + 1]
        start = time.perf_counter()
        with torch.no_grad():
            pred = task(history, horizon_steps)
        rows.append((name, pred, time.perf_counter() - start))

    table = Table(title=f"Kolmogorov flow {n}^2 from a {dns}^2 DNS ({scale} scale)")
    for column in ("method", "HC duration", "corr @ 1", "corr @ end", "s / time unit"):
        table.add_column(column)
    durations = {}
    for name, pred, sec in rows:
        corr = metrics.vorticity_correlation(pred.double(), truth.double())
        finite = torch.isfinite(corr)
        corr = torch.where(finite, corr, torch.zeros_like(corr))
        duration = float(
            metrics.highly_correlated_duration(corr, dt, THRESHOLD, cfg["horizon"])
        )
        durations[name] = duration
        mean = corr.mean(0)
        one = min(len(mean) - 1, round(1.0 / dt) - 1)
        table.add_row(
            name,
            f"{duration:.3f}",
            f"{mean[one]:.3f}",
            f"{mean[-1]:.3f}",
            f"{sec / cfg['horizon']:.3f}",
        )
    console.print(table)
    li, tsm = durations["LI"], durations["TSM"]
    gain = (tsm / li - 1) * 100 if li > 0 else math.nan
    console.print(
        f"TSM vs LI highly correlated duration: {gain:+.1f}% (paper +19.9%, target "
        f">= +15%); training wall time LI {train_seconds['LI']:.0f} s, TSM "
        f"{train_seconds['TSM']:.0f} s for {cfg['updates']} updates each."
    )


if __name__ == "__main__":
    main()
