"""Evaluation of a trained checkpoint, and the CLI's answers to bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import open_dict

from physim.cli.evaluate import evaluate
from physim.cli.train import train
from tests.cli.conftest import compose_train, shrink_data

REPO = Path(__file__).resolve().parents[2]


def train_tiny(tmp_path: Path, *overrides: str) -> dict[str, float]:
    """Train ``overrides`` for one epoch of one or two batches on shrunk data in
    ``tmp_path / "train"`` (checkpoints in its ``checkpoints``)."""
    cfg = compose_train(
        [
            *overrides,
            "logger=csv",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=2",
            "++trainer.limit_val_batches=1",
        ],
        tmp_path / "train",
    )
    shrink_data(cfg, tmp_path / "data")
    with open_dict(cfg):
        cfg.callbacks.pop("progress_bar")
    return train(cfg)


@pytest.mark.parametrize(
    ("experiment", "data"), [("ns2d", "ns2d"), ("ks1d_refiner", "ks1d")]
)
def test_evaluate_reproduces_the_training_report(experiment, data, tmp_path):
    # PDE-Refiner samples noise: the report seeds it per batch, so both agree.
    metrics = train_tiny(tmp_path, f"+experiment={experiment}")
    checkpoint = next((tmp_path / "train" / "checkpoints").glob("epoch_*.ckpt"))

    eval_cfg = compose_train(
        [f"ckpt_path={checkpoint}", f"data={data}"],
        tmp_path / "eval",
        config_name="evaluate",
    )
    shrink_data(eval_cfg, tmp_path / "data")
    summary = evaluate(eval_cfg)
    # Same weights, same test split: the standalone evaluation reproduces the report
    # written at the end of training.
    assert summary["rel_l2_mean"] == pytest.approx(
        metrics["report/rel_l2_mean"], rel=1e-6
    )
    written = json.loads((tmp_path / "eval" / "rollout" / "metrics.json").read_text())
    assert written["num_trajectories"] == 2


@pytest.mark.parametrize("generator", ["as generated", "null"])
def test_correlation_times_share_the_data_time_unit(generator, tmp_path):
    # Burgers frames are 0.02 apart: the logged correlation time is in the report's
    # unit (physical time), also when the generator settings are left out (before:
    # 1.0 per step there, i.e. in steps, 50x the report's).
    metrics = train_tiny(tmp_path, "+experiment=burgers1d")
    if generator == "null":  # the same files, read as they are
        shutil.copytree(tmp_path / "data", tmp_path / "as_is" / "data")
        overrides = ["+experiment=burgers1d", "data.generator=null"]
        metrics = train_tiny(tmp_path / "as_is", *overrides)
    assert metrics["test/rollout_corr_time"] == pytest.approx(
        metrics["report/correlation_time_mean"], rel=1e-5
    )


def test_a_configured_output_interval_must_match_the_data(tmp_path):
    with pytest.raises(ValueError, match=r"model.output_interval=1, but the data's"):
        train_tiny(tmp_path, "+experiment=burgers1d", "model.output_interval=1.0")


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="disabled")
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unknown_experiment_fails_with_a_clear_message():
    done = run("train.py", "+experiment=no_such_experiment")
    assert done.returncode != 0
    assert "no_such_experiment" in done.stderr


def test_missing_checkpoint_fails_with_one_line(tmp_path):
    done = run(
        "scripts/evaluate.py",
        f"ckpt_path={tmp_path / 'none.ckpt'}",
        f"hydra.run.dir={tmp_path}",
    )
    assert done.returncode == 1
    assert "checkpoint not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_foreign_checkpoint_is_rejected(tmp_path):
    import torch

    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, path)
    done = run("scripts/evaluate.py", f"ckpt_path={path}", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 1
    assert "physim_config" in done.stderr


def test_temporal_stencil_checkpoint_reproduces_the_training_report(tmp_path):
    # TSM has no surrogate internals (predict_next, num_channels): the CLI rebuilds
    # it from its checkpoint and rolls it out through the EvaluableTask protocol.
    train_tiny(tmp_path, "+experiment=kolmogorov2d_tsm")
    checkpoint = tmp_path / "train" / "checkpoints" / "last.ckpt"
    done = run(
        "scripts/evaluate.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "rollout" / "metrics.json").read_text())
    trained = json.loads((tmp_path / "train" / "rollout" / "metrics.json").read_text())
    assert written == pytest.approx(trained, rel=1e-6)


def test_insr_checkpoint_is_refused_with_one_line(tmp_path):
    # INSR's checkpoint holds the solved field, not the run configuration.
    train_tiny(
        tmp_path,
        "+experiment=advection1d_insr",
        "model.initial_iterations=5",
        "model.max_iterations=1",
        "model.num_points=64",
    )
    checkpoint = tmp_path / "train" / "checkpoints" / "last.ckpt"
    done = run(
        "scripts/evaluate.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path}"
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "an INSR checkpoint" in lines[0], done.stderr
    assert str(tmp_path / "train" / "rollout" / "metrics.json") in lines[0]
