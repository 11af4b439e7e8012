"""Training-loop overhead and data-loader throughput for the ns2d experiment.

    python scripts/bench/bench_training.py

1. Time per training step of the Lightning module under `Trainer.fit` versus a bare
   torch loop (forward via the same `model_step`, backward, optimiser step) over the
   same model and the same batches held in memory: the median step of each run, the
   best of 3 alternating runs (target: Lightning at most 5% slower). The one-off cost
   of starting and ending a `fit` is not a per-step cost and is left out.
2. Samples per second the training loader delivers (iterating it alone) versus samples
   per second training consumes (target: at least 5x).

Uses data/ns2d (generated on first use, as `python train.py +experiment=ns2d` does).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict

import physim.cli  # noqa: F401  (resolvers)

REPO = Path(__file__).resolve().parents[2]
STEPS = 40  # training steps per trial
REPEATS = 3  # alternating trials of each loop


def build(steps: int):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=ns2d"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO)
        cfg.paths.output_dir = "/tmp/physim-bench"
    torch.manual_seed(0)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    task = instantiate(cfg.model)
    task.set_statistics(dm.statistics)
    loader = iter(dm.train_dataloader())
    batches = [next(loader) for _ in range(steps)]
    return cfg, dm, task, batches


class Batches(torch.utils.data.Dataset):
    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.batches[i]


def bare_loop(task, batches) -> float:
    """Median seconds per step of a plain loop: forward, backward, optimiser step."""
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-3)
    task.train()
    times = []
    for batch in batches:
        start = time.perf_counter()
        loss = task.model_step(batch)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class StepTimer(pl.Callback):
    """Seconds between consecutive batch starts: one whole Lightning training step."""

    def on_train_epoch_start(self, trainer, module):
        self.starts = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.starts.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, module):
        self.starts.append(time.perf_counter())


def lightning_loop(task, batches) -> float:
    """Median seconds per step under ``Trainer.fit`` (logging and rich progress bar on,
    as in the default config)."""
    timer = StepTimer()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=pl.loggers.CSVLogger("/tmp/physim-bench"),
        callbacks=[timer, pl.callbacks.RichProgressBar()],
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        log_every_n_steps=20,
    )
    loader = torch.utils.data.DataLoader(Batches(batches), batch_size=None)
    task.configure_optimizers = lambda: torch.optim.AdamW(task.parameters(), lr=1e-3)
    trainer.fit(task, train_dataloaders=loader)
    steps = [b - a for a, b in zip(timer.starts, timer.starts[1:], strict=False)]
    return statistics.median(steps)


def loader_throughput(dm, seconds: float = 5.0) -> float:
    samples, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in dm.train_dataloader():
            samples += batch["history"].shape[0]
            if time.perf_counter() - start >= seconds:
                break
    return samples / (time.perf_counter() - start)


def main() -> None:
    cfg, dm, task, batches = build(STEPS)
    bare_loop(task, batches[:5])  # warm-up
    bare, light = [], []
    for _ in range(REPEATS):
        bare.append(bare_loop(task, batches))
        light.append(lightning_loop(task, batches))
    b, lt = min(bare), min(light)
    batch_size = batches[0]["history"].shape[0]
    consumed = batch_size / lt
    delivered = loader_throughput(dm)
    print(
        f"torch threads: {torch.get_num_threads()}, batch {batch_size}, steps {STEPS}"
    )
    print("| measure | value |\n|---|---|")
    print(
        f"| bare torch loop, s/step (median step, best of {REPEATS} runs) | {b:.4f} |"
    )
    print(f"| Lightning fit, s/step (median step, best of {REPEATS} runs) | {lt:.4f} |")
    print(f"| Lightning / bare | {lt / b:.3f} |")
    print(f"| loader samples/s | {delivered:.0f} |")
    print(f"| training samples/s | {consumed:.0f} |")
    print(f"| loader / training | {delivered / consumed:.1f} |")


if __name__ == "__main__":
    main()
