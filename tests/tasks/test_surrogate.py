"""AutoregressiveSurrogate: learning, checkpoints, resume, normalisation, errors."""

from functools import partial

import pytest
import pytorch_lightning as pl
import torch

from physim.data import TrajectoryDataModule
from physim.models import FNO
from physim.tasks import AutoregressiveSurrogate, RelativeL2Loss
from tests.helpers.datasets import travelling_waves, write_dataset


def make_task(time_history=2, residual=True, loss=None, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    net = FNO(time_history, 1, n_modes=(8, 8), hidden_channels=12, n_layers=2)
    return AutoregressiveSurrogate(
        net,
        optimizer=partial(torch.optim.Adam, lr=lr),
        loss=loss,
        num_channels=1,
        time_history=time_history,
        residual=residual,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_dataset(
        tmp_path_factory.mktemp("waves"),
        {
            "train": travelling_waves(4, 10, seed=0),
            "valid": travelling_waves(2, 10, seed=1),
            "test": travelling_waves(2, 10, seed=2),
        },
    )


def make_trainer(tmp_path, max_epochs, **kwargs):
    return pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        **kwargs,
    )


@pytest.mark.parametrize("residual", [True, False])
def test_overfits_a_single_batch(root, residual):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=2, batch_size=8)
    dm.setup("fit")
    task = make_task(residual=residual)
    task.set_statistics(dm.statistics)
    batch = next(iter(dm.train_dataloader()))
    optimizer = torch.optim.Adam(task.parameters(), lr=3e-3)
    first = task.model_step(batch)[0].item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = task.model_step(batch)[0]
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 100


def test_fno_output_shape_at_other_resolutions():
    task = make_task()
    for size in (16, 24, 40):
        history = torch.randn(3, 2, 1, size, size)
        assert task.predict_next(history).shape == (3, 1, 1, size, size)


def test_residual_target_round_trips():
    task = make_task()
    task.set_statistics({"mean": [0.3], "std": [2.0], "delta_std": [0.1]})
    history, future = torch.randn(2, 2, 1, 8, 8), torch.randn(2, 1, 1, 8, 8)
    encoded = task.encode_target(future, history)
    torch.testing.assert_close(task.decode(encoded, history), future)


def test_relative_l2_loss_is_exact():
    target = torch.randn(4, 3, 1, 8, 8)
    assert RelativeL2Loss()(1.1 * target, target).item() == pytest.approx(0.1, rel=1e-5)


def test_history_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="time_history=2"):
        make_task().predict_next(torch.randn(1, 3, 1, 8, 8))


def test_non_finite_loss_stops_with_step_and_batch(root):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=2, batch_size=4)
    task = make_task(lr=1e30)  # diverges in a few steps
    trainer = make_trainer(root.parent / "nan", 3)
    with pytest.raises(FloatingPointError, match=r"global step \d+, batch \d+"):
        trainer.fit(task, datamodule=dm)


def test_checkpoint_restores_identical_model_and_resume_matches(root, tmp_path):
    def run(max_epochs, ckpt_path=None, folder="a"):
        pl.seed_everything(0)
        dm = TrajectoryDataModule(
            root, num_channels=1, time_history=2, batch_size=4, seed=0
        )
        task = make_task()
        checkpoint = pl.callbacks.ModelCheckpoint(
            dirpath=tmp_path / folder, save_last=True
        )
        trainer = make_trainer(tmp_path / folder, max_epochs, callbacks=[checkpoint])
        trainer.fit(task, datamodule=dm, ckpt_path=ckpt_path)
        return task, trainer, checkpoint

    full, trainer_full, _ = run(3, folder="full")
    _, _, first = run(2, folder="part")
    resumed, trainer_resumed, _ = run(3, ckpt_path=first.last_model_path, folder="part")
    for (name, a), (_, b) in zip(
        full.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert (
        trainer_full.callback_metrics["val/rollout_rel_l2"]
        == trainer_resumed.callback_metrics["val/rollout_rel_l2"]
    )

    net = FNO(2, 1, n_modes=(8, 8), hidden_channels=12, n_layers=2)
    loaded = AutoregressiveSurrogate.load_from_checkpoint(
        first.last_model_path, net=net, optimizer=partial(torch.optim.Adam)
    )
    reference = torch.load(first.last_model_path, weights_only=True)["state_dict"]
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)
    assert loaded.field_std.item() != 1.0  # statistics travel with the checkpoint


def test_train_points_trains_coarse_and_evaluates_at_data_resolution():
    task = make_task()
    task.hparams.train_points = 8
    batch = {
        "history": torch.randn(2, 2, 1, 16, 16),
        "future": torch.randn(2, 1, 1, 16, 16),
    }
    task.train()
    _, pred, target = task.model_step(batch)
    assert pred.shape == target.shape == (2, 1, 1, 8, 8)
    # The coarse target is the spectral truncation of the fine one.
    coarse = torch.fft.rfft2(target[:, 0, 0])
    fine = torch.fft.rfft2(batch["future"][:, 0, 0])
    torch.testing.assert_close(
        coarse[:, :4, :4] * 4, fine[:, :4, :4], rtol=1e-4, atol=1e-4
    )
    task.eval()
    _, pred, _ = task.model_step(batch)
    assert pred.shape == (2, 1, 1, 16, 16)
