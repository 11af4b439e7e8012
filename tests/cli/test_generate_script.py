"""`python scripts/generate.py`: generates, shards, and reports errors in one line."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import physim.solvers
from physim.data import TrajectoryFile, load_statistics

REPO = Path(__file__).resolve().parents[2]

# A cheap exact PDE in an importable module of its own (the subprocess imports it).
FAKE_MODULE = """
import math
import torch
from physim.timestepping import StepResult

class Decay:
    name = "decay"
    channel_names = ("u",)
    spatial_dims = ("x",)
    order = 1
    def __init__(self, num_points=8, rate=0.5):
        self.num_points, self.rate = num_points, rate
        self.dtype, self.device = torch.float64, torch.device("cpu")
        self.grid_spacing = 1.0 / num_points
    def encode(self, u):
        return u.to(self.dtype)
    def decode(self, y):
        return y
    def step(self, y, t, dt):
        return StepResult(y * math.exp(-self.rate * dt))
    def coordinates(self, num_points=None):
        m = num_points or self.num_points
        return {"x": torch.arange(m, dtype=torch.float64) / m}
    def parameters(self):
        return {"rate": self.rate, "num_points": self.num_points}

class Normal:
    def __init__(self, num_points=8):
        self.num_points = num_points
    def sample(self, n, *, generator=None, dtype=torch.float64, device="cpu"):
        u = torch.randn(n, 1, self.num_points, generator=generator)
        return u.to(dtype=dtype, device=device)
    def parameters(self):
        return {"num_points": self.num_points}
"""

FAKE_CONFIG = """
_target_: physim.data.TrajectoryDataModule
root: ${paths.data_dir}/decay
num_channels: 1
generator:
  _target_: physim.solvers._generate.DatasetGenerator
  name: decay
  pde: {_target_: fakepde.Decay, num_points: 8, rate: 0.5}
  initial_condition: {_target_: fakepde.Normal, num_points: "${..pde.num_points}"}
  controller: {_target_: physim.timestepping.ConstantStep, dt: 0.25}
  num_trajectories: {train: 3, valid: 2, test: 1}
  num_frames: 3
  output_interval: 0.5
  shard_size: 2
  seed: 0
"""


@pytest.fixture()
def workspace(tmp_path):
    (tmp_path / "fakepde.py").write_text(FAKE_MODULE)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "fake.yaml").write_text(textwrap.dedent(FAKE_CONFIG))
    return tmp_path


def run(workspace, *overrides, config_dir=True, env=None, flags=()):
    env = dict(os.environ, PYTHONPATH=f"{workspace}{os.pathsep}{REPO}", **(env or {}))
    env.pop("PHYSIM_DEBUG", None)
    command = [sys.executable, str(REPO / "scripts" / "generate.py"), *flags]
    if config_dir:
        command += ["--config-dir", str(workspace / "conf")]
    multirun = "-m" in flags
    command += [
        f"paths.data_dir={workspace / 'data'}",
        *([] if multirun else [f"hydra.run.dir={workspace / 'out'}"]),
        "progress=false",
        *overrides,
    ]
    return subprocess.run(
        command, cwd=workspace, env=env, capture_output=True, text=True, timeout=300
    )


def test_generates_in_parallel_shards_then_assembles(workspace):
    root = workspace / "data" / "decay"
    first = run(workspace, "data=fake", "shards=[1]")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (root / ".shards").iterdir()) == ["train-00001.h5"]
    second = run(workspace, "data=fake", "shards=[0]", "splits=[train,valid,test]")
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "stats.json",
        "test.h5",
        "train.h5",
        "valid.h5",
    ]
    file = TrajectoryFile(root / "train.h5")
    assert file.shape == (3, 3, 1, 8)
    np.testing.assert_array_equal(file.times, [0.5, 1.0, 1.5])
    first_frames = np.stack([file.read(i)[0] for i in range(3)])
    last_frames = np.stack([file.read(i)[-1] for i in range(3)])
    np.testing.assert_allclose(last_frames, first_frames * np.exp(-0.5), rtol=1e-6)
    assert (
        load_statistics(root)["fingerprint"] == file.attrs["physim_dataset_fingerprint"]
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.generator.num_trajectories.train=0"],
            "num_trajectories.train must be a positive",
        ),
        (["splits=[training]"], "unknown split 'training'"),
        (["data.generator.output_interval=-1"], "output_interval must be > 0"),
    ],
)
def test_user_errors_are_one_line_with_exit_status_1(workspace, overrides, message):
    result = run(workspace, "data=fake", *overrides)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("physim: error:"), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_foreign_file_in_the_root_is_named(workspace):
    root = workspace / "data" / "decay"
    root.mkdir(parents=True)
    (root / "valid.h5").write_text("something else")
    result = run(workspace, "data=fake")
    assert result.returncode == 1
    assert "valid.h5: not a readable HDF5 file" in result.stderr
    assert (root / "valid.h5").read_text() == "something else"


def test_ns2d_config_generates_a_tiny_dataset(workspace):
    if not hasattr(physim.solvers, "DatasetGenerator"):
        pytest.skip("physim.solvers does not export DatasetGenerator yet")
    result = run(
        workspace,
        "data=ns2d",
        "data.generator.pde.num_points=16",
        "data.generator.store_points=8",
        "data.generator.num_frames=2",
        "data.generator.num_trajectories={train: 2, valid: 1, test: 1}",
        "data.generator.controller.dt_max=0.1",
        config_dir=False,
    )
    assert result.returncode == 0, result.stderr
    file = TrajectoryFile(workspace / "data" / "ns2d" / "train.h5")
    assert file.shape == (2, 2, 1, 8, 8) and file.channel_names == ("vorticity",)
    assert (
        file.attrs["pde"] == "navier_stokes_2d"
        and file.attrs["param_viscosity"] == 1e-3
    )


def file_contents(path):
    """Every dataset's bytes and every attribute of an HDF5 file (``created``, the
    wall-clock time of writing, left out)."""
    contents = {}
    with h5py.File(path, "r") as file:
        contents["/"] = {k: v for k, v in file.attrs.items() if k != "created"}

        def visit(name, node):
            if isinstance(node, h5py.Dataset):
                contents[name] = (node[()].tobytes(), dict(node.attrs.items()))

        file.visititems(visit)
    return repr(contents)


def test_joblib_multirun_over_shards_matches_one_process(workspace):
    # One job per shard through Hydra's joblib launcher; the last job to finish
    # assembles. The files equal a single-process run's, bit for bit.
    single = run(
        workspace,
        "data=fake",
        "paths.data_dir=" + str(workspace / "one"),
        "progress=true",
        env={"PHYSIM_PROGRESS_SECONDS": "0.2"},
    )
    assert single.returncode == 0, single.stderr
    # Output to a pipe, not a terminal: plain progress lines, no rich bars.
    assert "decay: shards: 4/4 (100%)" in single.stdout
    assert "Statistics of train.h5: 3/3 (100%)" in single.stdout
    assert "━" not in single.stdout
    sweep = run(
        workspace,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "data=fake",
        "shards=0,1",
        "paths.data_dir=" + str(workspace / "many"),
        flags=["-m"],
    )
    assert sweep.returncode == 0, sweep.stderr
    # The default sweep folder, under the launch folder: one sub-folder per job.
    (folder,) = (workspace / "outputs" / "generate" / "multirun").iterdir()
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["0", "1"]
    for split in ("train", "valid", "test"):
        one = workspace / "one" / "decay" / f"{split}.h5"
        many = workspace / "many" / "decay" / f"{split}.h5"
        assert file_contents(one) == file_contents(many), split
    assert not (workspace / "many" / "decay" / ".shards").exists()
    stats = [
        json.loads((workspace / d / "decay" / "stats.json").read_text())
        for d in ("one", "many")
    ]
    assert stats[0] == stats[1]


def test_submitit_launcher_config_composes(workspace):
    # SLURM is not needed to check the launcher config: --cfg prints it, no job runs
    # (`-m` with `shards=0,1` would submit one job per shard).
    done = run(
        workspace,
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=600",
        "data=fake",
        "shards=0",
        flags=["--cfg", "hydra", "--package", "hydra.launcher"],
    )
    assert done.returncode == 0, done.stderr
    assert "SlurmLauncher" in done.stdout and "partition: gpu" in done.stdout
    assert not (workspace / "data").exists()


def test_unstable_courant_number_is_refused_before_any_work(workspace):
    done = run(
        workspace,
        "data=ns2d",
        "data.generator.controller.courant_number=5",
        config_dir=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "courant_number=5 exceeds 1" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (workspace / "data").exists()


@pytest.mark.parametrize("where", ["file_parent", "read_only"])
def test_unusable_output_folder_is_one_line(workspace, where):
    if where == "file_parent":
        (workspace / "afile").write_text("")
        folder = workspace / "afile" / "run"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (workspace / "ro").mkdir(mode=0o555)
        folder = workspace / "ro" / "run"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "generate.py"),
            f"hydra.run.dir={folder}",
            f"paths.data_dir={workspace / 'data'}",
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("physim: error:"), done.stderr
    assert f"hydra.run.dir={folder}" in lines[0] and "writable" in lines[0]
