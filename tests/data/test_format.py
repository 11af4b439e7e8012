"""The HDF5 trajectory format: round trips, xarray, atomicity, validation."""

import pickle

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset

from physim.data import (
    FORMAT_VERSION,
    DatasetError,
    TrajectoryFile,
    TrajectoryWriter,
    _format,
    validate_trajectory_file,
    write_trajectories,
)

SPACE_NAMES = ("x", "y", "z")


def make(shape, dtype=np.float32, seed=0):
    """Random fields ``[N, T, C, *space]`` and matching writer arguments."""
    rng = np.random.default_rng(seed)
    n, t, c, *space = shape
    fields = rng.standard_normal(shape).astype(dtype)
    kwargs = dict(
        times=0.5 + 0.25 * np.arange(t),
        coords={
            d: (np.arange(s) + 0.5) / s
            for d, s in zip(SPACE_NAMES, space, strict=False)
        },
        channel_names=[f"c{k}" for k in range(c)],
        attrs={
            "pde": "test",
            "param_nu": 1e-3,
            "seed": 3,
            "flag": True,
            "split": "train",
        },
    )
    return fields, kwargs


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((3, 4, 1, 6), np.float32),
        ((2, 5, 2, 6, 7), np.float64),
        ((2, 3, 1, 4, 5, 3), np.float32),
    ],
)
def test_round_trip_is_exact_and_keeps_metadata(tmp_path, shape, dtype):
    fields, kwargs = make(shape, dtype)
    path = write_trajectories(tmp_path / "train.h5", fields, **kwargs)
    file = TrajectoryFile(path)
    assert file.shape == shape and file.dtype == dtype
    assert (file.num_trajectories, file.num_frames, file.num_channels) == shape[:3]
    assert file.spatial_shape == shape[3:]
    assert file.spatial_dims == SPACE_NAMES[: len(shape) - 3]
    assert file.channel_names == tuple(kwargs["channel_names"])
    np.testing.assert_array_equal(file.times, kwargs["times"])
    assert file.times.dtype == np.float64
    for name, values in kwargs["coords"].items():
        np.testing.assert_array_equal(file.coords[name], values)
    for index in range(shape[0]):
        np.testing.assert_array_equal(file.read(index), fields[index])
    np.testing.assert_array_equal(file.read(1, slice(1, None, 2)), fields[1, 1::2])
    attrs = file.attrs
    assert attrs["physim_format_version"] == FORMAT_VERSION
    assert {k: attrs[k] for k in kwargs["attrs"]} == kwargs["attrs"]
    assert type(attrs["flag"]) is bool and type(attrs["seed"]) is int
    assert isinstance(attrs["physim_version"], str) and "T" in attrs["created"]
    assert file.nbytes == fields.nbytes
    assert leftovers(tmp_path) == []


def test_xarray_opens_with_named_dimensions_and_coordinates(tmp_path):
    fields, kwargs = make((3, 4, 2, 5, 6))
    path = write_trajectories(tmp_path / "valid.h5", fields, **kwargs)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["fields"].dims == ("sample", "time", "channel", "x", "y")
        assert not [d for d in ds.dims if str(d).startswith("phony_dim")]
        np.testing.assert_array_equal(ds["time"].values, kwargs["times"])
        np.testing.assert_array_equal(ds["x"].values, kwargs["coords"]["x"])
        np.testing.assert_array_equal(ds["y"].values, kwargs["coords"]["y"])
        np.testing.assert_array_equal(ds["sample"].values, np.arange(3))
        assert list(ds["channel"].values) == ["c0", "c1"]
        np.testing.assert_array_equal(ds["fields"].values, fields)
        # Labelled selection works on the coordinates.
        frame = ds["fields"].sel(time=0.75, channel="c1").isel(sample=2).values
        np.testing.assert_array_equal(frame, fields[2, 1, 1])
        assert ds.attrs["pde"] == "test"


def test_chunks_hold_one_trajectory_or_a_time_block(tmp_path, monkeypatch):
    fields, kwargs = make((2, 6, 1, 8, 8))
    small = TrajectoryFile(write_trajectories(tmp_path / "a.h5", fields, **kwargs))
    assert small.chunks == (1, 6, 1, 8, 8)
    # Frames of 256 bytes and a 600-byte target: two frames per chunk.
    monkeypatch.setattr(_format, "CHUNK_TARGET_BYTES", 600)
    blocked = TrajectoryFile(write_trajectories(tmp_path / "b.h5", fields, **kwargs))
    assert blocked.chunks == (1, 2, 1, 8, 8)
    np.testing.assert_array_equal(blocked.read(1), fields[1])


def test_incremental_writer_accepts_tensors_and_slices(tmp_path):
    fields, kwargs = make((5, 3, 1, 4))
    path = tmp_path / "train.h5"
    with TrajectoryWriter(
        path, num_trajectories=5, dtype=np.float32, **kwargs
    ) as writer:
        writer.write(slice(0, 2), torch.from_numpy(fields[:2]).double())
        for index in (4, 2, 3):
            writer.write(index, fields[index])
        assert not path.exists()  # nothing looks finished before close
    file = TrajectoryFile(path)
    assert file.dtype == np.float32
    for index in range(5):
        np.testing.assert_array_equal(file.read(index), fields[index])


def test_exception_mid_write_leaves_no_file(tmp_path):
    fields, kwargs = make((4, 3, 1, 4))
    path = tmp_path / "train.h5"
    with pytest.raises(RuntimeError, match="solver crashed"):  # noqa: SIM117
        with TrajectoryWriter(path, num_trajectories=4, **kwargs) as writer:
            writer.write(0, fields[0])
            raise RuntimeError("solver crashed")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_file(tmp_path):
    fields, kwargs = make((2, 3, 1, 4))
    path = write_trajectories(tmp_path / "train.h5", fields, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        write_trajectories(path, fields[:, :, :, :3], **kwargs)  # wrong spatial size
    np.testing.assert_array_equal(TrajectoryFile(path).read(1), fields[1])
    assert leftovers(tmp_path) == []


def test_unwritten_trajectories_abort_the_file(tmp_path):
    fields, kwargs = make((3, 3, 1, 4))
    path = tmp_path / "train.h5"
    with pytest.raises(DatasetError, match=r"trajectories \[1\] were never written"):  # noqa: SIM117
        with TrajectoryWriter(path, num_trajectories=3, **kwargs) as writer:
            writer.write(0, fields[0])
            writer.write(2, fields[2])
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_arguments(tmp_path):
    fields, kwargs = make((2, 3, 1, 4))
    with pytest.raises(TypeError, match="'bad'.*list"):
        write_trajectories(
            tmp_path / "a.h5", fields, **{**kwargs, "attrs": {"bad": [1]}}
        )
    with pytest.raises(ValueError, match="'time'.*increasing"):
        write_trajectories(tmp_path / "a.h5", fields, **{**kwargs, "times": [1, 1, 2]})
    with pytest.raises(ValueError, match="'time'"):
        write_trajectories(
            tmp_path / "a.h5", fields, **{**kwargs, "coords": {"time": range(4)}}
        )
    with pytest.raises(ValueError, match="channel_names"):
        write_trajectories(
            tmp_path / "a.h5", fields, **{**kwargs, "channel_names": ["u", "u"]}
        )
    with pytest.raises(ValueError, match="at least one spatial axis"):
        write_trajectories(tmp_path / "a.h5", fields[..., 0], **kwargs)
    with pytest.raises(DatasetError, match="cannot write here"):
        (tmp_path / "file").write_text("")
        write_trajectories(tmp_path / "file" / "a.h5", fields, **kwargs)
    assert leftovers(tmp_path) == []


def test_pickled_file_reopens_its_own_handle(tmp_path):
    fields, kwargs = make((3, 4, 1, 5))
    file = TrajectoryFile(write_trajectories(tmp_path / "train.h5", fields, **kwargs))
    file.read(0)
    clone = pickle.loads(pickle.dumps(file))
    assert clone._handle is None
    np.testing.assert_array_equal(clone.read(2), fields[2])
    file.close()
    np.testing.assert_array_equal(file.read(1), fields[1])  # reopens after close


class _Trajectories(Dataset):
    def __init__(self, file):
        self.file = file

    def __len__(self):
        return self.file.num_trajectories

    def __getitem__(self, index):
        return torch.from_numpy(self.file.read(index))


def test_dataloader_workers_read_through_their_own_handles(tmp_path):
    fields, kwargs = make((6, 3, 1, 4))
    file = TrajectoryFile(write_trajectories(tmp_path / "train.h5", fields, **kwargs))
    file.read(0)  # the parent holds an open handle before the workers start
    loader = DataLoader(_Trajectories(file), batch_size=2, num_workers=2)
    np.testing.assert_array_equal(torch.cat(list(loader)).numpy(), fields)


# ------------------------------------------------------------------------ validation
def handmade(
    path,
    *,
    attrs=True,
    dims=("sample", "time", "channel", "x"),
    shape=(2, 3, 1, 4),
    lengths=None,
    skip=(),
):
    """Write an HDF5 file by hand, optionally broken."""
    lengths = lengths or dict(zip(dims, shape, strict=False))
    with h5py.File(path, "w") as f:
        if attrs:
            f.attrs["physim_format_version"] = FORMAT_VERSION
        fields = f.create_dataset("fields", data=np.zeros(shape, np.float32))
        for axis, name in enumerate(dims):
            fields.dims[axis].label = name
            if name in skip:
                continue
            values = np.arange(lengths[name], dtype=np.float64)
            scale = f.create_dataset(
                name,
                data=values.astype(str).astype(object) if name == "channel" else values,
                dtype=h5py.string_dtype() if name == "channel" else None,
            )
            scale.make_scale(name)
            fields.dims[axis].attach_scale(scale)
    return path


def test_handmade_reference_file_is_valid(tmp_path):
    validate_trajectory_file(handmade(tmp_path / "ok.h5"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(attrs=False), "physim_format_version' is missing.*foreign"),
        (dict(skip=("x",)), "coordinate key 'x'.*missing"),
        (
            dict(lengths={"sample": 2, "time": 5, "channel": 1, "x": 4}),
            "coordinate 'time' has shape \\(5,\\).*length 3",
        ),
        (dict(shape=(2, 3, 1), dims=("sample", "time", "channel")), "3 axes"),
        (
            dict(dims=("sample", "channel", "time", "x"), shape=(2, 1, 3, 4)),
            "dimension names",
        ),
    ],
)
def test_validation_names_the_file_and_the_key(tmp_path, kwargs, message):
    path = handmade(tmp_path / "bad.h5", **kwargs)
    with pytest.raises(DatasetError, match="bad.h5: .*" + message):
        validate_trajectory_file(path)
    with pytest.raises(DatasetError, match=message):
        TrajectoryFile(path)


def test_validation_of_missing_corrupt_truncated_and_foreign_files(tmp_path):
    with pytest.raises(DatasetError, match="missing.h5: trajectory file not found"):
        validate_trajectory_file(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    with pytest.raises(DatasetError, match="text.h5: not a readable HDF5 file"):
        validate_trajectory_file(tmp_path / "text.h5")
    fields, kwargs = make((4, 8, 1, 32))
    good = write_trajectories(tmp_path / "good.h5", fields, **kwargs)
    (tmp_path / "cut.h5").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetError, match="cut.h5: not a readable HDF5 file"):
        validate_trajectory_file(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.attrs["physim_format_version"] = FORMAT_VERSION
    with pytest.raises(DatasetError, match="empty.h5: key 'fields' is missing"):
        validate_trajectory_file(tmp_path / "empty.h5")
    with h5py.File(good, "a") as f:
        f.attrs["physim_format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DatasetError, match="newer|Upgrade physim"):
        validate_trajectory_file(good)


def test_validation_checks_expected_attributes(tmp_path):
    fields, kwargs = make((2, 3, 1, 4))
    path = write_trajectories(tmp_path / "train.h5", fields, **kwargs)
    validate_trajectory_file(path, expect={"split": "train", "seed": 3})
    with pytest.raises(DatasetError, match="attribute 'seed' is 3, expected 4"):
        validate_trajectory_file(path, expect={"seed": 4})
    with pytest.raises(DatasetError, match="attribute 'nope' is missing"):
        validate_trajectory_file(path, expect={"nope": 1})


def test_read_rejects_out_of_range_trajectories(tmp_path):
    fields, kwargs = make((2, 3, 1, 4))
    file = TrajectoryFile(write_trajectories(tmp_path / "train.h5", fields, **kwargs))
    with pytest.raises(IndexError, match=r"trajectory 2 out of range \[0, 2\)"):
        file.read(2)
