"""Coordinates that differ between trajectories stay per trajectory: in the readers
(LPSDA-layout KS files, The Well's sample-varying dimensions, PDEBench seeds), in
physim's format (and xarray), in batches and in the rollout report; never trajectory
0's for all. Static input-to-output files (PDEBench Darcy) are refused as such."""

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from physim.data import DatasetError, TrajectoryDataModule, TrajectoryFile
from physim.data.readers import (
    ConcatenatedFiles,
    ExternalSource,
    PDEArenaFile,
    PDEBenchSeedFile,
    TheWellFile,
    open_files,
    to_physim,
)
from physim.rollout import RolloutReport
from tests.helpers.external import (
    random_fields,
    write_lpsda_ks,
    write_pdebench_darcy,
    write_pdebench_seeds,
    write_the_well,
)


def ks_folder(folder, frames=10, points=8):
    """LPSDA-layout KS_{train,valid,test}.h5; returns {split: (fields, coords)}."""
    folder.mkdir()
    out = {}
    for seed, (split, num) in enumerate((("train", 4), ("valid", 2), ("test", 2))):
        fields = random_fields((num, frames, 1, points), seed)
        out[split] = fields, write_lpsda_ks(folder / f"KS_{split}.h5", split, fields)
    return out


def test_lpsda_ks_trajectories_keep_their_own_t_and_x(tmp_path):
    fields = random_fields((3, 6, 1, 8))
    written = write_lpsda_ks(tmp_path / "KS_train.h5", "train", fields)
    assert not np.allclose(written["t"][0], written["t"][1])  # the fixture differs
    assert not np.allclose(written["x"][0], written["x"][2])
    reader = PDEArenaFile(tmp_path / "KS_train.h5")
    assert reader.varying_coordinates == ("time", "x")
    for i in range(3):
        np.testing.assert_array_equal(reader.times_of(i), written["t"][i])
        np.testing.assert_array_equal(reader.coords_of(i)["x"], written["x"][i])
        np.testing.assert_array_equal(reader.read(i), fields[i])
    # The 1-D coordinates count frames and cells, and say so.
    np.testing.assert_array_equal(reader.times, np.arange(6))
    np.testing.assert_array_equal(reader.coords["x"], np.arange(8))
    assert reader.attrs["time_units"] == "frames" and reader.attrs["x_units"] == "cells"
    for name in ("dt", "dx"):  # the spacing a one-grid model is conditioned on
        np.testing.assert_array_equal(reader.sample_parameters[name], written[name])


def test_ks_without_t_gets_each_trajectorys_spacing(tmp_path):
    path = tmp_path / "ks.h5"
    written = write_lpsda_ks(path, "test", random_fields((3, 5, 1, 4)))
    with h5py.File(path, "a") as f:
        del f["test/t"], f["test/x"]
    reader = PDEArenaFile(path)
    for i in range(3):
        np.testing.assert_allclose(reader.times_of(i), np.arange(5) * written["dt"][i])
        np.testing.assert_allclose(
            reader.coords_of(i)["x"], np.arange(4) * written["dx"][i]
        )


def test_the_well_sample_varying_dimensions(tmp_path):
    path = tmp_path / "toy_flow" / "data" / "train" / "a.hdf5"
    expected = write_the_well(path, num=3, sample_varying=True)
    reader = TheWellFile(path)
    assert reader.varying_coordinates == ("time", "x")
    for i in range(3):
        np.testing.assert_array_equal(reader.times_of(i), expected["times"][i])
        coords = reader.coords_of(i)
        np.testing.assert_array_equal(coords["x"], expected["x"][i])
        np.testing.assert_allclose(coords["y"], (np.arange(4) + 0.5) / 4)  # shared


def test_pdebench_seeds_with_their_own_grids(tmp_path):
    path = tmp_path / "react.h5"
    write_pdebench_seeds(path, random_fields((3, 4, 1, 5, 4)))
    with h5py.File(path, "a") as f:
        f["0002/grid/t"][...] = np.linspace(0, 10, 4)
    reader = PDEBenchSeedFile(path)
    assert reader.varying_coordinates == ("time",)
    np.testing.assert_allclose(reader.times_of(0), np.linspace(0, 5, 4))
    np.testing.assert_allclose(reader.times_of(2), np.linspace(0, 10, 4))


def test_files_with_different_times_are_concatenated_per_trajectory(tmp_path):
    a, b = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    write_the_well(a, num=2)
    write_the_well(b, num=1)
    with h5py.File(b, "a") as f:
        f["dimensions/time"][...] += 10.0
    both = ConcatenatedFiles([TheWellFile(a), TheWellFile(b)])
    assert both.varying_coordinates == ("time",)
    np.testing.assert_allclose(both.times_of(1), np.arange(5) * 0.25 + 1.0)
    np.testing.assert_allclose(both.times_of(2), np.arange(5) * 0.25 + 11.0)
    assert both.attrs["time_units"] == "frames"


def test_physim_format_stores_them_readable_by_xarray(tmp_path):
    splits = ks_folder(tmp_path / "ks")
    source = ExternalSource(tmp_path / "ks")
    root = to_physim(source.splits, tmp_path / "physim", progress=False)
    fields, written = splits["valid"]
    file = TrajectoryFile(root / "valid.h5")
    assert file.attrs["physim_format_version"] == 2
    assert file.varying_coordinates == ("time", "x")
    for i in range(2):
        np.testing.assert_array_equal(file.times_of(i), written["t"][i])
        np.testing.assert_array_equal(file.coords_of(i)["x"], written["x"][i])
        np.testing.assert_array_equal(file.read(i), fields[i])
    with xr.open_dataset(root / "valid.h5", engine="h5netcdf") as ds:
        assert ds["sample_time"].dims == ("sample", "time")
        assert {"sample_time", "sample_x"} <= set(ds["fields"].coords)
        np.testing.assert_array_equal(ds["sample_x"].values, written["x"])


def test_batches_and_the_report_carry_each_trajectorys_times(tmp_path):
    splits = ks_folder(tmp_path / "ks")
    dm = TrajectoryDataModule(
        tmp_path / "cache",
        num_channels=1,
        time_history=2,
        time_future=1,
        time_stride=2,
        batch_size=3,
        external=ExternalSource(tmp_path / "ks"),
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.varying_coordinates == ("time", "x")
    windows = dm.window_dataset("train")
    train_t = splits["train"][1]["t"]
    for item in (0, len(windows) // 2, len(windows) - 1):
        index, start = windows.locate(item)
        np.testing.assert_array_equal(
            windows[item]["times"].numpy(), train_t[index, start : start + 5 : 2]
        )
    fields, written = splits["test"]
    batch = next(iter(dm.test_dataloader()[1]))
    assert batch["times"].dtype == torch.float64
    np.testing.assert_array_equal(batch["times"].numpy(), written["t"][:, ::2])
    np.testing.assert_array_equal(batch["coords"]["x"].numpy(), written["x"])
    report = RolloutReport(
        batch["trajectory"][:, 2:],
        batch["trajectory"][:, 2:],
        times=np.arange(3),
        coords={"x": np.arange(8)},
        channel_names=["u"],
        output_interval=1.0,
        sample_times=batch["times"][:, 2:],
        sample_coords={"x": batch["coords"]["x"]},
    )
    ds = report.to_dataset()
    np.testing.assert_array_equal(ds["sample_time"].values, written["t"][:, 4::2])
    assert ds["sample_x"].dims == ("sample", "x")


def test_darcy_flow_is_refused_as_a_static_map(tmp_path):
    path = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    write_pdebench_darcy(path)
    with pytest.raises(DatasetError) as error:
        open_files(path)
    message = str(error.value)
    assert message.startswith(f"{path}: is a PDEBench Darcy-flow file ('nu' (3, 8, 8)")
    assert "'tensor' (3, 1, 8, 8)" in message and "no 't-coordinate'" in message
    assert "does not train on it" in message and "repair" not in message
    assert message.count("\n") == 0
