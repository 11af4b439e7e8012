"""Readers of PDEBench, PDEArena and The Well files: layouts read back exactly,
format detection, and one clear DatasetError per malformed file."""

import pickle

import h5py
import numpy as np
import pytest

from physim.data import DatasetError
from physim.data.readers import (
    PDEArenaFile,
    PDEBenchFile,
    PDEBenchSeedFile,
    TheWellFile,
    detect_format,
    open_files,
    source_statistics,
)
from tests.helpers.external import (
    random_fields,
    write_pdearena_ks,
    write_pdearena_ns,
    write_pdebench_cfd,
    write_pdebench_scalar,
    write_pdebench_seeds,
    write_the_well,
)


def assert_reads(reader, fields):
    """Every trajectory, whole and in strided frame slices, equals ``fields``."""
    assert reader.shape == fields.shape
    for i in range(fields.shape[0]):
        np.testing.assert_array_equal(reader.read(i), fields[i])
        np.testing.assert_array_equal(
            reader.read(i, slice(1, None, 2)), fields[i, 1::2]
        )


# ------------------------------------------------------------------ PDEBench
def test_pdebench_scalar_drops_the_extra_time_and_keeps_parameters(tmp_path):
    fields = random_fields((4, 6, 1, 10))
    times = write_pdebench_scalar(tmp_path / "burgers.hdf5", fields, Nu=0.001)
    reader = PDEBenchFile(tmp_path / "burgers.hdf5")
    assert_reads(reader, fields)
    assert reader.channel_names == ("u",)
    assert reader.spatial_dims == ("x",)
    np.testing.assert_array_equal(reader.times, times[:-1])  # T + 1 stored, T kept
    np.testing.assert_allclose(reader.coords["x"], (np.arange(10) + 0.5) / 10)
    np.testing.assert_array_equal(reader.sample_parameters["Nu"], np.full(4, 0.001))
    assert reader.dtype == np.float32


def test_pdebench_cfd_orders_channels_density_pressure_velocity(tmp_path):
    fields = random_fields((3, 5, 4, 6, 4))
    write_pdebench_cfd(tmp_path / "cfd.hdf5", fields)
    reader = PDEBenchFile(tmp_path / "cfd.hdf5")
    assert reader.channel_names == ("density", "pressure", "Vx", "Vy")
    assert_reads(reader, fields)
    np.testing.assert_allclose(reader.coords["y"], np.arange(4) / 4 + 1.0)
    np.testing.assert_allclose(reader.times, np.arange(5) * 0.05)


def test_pdebench_per_seed_groups_are_trajectories(tmp_path):
    fields = random_fields((3, 5, 2, 6, 4))
    write_pdebench_seeds(tmp_path / "diff_react.h5", fields)
    reader = PDEBenchSeedFile(tmp_path / "diff_react.h5")
    assert reader.channel_names == ("data_0", "data_1")
    assert_reads(reader, fields)
    np.testing.assert_allclose(reader.times, np.linspace(0, 5, 5))
    np.testing.assert_allclose(reader.coords["x"], np.linspace(-1, 1, 6))
    np.testing.assert_array_equal(reader.sample_parameters["seed"], [0, 1, 2])


# ------------------------------------------------------------------ PDEArena
def test_pdearena_navier_stokes_smoke(tmp_path):
    fields = random_fields((3, 4, 3, 8, 6), dtype=np.float64)
    params = write_pdearena_ns(tmp_path / "ns_valid.h5", "valid", fields)
    reader = PDEArenaFile(tmp_path / "ns_valid.h5")
    assert reader.split == "valid"
    assert reader.channel_names == ("u", "vx", "vy")  # scalars, then vector parts
    assert reader.dtype == np.float64
    assert_reads(reader, fields)
    np.testing.assert_allclose(reader.times, np.linspace(18.0, 102.0, 4))
    np.testing.assert_allclose(reader.coords["y"], np.linspace(0, 32.0, 6))
    for name, values in params.items():
        np.testing.assert_array_equal(reader.sample_parameters[name], values)


@pytest.mark.parametrize("uniform", [True, False])
def test_pdearena_kuramoto_sivashinsky_times(tmp_path, uniform):
    fields = random_fields((3, 7, 1, 16))
    dt = np.full(3, 0.2) if uniform else np.array([0.18, 0.2, 0.22])
    write_pdearena_ks(tmp_path / "ks.h5", "train", fields, dt)
    reader = PDEArenaFile(tmp_path / "ks.h5")
    assert reader.channel_names == ("u",)
    assert_reads(reader, fields)
    np.testing.assert_array_equal(reader.sample_parameters["dt"], dt)
    np.testing.assert_allclose(reader.sample_parameters["v"], np.linspace(0.5, 1, 3))
    np.testing.assert_allclose(reader.coords["x"], np.arange(16) * 4.0)
    if uniform:
        np.testing.assert_allclose(reader.times, np.arange(7) * 0.2)
        assert "time_units" not in reader.attrs
    else:  # per-trajectory dt: times are frame indices, dt is a sample parameter
        np.testing.assert_array_equal(reader.times, np.arange(7))
        assert reader.attrs["time_units"] == "frames"


# ------------------------------------------------------------------ The Well
def test_the_well_channels_constant_fields_and_parameters(tmp_path):
    path = tmp_path / "toy_flow" / "data" / "train" / "toy_flow_Re.hdf5"
    expected = write_the_well(path)
    reader = TheWellFile(path)
    assert reader.split == "train"
    assert list(reader.channel_names) == expected["channels"]
    assert_reads(reader, expected["fields"])
    np.testing.assert_allclose(reader.times, np.arange(5) * 0.25 + 1.0)
    np.testing.assert_allclose(reader.coords["x"], (np.arange(6) + 0.5) / 6)
    for name, values in expected["params"].items():
        np.testing.assert_array_equal(reader.sample_parameters[name], values)
    assert reader.attrs["boundary_x"] == "periodic"
    assert reader.attrs["boundary_y"] == "wall"
    assert reader.attrs["dataset_name"] == "toy_flow"


# ------------------------------------------------------------------ detection
def write_every_format(folder):
    write_pdebench_scalar(folder / "a.hdf5", random_fields((2, 3, 1, 4)))
    write_pdebench_seeds(folder / "b.h5", random_fields((2, 3, 1, 4, 4)))
    write_pdearena_ks(folder / "c.h5", "test", random_fields((2, 3, 1, 4)), np.ones(2))
    write_the_well(folder / "d.hdf5")
    return {"a.hdf5": "pdebench", "b.h5": "pdebench", "c.h5": "pdearena",
            "d.hdf5": "the_well"}  # fmt: skip


def test_format_is_detected_from_the_structure(tmp_path):
    for name, expected in write_every_format(tmp_path).items():
        assert detect_format(tmp_path / name) == expected
        (reader,) = open_files(tmp_path / name)
        assert reader.format_name == expected


def test_folder_opens_every_file_of_the_named_format(tmp_path):
    write_every_format(tmp_path)
    (tmp_path / "stats.yaml").write_text("mean: {}\n")  # not an HDF5 suffix: ignored
    readers = open_files(tmp_path, "pdebench")
    assert [r.path.name for r in readers] == ["a.hdf5", "b.h5"]
    (tmp_path / "e.h5").write_bytes(b"truncated")  # never skipped silently
    with pytest.raises(DatasetError, match="e.h5: not a readable HDF5 file"):
        open_files(tmp_path, "pdebench")


def test_bad_paths_and_formats_have_clear_messages(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        open_files(tmp_path / "missing.hdf5")
    (tmp_path / "empty").mkdir()
    with h5py.File(tmp_path / "empty" / "other.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(
        DatasetError, match=r"no files found.*other.h5 \(unrecognised\)"
    ):
        open_files(tmp_path / "empty")
    write_pdebench_scalar(tmp_path / "burgers.hdf5", random_fields((2, 3, 1, 4)))
    with pytest.raises(
        DatasetError, match="structure of a 'pdebench' file, not 'the_well'"
    ):
        open_files(tmp_path / "burgers.hdf5", "the_well")
    with pytest.raises(ValueError, match="'pdebnch' is not a known format"):
        open_files(tmp_path / "burgers.hdf5", "pdebnch")


# ------------------------------------------------------------------ malformed files
def write_small(kind, folder):
    """One small file of ``kind`` in its documented layout; returns its path."""
    path = folder / f"{kind}.h5"
    if kind == "scalar":
        write_pdebench_scalar(path, random_fields((2, 3, 1, 4)))
    elif kind == "cfd":
        write_pdebench_cfd(path, random_fields((2, 3, 4, 4, 4)))
    elif kind == "seeds":
        write_pdebench_seeds(path, random_fields((2, 3, 1, 4, 4)))
    elif kind == "ns":
        write_pdearena_ns(path, "train", random_fields((2, 3, 3, 4, 4)))
    elif kind == "ks":
        write_pdearena_ks(path, "train", random_fields((2, 3, 1, 4)), np.ones(2))
    else:
        write_the_well(path)
    return path


def replace(key, values):
    def mutate(f):
        attrs = dict(f[key].attrs)
        del f[key]
        f[key] = values
        f[key].attrs.update(attrs)

    return mutate


def delete(key):
    def mutate(f):
        del f[key]

    return mutate


def set_value(key, index, value):
    def mutate(f):
        f[key][index] = value

    return mutate


# (file kind, change to the file, what the one error must say after "<file>: ")
MALFORMED = {
    # a missing dataset
    "scalar-no-time": ("scalar", delete("t-coordinate"),
                       r"'t-coordinate' is missing; expected \[3\] or \[4\] coord"),
    "cfd-no-Vy": ("cfd", delete("Vy"),
                  r"'Vy' is missing; expected shape \(2, 3, 4, 4\)"),
    "seeds-no-data": ("seeds", delete("0001/data"),
                      r"'0001/data' is missing; expected \(T, X\[, Y\[, Z\]\], C\)"),
    "ns-no-vx": ("ns", delete("train/vx"), r"'train/vx' is missing; expected \(N, T"),
    "ks-no-dx": ("ks", delete("train/dx"), r"'train/dx' is missing; expected \(2,\)"),
    "well-no-t0": ("well", delete("t0_fields"),
                   r"'t0_fields' is missing; expected a group \(present even if"),
    # a wrong axis count
    "scalar-2-axes": ("scalar", replace("tensor", np.zeros((2, 3))),
                      r"'tensor' has 2 axes \(2, 3\); expected \(N, T, X\[, Y"),
    "seeds-2-axes": ("seeds", replace("0000/data", np.zeros((3, 4))),
                     r"'0000/data' has 2 axes; expected \(T, X"),
    "ns-3-axes": ("ns", replace("train/u", np.zeros((2, 3, 4))),
                  r"'train/u' has 3 axes \(2, 3, 4\); expected \(N, T, X, Y\)"),
    "well-vector-without-D": (
        "well", replace("t1_fields/velocity", np.zeros((3, 5, 6, 4), np.float32)),
        r"'t1_fields/velocity' has shape \(3, 5, 6, 4\); expected \(3, 5, 6, 4, 2\)"),
    # mismatched coordinate lengths
    "scalar-x": ("scalar", replace("x-coordinate", np.arange(5.0)),
                 r"'x-coordinate' has shape \(5,\); expected 4 entries"),
    "scalar-t": ("scalar", replace("t-coordinate", np.arange(7.0)),
                 r"'t-coordinate' has shape \(7,\); expected 3 \(or 4, the last"),
    "cfd-y": ("cfd", replace("y-coordinate", np.arange(3.0)),
              r"'y-coordinate' has shape \(3,\); expected 4 entries"),
    "seeds-t": ("seeds", replace("0000/grid/t", np.arange(9.0)),
                r"'0000/grid/t' has shape \(9,\); expected 3 \(or 4"),
    "ns-t": ("ns", replace("train/t", np.zeros((2, 5))),
             r"'train/t' has shape \(5,\); expected 3 entries"),
    "well-x": ("well", replace("dimensions/x", np.arange(7.0)),
               r"'t0_fields/obstacle' has shape \(6, 4\); expected \(7, 4\) .*grid "
               r"x=7, y=4 from the lengths of the dimensions/ coordinates"),
    # non-finite values (coordinates: at opening; fields: when read)
    "scalar-nan-time": ("scalar", set_value("t-coordinate", 1, np.nan),
                        r"'t-coordinate' holds NaN/Inf; expected finite coordinates"),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_file_raises_one_error_naming_file_dataset_expectation(
    tmp_path, case
):
    kind, mutate, message = MALFORMED[case]
    path = write_small(kind, tmp_path)
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(DatasetError, match=f"^{path}: {message}") as error:
        open_files(path)  # detected from the structure, then read
    assert str(error.value).count("\n") == 0
    assert str(error.value).endswith(
        "layout). Check the format option or repair the file."
    )


def test_field_shape_that_contradicts_its_varying_flags(tmp_path):
    path = tmp_path / "well.hdf5"
    write_the_well(path)
    with h5py.File(path, "a") as f:
        f["t0_fields/source"].attrs["time_varying"] = True  # but no time axis stored
    with pytest.raises(DatasetError, match=r"'t0_fields/source' has shape \(3, 6, 4\)"):
        TheWellFile(path)


@pytest.mark.parametrize(
    ("kind", "key", "index", "message"),
    [
        ("seeds", "0001/data", (2, 1, 0, 0), r"'0001/data' holds NaN/Inf in "
         r"trajectory 1 \(frame 2\); expected finite"),
        ("ns", "train/vy", (1, 2, 0, 0), r"'train/vy' holds NaN/Inf in trajectory 1 "
         r"\(frame 2\)"),
        ("well", "t1_fields/velocity", (1, 2, 0, 0, 1), r"'t1_fields/velocity' holds "
         r"NaN/Inf in trajectory 1 \(frame 2\)"),
    ],
)  # fmt: skip
def test_non_finite_values_name_dataset_trajectory_and_frame(
    tmp_path, kind, key, index, message
):
    path = write_small(kind, tmp_path)
    with h5py.File(path, "a") as f:
        f[key][index] = np.inf
    (reader,) = open_files(path)
    reader.read(0)
    with pytest.raises(DatasetError, match=f"^{path}: {message}"):
        reader.read(1, slice(1, None))


# ------------------------------------------------------------------ laziness
def test_readers_pickle_without_handles_and_follow_the_file_chunks(tmp_path):
    path = tmp_path / "burgers.hdf5"
    fields = random_fields((4, 12, 1, 8))
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=fields[:, :, 0], chunks=(1, 5, 8))
        f["x-coordinate"] = np.arange(8.0)
        f["t-coordinate"] = np.arange(13.0)
    reader = PDEBenchFile(path)
    assert reader.chunks == (1, 5, 1, 8)
    reader.read(0)
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._handle is None  # a worker opens its own handle
    np.testing.assert_array_equal(clone.read(3), fields[3])


def test_sequential_passes_read_whole_chunks_in_file_order(tmp_path, monkeypatch):
    path = tmp_path / "burgers.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=random_fields((3, 12, 8)), chunks=(1, 5, 8))
        f["x-coordinate"] = np.arange(8.0)
        f["t-coordinate"] = np.arange(13.0)
    reader = PDEBenchFile(path)
    reads = []
    read = reader.read
    monkeypatch.setattr(
        reader, "read", lambda i, frames: reads.append((i, frames)) or read(i, frames)
    )
    source_statistics(reader)
    blocks = [(i, slice(s, min(s + 5, 12))) for i in range(3) for s in (0, 5, 10)]
    assert reads == blocks  # one chunk per read, trajectory after trajectory
