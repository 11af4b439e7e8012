"""SineNet's claim at CPU scale: more waves at a fixed budget, versus U-Net and FNO.

Run: ``python scripts/bench/bench_sinenet.py`` on physim's ns2d data (generate it with
``python scripts/generate.py data=ns2d``; ``PHYSIM_DATA_DIR`` points elsewhere, as for
training). Sizes are environment variables, because the defaults must fit a shared
2-core machine: ``PHYSIM_BENCH_POINTS`` (grid, default 32), ``PHYSIM_BENCH_TRAIN`` /
``PHYSIM_BENCH_TEST`` (trajectories, 32 / 16), ``PHYSIM_BENCH_EPOCHS`` (8),
``PHYSIM_BENCH_HIDDEN`` (SineNet's finest width, which sets the budget; 8),
``PHYSIM_BENCH_THREADS`` (torch threads; default torch's choice) and
``PHYSIM_BENCH_DEVICE`` (``cuda`` to train on a GPU) and ``PHYSIM_BENCH_DATA``
(``ns2d``, default, or ``ks1d``).

With ``PHYSIM_BENCH_DATA=ks1d`` (data from ``python scripts/generate.py data=ks1d``)
the same comparison runs in 1-D as ``conf/experiment/ks1d_sinenet.yaml`` sets it up:
256 points, one frame in, the frame 4 stored frames later out (windows from every
start frame), every backbone conditioned on the per-trajectory ``domain_extent`` and
``frame_interval`` (SineNet and U-Net: scale-shift embedding; FNO: constant input
channels), FNO with 64 modes (32 per sign); the rollout runs from the first frame over
every 4th stored frame (79 model steps). ``delta_std`` is that of the 4-frame step.

The experiment of Zhang et al. (ICLR 2024, tables 1 and 5) on physim's ns2d data
(vorticity, nu = 1e-3, 64^2 stored), made small enough for a CPU:

- data: the first ``PHYSIM_BENCH_TRAIN`` training and ``PHYSIM_BENCH_TEST`` test
  trajectories, spectrally resampled to ``PHYSIM_BENCH_POINTS``^2; 10 frames in, 1
  out; every window of the training trajectories is a training sample (40 per
  trajectory and epoch);
- models at one budget, that of SineNet-8 with ``PHYSIM_BENCH_HIDDEN`` channels at the
  finest of 3 levels (mult 1.425, the paper's): SineNet with K = 8, 4, 2 waves
  (``mult`` found by bisection, `physim.models.mult_for_budget`), the modern U-Net
  (3 levels, two blocks per level; the width h and multipliers, from a few
  choices such as h-2h-2h, with the closest count) and FNO (16
  modes, i.e. 8 per sign, 4 layers, width chosen for the closest count); circular
  padding throughout;
- training: identical for every model: `AutoregressiveSurrogate` (normalised
  inputs, residual target, MSE loss), AdamW lr 1e-3, weight decay 1e-5, one-cycle
  schedule, batch 32, the same seed and batch order;
- reported: parameters, training seconds per epoch (median over epochs), one-step
  relative L2 over all test windows, and the rollout relative L2 from the first 10
  frames over the remaining 40, averaged over steps and trajectories; then the two
  claims as ratios from the same run.

Deviations from the paper, for CPU size: 3 levels instead of 4, a far smaller budget,
MSE on the residual target instead of relative L2 on the frame, a few epochs instead
of 50, vorticity at 32^2 instead of the PDEArena velocity/density data at 128^2.

Claims tested: SineNet-8 beats the equal-size U-Net in rollout error; error falls as
K rises at fixed parameters.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from physim.data import TrajectoryFile
from physim.models import FNO, SineNet, UNet, mult_for_budget, sinenet_parameter_count
from physim.rollout import metrics
from physim.solvers import spectral_resample
from physim.tasks import AutoregressiveSurrogate

ROOT = Path(__file__).resolve().parents[2]
# Per data set: frames in, stored frames per model step, conditioning parameters,
# default grid and FNO modes per dimension (both signs counted).
DATASETS = {
    "ns2d": dict(time_history=10, stride=1, conditioning=(), points=32, modes=16),
    "ks1d": dict(
        time_history=1,
        stride=4,
        conditioning=("domain_extent", "frame_interval"),
        points=256,
        modes=64,
    ),
}
DATASET = os.environ.get("PHYSIM_BENCH_DATA", "ns2d")
if DATASET not in DATASETS:
    raise SystemExit(
        f"PHYSIM_BENCH_DATA={DATASET!r}; valid values: {', '.join(DATASETS)}."
    )
SPEC = DATASETS[DATASET]
DATA = Path(os.environ.get("PHYSIM_DATA_DIR", ROOT / "data")) / DATASET
POINTS = int(os.environ.get("PHYSIM_BENCH_POINTS", str(SPEC["points"])))
NUM_TRAIN = int(os.environ.get("PHYSIM_BENCH_TRAIN", "32"))
NUM_TEST = int(os.environ.get("PHYSIM_BENCH_TEST", "16"))
TIME_HISTORY = SPEC["time_history"]
STRIDE = SPEC["stride"]
CONDITIONING = SPEC["conditioning"]
BATCH = 32
UNET_MULTIPLIERS = ((1, 2, 2), (1, 2, 3), (1, 2, 4), (1, 1, 2), (1, 3, 3))
LR = 1e-3
SEED = 0
SINENET = dict(
    hidden_channels=int(os.environ.get("PHYSIM_BENCH_HIDDEN", "8")),
    num_levels=3,
    padding_mode="circular",
)
if CONDITIONING:  # as in conf/experiment/ks1d_sinenet.yaml
    SINENET.update(cond_dim=len(CONDITIONING), cond_mode="scale_shift")


def load(split: str, count: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first ``count`` trajectories of a split, resampled: ``[N, T, C, *S]``,
    and their conditioning parameters ``[N, P]`` (``P = 0`` without conditioning)."""
    path = DATA / f"{split}.h5"
    if not path.exists():
        raise SystemExit(
            f"{path} is missing; generate it with "
            f"`python scripts/generate.py data={DATASET}`."
        )
    with TrajectoryFile(path) as file:
        frames = torch.from_numpy(np.stack([file.read(i) for i in range(count)]))
        values = file.sample_parameters
    params = torch.tensor(
        np.stack([values[name][:count] for name in CONDITIONING], axis=-1)
        if CONDITIONING
        else np.zeros((count, 0))
    )
    resampled = spectral_resample(frames.flatten(0, 1).float(), POINTS)
    return resampled.unflatten(0, frames.shape[:2]).to(device), params.to(device)


def windows(trajectories: Tensor, params: Tensor) -> dict[str, Tensor]:
    """Every window of ``TIME_HISTORY`` frames and the next, ``STRIDE`` stored frames
    apart, from every start frame, with its trajectory's parameters."""
    span = TIME_HISTORY * STRIDE
    starts = torch.arange(trajectories.shape[1] - span, device=trajectories.device)
    index = starts[:, None] + STRIDE * torch.arange(TIME_HISTORY + 1).to(starts)
    frames = trajectories[:, index].flatten(0, 1)  # N*W T C *S
    return {
        "history": frames[:, :TIME_HISTORY],
        "future": frames[:, TIME_HISTORY:],
        "params": params.repeat_interleave(len(starts), dim=0),
    }


def statistics_of(trajectories: Tensor, params: Tensor) -> dict:
    """Per-channel mean, std and model-step-difference std, and the conditioning
    parameters' moments, as the data module's."""
    dims = (0, 1, *range(3, trajectories.ndim))
    delta = trajectories[:, STRIDE:] - trajectories[:, :-STRIDE]
    return {
        "mean": trajectories.mean(dims),
        "std": trajectories.std(dims),
        "delta_std": delta.std(dims),
        "parameters": {
            name: {"mean": column.mean().item(), "std": column.std().item()}
            for name, column in zip(CONDITIONING, params.double().T, strict=True)
        },
    }


def num_parameters(build) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def closest_width(build, budget: int, widths: range) -> int:
    """The width whose ``build(width)`` has the parameter count nearest ``budget``."""
    return min(widths, key=lambda w: abs(num_parameters(partial(build, w)) - budget))


def models(channels: int, spatial_dims: int) -> dict[str, partial]:
    """Constructors of every compared backbone, all at SineNet-8's parameter count."""
    io = dict(in_channels=TIME_HISTORY * channels, out_channels=channels)
    cond = dict(cond_dim=len(CONDITIONING)) if CONDITIONING else {}
    SINENET["spatial_dims"] = spatial_dims
    budget = sinenet_parameter_count(num_waves=8, mult=1.425, **io, **SINENET)
    builds = {
        f"SineNet-{k}": partial(
            SineNet,
            **io,
            **SINENET,
            num_waves=k,
            mult=1.425
            if k == 8
            else mult_for_budget(budget, num_waves=k, **io, **SINENET),
        )
        for k in (8, 4, 2)
    }

    def unet(width: int, multipliers: tuple[int, ...] = (1, 2, 2)) -> UNet:
        return UNet(
            **io,
            spatial_dims=spatial_dims,
            padding_mode="circular",
            hidden_channels=width,
            channel_multipliers=multipliers,
            num_blocks=2,
            **({"cond_mode": "scale_shift", **cond} if cond else {}),
        )

    def fno(width: int) -> FNO:
        return FNO(
            n_modes=(SPEC["modes"],) * spatial_dims,
            hidden_channels=width,
            n_layers=4,
            use_channel_mlp=False,
            **io,
            **cond,
        )

    # U-Net: 3 levels with two blocks each; the integer width and the multipliers
    # (from a few 3-level choices) whose count is closest to the budget.
    unets = [
        partial(unet, width, multipliers)
        for multipliers in UNET_MULTIPLIERS
        for width in range(2, 48)
    ]
    builds["U-Net"] = min(unets, key=lambda b: abs(num_parameters(b) - budget))
    builds["FNO"] = partial(fno, closest_width(fno, budget, range(2, 64)))
    return builds


def train_and_evaluate(
    build: partial,
    train: dict[str, Tensor],
    test: Tensor,
    test_params: Tensor,
    stats: dict[str, Tensor],
    epochs: int,
    progress: Progress,
    name: str,
) -> dict[str, float]:
    torch.manual_seed(SEED)
    device = test.device
    task = AutoregressiveSurrogate(
        build(),
        optimizer=torch.optim.AdamW,
        num_channels=test.shape[2],
        time_history=TIME_HISTORY,
        conditioning=CONDITIONING,
    ).to(device)
    task.set_statistics(stats)
    task.set_parameter_names(CONDITIONING)
    params = test_params if CONDITIONING else None
    steps = len(train["history"]) // BATCH
    optimizer = torch.optim.AdamW(task.parameters(), lr=LR, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LR, total_steps=epochs * steps, pct_start=0.1
    )
    order = torch.Generator().manual_seed(SEED)
    bar = progress.add_task(name, total=epochs * steps)
    epoch_seconds = []
    task.train()
    for _ in range(epochs):
        start = time.perf_counter()
        permutation = torch.randperm(len(train["history"]), generator=order)
        for step in range(steps):
            index = permutation[step * BATCH : (step + 1) * BATCH].to(device)
            batch = {key: value[index] for key, value in train.items()}
            loss = task.model_step(batch)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            progress.advance(bar)
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - start)
    task.eval()
    with torch.no_grad():
        pairs = windows(test, test_params)
        one_step = torch.cat(
            [
                metrics.relative_l2(
                    task.predict_next(
                        pairs["history"][i : i + BATCH],
                        pairs["params"][i : i + BATCH] if CONDITIONING else None,
                    ),
                    pairs["future"][i : i + BATCH],
                )
                for i in range(0, len(pairs["history"]), BATCH)
            ]
        )
        model_steps = test[:, ::STRIDE]  # from the first frame, one model step apart
        pred, first_nonfinite = task.rollout(model_steps, params)
    rollout = metrics.relative_l2(pred, model_steps[:, TIME_HISTORY:]).mean(dim=1)
    return {
        "params": sum(p.numel() for p in task.net.parameters()),
        "s_per_epoch": statistics.median(epoch_seconds),
        "one_step": one_step.mean().item(),
        "rollout": rollout.mean().item(),
        "nonfinite": int((first_nonfinite >= 0).sum()),
    }


def main() -> None:
    if "PHYSIM_BENCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["PHYSIM_BENCH_THREADS"]))
    device = torch.device(os.environ.get("PHYSIM_BENCH_DEVICE", "cpu"))
    epochs = int(os.environ.get("PHYSIM_BENCH_EPOCHS", "8"))
    train_trajectories, train_params = load("train", NUM_TRAIN, device)
    test, test_params = load("test", NUM_TEST, device)
    train = windows(train_trajectories, train_params)
    stats = statistics_of(train_trajectories, train_params)
    builds = models(test.shape[2], test.ndim - 3)
    rollout_steps = len(range(0, test.shape[1], STRIDE)) - TIME_HISTORY
    print(
        f"{DATASET} at {POINTS}^{test.ndim - 3}: {len(train['history'])} training "
        f"windows, {NUM_TEST} test trajectories ({rollout_steps} rollout steps), "
        f"{epochs} epochs of batch {BATCH}; {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or 'cpu'}\n"
    )
    header = (
        "| model | params | s/epoch | one-step rel L2 | rollout rel L2 | non-finite |"
    )
    rows = [header, "|---|---|---|---|---|---|"]
    results = {}
    with Progress() as progress:
        for name, build in builds.items():
            row = train_and_evaluate(
                build, train, test, test_params, stats, epochs, progress, name
            )
            results[name] = row
            rows.append(
                f"| {name} | {row['params']:,} | {row['s_per_epoch']:.1f} | "
                f"{row['one_step']:.4f} | {row['rollout']:.4f} | {row['nonfinite']} |"
            )
            progress.console.print(rows[-1])
    print("\n".join(rows))
    for name, build in builds.items():
        settings = (
            {**build.keywords, "args": build.args} if build.args else build.keywords
        )
        print(f"{name}: {settings}")
    rollout = {name: row["rollout"] for name, row in results.items()}
    versus_unet = rollout["SineNet-8"] / rollout["U-Net"]
    print(
        f"\nSineNet-8 / U-Net rollout error: {versus_unet:.3f} (claim: < 1); "
        "SineNet-2 : SineNet-4 : SineNet-8 = 1 : "
        f"{rollout['SineNet-4'] / rollout['SineNet-2']:.3f} : "
        f"{rollout['SineNet-8'] / rollout['SineNet-2']:.3f} (claim: falling)"
    )


if __name__ == "__main__":
    main()
