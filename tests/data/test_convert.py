"""scripts/convert.py: foreign files to physim's format (training on the result sees
the very same batches) and to The Well's layout (a round trip reads back exactly)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from physim.cli.convert import convert
from physim.data import DatasetError, TrajectoryDataModule, TrajectoryFile
from physim.data.readers import ExternalSource, TheWellFile, to_physim, well_fields
from tests.cli.conftest import compose_train
from tests.helpers.external import (
    random_fields,
    write_pdearena_ns,
    write_pdebench_seeds,
    write_the_well,
)

REPO = Path(__file__).resolve().parents[2]


def batches(dm):
    dm.prepare_data()
    dm.setup("fit")
    loaders = [dm.train_dataloader(), *dm.val_dataloader(), *dm.test_dataloader()]
    return [[b for b in loader] for loader in loaders]


def write_dataset(kind, folder):
    """A small dataset of ``kind`` as users have it; returns its path and channels."""
    if kind == "pdebench":  # one file, split by trajectory
        write_pdebench_seeds(folder / "react.h5", random_fields((12, 8, 2, 6, 4)))
        return folder / "react.h5", 2
    if kind == "pdearena":  # one file per split, each with its split group
        for seed, (split, num) in enumerate((("train", 6), ("valid", 3), ("test", 3))):
            fields = random_fields((num, 8, 3, 6, 4), seed, np.float64)
            write_pdearena_ns(folder / f"ns_{split}.h5", split, fields)
        return folder, 3
    data = folder / "toy_flow" / "data"  # The Well: data/{train,valid,test}/
    for split, num in (("train", 5), ("valid", 2), ("test", 2)):
        write_the_well(data / split / f"toy_flow_{split}.hdf5", num=num, frames=8)
    return data, 8  # 8 time-varying channels; the 2 constant fields condition


@pytest.mark.parametrize("kind", ["pdebench", "pdearena", "the_well"])
def test_converted_file_trains_identically(tmp_path, kind):
    path, channels = write_dataset(kind, tmp_path)
    options = dict(num_channels=channels, time_history=2, time_future=2, batch_size=5)
    original = TrajectoryDataModule(
        tmp_path / "cache", external=ExternalSource(path), in_memory=False, **options
    )
    cfg = compose_train([f"path={path}", f"output={tmp_path / 'out'}"], tmp_path,
                        config_name="convert")  # fmt: skip
    root = convert(cfg)
    converted = TrajectoryDataModule(root, **options)
    for a, b in zip(batches(original), batches(converted), strict=True):
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert x.keys() == y.keys()
            assert "params" in x
            for key in x:
                torch.testing.assert_close(x[key], y[key], rtol=0, atol=0)
    for key in ("mean", "std", "delta_mean", "delta_std"):
        np.testing.assert_allclose(
            original.statistics[key], converted.statistics[key], rtol=1e-12
        )
    for split in ("train", "valid", "test"):
        source, file = original.files[split], TrajectoryFile(root / f"{split}.h5")
        assert file.attrs["split"] == split
        assert file.channel_names == source.channel_names
        assert file.parameter_names == source.parameter_names
        assert file.dtype == source.dtype
        np.testing.assert_array_equal(file.times, source.times)
        for dim, values in source.coords.items():
            np.testing.assert_array_equal(file.coords[dim], values)


def test_the_well_round_trip_through_physim(tmp_path):
    data = tmp_path / "toy_flow" / "data"
    expected = {
        split: write_the_well(data / split / f"{split}.hdf5", num=num)
        for split, num in (("train", 3), ("valid", 2), ("test", 2))
    }
    physim_root = tmp_path / "physim"
    run = tmp_path / "run"
    convert(compose_train([f"path={data}", f"output={physim_root}"], run, "convert"))
    well_root = tmp_path / "again"
    overrides = [f"path={physim_root}", f"output={well_root}", "to=the_well"]
    convert(compose_train([*overrides, "name=toy_flow"], run, "convert"))
    for split, written in expected.items():
        file = TheWellFile(
            well_root / "toy_flow" / "data" / split / f"toy_flow_{split}.hdf5"
        )
        assert file.split == split
        assert list(file.channel_names) == written["channels"]
        assert [f.key for f in file.fields][-2:] == [
            "t1_fields/velocity",
            "t2_fields/stress",
        ]
        for i in range(file.num_trajectories):
            np.testing.assert_array_equal(file.read(i), written["fields"][i])
        for name, values in written["params"].items():
            np.testing.assert_array_equal(file.sample_parameters[name], values)
        assert file.attrs["boundary_y"] == "wall"
        np.testing.assert_allclose(file.times, np.arange(5) * 0.25 + 1.0)
    stats = yaml.safe_load((well_root / "toy_flow" / "stats.yaml").read_text())
    velocity = expected["train"]["fields"][:, :, 2:4].astype(np.float64)
    np.testing.assert_allclose(
        stats["mean"]["velocity"], velocity.mean(axis=(0, 1, 3, 4)), rtol=1e-10
    )
    np.testing.assert_allclose(
        stats["rms"]["velocity"], np.sqrt((velocity**2).mean(axis=(0, 1, 3, 4))),
        rtol=1e-10,
    )  # fmt: skip


def test_channels_group_into_well_fields():
    names = ("p", "u_x", "u_y", "s_xx", "s_xy", "s_yx", "s_yy", "c_x")
    assert well_fields(names, ("x", "y")) == [
        ("p", 0, [0]),
        ("u", 1, [1, 2]),
        ("s", 2, [3, 4, 5, 6]),
        ("c_x", 0, [7]),  # no c_y: a scalar
    ]


def test_no_partial_output_and_no_silent_overwrite(tmp_path, monkeypatch):
    path = tmp_path / "react.h5"
    write_pdebench_seeds(path, random_fields((10, 4, 1, 4, 4)))
    source = ExternalSource(path)
    train = source.splits["train"]
    calls = []

    def failing_read(index, frames=slice(None)):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return type(train).read(train, index, frames)

    monkeypatch.setattr(train, "read", failing_read)
    with pytest.raises(KeyboardInterrupt):
        to_physim(source.splits, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []  # no file, no temporary file
    monkeypatch.undo()
    to_physim(source.splits, tmp_path / "out", progress=False)
    with pytest.raises(DatasetError, match="train.h5: already exists.*overwrite=true"):
        to_physim(source.splits, tmp_path / "out", progress=False)


def test_cli_reports_a_bad_path_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/convert.py", f"path={tmp_path / 'nope.h5'}",
         f"output={tmp_path / 'out'}", "hydra.run.dir=" + str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"physim: error: {tmp_path / 'nope.h5'}: no such file or folder. Set "
        "the path to a PDEBench, PDEArena, The Well or physim HDF5 file, or "
        "a folder holding them."
    ]
