"""DDP: a 2-process ddp_spawn fit in-process, and a real `ddp` run through the CLI."""

import csv
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from physim.data import TrajectoryDataModule
from physim.models import FNO
from physim.tasks import AutoregressiveSurrogate
from tests.helpers.datasets import labelled_fields, travelling_waves, write_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_dataset(
        tmp_path_factory.mktemp("waves"),
        {
            "train": travelling_waves(4, 10, size=16, seed=0),
            "valid": travelling_waves(2, 10, size=16, seed=1),
            "test": travelling_waves(2, 10, size=16, seed=2),
        },
    )


def fit(root, tmp_path, batch_size, **trainer_kwargs):
    pl.seed_everything(0)
    dm = TrajectoryDataModule(
        root, num_channels=1, time_history=2, batch_size=batch_size, eval_batch_size=1
    )
    net = FNO(2, 1, n_modes=(8, 8), hidden_channels=8, n_layers=2)
    task = AutoregressiveSurrogate(
        net, partial(torch.optim.SGD, lr=0.05), num_channels=1, time_history=2
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        **trainer_kwargs,
    )
    trainer.fit(task, datamodule=dm)
    return task, trainer


def test_ddp_spawn_matches_single_process(root, tmp_path):
    # Global batch 8 either way: 1 x 8, or 2 processes x 4 (the same samples per step,
    # since each rank takes every other index of the same seeded permutation).
    single, _ = fit(root, tmp_path / "single", batch_size=8, devices=1)
    spawned, trainer = fit(
        root, tmp_path / "spawn", batch_size=4, devices=2, strategy="ddp_spawn"
    )
    assert trainer.world_size == 2
    for (name, a), (_, b) in zip(
        single.state_dict().items(), spawned.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def last_metrics(folder: Path) -> dict[str, float]:
    rows = list(csv.DictReader(next(folder.rglob("metrics.csv")).open()))
    values = {}
    for row in rows:
        values.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return values


def run_cli(root: Path, out: Path, devices: int) -> dict[str, float]:
    command = [
        sys.executable,
        "train.py",
        "+experiment=ns2d",
        f"data.root={root}",
        "data.generator=null",
        "data.time_history=2",
        f"data.batch_size={8 // devices}",
        "data.eval_batch_size=1",
        "model.net.n_modes=[8,8]",
        "model.net.hidden_channels=8",
        "model.net.n_layers=2",
        "model.scheduler=null",
        "trainer=ddp_cpu",
        f"trainer.devices={devices}",
        "trainer.max_epochs=2",
        "callbacks.progress_bar=null",
        "test=false",
        f"hydra.run.dir={out}",
        "logger=csv",
    ]
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(REPO))
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return last_metrics(out)


def test_real_ddp_through_the_cli_matches_one_process(root, tmp_path):
    single = run_cli(root, tmp_path / "one", devices=1)
    both = run_cli(root, tmp_path / "two", devices=2)
    assert both["epoch"] == single["epoch"] == 1
    assert both["val/rollout_rel_l2"] == pytest.approx(
        single["val/rollout_rel_l2"], rel=1e-3
    )


class DivergesOnLargeInputs(torch.nn.Module):
    """A constructed backbone: damped persistence, NaN for inputs above a level."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.scale * x[:, -1:]
        large = x.flatten(1).mean(dim=1) > 0.5
        return torch.where(large.view(-1, 1, 1, 1), torch.nan, out)


def evaluate(root, tmp_path, **trainer_kwargs) -> dict[str, float]:
    dm = TrajectoryDataModule(
        root, num_channels=1, time_history=2, batch_size=4, eval_batch_size=4
    )
    task = AutoregressiveSurrogate(
        DivergesOnLargeInputs(),
        partial(torch.optim.SGD, lr=0.0),
        num_channels=1,
        time_history=2,
    )
    dm.setup("test")
    task.set_statistics(dm.statistics)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **trainer_kwargs,
    )
    merged = {}
    for logged in trainer.test(task, datamodule=dm, verbose=False):
        merged.update(logged)
    return merged


def test_ddp_evaluation_counts_every_trajectory_exactly_once(tmp_path):
    # 32 trajectories over 3 processes: Lightning's default sampler would pad the
    # split to 33 by repeating one; every trajectory must count once, diverged ones
    # included, so three processes give the single-process metrics.
    fields = labelled_fields(32, 6, size=8)  # trajectory i holds 1000 i + t
    root = write_dataset(
        tmp_path / "data", {"train": fields, "valid": fields, "test": fields}
    )
    single = evaluate(root, tmp_path / "one", devices=1)
    spawned = evaluate(root, tmp_path / "three", devices=3, strategy="ddp_spawn")
    assert 0 < single["test/rollout_nonfinite"] < 32
    assert spawned["test/rollout_nonfinite"] == single["test/rollout_nonfinite"]
    assert spawned.keys() == single.keys()
    for key, value in single.items():
        assert spawned[key] == pytest.approx(value, rel=1e-6, nan_ok=True), key
