"""Foreign files as physim splits: seeded splitting, folders of split files, cached
statistics, TrajectoryDataModule(external=...) and the ready data configs."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from physim.data import DatasetError, TrajectoryDataModule
from physim.data.readers import ExternalSource, _source
from physim.models import FNO
from physim.tasks import AutoregressiveSurrogate
from tests.cli.conftest import compose_train
from tests.helpers.external import (
    random_fields,
    write_pdearena_ks,
    write_pdearena_ns,
    write_pdebench_scalar,
    write_pdebench_seeds,
    write_the_well,
)


@pytest.fixture()
def burgers(tmp_path):
    fields = random_fields((20, 9, 1, 16))
    fields += 3.0 * np.arange(20, dtype=np.float32)[:, None, None, None]
    path = tmp_path / "burgers.hdf5"
    write_pdebench_scalar(path, fields, Nu=0.01)
    return path, fields


def test_one_split_file_is_split_by_trajectory_with_a_seed(burgers):
    path, fields = burgers
    source = ExternalSource(path)
    sizes = {s: v.num_trajectories for s, v in source.splits.items()}
    assert sizes == {"train": 16, "valid": 2, "test": 2}
    chosen = np.concatenate([v.indices for v in source.splits.values()])
    assert sorted(chosen.tolist()) == list(range(20))  # disjoint, complete
    for view in source.splits.values():
        assert np.all(np.diff(view.indices) > 0)  # file order: reads follow the layout
        for i, index in enumerate(view.indices):
            np.testing.assert_array_equal(view.read(i), fields[index])
    again = ExternalSource(path)
    np.testing.assert_array_equal(
        again.splits["test"].indices, source.splits["test"].indices
    )
    other = ExternalSource(path, split_seed=1)
    assert not np.array_equal(
        other.splits["test"].indices, source.splits["test"].indices
    )
    assert source.splits["valid"].attrs["split"] == "valid"


def test_folder_with_all_three_splits_is_used_as_is(tmp_path):
    data = tmp_path / "toy_flow" / "data"
    a = write_the_well(data / "train" / "a.hdf5", num=2)
    b = write_the_well(data / "train" / "b.hdf5", num=3)
    write_the_well(data / "valid" / "c.hdf5", num=1)
    write_the_well(data / "test" / "d.hdf5", num=2)
    source = ExternalSource(data, channels=["velocity_y", "density"])
    train = source.splits["train"]
    assert [v.num_trajectories for v in source.splits.values()] == [5, 1, 2]
    assert train.channel_names == ("velocity_y", "density")
    expected = np.concatenate([a["fields"], b["fields"]])[:, :, [3, 0]]
    for i in range(5):
        np.testing.assert_array_equal(train.read(i), expected[i])
    np.testing.assert_array_equal(
        train.sample_parameters["Reynolds"], [100.0, 300.0, 100.0, 200.0, 300.0]
    )


def test_split_errors(tmp_path, burgers):
    data = tmp_path / "well" / "data"
    write_the_well(data / "train" / "a.hdf5", num=2)
    write_the_well(data / "test" / "b.hdf5", num=2)
    with pytest.raises(DatasetError, match=r"holds the splits \['test', 'train'\]"):
        ExternalSource(data)
    with pytest.raises(DatasetError, match="2 trajectories cannot be split"):
        ExternalSource(data / "train")
    with pytest.raises(ValueError, match="split_fractions"):
        ExternalSource(burgers[0], split_fractions={"train": 0.9, "test": 0.1})
    with pytest.raises(ValueError, match=r"\['v'\] not among the channels \['u'\]"):
        ExternalSource(burgers[0], channels=["v"])


def test_statistics_are_cached_outside_the_users_folder(tmp_path, burgers, monkeypatch):
    path, fields = burgers
    source = ExternalSource(path)
    cache = tmp_path / "cache"
    stats = source.statistics(cache, progress=False)
    train = fields[source.splits["train"].indices].astype(np.float64)
    np.testing.assert_allclose(stats["mean"], [train.mean()], rtol=1e-12)
    np.testing.assert_allclose(stats["std"], [train.std()], rtol=1e-12)
    np.testing.assert_allclose(
        stats["delta_std"], [np.diff(train, axis=1).std()], rtol=1e-12
    )
    assert stats["parameters"]["Nu"] == {"mean": 0.01, "std": 0.0}
    assert sorted(p.name for p in path.parent.iterdir()) == ["burgers.hdf5", "cache"]
    (folder,) = cache.iterdir()
    assert (folder / "stats.json").is_file()

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(_source, "source_statistics", fail)
    assert ExternalSource(path).statistics(cache) == stats  # same files: cached
    with pytest.raises(AssertionError, match="recomputed"):  # other split: new key
        ExternalSource(path, split_seed=3).statistics(cache)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_datamodule_reads_external_files_lazily(tmp_path, burgers, num_workers):
    path, fields = burgers
    dm = TrajectoryDataModule(
        tmp_path / "cache",
        num_channels=1,
        time_history=3,
        time_future=2,
        batch_size=4,
        in_memory=False,
        num_workers=num_workers,
        external=ExternalSource(path),
    )
    dm.prepare_data()
    dm.setup("fit")
    indices = dm.external.splits["train"].indices
    windows = dm.window_dataset("train")
    assert len(windows) == 16 * 5
    seen = 0
    for batch in dm.train_dataloader():
        for history, future, params in zip(
            batch["history"], batch["future"], batch["params"], strict=True
        ):
            # Trajectory i is offset by 3 i: recover it, then find the window.
            trajectory = indices[
                np.argmin(np.abs(indices * 3.0 - history.mean().item()))
            ]
            window = torch.cat([history, future])
            starts = [
                s
                for s in range(5)
                if np.array_equal(window.numpy(), fields[trajectory, s : s + 5])
            ]
            assert len(starts) == 1
            assert params.tolist() == [pytest.approx(0.01)]
            seen += 1
    assert seen == len(windows)
    rollout = next(iter(dm.val_dataloader()[1]))["trajectory"]
    valid = dm.external.splits["valid"].indices
    np.testing.assert_array_equal(rollout.numpy(), fields[valid])


def compose_data(config, path, tmp_path, *overrides):
    cfg = compose_train(
        [f"data={config}", f"data.external.path={path}", *overrides], tmp_path
    )
    with open_dict(cfg):
        cfg.paths.data_dir = str(tmp_path / "data")
    return instantiate(cfg.data)


def test_ready_configs_match_their_formats(tmp_path):
    burgers = tmp_path / "burgers.hdf5"
    write_pdebench_scalar(burgers, random_fields((10, 14, 1, 8)))
    smoke = tmp_path / "smoke"
    smoke.mkdir()
    for split in ("train", "valid", "test"):
        write_pdearena_ns(
            smoke / f"ns_{split}.h5", split, random_fields((2, 6, 3, 8, 8))
        )
    well = tmp_path / "trl" / "data" / "train" / "a.hdf5"
    write_the_well(well, num=10, frames=6)
    react = tmp_path / "react.h5"
    write_pdebench_seeds(react, random_fields((10, 14, 2, 4, 4)))
    ks = tmp_path / "ks"
    ks.mkdir()
    for split in ("train", "valid", "test"):
        write_pdearena_ks(
            ks / f"KS_{split}.h5", split, random_fields((2, 6, 1, 8)), np.ones(2)
        )
    cases = [
        ("pdebench_burgers", burgers, []),
        ("pdebench_diff_react", react, []),
        ("pdearena_ns_smoke", smoke, []),
        ("pdearena_ks", ks, []),
        ("external", well, ["data.num_channels=8"]),
    ]
    for config, path, overrides in cases:
        dm = compose_data(config, path, tmp_path, *overrides)
        dm.prepare_data()
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
        assert batch["history"].shape[1:3] == (dm.time_history, dm.num_channels)
        assert dm.statistics["channel_names"] == list(dm.files["train"].channel_names)
        assert str(tmp_path / "data") in str(dm.root)
    dm = compose_data("the_well", well.parent.parent, tmp_path)
    with pytest.raises(DatasetError, match=r"holds 8 channel\(s\).*num_channels=4"):
        dm.setup("fit")


def test_constant_fields_normalise_to_finite_values(tmp_path):
    """The Well's constant fields (``obstacle`` constant everywhere, ``source`` per
    sample) are conditioning inputs with their own statistics, not channels: the
    channels' one-step differences all vary, and a task fed the constants as extra
    input channels has a finite loss."""
    path = tmp_path / "toy_flow" / "data" / "train" / "a.hdf5"
    expected = write_the_well(path, num=10)
    dm = TrajectoryDataModule(
        tmp_path / "cache", num_channels=8, batch_size=4, external=ExternalSource(path)
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.constant_names == ("obstacle", "source")
    train = expected["fields"][dm.external.splits["train"].indices].astype(np.float64)
    delta_std = np.diff(train, axis=1).std(axis=(0, 1, 3, 4))
    assert delta_std.min() > 0
    np.testing.assert_allclose(dm.statistics["delta_std"], delta_std, atol=1e-12)
    constants = expected["constants"][dm.external.splits["train"].indices]
    np.testing.assert_allclose(
        dm.statistics["constant_std"], constants.std(axis=(0, 2, 3)), rtol=1e-6
    )
    torch.manual_seed(0)
    task = AutoregressiveSurrogate(
        FNO(8 + 2, 8, n_modes=(4, 4), hidden_channels=4, n_layers=1),
        optimizer=torch.optim.Adam,
        num_channels=8,
        time_history=1,
        conditioning_fields=["obstacle", "source"],
    )
    task.set_statistics(dm.statistics)
    task.set_field_names(dm.constant_names, dm.scalar_names)
    loss = task.model_step(next(iter(dm.train_dataloader())))[0]
    assert torch.isfinite(loss)
