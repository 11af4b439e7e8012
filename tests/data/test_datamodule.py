"""TrajectoryDataModule: shapes, windows, loaders, generation hook, errors."""

import numpy as np
import pytest
import torch

from physim.data import DatasetError, TrajectoryDataModule
from tests.helpers.datasets import labelled_fields, write_dataset


@pytest.fixture()
def root(tmp_path):
    return write_dataset(
        tmp_path / "labelled",
        {
            "train": labelled_fields(3, 12, channels=2),
            "valid": labelled_fields(2, 12, channels=2),
            "test": labelled_fields(2, 12, channels=2),
        },
    )


def make(root, **kwargs):
    options = dict(num_channels=2, time_history=3, time_future=2, batch_size=4)
    options.update(kwargs)
    dm = TrajectoryDataModule(root, **options)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("in_memory", [True, False])
def test_windows_have_documented_shapes_and_never_cross_trajectories(root, in_memory):
    dm = make(root, in_memory=in_memory)
    dataset = dm.window_dataset("train")
    # 12 frames, windows of 3 + 2 frames: 8 windows per trajectory.
    assert len(dataset) == 3 * 8
    for item in range(len(dataset)):
        sample = dataset[item]
        assert sample["history"].shape == (3, 2, 8, 8)
        assert sample["future"].shape == (2, 2, 8, 8)
        frames = torch.cat([sample["history"], sample["future"]])[:, 0, 0, 0]
        trajectory, start = divmod(item, 8)
        expected = 1000 * trajectory + start + torch.arange(5, dtype=torch.float32)
        torch.testing.assert_close(frames, expected)
    batch = next(iter(dm.train_dataloader()))
    assert batch["history"].shape == (4, 3, 2, 8, 8)


def test_stride_and_unroll_lengthen_windows(root):
    dm = make(root, time_stride=2, unroll_steps=1, time_future=1)
    dataset = dm.window_dataset("train", unroll_steps=1)
    # 3 + 2 frames, every 2nd stored frame: span 9 stored frames -> 4 windows each.
    assert len(dataset) == 3 * 4
    sample = dataset[5]  # trajectory 1, start 1
    frames = torch.cat([sample["history"], sample["future"]])[:, 0, 0, 0]
    torch.testing.assert_close(frames, 1001 + 2 * torch.arange(5, dtype=torch.float32))


def test_validation_has_one_step_and_rollout_loaders(root):
    dm = make(root, eval_batch_size=2)
    one_step, rollout = dm.val_dataloader()
    assert next(iter(one_step))["future"].shape == (2, 2, 2, 8, 8)
    trajectory = next(iter(rollout))["trajectory"]
    assert trajectory.shape == (2, 12, 2, 8, 8)
    assert dm.rollout_steps == 9


def test_statistics_are_loaded(root):
    dm = make(root)
    fields = labelled_fields(3, 12, channels=2)
    np.testing.assert_allclose(
        dm.statistics["mean"], fields.mean(axis=(0, 1, 3, 4)), rtol=1e-6
    )
    np.testing.assert_allclose(dm.statistics["delta_std"], [0.0, 0.0], atol=1e-6)


def test_missing_dataset_is_generated_by_the_generator(tmp_path):
    calls = []

    def generator(path):
        calls.append(path)
        write_dataset(
            path,
            {s: labelled_fields(2, 8, channels=2) for s in ("train", "valid", "test")},
        )

    dm = TrajectoryDataModule(
        tmp_path / "new", num_channels=2, time_history=2, generator=generator
    )
    dm.prepare_data()
    dm.prepare_data()  # already complete: no second generation
    assert calls == [tmp_path / "new"]
    dm.setup("fit")
    assert len(dm.window_dataset("train")) == 2 * 6


def test_missing_dataset_without_generator_names_the_file(tmp_path):
    dm = TrajectoryDataModule(tmp_path / "none", num_channels=1)
    with pytest.raises(DatasetError, match="train.h5"):
        dm.prepare_data()


def test_channel_mismatch_is_a_clear_error(root):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=2)
    with pytest.raises(DatasetError, match="num_channels=1"):
        dm.setup("fit")


def test_window_longer_than_trajectory_is_a_clear_error(root):
    dm = make(root)
    with pytest.raises(ValueError, match="time_history"):
        TrajectoryDataModule(
            root, num_channels=2, time_history=11, time_future=2
        ).setup()
    assert dm.files["train"].num_frames == 12


@pytest.mark.parametrize(
    "name, value", [("time_history", 0), ("batch_size", 0), ("time_stride", 1.5)]
)
def test_bad_arguments_name_the_argument(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        TrajectoryDataModule(tmp_path, num_channels=1, **{name: value})
