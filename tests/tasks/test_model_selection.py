"""Model selection counts diverged rollouts: the monitored metric ranks a model that
blows up on part of the validation set below a stable one, and an all-diverging model
neither crashes checkpointing nor looks good."""

from functools import partial

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from physim.data import TrajectoryDataModule
from physim.tasks import AutoregressiveSurrogate
from tests.helpers.datasets import labelled_fields, write_dataset


class Constructed(torch.nn.Module):
    """Predicts the (normalised) change ``change``; in evaluation, NaN for every
    sample whose normalised input mean exceeds ``level``."""

    def __init__(self, change: float, level: float = float("inf")) -> None:
        super().__init__()
        self.change, self.level = change, level
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x[:, -1:]) + self.change + self.offset
        if self.training:
            return out
        large = x.flatten(1).mean(dim=1) > self.level
        return torch.where(large.view(-1, 1, 1, 1), torch.nan, out)


def validate(tmp_path, net) -> tuple[dict[str, float], ModelCheckpoint]:
    # Trajectory i holds 1000 i + t: the exact residual step is +1 per frame.
    fields = labelled_fields(16, 8, size=4)
    root = write_dataset(
        tmp_path / "data", {"train": fields, "valid": fields, "test": fields}
    )
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=4)
    task = AutoregressiveSurrogate(
        net, partial(torch.optim.SGD, lr=0.0), num_channels=1, time_history=1
    )
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="val/rollout_rel_l2", mode="min"
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[checkpoint],
    )
    trainer.fit(task, datamodule=dm)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}, checkpoint


def test_a_model_diverging_on_part_of_the_set_ranks_below_a_stable_one(tmp_path):
    # Exact on the trajectories it keeps, NaN on the upper half of them.
    partial_blowup, _ = validate(tmp_path / "a", Constructed(1.0, level=0.0))
    # Half the true change everywhere, never diverging.
    stable, _ = validate(tmp_path / "b", Constructed(0.5))
    assert 0 < partial_blowup["val/rollout_nonfinite"] < 16
    assert stable["val/rollout_nonfinite"] == 0
    # Finite-only means would pick the diverging model (its survivors are exact).
    assert partial_blowup["val/rollout_rel_l2_finite"] < 1e-6
    assert stable["val/rollout_rel_l2_finite"] > 1e-6
    # The monitored metric counts the failures and picks the stable model.
    assert partial_blowup["val/rollout_rel_l2"] > 10 * stable["val/rollout_rel_l2"]


def test_an_all_diverging_model_is_checkpointed_and_scores_as_a_failure(tmp_path):
    metrics, checkpoint = validate(tmp_path, Constructed(1.0, level=-1e9))
    assert metrics["val/rollout_nonfinite"] == 16
    # Every step counts max(persistence error, 1) = 1 for this data.
    assert metrics["val/rollout_rel_l2"] == 1.0
    assert checkpoint.best_model_score == 1.0
    assert checkpoint.best_model_path.endswith(".ckpt")


def test_the_fno_papers_metric_is_logged_beside_the_per_step_mean(tmp_path):
    metrics, _ = validate(tmp_path, Constructed(0.5))
    assert metrics["val/rollout_rel_l2_full"] > 0
    assert metrics["val/rollout_rel_l2_full"] != metrics["val/rollout_rel_l2"]
