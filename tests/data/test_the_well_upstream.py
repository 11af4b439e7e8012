"""physim against The Well's own code: its reader reads what ``WellDataset`` reads,
and files physim writes pass The Well's formatting checker and give back, through
``WellDataset`` with and without normalisation, the source arrays, constant fields,
scalars, parameters, boundary codes, grids and grid type.

``the_well`` is in the dev extra (it installs beside physim's dependencies). The
formatting checker is not part of that package (it is
``scripts/check_thewell_formatting.py`` in PolymathicAI/the_well) and physim does not
carry upstream code: point ``PHYSIM_WELL_CHECKER`` at a checkout's copy of the script to
run it in these tests (done for this change at commit 215f55d); without it the checker
step is skipped and the ``WellDataset`` round trips still run.
"""

import importlib.util
import os
import warnings

import h5py
import numpy as np
import pytest
import torch

from physim.data.readers import ExternalSource, TheWellFile, to_physim, to_the_well
from tests.helpers.external import random_fields, write_lpsda_ks, write_the_well

datasets = pytest.importorskip("the_well.data.datasets")
normalization = pytest.importorskip("the_well.data.normalization")

CODES = {"wall": 0, "open": 1, "periodic": 2}  # the_well's BoundaryCondition


def well_dataset(root, split, frames, **options):
    """One sample per trajectory holding all its frames (``n_steps_input=1``)."""
    return datasets.WellDataset(
        path=str(root),
        well_split_name=split,
        n_steps_input=1,
        n_steps_output=frames - 1,
        normalize_time_grid=False,
        **options,
    )


def whole(sample, key):
    """Input and output frames of a WellDataset sample, channels first."""
    frames = torch.cat([sample[f"input_{key}"], sample[f"output_{key}"]])
    return np.moveaxis(frames.numpy(), -1, 1) if key == "fields" else frames.numpy()


def assert_same_as_welldataset(reader, dataset):
    """Per trajectory: fields, constants, scalars, parameters, grids, boundaries."""
    for i in range(reader.num_trajectories):
        sample = dataset[i]
        np.testing.assert_array_equal(whole(sample, "fields"), reader.read(i))
        if reader.constant_names:
            constants = np.moveaxis(sample["constant_fields"].numpy(), -1, 0)
            np.testing.assert_array_equal(constants, reader.read_constants(i))
        if reader.scalar_names:
            np.testing.assert_array_equal(
                whole(sample, "scalars"), reader.read_scalars(i)
            )
        np.testing.assert_array_equal(
            sample["constant_scalars"].numpy(),
            np.stack(list(reader.sample_parameters.values()))[:, i],
        )
        times = torch.cat([sample["input_time_grid"], sample["output_time_grid"]])
        np.testing.assert_array_equal(times.numpy(), reader.times_of(i))
        coords = reader.coords_of(i)
        grid = sample["space_grid"].numpy()
        for axis, dim in enumerate(reader.spatial_dims):
            index = [0] * len(reader.spatial_dims)
            index[axis] = slice(None)
            np.testing.assert_array_equal(grid[(*index, axis)], coords[dim])
    codes = dataset[0]["boundary_conditions"].numpy()
    for axis, dim in enumerate(reader.spatial_dims):
        kind = reader.attrs.get(f"boundary_{dim}", "open").split(",")
        assert codes[axis].tolist() == [CODES[k] for k in kind * (3 - len(kind))]


def write_well_source(root, **options):
    """Three splits; no field constant along an axis (WellDataset 1.2.0 cannot read
    one, see the test against ``hdf5_to_xarray``)."""
    expected = {}
    for split, num in (("train", 3), ("valid", 2), ("test", 2)):
        path = root / "data" / split / f"toy_flow_{split}.hdf5"
        expected[split] = write_the_well(path, num=num, profile=False, **options)
        with h5py.File(path, "a") as f:
            f.attrs["grid_type"] = "spherical"  # carried, never reset to cartesian
    return expected


def _upstream_checker():
    """``check_hdf5_format`` from the script at ``PHYSIM_WELL_CHECKER``, or ``None``."""
    script = os.environ.get("PHYSIM_WELL_CHECKER")
    if not script:
        return None
    spec = importlib.util.spec_from_file_location("check_thewell_formatting", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check_hdf5_format


def checked(path):
    """Run The Well's formatting checker (when available); its naming warnings count
    as failures."""
    check_hdf5_format = _upstream_checker()
    if check_hdf5_format is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_hdf5_format(str(path))


def test_reader_reads_what_welldataset_reads(tmp_path):
    root = tmp_path / "toy_flow"
    write_well_source(root, sample_varying=True, time_scalar=True)
    reader = TheWellFile(root / "data" / "train" / "toy_flow_train.hdf5")
    checked(reader.path)  # the fixture itself follows the rules
    dataset = well_dataset(root, "train", 5)
    assert dataset.metadata.constant_field_names[0] == list(reader.constant_names)
    assert dataset.metadata.scalar_names == list(reader.scalar_names)
    assert_same_as_welldataset(reader, dataset)


def test_a_field_constant_along_an_axis_reads_as_hdf5_to_xarray(tmp_path):
    """The Well's own xarray export broadcasts ``dim_varying = False`` axes; so does
    physim (WellDataset 1.2.0 tiles them wrongly, so it is not the reference)."""
    export = pytest.importorskip("the_well.utils.export")
    path = tmp_path / "a.hdf5"
    write_the_well(path, num=2)
    reader = TheWellFile(path)
    with h5py.File(path) as f:
        ds = export.hdf5_to_xarray(f)
    profile = reader.channel_names.index("profile")
    for i in range(2):
        np.testing.assert_array_equal(
            reader.read(i)[:, profile], ds["profile"].isel(sample=i).values
        )
        np.testing.assert_array_equal(  # obstacle: no sample axis
            reader.read_constants(i)[0], ds["obstacle"].values
        )


@pytest.mark.parametrize("via_physim", [False, True])
def test_converted_well_files_are_valid_and_read_back_exactly(tmp_path, via_physim):
    root = tmp_path / "toy_flow"
    expected = write_well_source(root, sample_varying=True, time_scalar=True)
    source = ExternalSource(root / "data")
    if via_physim:  # The Well -> physim -> The Well
        physim_root = to_physim(source.splits, tmp_path / "physim", progress=False)
        source = ExternalSource(physim_root)
    out = to_the_well(
        source.splits, tmp_path / "out", "toy_flow", boundaries={"y": "wall,open"},
        progress=False,
    )  # fmt: skip
    for split, written in expected.items():
        path = out / "data" / split / f"toy_flow_{split}.hdf5"
        checked(path)
        dataset = well_dataset(out, split, 5)
        assert dataset.metadata.grid_type == "spherical"
        reader = TheWellFile(path)
        assert reader.attrs["boundary_x"] == "periodic"
        assert reader.attrs["boundary_y"] == "wall,open"  # as asked: lower, upper
        assert_same_as_welldataset(reader, dataset)
        for i in range(reader.num_trajectories):
            np.testing.assert_array_equal(reader.read(i), written["fields"][i])
            np.testing.assert_array_equal(
                reader.read_constants(i), written["constants"][i]
            )
            np.testing.assert_array_equal(reader.times_of(i), written["times"][i])
        for name, values in written["params"].items():
            np.testing.assert_array_equal(reader.sample_parameters[name], values)
        with h5py.File(path) as f:  # a varying parameter: an [N] root attribute
            np.testing.assert_array_equal(
                f.attrs["Reynolds"], written["params"]["Reynolds"]
            )


@pytest.mark.parametrize("normalizer", ["ZScoreNormalization", "RMSNormalization"])
def test_welldataset_normalises_with_the_converted_statistics(tmp_path, normalizer):
    root = tmp_path / "toy_flow"
    expected = write_well_source(root)["train"]
    out = to_the_well(
        ExternalSource(root / "data").splits, tmp_path / "out", "toy_flow",
        progress=False,
    )  # fmt: skip
    dataset = well_dataset(
        out, "train", 5, use_normalization=True,
        normalization_type=getattr(normalization, normalizer),
    )  # fmt: skip
    fields = expected["fields"].astype(np.float64)  # [N, T, C, X, Y], t2 included
    constants = expected["constants"].astype(np.float64)  # [N, K, X, Y]
    if normalizer == "ZScoreNormalization":
        shift, scale = fields.mean(axis=(0, 1, 3, 4)), fields.std(axis=(0, 1, 3, 4))
        c_shift, c_scale = constants.mean(axis=(0, 2, 3)), constants.std(axis=(0, 2, 3))
    else:
        shift, scale = 0.0, np.sqrt((fields**2).mean(axis=(0, 1, 3, 4)))
        c_shift, c_scale = 0.0, np.sqrt((constants**2).mean(axis=(0, 2, 3)))
    per_channel = (slice(None), None, None)
    for i in range(fields.shape[0]):
        sample = dataset[i]
        np.testing.assert_allclose(
            whole(sample, "fields"),
            (fields[i] - np.reshape(shift, (-1, *[1] * 2))) / scale[per_channel],
            rtol=1e-4, atol=1e-5,
        )  # fmt: skip
        np.testing.assert_allclose(
            np.moveaxis(sample["constant_fields"].numpy(), -1, 0),
            (constants[i] - np.reshape(c_shift, (-1, 1, 1))) / c_scale[per_channel],
            rtol=1e-4, atol=1e-5,
        )  # fmt: skip


def test_lpsda_ks_becomes_a_sample_varying_well_file(tmp_path):
    folder = tmp_path / "ks"
    folder.mkdir()
    written = {}
    for seed, (split, num) in enumerate((("train", 4), ("valid", 2), ("test", 2))):
        fields = random_fields((num, 6, 1, 8), seed)
        written[split] = (
            fields,
            write_lpsda_ks(folder / f"KS_{split}.h5", split, fields),
        )
    splits = ExternalSource(folder).splits
    out = to_the_well(
        splits, tmp_path / "out", "ks", boundaries={"x": "periodic"}, progress=False
    )
    for split, (fields, coords) in written.items():
        path = out / "data" / split / f"ks_{split}.hdf5"
        checked(path)
        reader = TheWellFile(path)
        assert reader.varying_coordinates == ("time", "x")
        assert_same_as_welldataset(reader, well_dataset(out, split, 6))
        for i in range(len(fields)):
            np.testing.assert_array_equal(reader.read(i), fields[i])
            np.testing.assert_array_equal(reader.times_of(i), coords["t"][i])
            np.testing.assert_array_equal(reader.coords_of(i)["x"], coords["x"][i])
