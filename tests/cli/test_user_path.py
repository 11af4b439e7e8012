"""The documented commands, run as a new user runs them (issue 24).

Every test starts ``python train.py`` / ``scripts/evaluate.py`` as a subprocess in a
fresh folder (data under it, output to pipes as in a batch job). One small training
run (``debug=default`` data: 2 trajectories per split) is shared by the module.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.cli.clirun import one_line_error, run_cli
from tests.helpers.datasets import travelling_waves, write_dataset

SMALL_TRAINING = [
    "+experiment=ns2d",
    "debug=default",
    "trainer.fast_dev_run=false",
    "trainer.limit_train_batches=1",  # no `+`: every Trainer argument is in the schema
    "trainer.limit_val_batches=1",
    "callbacks.model_checkpoint.save_top_k=-1",
    "model.scheduler=null",  # OneCycleLR cannot be extended by a resume
]


def train(workspace: Path, out: Path, *overrides: str):
    """``python train.py <overrides>`` with the run folder ``out``."""
    return run_cli("train.py", *overrides, f"hydra.run.dir={out}", cwd=workspace)


def evaluate(workspace: Path, run: Path, out: Path, *overrides: str):
    """``scripts/evaluate.py`` on ``run``'s last checkpoint, report folder ``out``."""
    checkpoint = run / "checkpoints" / "last.ckpt"
    return run_cli(
        "scripts/evaluate.py",
        f"ckpt_path={checkpoint}",
        *overrides,
        f"hydra.run.dir={out}",
        cwd=workspace,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch ns2d run on its debug data: (workspace, run folder)."""
    workspace = tmp_path_factory.mktemp("user")
    run = workspace / "run1"
    done = train(workspace, run, *SMALL_TRAINING, "trainer.max_epochs=2", "test=false")
    assert done.returncode == 0, done.stderr[-3000:]
    return workspace, run


def val_scores(run: Path) -> dict[int, float]:
    """``val/rollout_rel_l2`` per epoch from the run's CSV log."""
    scores = {}
    for path in run.rglob("metrics.csv"):
        for row in csv.DictReader(path.open()):
            if row.get("val/rollout_rel_l2"):
                scores[int(row["epoch"])] = float(row["val/rollout_rel_l2"])
    return scores


def checkpoint_state(path: Path) -> dict:
    callbacks = torch.load(path, map_location="cpu", weights_only=True)["callbacks"]
    (state,) = [v for k, v in callbacks.items() if "ModelCheckpoint" in k]
    return state


def test_resume_keeps_the_best_score_and_path(trained, tmp_path):
    workspace, run = trained
    best = checkpoint_state(run / "checkpoints" / "last.ckpt")
    assert best["best_model_score"] == pytest.approx(min(val_scores(run).values()))
    # Resume from weights made worse (as after a diverging step): the epochs after
    # the resume score worse than the best before it, which must stay the best.
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in checkpoint["state_dict"].items():
        if key.startswith("net.") and value.is_floating_point():
            checkpoint["state_dict"][key] = value * 3.0
    resume = tmp_path / "last_perturbed.ckpt"
    torch.save(checkpoint, resume)
    resumed = tmp_path / "run2"
    done = train(
        workspace,
        resumed,
        *SMALL_TRAINING,
        "trainer.max_epochs=3",
        f"ckpt_path={resume}",
        "test=false",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = val_scores(resumed)
    assert after and min(after.values()) > best["best_model_score"]
    state = checkpoint_state(resumed / "checkpoints" / "last.ckpt")
    assert state["best_model_score"] == pytest.approx(best["best_model_score"])
    assert state["best_model_path"] == best["best_model_path"]
    assert Path(state["best_model_path"]).is_file()


def test_evaluate_uses_the_checkpoints_own_data(trained, tmp_path):
    workspace, run = trained
    done = evaluate(workspace, run, tmp_path / "eval")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "rollout" / "metrics.json").read_text())
    assert report["num_trajectories"] == 2
    assert not (workspace / "data" / "ns2d").exists()  # the full set: never made
    written = (tmp_path / "eval" / "rollout" / "rollout.nc").read_bytes()
    assert str(workspace / "data" / "ns2d-debug" / "test.h5").encode() in written
    assert "Rollout (test):" in done.stdout  # progress lines when not a terminal


def poisoned_copy(workspace: Path, target: Path, split: str) -> Path:
    """A copy of the debug dataset with one NaN in ``split`` (trajectory 1, frame 3)."""
    shutil.copytree(workspace / "data" / "ns2d-debug", target)
    with h5py.File(target / f"{split}.h5", "r+") as file:
        file["fields"][1, 3, 0, 5, 7] = np.nan
    return target


def test_nan_in_the_test_split_is_refused_by_evaluate(trained, tmp_path):
    workspace, run = trained
    root = poisoned_copy(workspace, tmp_path / "poisoned", "test")
    done = evaluate(workspace, run, tmp_path / "eval", f"data.root={root}")
    line = one_line_error(done)
    assert f"{root / 'test.h5'}: trajectory 1, frame 3" in line
    assert "NaN or Inf" in line and "regenerate" in line
    assert not (tmp_path / "eval" / "rollout" / "metrics.json").exists()


def test_nan_in_the_train_split_is_refused_before_training(trained, tmp_path):
    workspace, _ = trained
    root = poisoned_copy(workspace, tmp_path / "poisoned", "train")
    done = train(
        workspace,
        tmp_path / "run",
        "+experiment=ns2d",
        f"data.root={root}",
        "data.generator=null",
        "trainer.fast_dev_run=true",
    )
    line = one_line_error(done)
    assert f"{root / 'train.h5'}: trajectory 1, frame 3" in line
    assert "train: epoch" not in done.stdout  # refused before the first batch


def test_data_of_other_generator_settings_is_refused_by_train(trained, tmp_path):
    workspace, _ = trained
    done = train(
        workspace,
        tmp_path / "run",
        "+experiment=ns2d",
        "debug=default",
        "data.generator.pde.viscosity=1e-4",
    )
    line = one_line_error(done)
    assert "ns2d-debug" in line and "physim_dataset_fingerprint" in line
    assert "param_viscosity: 0.001 vs 0.0001" in line
    assert "data.generator=null" in line


def test_checkpoint_of_another_experiment_is_one_line(trained, tmp_path):
    workspace, run = trained
    checkpoint = run / "checkpoints" / "last.ckpt"
    done = train(
        workspace, tmp_path / "run", "+experiment=ks1d", f"ckpt_path={checkpoint}"
    )
    line = one_line_error(done)
    assert "last.ckpt" in line and "task 'ns2d'" in line
    assert "do not fit this run's model" in line


def test_two_dimensional_checkpoint_on_one_dimensional_data(trained, tmp_path):
    workspace, run = trained
    fields = travelling_waves(2, 16, size=16)[:, :, :, 0]  # [N, T, 1, x]
    root = write_dataset(
        tmp_path / "waves1d",
        {"train": fields, "valid": fields, "test": fields},
        channel_names=["vorticity"],
    )
    done = evaluate(
        workspace, run, tmp_path / "eval", f"data.root={root}", "data.generator=null"
    )
    line = one_line_error(done)
    assert "cannot run on" in line and "(1-D, grid [16])" in line
    assert "last.ckpt" in line


def test_readme_multirun_runs_two_jobs(tmp_path):
    # The README's sweep, on the debug data; no hydra.sweep.dir given.
    done = run_cli(
        "train.py",
        "-m",
        "+experiment=ns2d",
        "model.optimizer.lr=1e-3,3e-3",
        "debug=default",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "ns2d" / "multirun").iterdir()
    reports = sorted(sweep.glob("*/rollout/metrics.json"))
    assert [p.parents[1].name for p in reports] == ["0", "1"]


def test_debug_run_is_fast_and_logs_progress(tmp_path):
    # A fresh folder: debug=default makes its own small dataset, trains one batch,
    # tests and writes the report; progress lines reach the log (not a terminal).
    start = time.monotonic()
    done = run_cli(
        "train.py",
        "+experiment=ns2d",
        "debug=default",
        cwd=tmp_path,
        env={"PHYSIM_PROGRESS_SECONDS": "0.5"},
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 120, elapsed
    (run,) = (tmp_path / "outputs" / "ns2d").iterdir()
    assert (run / "rollout" / "metrics.json").is_file()
    assert not (tmp_path / "data" / "ns2d").exists()
    log = (run / "train.log").read_text()
    for stage in ("ns2d: shards:", "train: epoch 0", "test: epoch", "Rollout (test):"):
        assert stage in log, stage
    assert not re.search(r"━ +\d+(%|/)", done.stdout)  # no rich bar drawn into a file
