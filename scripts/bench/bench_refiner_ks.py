"""PDE-Refiner versus the same U-Net trained with plain MSE, on Kuramoto-Sivashinsky.

Run (every run is resumable: a finished (model, seed) run is skipped)::

    python scripts/bench/bench_refiner_ks.py               # train + evaluate, aggregate
    python scripts/bench/bench_refiner_ks.py --diagnose    # diagnostics, saved weights
    python scripts/bench/bench_refiner_ks.py --aggregate   # tables from saved summaries
    python scripts/bench/bench_refiner_ks.py --only refiner 0    # one run

Models (``PHYSIM_BENCH_MODELS``, comma-separated; default ``mse,refiner``), all from
the ``ks1d_refiner`` experiment (1-D U-Net, widths 32-64-128, PDEArena's fixed-phase
down-sampling, zero-initialised last convolutions and 8 output groups, conditioned on
the domain length and frame interval; Adam with a one-cycle schedule, EMA decay
0.995, target ``(y - x) / 0.3``):

- ``mse``: ``num_refinement_steps=0``, exactly the one-step MSE surrogate with the
  same backbone, data, batch order, optimiser and weight average;
- ``refiner``: PDE-Refiner as in the paper (K = 3, uniform training levels);
- ``refiner_weighted``: the CPU-scale recipe ``ks1d_refiner_weighted`` (a deviation
  from the paper: the k = K level drawn half of the time);
- ``mse_legacy`` / ``refiner_legacy``: the backbone before issue 22 (adaptive
  polyphase down-sampling, torch's initialisation, 1 output group), for ablations.

Seeds: ``PHYSIM_BENCH_SEEDS`` (default ``0,1,2``); a seed sets the initialisation,
the batch order and the noise. ``PHYSIM_BENCH_PARALLEL=1`` (default) trains the models
of one seed at the same time, one process each (both see the same machine load).

Sizes (environment variables; the defaults fit a shared 2-core machine):
``PHYSIM_BENCH_ROOT`` (dataset folder, default ``<data dir>/ks1d_bench_long``: the
ks1d generator with ``PHYSIM_BENCH_TRAIN`` / ``PHYSIM_BENCH_TEST`` training / test
trajectories, default 256 / 32, 320 training and **640 test frames**, so rollouts run
159 model steps, ~127 time units, and correlation times are not censored at ~63 as
before), ``PHYSIM_BENCH_EPOCHS`` (default 16) x ``PHYSIM_BENCH_STEPS`` (optimiser steps
per epoch, 250), ``PHYSIM_BENCH_BATCH`` (64), ``PHYSIM_BENCH_HIDDEN`` (32),
``PHYSIM_BENCH_THREADS`` (torch threads per process, 1), ``PHYSIM_BENCH_SAMPLES``
(refiner samples per test trajectory, 4), ``PHYSIM_BENCH_OUT`` (default
``outputs/bench_refiner``).

Each run writes ``<out>/<model>/seed<k>/``: ``weights.pt`` (the EMA ``state_dict``,
as soon as training ends), ``summary.json`` and ``curves.png`` (correlation with the
truth over time; one-step error spectra). ``<out>/results.json`` aggregates.

Reported per run, over the test trajectories: the high-correlation time (Pearson
correlation with the truth >= 0.8, leading steps, physical time units) per trajectory
(mean over samples), its mean, and that of the mean correlation curve; how many are
censored (still correlated at the last step); rollout MSE at selected steps; and, for
refiners, the uncertainty estimate (the time the samples' mutual correlation drops
below 0.8) against the true time, as a Pearson correlation over all and over the
uncensored trajectories. Aggregated: the refiner / MSE ratio of the mean time per
seed (with a bootstrap interval over trajectories), and over seeds (mean, t interval).

Diagnostics (every refiner run; ``--diagnose`` recomputes them from saved weights):

- one-step error power by wavenumber band (`BANDS`), on windows from every test
  trajectory, of: the MSE model; the refiner's ``k = K`` call alone; the refiner
  after refinement; the MSE model's prediction refined by the refiner (its levels
  ``K - 1..0``, `PDERefiner.refine`); the true next frame refined (the error the
  refinement levels add by themselves);
- the ``k = K`` call's variance over noise draws, by band (a deterministic model
  would have none);
- per-level shares of the gradient's second moment (what Adam divides by) and the
  part of each that is signal (squared mean over minibatches), at the saved weights,
  with each level weighted as in a training batch.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch import Tensor
from torch.utils.data import DataLoader

import physim.cli  # noqa: F401  (registers the config resolvers)
from physim.rollout import (
    estimated_correlation_time,
    metrics,
    sample_rollouts,
    sample_spread,
    time_estimate_correlation,
)
from physim.tasks import PDERefiner

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("PHYSIM_DATA_DIR", ROOT / "data"))
BENCH_ROOT = Path(os.environ.get("PHYSIM_BENCH_ROOT", DATA_DIR / "ks1d_bench_long"))
NUM_TRAIN = int(os.environ.get("PHYSIM_BENCH_TRAIN", "256"))
NUM_TEST = int(os.environ.get("PHYSIM_BENCH_TEST", "32"))
TEST_FRAMES = 640  # at least the reference's 640 (159 model steps of 4 frames)
EPOCHS = int(os.environ.get("PHYSIM_BENCH_EPOCHS", "16"))
STEPS = int(os.environ.get("PHYSIM_BENCH_STEPS", "250"))
HIDDEN = int(os.environ.get("PHYSIM_BENCH_HIDDEN", "32"))
BATCH = int(os.environ.get("PHYSIM_BENCH_BATCH", "64"))
SAMPLES = int(os.environ.get("PHYSIM_BENCH_SAMPLES", "4"))
OUT = Path(os.environ.get("PHYSIM_BENCH_OUT", ROOT / "outputs" / "bench_refiner"))
MODELS = os.environ.get("PHYSIM_BENCH_MODELS", "mse,refiner").split(",")
SEEDS = [int(s) for s in os.environ.get("PHYSIM_BENCH_SEEDS", "0,1,2").split(",")]
THRESHOLD = 0.8
REPORT_STEPS = (1, 5, 10, 20, 40, 79, 159)
#: Wavenumber index bands (of 129 for 256 points): below 24 holds ~all the power.
BANDS = ((0, 8), (8, 24), (24, 64), (64, 129))
DIAG_STARTS = 10  # one-step windows per test trajectory, evenly spread
DIAG_DRAWS = 8  # noise draws for the k = K call's variance
DIAG_GRAD_BATCHES = 8  # minibatches per level for the gradient shares

_LEGACY = [
    "model.net.downsample_phase=adaptive",
    "model.net.weight_init=default",
    "model.net.out_norm_groups=null",
]
_MSE = [
    "model.num_refinement_steps=0",
    "model.net.in_channels=1",
    "model.net.cond_dim=2",
]
#: Per model: the experiment and its overrides.
RUNS: dict[str, tuple[str, list[str]]] = {
    "mse": ("ks1d_refiner", _MSE),
    "refiner": ("ks1d_refiner", []),
    "refiner_weighted": ("ks1d_refiner_weighted", []),
    "mse_legacy": ("ks1d_refiner", _MSE + _LEGACY),
    "refiner_legacy": ("ks1d_refiner", _LEGACY),
}


# ---------------------------------------------------------------------- set-up
def compose_config(label: str, seed: int = 0) -> DictConfig:
    """The run's experiment with the bench's sizes."""
    experiment, overrides = RUNS[label]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"+experiment={experiment}", *overrides])
    with open_dict(cfg):
        cfg.seed = seed
        cfg.data.root = str(BENCH_ROOT)
        cfg.data.generator.num_trajectories = {
            "train": NUM_TRAIN,
            "valid": 16,
            "test": NUM_TEST,
        }
        cfg.data.generator.num_frames = {
            "train": 320,
            "valid": 320,
            "test": TEST_FRAMES,
        }
        # An existing larger dataset is truncated to the same sizes.
        cfg.data.max_trajectories = {"train": NUM_TRAIN, "test": NUM_TEST}
        cfg.model.net.hidden_channels = HIDDEN
        cfg.data.batch_size = BATCH
        cfg.model.uncertainty_samples = 0  # sampled here, below
    return cfg


def run_dir(label: str, seed: int) -> Path:
    return OUT / label / f"seed{seed}"


def load_data(cfg: DictConfig) -> Any:
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    frames = datamodule.files["test"].num_frames
    if frames < TEST_FRAMES:
        raise SystemExit(
            f"bench_refiner_ks: {BENCH_ROOT}/test.h5 has {frames} frames per "
            f"trajectory, fewer than {TEST_FRAMES} (correlation times would be "
            "censored); point PHYSIM_BENCH_ROOT at a new folder."
        )
    return datamodule


def load_run(label: str, seed: int, datamodule: Any) -> PDERefiner:
    """A saved run's task with its EMA weights."""
    task: PDERefiner = instantiate(compose_config(label, seed).model)
    task.set_parameter_names(datamodule.parameter_names)
    state = torch.load(run_dir(label, seed) / "weights.pt", weights_only=True)
    task.load_state_dict(state)
    return task.eval()


class Progress(pl.Callback):
    """A plain line every ``every`` optimiser steps (for logs of long runs)."""

    def __init__(self, label: str, every: int = 250) -> None:
        self.label, self.every, self.start = label, every, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step % self.every == 0:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            print(
                f"{self.label}: step {step}/{trainer.estimated_stepping_batches}, "
                f"loss {float(loss):.3e}, {time.perf_counter() - self.start:.0f} s",
                flush=True,
            )


def train(label: str, seed: int) -> tuple[PDERefiner, Any, dict[str, float]]:
    """Fit one model (EMA weights at the end) and save its weights."""
    cfg = compose_config(label, seed)
    pl.seed_everything(seed, workers=True)
    datamodule = load_data(cfg)
    task: PDERefiner = instantiate(cfg.model)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=EPOCHS,
        limit_train_batches=STEPS,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir(label, seed),
        callbacks=[Progress(f"{label} seed {seed}")],
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(task, datamodule=datamodule)
    timing = {
        "train_seconds": time.perf_counter() - wall,
        "train_cpu_seconds": time.process_time() - cpu,
        "steps": trainer.global_step,
    }
    run_dir(label, seed).mkdir(parents=True, exist_ok=True)
    torch.save(task.state_dict(), run_dir(label, seed) / "weights.pt")
    print(f"{label} seed {seed}: {timing}", flush=True)
    return task.eval(), datamodule, timing


# ---------------------------------------------------------------------- rollouts
@torch.inference_mode()
def evaluate(
    task: PDERefiner, datamodule: Any, seed: int, conserve_mean: bool = False
) -> dict[str, Tensor]:
    """Rollouts of every test trajectory: ``pred [S, N, T, C, X]``, truth, step dt.

    ``conserve_mean`` (a diagnostic, part of neither model): every predicted frame
    is shifted to the spatial mean of the frame before it, as KS conserves it.
    """
    dataset = datamodule.rollout_dataset("test")
    column = list(datamodule.parameter_names).index("frame_interval")
    refiner = bool(task.hparams.num_refinement_steps)
    samples = SAMPLES if refiner and SAMPLES > 1 else 1
    t_in = task.hparams.time_history
    generator = torch.Generator().manual_seed(seed)
    preds, truths, dts = [], [], []
    for batch in DataLoader(dataset, batch_size=16):
        trajectory, params = batch["trajectory"], batch["params"]
        repeated = params.repeat(samples, 1)

        def step(window: Tensor, repeated: Tensor = repeated) -> Tensor:
            pred = task.predict_next(window, repeated, generator)
            if conserve_mean:
                pred = pred - pred.mean(-1, keepdim=True)
                pred = pred + window[:, -1:].mean(-1, keepdim=True)
            return pred

        initial, steps = trajectory[:, :t_in], trajectory.shape[1] - t_in
        preds.append(sample_rollouts(step, initial, steps, samples).pred)
        truths.append(trajectory[:, task.hparams.time_history :])
        dts.append(params[:, column] * datamodule.time_stride)
    return {
        "pred": torch.cat(preds, dim=1).double(),
        "truth": torch.cat(truths).double(),
        "dt": torch.cat(dts).double(),
    }


def summarise(result: dict[str, Tensor]) -> dict[str, Any]:
    """Correlation times (time units), censoring, MSE per step, uncertainty."""
    pred, truth, dt = result["pred"], result["truth"], result["dt"]
    steps = truth.shape[1]
    corr = torch.stack([metrics.pearson_correlation(p, truth) for p in pred])
    counts = metrics.correlation_time(corr.flatten(0, 1), THRESHOLD, 1.0)
    counts = counts.view(corr.shape[:2])  # [S, N] leading steps above threshold
    per_trajectory = (counts * dt).mean(dim=0)
    censored = (counts == steps).any(dim=0)
    batch_time = metrics.batch_correlation_time(corr[0], THRESHOLD, 1.0) * dt.mean()
    mse = metrics.mse(pred[0], truth).mean(dim=0)
    # KS conserves the spatial mean and is Galilean invariant: an error in the mean
    # makes the pattern drift. RMS over samples and trajectories, per step.
    offset = (pred.mean(dim=(-2, -1)) - truth.mean(dim=(-2, -1))).square()
    offset = offset.mean(dim=(0, 1)).sqrt()
    out: dict[str, Any] = {
        "rollout_steps": steps,
        "horizon_time_units": float(steps * dt.mean()),
        "corr_time_mean": float(per_trajectory.mean()),
        "corr_time_std": float(per_trajectory.std()),
        "corr_time_batch_mean_curve": float(batch_time),
        "censored_trajectories": int(censored.sum()),
        "corr_time_per_trajectory": per_trajectory.tolist(),
        "mean_correlation_curve": corr.mean(dim=(0, 1)).tolist(),
        "mean_dt": float(dt.mean()),
        "mse_at_steps": {str(s): float(mse[s - 1]) for s in REPORT_STEPS if s <= steps},
        "mean_offset_rms_at_steps": {
            str(s): float(offset[s - 1]) for s in REPORT_STEPS if s <= steps
        },
    }
    if pred.shape[0] >= 2:
        estimated = estimated_correlation_time(pred, THRESHOLD, dt)
        uncensored = ~censored & (estimated < steps * dt)
        out["uncertainty"] = {
            "estimated_time_mean": float(estimated.mean()),
            "estimated_time_per_trajectory": estimated.tolist(),
            "estimate_vs_true_r": float(
                time_estimate_correlation(estimated, per_trajectory)
            ),
            "uncensored_trajectories": int(uncensored.sum()),
            "estimate_vs_true_r_uncensored": (
                float(
                    time_estimate_correlation(
                        estimated[uncensored], per_trajectory[uncensored]
                    )
                )
                if uncensored.sum() >= 3
                else None
            ),
            "spread_at_steps": {
                str(s): float(sample_spread(pred)[:, s - 1].mean())
                for s in REPORT_STEPS
                if s <= steps
            },
        }
    return out


# ---------------------------------------------------------------------- diagnostics
def band_errors(
    pred: Tensor, truth: Tensor, bands: tuple[tuple[int, int], ...] = BANDS
) -> list[float]:
    """Mean over windows of the error power summed over each wavenumber band.

    ``pred`` and ``truth`` are ``[B, T, C, X]``; the power spectrum is
    `physim.rollout.metrics.error_spectrum` (Parseval-normalised: the bands of all
    wavenumbers add up to the mean square error; a sine of amplitude ``a`` at
    wavenumber ``k`` has power ``a^2 / 2`` at ``k``).
    """
    spectrum = metrics.error_spectrum(pred.double(), truth.double()).mean(dim=(0, 1))
    return [float(spectrum[a:b].sum()) for a, b in bands]


def band_power(fields: Tensor, bands: tuple[tuple[int, int], ...] = BANDS) -> list:
    """`band_errors` of ``fields`` against zero: their power by band."""
    return band_errors(fields, torch.zeros_like(fields), bands)


def diagnostic_windows(datamodule: Any, starts: int = DIAG_STARTS) -> dict[str, Tensor]:
    """One-step windows from every test trajectory, ``starts`` per trajectory."""
    trajectories, params = [], []
    for batch in DataLoader(datamodule.rollout_dataset("test"), batch_size=64):
        trajectories.append(batch["trajectory"])
        params.append(batch["params"])
    trajectory, param = torch.cat(trajectories), torch.cat(params)
    frames = trajectory.shape[1]
    index = torch.linspace(0, frames - 2, starts).round().long()
    return {
        "history": trajectory[:, index].flatten(0, 1)[:, None],
        "future": trajectory[:, index + 1].flatten(0, 1)[:, None],
        "params": param.repeat_interleave(starts, dim=0),
    }


@torch.inference_mode()
def one_step_diagnostics(
    refiner: PDERefiner,
    windows: dict[str, Tensor],
    mse: PDERefiner | None = None,
    seed: int = 0,
    draws: int = DIAG_DRAWS,
    chunk: int = 64,
) -> dict[str, Any]:
    """One-step error by band of the k = K call, after refinement, the MSE model, the
    MSE prediction refined and the truth refined (what the refinement levels add to
    a perfect estimate); the k = K call's variance over noise draws."""
    generator = torch.Generator().manual_seed(seed)
    history, future, params = windows["history"], windows["future"], windows["params"]
    parts: dict[str, list[Tensor]] = {"k_top": [], "refined": [], "truth_refined": []}
    if mse is not None:
        parts.update(mse=[], mse_refined=[])
    variances = []
    for i in range(0, len(history), chunk):
        h = history[i : i + chunk]
        p = None if params is None else params[i : i + chunk]
        first = refiner.first_estimate(h, p, generator)
        parts["k_top"].append(first)
        parts["refined"].append(refiner.refine(h, first, p, generator))
        # The error the refinement levels add to a perfect estimate.
        f = future[i : i + chunk]
        parts["truth_refined"].append(refiner.refine(h, f, p, generator))
        if mse is not None:
            mse_pred = mse.predict_next(h, p)
            parts["mse"].append(mse_pred)
            parts["mse_refined"].append(refiner.refine(h, mse_pred, p, generator))
        if draws >= 2:
            samples = torch.stack(
                [refiner.first_estimate(h, p, generator) for _ in range(draws)]
            )
            # Power by band of each draw's deviation from the draws' mean, with the
            # unbiased (draws - 1) normalisation: the variance over noise draws.
            deviation = (samples - samples.mean(dim=0)).flatten(0, 1)
            scale = draws / (draws - 1)
            variances.append(
                torch.tensor(band_power(deviation)) * scale * len(h) / len(history)
            )
    out: dict[str, Any] = {
        "windows": len(history),
        "bands": [list(b) for b in BANDS],
        "truth_step_power": band_power(future - history[:, -1:]),
        "band_errors": {
            name: band_errors(torch.cat(values), future)
            for name, values in parts.items()
        },
        "spectra": {
            name: metrics.error_spectrum(torch.cat(values).double(), future.double())
            .mean(dim=(0, 1))
            .tolist()
            for name, values in parts.items()
        },
    }
    out["one_step_mse"] = {
        name: float(sum(values)) for name, values in out["band_errors"].items()
    }
    # Wavenumber 0 (the spatial mean, conserved by KS) on its own.
    out["mean_mode_error"] = {
        name: values[0] for name, values in out["spectra"].items()
    }
    if variances:
        variance = torch.stack(variances).sum(dim=0)
        out["k_top_noise_variance"] = variance.tolist()
        out["k_top_noise_variance_total"] = float(variance.sum())
    return out


def gradient_shares(
    refiner: PDERefiner,
    datamodule: Any,
    seed: int = 0,
    batches: int = DIAG_GRAD_BATCHES,
    batch_size: int = BATCH,
) -> dict[str, Any]:
    """Per level: share of the gradient's second moment and its signal part.

    For level ``k`` with training probability ``p_k``, ``batches`` minibatches of
    ``round(p_k batch_size)`` training windows (the level's expected count in a
    training batch), all at level ``k``; ``g = p_k grad(mean loss)`` is the level's
    part of a training batch's gradient. Reported: per level, the share of the summed
    (over parameters) second moment ``E[g^2]`` (what Adam's denominator tracks; the
    levels' noise is independent, so the second moments add), the mean of the
    per-parameter shares, the signal fraction ``|E[g]|^2 / E[g^2]`` (bias-corrected
    for the finite number of minibatches), and the level's mean loss.
    """
    k_max = refiner.hparams.num_refinement_steps
    probabilities = refiner.hparams.get("level_probabilities") or [1 / (k_max + 1)] * (
        k_max + 1
    )
    dataset = datamodule.window_dataset("train")
    generator = torch.Generator().manual_seed(seed)
    parameters = [p for p in refiner.net.parameters() if p.requires_grad]
    second, signal, losses = [], [], []
    for k, probability in enumerate(probabilities):
        size = max(1, round(probability * batch_size))
        grads, level_losses = [], []
        for _ in range(batches):
            index = torch.randint(len(dataset), (size,), generator=generator)
            items = [dataset[int(i)] for i in index]
            batch = {key: torch.stack([it[key] for it in items]) for key in items[0]}
            levels = torch.full((size,), k)
            refiner.zero_grad()
            loss, _ = refiner.refinement_loss(
                batch["history"],
                batch["future"],
                batch.get("params"),
                levels=levels,
                generator=generator,
            )
            (probability * loss).backward()
            grads.append(torch.cat([p.grad.flatten() for p in parameters]).double())
            level_losses.append(loss.item())
        g = torch.stack(grads)
        moment = g.square().mean(dim=0)
        mean_sq = g.mean(dim=0).square() - g.var(dim=0) / batches  # unbiased |E g|^2
        second.append(moment)
        signal.append(float(mean_sq.sum() / moment.sum()))
        losses.append(sum(level_losses) / len(level_losses))
    refiner.zero_grad()
    total = torch.stack(second)
    per_parameter = total / total.sum(dim=0).clamp_min(1e-300)
    return {
        "level_probabilities": list(probabilities),
        "second_moment_share": (total.sum(dim=1) / total.sum()).tolist(),
        "per_parameter_share_mean": per_parameter.mean(dim=1).tolist(),
        "signal_fraction": signal,
        "level_loss": losses,
    }


def baseline_of(label: str, seed: int) -> str | None:
    """The MSE run a refiner run is compared with: ``mse_legacy`` for a legacy run
    when it exists, else ``mse``; ``None`` when neither has saved weights."""
    candidates = ["mse_legacy", "mse"] if label.endswith("_legacy") else ["mse"]
    for candidate in candidates:
        if (run_dir(candidate, seed) / "weights.pt").exists():
            return candidate
    return None


def diagnose(label: str, seed: int, datamodule: Any) -> dict[str, Any] | None:
    """The diagnostics of one saved refiner run (``None`` for an MSE model)."""
    refiner = load_run(label, seed, datamodule)
    if not refiner.hparams.num_refinement_steps:
        return None
    mse_label = baseline_of(label, seed)
    mse = None if mse_label is None else load_run(mse_label, seed, datamodule)
    start = time.perf_counter()
    out = one_step_diagnostics(refiner, diagnostic_windows(datamodule), mse, seed)
    out["gradients"] = gradient_shares(refiner, datamodule, seed)
    out["mse_model"] = mse_label if mse is not None else None
    out["seconds"] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------------- figures
def save_figure(label: str, seed: int, summary: dict[str, Any]) -> None:
    """``curves.png``: mean correlation over time; one-step error spectra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    curve = summary["mean_correlation_curve"]
    t = [(i + 1) * summary["mean_dt"] for i in range(len(curve))]
    axes[0].plot(t, curve, label=f"{label}, seed {seed}")
    axes[0].axhline(THRESHOLD, color="grey", lw=0.8, ls="--")
    axes[0].set(xlabel="time units", ylabel="mean correlation with the truth")
    axes[0].legend()
    diagnostics = summary.get("diagnostics")
    if diagnostics:
        for name, spectrum in diagnostics["spectra"].items():
            axes[1].semilogy(spectrum, label=name)
        axes[1].set(xlabel="wavenumber index", ylabel="one-step error power")
        axes[1].legend()
    else:
        axes[1].axis("off")
    fig.tight_layout()
    fig.savefig(run_dir(label, seed) / "curves.png", dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------- runs
def run_one(label: str, seed: int) -> dict[str, Any]:
    """Train (unless the weights exist), evaluate, diagnose; write the summary."""
    folder = run_dir(label, seed)
    timing: dict[str, float] = {}
    if (folder / "weights.pt").exists():
        datamodule = load_data(compose_config(label, seed))
        task = load_run(label, seed, datamodule)
        timing_file = folder / "timing.json"
        if timing_file.exists():
            timing = json.loads(timing_file.read_text())
    else:
        task, datamodule, timing = train(label, seed)
        (folder / "timing.json").write_text(json.dumps(timing))
    start = time.perf_counter()
    summary = summarise(evaluate(task, datamodule, seed))
    summary.update(timing)
    summary["eval_seconds"] = time.perf_counter() - start
    summary["parameters"] = sum(p.numel() for p in task.net.parameters())
    summary["diagnostics"] = diagnose(label, seed, datamodule)
    summary["mean_conserved"] = mean_conserved(task, datamodule, seed)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    save_figure(label, seed, summary)
    print(label, seed, json.dumps(brief(summary), indent=1), flush=True)
    return summary


def brief(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without its long lists."""
    skip = {"corr_time_per_trajectory", "mean_correlation_curve"}
    out = {k: v for k, v in summary.items() if k not in skip}
    if out.get("mean_conserved"):
        out["mean_conserved"] = {
            k: v
            for k, v in out["mean_conserved"].items()
            if k != "corr_time_per_trajectory"
        }

    if out.get("diagnostics"):
        out["diagnostics"] = {
            k: v for k, v in out["diagnostics"].items() if k != "spectra"
        }
    if out.get("uncertainty"):
        out["uncertainty"] = {
            k: v
            for k, v in out["uncertainty"].items()
            if k != "estimated_time_per_trajectory"
        }
    return out


def run_all() -> None:
    """Every missing (model, seed) run; per seed, the models side by side."""
    parallel = os.environ.get("PHYSIM_BENCH_PARALLEL", "1") != "0"
    # Generate the data once, before two processes could race to write it.
    instantiate(compose_config(MODELS[0]).data).prepare_data()
    for seed in SEEDS:
        todo = [m for m in MODELS if not (run_dir(m, seed) / "summary.json").exists()]
        if not parallel:
            for label in todo:
                run_one(label, seed)
            continue
        children = {
            label: subprocess.Popen(
                [sys.executable, __file__, "--only", label, str(seed)]
            )
            for label in todo
        }
        failed = [label for label, child in children.items() if child.wait() != 0]
        if failed:
            raise SystemExit(f"bench_refiner_ks: {failed} seed {seed} failed.")


def mean_conserved(task: PDERefiner, datamodule: Any, seed: int) -> dict[str, Any]:
    """Correlation times of rollouts projected onto the true spatial mean.

    A diagnostic of how much of the decorrelation comes from errors in the spatial
    mean (wavenumber 0; KS conserves it, and is Galilean invariant, so a mean error
    makes the pattern drift). Same samples and noise seed as `evaluate`.
    """
    start = time.perf_counter()
    summary = summarise(evaluate(task, datamodule, seed, conserve_mean=True))
    keep = ("corr_time_mean", "corr_time_batch_mean_curve", "censored_trajectories")
    out = {key: summary[key] for key in keep}
    out["corr_time_per_trajectory"] = summary["corr_time_per_trajectory"]
    out["mean_offset_rms_at_steps"] = summary["mean_offset_rms_at_steps"]
    out["seconds"] = time.perf_counter() - start
    return out


def rediagnose() -> None:
    """Recompute the diagnostics (refiner runs) and the mean-conserved rollouts
    (every run) from the saved weights; update the summaries."""
    datamodule = None
    for label in MODELS:
        for seed in SEEDS:
            folder = run_dir(label, seed)
            if not (folder / "weights.pt").exists():
                continue
            if datamodule is None:
                datamodule = load_data(compose_config(label, seed))
            file = folder / "summary.json"
            summary = json.loads(file.read_text()) if file.exists() else {}
            summary["diagnostics"] = diagnose(label, seed, datamodule)
            task = load_run(label, seed, datamodule)
            summary["mean_conserved"] = mean_conserved(task, datamodule, seed)
            file.write_text(json.dumps(summary, indent=1))
            if "mean_correlation_curve" in summary:
                save_figure(label, seed, summary)
            print(label, seed, json.dumps(brief(summary), indent=1), flush=True)


# ---------------------------------------------------------------------- aggregate
#: Two-sided 95% Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 8: 2.306}


def mean_interval(values: list[float]) -> dict[str, Any]:
    """Mean and 95% t interval (``None`` with fewer than two values)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "interval95": None}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T95.get(n - 1, 2.0) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "interval95": [mean - half, mean + half]}


def bootstrap_ratio(
    numerator: list[float], denominator: list[float], rounds: int = 2000
) -> list[float]:
    """95% bootstrap interval of mean(numerator) / mean(denominator), trajectories
    resampled in pairs (both models saw the same test trajectories)."""
    a, b = torch.tensor(numerator), torch.tensor(denominator)
    generator = torch.Generator().manual_seed(0)
    index = torch.randint(len(a), (rounds, len(a)), generator=generator)
    ratios = a[index].mean(dim=1) / b[index].mean(dim=1)
    return torch.quantile(ratios, torch.tensor([0.025, 0.975])).tolist()


def paired_ratios(
    runs: dict[int, dict[str, Any]], base: dict[int, dict[str, Any]], seeds: list[int]
) -> dict[str, Any]:
    """Per seed, mean correlation time over the base's, with a bootstrap interval
    over trajectories; over seeds, their mean and t interval."""
    per_seed = {
        seed: {
            "ratio": runs[seed]["corr_time_mean"] / base[seed]["corr_time_mean"],
            "bootstrap95": bootstrap_ratio(
                runs[seed]["corr_time_per_trajectory"],
                base[seed]["corr_time_per_trajectory"],
            ),
        }
        for seed in seeds
    }
    return {
        "per_seed": per_seed,
        **mean_interval([v["ratio"] for v in per_seed.values()]),
    }


def aggregate() -> dict[str, Any]:
    """``results.json``: per model and seed, ratios to the MSE model of that seed."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for label in RUNS:
        for seed in SEEDS:
            file = run_dir(label, seed) / "summary.json"
            if file.exists():
                runs.setdefault(label, {})[seed] = json.loads(file.read_text())
    results: dict[str, Any] = {
        "sizes": {
            "train_trajectories": NUM_TRAIN,
            "test_trajectories": NUM_TEST,
            "test_frames": TEST_FRAMES,
            "epochs": EPOCHS,
            "steps_per_epoch": STEPS,
            "hidden_channels": HIDDEN,
            "batch_size": BATCH,
            "samples": SAMPLES,
        },
        "models": {},
    }
    for label, seeds in runs.items():
        entry: dict[str, Any] = {
            "seeds": sorted(seeds),
            "corr_time_mean": mean_interval(
                [s["corr_time_mean"] for s in seeds.values()]
            ),
            "censored": [s["censored_trajectories"] for s in seeds.values()],
        }
        base_label = (
            "mse_legacy" if "mse_legacy" in runs and "legacy" in label else "mse"
        )
        base = runs.get(base_label, {})
        paired = [seed for seed in seeds if seed in base and "mse" not in label]
        if paired:
            entry["ratio_to_" + base_label] = paired_ratios(seeds, base, paired)
            conserved = [
                seed
                for seed in paired
                if "mean_conserved" in seeds[seed] and "mean_conserved" in base[seed]
            ]
            if conserved:
                entry["mean_conserved_ratio_to_" + base_label] = paired_ratios(
                    {s: seeds[s]["mean_conserved"] for s in conserved},
                    {s: base[s]["mean_conserved"] for s in conserved},
                    conserved,
                )
        conserved_times = [
            s["mean_conserved"]["corr_time_mean"]
            for s in seeds.values()
            if "mean_conserved" in s
        ]
        if conserved_times:
            entry["mean_conserved_corr_time_mean"] = mean_interval(conserved_times)
        uncertainty = [s["uncertainty"] for s in seeds.values() if "uncertainty" in s]
        if uncertainty:
            entry["estimate_vs_true_r"] = mean_interval(
                [u["estimate_vs_true_r"] for u in uncertainty]
            )
            uncensored = [
                u["estimate_vs_true_r_uncensored"]
                for u in uncertainty
                if u["estimate_vs_true_r_uncensored"] is not None
            ]
            if uncensored:
                entry["estimate_vs_true_r_uncensored"] = mean_interval(uncensored)
        results["models"][label] = entry
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results["models"], indent=1))
    return results


def main() -> None:
    torch.set_num_threads(int(os.environ.get("PHYSIM_BENCH_THREADS", "1")))
    OUT.mkdir(parents=True, exist_ok=True)
    args = sys.argv[1:]
    if args[:1] == ["--only"]:
        run_one(args[1], int(args[2]) if len(args) > 2 else SEEDS[0])
        return
    if args[:1] == ["--diagnose"]:
        rediagnose()
        return
    if args[:1] != ["--aggregate"]:
        run_all()
    aggregate()


if __name__ == "__main__":
    main()
