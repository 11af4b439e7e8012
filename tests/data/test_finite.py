"""NaN/Inf in stored splits: refused naming file, trajectory and frame; read once."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from physim.data import (
    DatasetError,
    InMemorySource,
    TrajectoryDataModule,
    TrajectoryFile,
)
from physim.data._format import finite_record_path, finite_verdict
from tests.helpers.datasets import travelling_waves, write_dataset


@pytest.fixture()
def root(tmp_path):
    return write_dataset(
        tmp_path / "waves",
        {
            split: travelling_waves(3, 8, size=8, seed=i)
            for i, split in enumerate(("train", "valid", "test"))
        },
    )


def poison(path, trajectory=2, frame=5, value=np.nan):
    with h5py.File(path, "r+") as file:
        file["fields"][trajectory, frame, 0, 1, 2] = value


def test_the_writer_records_its_finite_check(root, monkeypatch):
    assert finite_record_path(root / "test.h5").is_file()
    # A current record is trusted: the file is not read again.
    monkeypatch.setattr(TrajectoryFile, "read", lambda *a, **k: pytest.fail("read"))
    assert finite_verdict(root / "test.h5") is None


def test_an_edit_invalidates_the_record_and_is_found(root):
    poison(root / "test.h5", value=np.inf)
    assert finite_verdict(root / "test.h5") == (2, 5, 0)
    assert finite_verdict(root / "test.h5") == (2, 5, 0)  # now from the record


def test_loading_into_memory_names_the_trajectory_and_frame(root):
    poison(root / "valid.h5", trajectory=1, frame=3)
    with pytest.raises(DatasetError) as error:
        InMemorySource.load(TrajectoryFile(root / "valid.h5"))
    message = str(error.value)
    assert (
        f"{root / 'valid.h5'}: trajectory 1, frame 3 (t = 4), channel 'u0'" in message
    )


@pytest.mark.parametrize("in_memory", [True, False])
def test_the_data_module_refuses_before_training(root, in_memory):
    poison(root / "train.h5")
    module = TrajectoryDataModule(
        root, num_channels=1, time_history=2, in_memory=in_memory
    )
    module.prepare_data()  # records, never raises: every rank decides in setup()
    with pytest.raises(DatasetError, match=r"train.h5: trajectory 2, frame 5"):
        module.setup("fit")
