"""Evaluation of a trained checkpoint, and the CLI's answers to bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import open_dict

from physim.cli.evaluate import evaluate
from physim.cli.train import train
from tests.cli.conftest import compose_train, shrink_data

REPO = Path(__file__).resolve().parents[2]


def test_evaluate_reproduces_the_training_report(tmp_path):
    cfg = compose_train(
        [
            "+experiment=ns2d",
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
    metrics = train(cfg)
    checkpoint = next((tmp_path / "train" / "checkpoints").glob("epoch_*.ckpt"))

    eval_cfg = compose_train(
        [f"ckpt_path={checkpoint}", "data=ns2d"],
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
