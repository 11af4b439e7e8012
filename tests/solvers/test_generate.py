"""DatasetGenerator on a tiny exact PDE: determinism, resume, shards, errors."""

import math
import shutil

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

from physim.data import (
    DatasetError,
    TrajectoryFile,
    compute_statistics,
    load_statistics,
)
from physim.solvers._generate import SHARD_DIR, DatasetGenerator, shard_seed
from physim.timestepping import CFLController, ConstantStep, NonFiniteError, StepResult


class Decay:
    """du/dt = -rate u on a periodic 1-D grid, stepped exactly: u0 exp(-rate t)."""

    name = "decay"
    channel_names = ("u",)
    spatial_dims = ("x",)
    order = 1

    def __init__(self, num_points=8, rate=0.5, dtype=torch.float64, device="cpu"):
        self.num_points = num_points
        self.rate = rate
        self.dtype = dtype
        self.device = torch.device(device)
        self.grid_spacing = 1.0 / num_points
        self.fail_on_shard = None  # raise when solving the shard with this encode count
        self.encodes = 0

    def encode(self, u):
        self.encodes += 1
        if self.encodes == self.fail_on_shard:
            raise RuntimeError("simulated crash")
        return u.to(self.dtype).clone()

    def decode(self, y):
        return y

    def step(self, y, t, dt):
        return StepResult(y * math.exp(-self.rate * dt))

    def max_speed(self, y):
        return y.abs().flatten(1).amax(dim=1)

    def coordinates(self, num_points=None):
        m = num_points or self.num_points
        return {"x": torch.arange(m, dtype=torch.float64) / m}

    def parameters(self):
        return {"rate": self.rate, "num_points": self.num_points, "scheme": "exact"}


class Normal:
    """White noise initial states; ``poison_row`` gets a huge value (to blow up)."""

    def __init__(self, num_points=8, scale=1.0, poison_row=None):
        self.num_points = num_points
        self.scale = scale
        self.poison_row = poison_row

    def sample(self, n, *, generator=None, dtype=torch.float64, device="cpu"):
        u = self.scale * torch.randn(
            n, 1, self.num_points, generator=generator, dtype=torch.float64
        )
        if self.poison_row is not None and self.poison_row < n:
            u[self.poison_row] = 1e308
        return u.to(dtype=dtype, device=device)

    def parameters(self):
        return {"num_points": self.num_points, "scale": self.scale}


COUNTS = {"train": 5, "valid": 3, "test": 2}


def make(**kwargs):
    pde = kwargs.pop("pde", None) or Decay()
    options = dict(
        num_trajectories=COUNTS, num_frames=4, output_interval=0.5, shard_size=2, seed=7
    )
    options.update(kwargs)
    controller = options.pop("controller", None) or ConstantStep(0.2)
    ic = options.pop("initial_condition", None) or Normal()
    return DatasetGenerator("decay", pde, ic, controller, **options)


def read_all(root):
    return {
        split: h5py.File(root / f"{split}.h5", "r")["fields"][()] for split in COUNTS
    }


def initial_states(gen, split):
    states = []
    for shard, indices in enumerate(gen.shard_ranges(split)):
        g = torch.Generator().manual_seed(shard_seed(gen.seed, split, shard))
        states.append(gen.initial_condition.sample(len(indices), generator=g))
    return torch.cat(states).numpy()


def test_files_hold_the_exact_solution_at_the_output_times(tmp_path):
    gen = make()
    root = tmp_path / "decay"
    assert not gen.is_complete(root)
    gen(root, progress=True)
    assert gen.is_complete(root)
    assert sorted(p.name for p in root.iterdir()) == [
        ".test.h5.finite",  # the writer's finite check (physim.data._format)
        ".train.h5.finite",
        ".valid.h5.finite",
        "stats.json",
        "test.h5",
        "train.h5",
        "valid.h5",
    ]
    times = np.array([0.5, 1.0, 1.5, 2.0])
    for split, count in COUNTS.items():
        file = TrajectoryFile(root / f"{split}.h5")
        assert file.shape == (count, 4, 1, 8) and file.dtype == np.float32
        np.testing.assert_array_equal(file.times, times)
        np.testing.assert_array_equal(file.coords["x"], np.arange(8) / 8)
        u0 = initial_states(gen, split)
        exact = u0[:, None] * np.exp(-0.5 * times)[None, :, None, None]
        stored = np.stack([file.read(i) for i in range(count)])
        np.testing.assert_allclose(stored, exact, rtol=1e-6, atol=1e-7)
        attrs = file.attrs
        assert attrs["split"] == split and attrs["num_trajectories"] == count
        assert attrs["pde"] == "decay" and attrs["param_rate"] == 0.5
        assert attrs["scheme"] == "exact" and attrs["ic_scale"] == 1.0
        assert (
            attrs["controller"] == "ConstantStep(dt=0.2)"
            and attrs["controller_dt"] == 0.2
        )
        assert attrs["seed"] == 7 and attrs["output_interval"] == 0.5
        assert attrs["physim_dataset_fingerprint"] == gen.fingerprint
        # 0.5 / 0.2: steps of 0.2, 0.2, 0.1 per output interval, for every shard.
        assert attrs["solver_steps_accepted"] == 3 * 4 * len(gen.shard_ranges(split))
    stats = load_statistics(root)
    assert stats == compute_statistics(root / "train.h5")
    assert stats["fingerprint"] == gen.fingerprint
    with xr.open_dataset(root / "train.h5", engine="h5netcdf") as ds:
        assert ds["fields"].dims == ("sample", "time", "channel", "x")


def test_first_output_time_zero_stores_the_initial_state(tmp_path):
    gen = make(first_output_time=0.0, store_dtype="float64")
    gen(tmp_path, progress=False)
    file = TrajectoryFile(tmp_path / "valid.h5")
    np.testing.assert_array_equal(file.times, [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(file.read(0)[0], initial_states(gen, "valid")[0])
    assert file.dtype == np.float64


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    make()(tmp_path / "a", progress=False)
    make()(tmp_path / "b", progress=False)
    make(seed=8)(tmp_path / "c", progress=False)
    a, b, c = (read_all(tmp_path / name) for name in "abc")
    for split in COUNTS:
        assert a[split].tobytes() == b[split].tobytes()
        assert not np.array_equal(a[split], c[split])
    attrs_a = TrajectoryFile(tmp_path / "a" / "train.h5").attrs
    attrs_b = TrajectoryFile(tmp_path / "b" / "train.h5").attrs
    attrs_a.pop("created"), attrs_b.pop("created")
    assert attrs_a == attrs_b
    assert load_statistics(tmp_path / "a") == load_statistics(tmp_path / "b")


def test_interrupted_generation_resumes_to_the_same_data(tmp_path):
    make()(tmp_path / "reference", progress=False)
    gen = make()
    gen.pde.fail_on_shard = 3  # train has shards 0, 1, 2: crash on the last one
    root = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        gen(root, progress=False)
    shards = sorted(p.name for p in (root / SHARD_DIR).iterdir())
    assert shards == [
        "train-00000.h5",
        "train-00001.h5",
    ]  # complete shards only, no temp
    assert not (root / "train.h5").exists() and not gen.is_complete(root)
    gen.pde.fail_on_shard = None
    gen.pde.encodes = 0
    gen(root, progress=False)
    assert gen.pde.encodes == 1 + 2 + 1  # resumed: 1 train shard, 2 valid, 1 test
    assert not (root / SHARD_DIR).exists()
    reference, resumed = read_all(tmp_path / "reference"), read_all(root)
    for split in COUNTS:
        assert reference[split].tobytes() == resumed[split].tobytes()
    # Idempotent: a complete dataset is left untouched.
    before = (root / "train.h5").stat().st_mtime_ns
    gen(root, progress=False)
    assert (root / "train.h5").stat().st_mtime_ns == before and gen.pde.encodes == 4


def test_processes_can_split_the_shards(tmp_path):
    make()(tmp_path / "reference", progress=False)
    root = tmp_path / "parallel"
    make()(root, shards=[0, 2], progress=False)  # "process A"
    assert not (root / "train.h5").exists()  # train shard 1 is missing
    assert (root / "test.h5").exists()  # test has one shard only
    make()(root, shards=[1], progress=False)  # "process B" finds all shards: assembles
    assert make().is_complete(root)
    reference, parallel = read_all(tmp_path / "reference"), read_all(root)
    for split in COUNTS:
        assert reference[split].tobytes() == parallel[split].tobytes()


def test_a_shard_does_not_depend_on_the_split_size(tmp_path):
    make()(tmp_path / "small", splits=["train"], progress=False)
    big = make(num_trajectories={"train": 9, "valid": 1, "test": 1})
    big(tmp_path / "big", splits=["train"], progress=False)
    small = TrajectoryFile(tmp_path / "small" / "train.h5")
    large = TrajectoryFile(tmp_path / "big" / "train.h5")
    for index in range(4):  # the two full shards are identical
        np.testing.assert_array_equal(small.read(index), large.read(index))
    assert not (tmp_path / "small" / "valid.h5").exists()
    assert (tmp_path / "small" / "stats.json").exists()


def test_cfl_controlled_float32_generation(tmp_path):
    gen = make(
        pde=Decay(dtype=torch.float32), controller=CFLController(0.5, dt_max=0.05)
    )
    gen(tmp_path, splits=["valid"], progress=False)
    file = TrajectoryFile(tmp_path / "valid.h5")
    exact = (
        initial_states(gen, "valid")[:, None] * np.exp(-0.5 * file.times)[:, None, None]
    )
    np.testing.assert_allclose(
        np.stack([file.read(i) for i in range(3)]), exact, rtol=1e-5, atol=1e-6
    )
    assert file.attrs["controller_courant_number"] == 0.5


def test_store_points_resamples_spectrally(tmp_path):
    spectral = pytest.importorskip("physim.solvers._spectral")
    gen = make(pde=Decay(num_points=16), initial_condition=Normal(16), store_points=8)
    gen(tmp_path, splits=["test"], progress=False)
    file = TrajectoryFile(tmp_path / "test.h5")
    assert file.spatial_shape == (8,)
    u0 = spectral.spectral_resample(
        torch.from_numpy(initial_states(gen, "test")), 8
    ).numpy()
    exact = u0[:, None] * np.exp(-0.5 * file.times)[:, None, None]
    np.testing.assert_allclose(
        np.stack([file.read(i) for i in range(2)]), exact, rtol=1e-5, atol=1e-6
    )


def test_blow_up_names_the_trajectory_of_the_split(tmp_path):
    gen = make(pde=Decay(rate=-20.0), initial_condition=Normal(poison_row=1))
    with pytest.raises(
        NonFiniteError, match=r"split 'train' \(shard 1.*trajectory\(ies\) \[3\]"
    ) as caught:
        gen(tmp_path, splits=["train"], shards=[1], progress=False)
    assert caught.value.indices == [3]
    assert not list((tmp_path / SHARD_DIR).glob("*.h5*"))


def test_files_of_another_spec_are_not_overwritten(tmp_path):
    make(seed=1)(tmp_path, progress=False)
    original = (tmp_path / "valid.h5").read_bytes()
    with pytest.raises(
        DatasetError,
        match="valid.h5: attribute 'physim_dataset_fingerprint'.*delete .*valid.h5",
    ):
        make(seed=2)(tmp_path, splits=["valid"], progress=False)
    assert (tmp_path / "valid.h5").read_bytes() == original
    assert not make(seed=2).is_complete(tmp_path)
    with pytest.raises(
        DatasetError, match=r"holds \[N, T, C\] = \[3, 4, 1\].*\[4, 4, 1\]"
    ):
        make(seed=1, num_trajectories={"valid": 4})(tmp_path, progress=False)


def test_corrupt_or_foreign_split_files_are_reported(tmp_path):
    (tmp_path / "train.h5").write_text("half a file")
    with pytest.raises(
        DatasetError, match="train.h5: not a readable HDF5 file.*delete"
    ):
        make()(tmp_path, progress=False)
    (tmp_path / "train.h5").unlink()
    with h5py.File(tmp_path / "valid.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(DatasetError, match="valid.h5: .*foreign.*choose another root"):
        make()(tmp_path, progress=False)


def test_foreign_shard_is_reported(tmp_path):
    make(seed=1)(tmp_path, shards=[0], splits=["train"], progress=False)
    with pytest.raises(DatasetError, match="train-00000.h5.*delete the shard folder"):
        make(seed=2)(tmp_path, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(num_trajectories={"training": 3}),
            "unknown or no split names.*'training'",
        ),
        (
            dict(num_trajectories={"train": 0}),
            "num_trajectories.train must be a positive",
        ),
        (dict(num_frames=0), "num_frames must be a positive integer, got 0"),
        (dict(output_interval=0.0), "output_interval must be > 0, got 0.0"),
        (dict(output_interval=-1.0), "output_interval must be > 0"),
        (dict(first_output_time=-0.5), "first_output_time must be >= 0"),
        (dict(shard_size=0), "shard_size must be a positive integer"),
        (dict(store_dtype="int8"), "store_dtype must be one of"),
    ],
)
def test_bad_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_bad_calls_are_rejected(tmp_path):
    gen = make()
    with pytest.raises(ValueError, match="unknown split 'training'"):
        gen(tmp_path, splits=["training"])
    with pytest.raises(ValueError, match=r"shard 3 does not exist.*0\.\.2"):
        gen(tmp_path, shards=[3])
    (tmp_path / "a_file").write_text("")
    with pytest.raises(
        DatasetError, match="a_file/root: cannot write the dataset here"
    ):
        gen(tmp_path / "a_file" / "root")
    with pytest.raises(ValueError, match=r"sample gave shape \(2, 1, 4\)"):
        make(initial_condition=Normal(4))(
            tmp_path / "x", splits=["test"], progress=False
        )


def test_fingerprint_covers_the_spec_but_not_the_counts():
    base = make()
    assert make().fingerprint == base.fingerprint
    assert make(num_trajectories={"train": 50}).fingerprint == base.fingerprint
    for changed in (
        make(seed=8),
        make(pde=Decay(rate=0.4)),
        make(output_interval=0.25),
        make(controller=ConstantStep(0.1)),
        make(shard_size=3),
        make(initial_condition=Normal(scale=2.0)),
    ):
        assert changed.fingerprint != base.fingerprint


def test_assembly_yields_to_a_process_that_assembled_first(tmp_path, monkeypatch):
    # TrajectoryFile is opened by the file checks and by the assembly.
    from physim.solvers._generate import _assemble, _files

    make()(tmp_path / "reference", splits=["train"], progress=False)
    root = tmp_path / "racing"
    gen = make()
    monkeypatch.setattr(DatasetGenerator, "_assemble", lambda self, root, split: False)
    gen(root, splits=["train"], progress=False)  # all shards solved, none assembled
    monkeypatch.undo()
    assert len(list((root / SHARD_DIR).glob("train-*.h5"))) == 3

    original = _files.TrajectoryFile

    def other_process_wins(path):
        if path.name == "train-00001.h5":  # meanwhile, another process assembled
            shutil.copy(tmp_path / "reference" / "train.h5", root / "train.h5")
            for shard in (root / SHARD_DIR).glob("train-*.h5"):
                shard.unlink()
        return original(path)

    for module in (_files, _assemble):
        monkeypatch.setattr(module, "TrajectoryFile", other_process_wins)
    assert gen._assemble(root, "train") is True
    monkeypatch.undo()
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["train.h5"]
    assert gen.is_complete(root) is False  # valid/test were never generated
    assert gen._split_complete(root, "train")
