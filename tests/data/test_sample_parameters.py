"""Per-trajectory parameters: format, generation, windows, statistics, conditioning."""

import math
from functools import partial

import numpy as np
import pytest
import torch
import xarray as xr

from physim.data import (
    TrajectoryDataModule,
    TrajectoryFile,
    TrajectoryWriter,
    write_trajectories,
)
from physim.models import FNO
from physim.solvers._generate import DatasetGenerator
from physim.tasks import AutoregressiveSurrogate
from physim.timestepping import ConstantStep, StepResult

COUNTS = {"train": 6, "valid": 2, "test": 2}


def write(path, n=3, **kwargs):
    fields = np.random.default_rng(0).random((n, 4, 1, 8)).astype(np.float32)
    return write_trajectories(
        path,
        fields,
        times=np.arange(4.0),
        coords={"x": np.arange(8.0)},
        channel_names=["u"],
        attrs={"pde": "test"},
        **kwargs,
    )


def test_parameters_round_trip_and_show_in_xarray(tmp_path):
    lengths, steps = np.array([60.0, 64.0, 70.0]), np.array([0.18, 0.2, 0.22])
    path = write(tmp_path / "a.h5", sample_parameters={"L": lengths, "dt": steps})
    file = TrajectoryFile(path)
    assert file.parameter_names == ("L", "dt")
    np.testing.assert_array_equal(file.sample_parameters["L"], lengths)
    np.testing.assert_array_equal(file.sample_parameters["dt"], steps)
    assert "sample_parameters" not in file.attrs
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["L"].dims == ("sample",)
        np.testing.assert_array_equal(ds["dt"].values, steps)
    assert TrajectoryFile(write(tmp_path / "b.h5")).sample_parameters == {}


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"L": [1.0, 2.0]}, "needs 3 finite"),
        ({"L": [1.0, np.nan, 2.0]}, "needs 3 finite"),
        ({"x": [1.0, 2.0, 3.0]}, "not allowed"),
        ({"fields": [1.0, 2.0, 3.0]}, "not allowed"),
    ],
)
def test_bad_parameters_are_rejected_and_leave_no_file(tmp_path, parameters, message):
    with pytest.raises(ValueError, match=message):
        write(tmp_path / "a.h5", sample_parameters=parameters)
    assert list(tmp_path.iterdir()) == []


def test_writer_requires_exactly_the_declared_parameters(tmp_path):
    writer = TrajectoryWriter(
        tmp_path / "a.h5",
        num_trajectories=1,
        times=[0.0, 1.0],
        coords={"x": [0.0, 0.5]},
        channel_names=["u"],
        attrs={},
        parameter_names=["L"],
    )
    with pytest.raises(ValueError, match=r"holds \['L'\]"), writer:
        writer.write(0, np.zeros((2, 1, 2)))
    assert not (tmp_path / "a.h5").exists()


class RateDecay:
    """du/dt = -rate_i u with a rate per trajectory (after ``bind``); exact steps."""

    name = "rate_decay"
    channel_names = ("u",)
    spatial_dims = ("x",)
    order = 1
    dtype = torch.float64
    device = torch.device("cpu")

    def __init__(self, num_points=8, rates=None):
        self.num_points = num_points
        self.rates = rates

    def bind(self, parameters):
        return RateDecay(self.num_points, parameters["rate"])

    def encode(self, u):
        return u.clone()

    def decode(self, y):
        return y

    def step(self, y, t, dt):
        return StepResult(y * torch.exp(-self.rates * dt)[:, None, None])

    def coordinates(self, num_points=None):
        m = num_points or self.num_points
        return {"x": torch.arange(m, dtype=torch.float64) / m}

    def parameters(self):
        return {"num_points": self.num_points}


class SineWithRate:
    """``a sin(2 pi (x + phase))``, a in [0.5, 2], and a rate in [0.2, 2] each.

    The random amplitude keeps a decayed state from revealing its rate.
    """

    num_points = 8

    def sample(self, n, *, generator=None, dtype=torch.float64, device="cpu"):
        phase = torch.rand(n, 1, 1, generator=generator, dtype=dtype)
        x = torch.arange(self.num_points, dtype=dtype) / self.num_points
        amplitude = 0.5 + 1.5 * torch.rand(n, 1, 1, generator=generator, dtype=dtype)
        rate = 0.2 + 1.8 * torch.rand(n, generator=generator, dtype=dtype)
        return amplitude * torch.sin(2 * math.pi * (x + phase)), {"rate": rate}

    def parameters(self):
        return {"num_points": self.num_points}


def generate(root):
    DatasetGenerator(
        "rate_decay",
        RateDecay(),
        SineWithRate(),
        ConstantStep(0.25),
        num_trajectories=COUNTS,
        num_frames=8,
        output_interval=0.5,
        first_output_time=0.0,
        shard_size=4,
        store_dtype="float64",
    )(root, progress=False)
    return root


def test_generator_stores_the_drawn_parameters_of_each_trajectory(tmp_path):
    root = generate(tmp_path / "data")
    for split, n in COUNTS.items():
        with TrajectoryFile(root / f"{split}.h5") as file:
            rate = file.sample_parameters["rate"]
            assert rate.shape == (n,) and rate.min() >= 0.2 and rate.max() <= 2.0
            u = np.stack([file.read(i) for i in range(n)])
            decay = np.exp(-rate[:, None] * file.times[None])
            # Each trajectory decays with its own stored rate (assembled across shards).
            np.testing.assert_allclose(
                u, u[:, :1] * decay[:, :, None, None], rtol=1e-12, atol=1e-12
            )


def test_generator_needs_a_solver_that_binds_parameters(tmp_path):
    class Unbindable(RateDecay):
        bind = None

    gen = DatasetGenerator(
        "x",
        Unbindable(),
        SineWithRate(),
        ConstantStep(0.25),
        num_trajectories=COUNTS,
        num_frames=2,
        output_interval=0.5,
        shard_size=4,
    )
    with pytest.raises(TypeError, match=r"no bind\(parameters\)"):
        gen(tmp_path, progress=False)


@pytest.fixture(scope="module")
def datamodule(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("rates"))
    dm = TrajectoryDataModule(
        root, num_channels=1, time_history=1, time_future=1, batch_size=16
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("in_memory", [True, False])
def test_windows_and_trajectories_carry_their_parameters(datamodule, in_memory):
    dm = TrajectoryDataModule(
        datamodule.root, num_channels=1, time_history=1, time_future=1, in_memory=False
    )
    dm.in_memory = in_memory
    dm.setup("fit")
    rate = dm.files["train"].sample_parameters["rate"]
    assert dm.parameter_names == ("rate",)
    windows = dm.window_dataset("train")
    for item in (0, 9, len(windows) - 1):
        trajectory, _ = windows.locate(item)
        assert windows[item]["params"].tolist() == pytest.approx([rate[trajectory]])
    rollout = dm.rollout_dataset("test")
    test_rate = dm.files["test"].sample_parameters["rate"]
    assert rollout[1]["params"].tolist() == pytest.approx([test_rate[1]])
    stats = dm.statistics["parameters"]["rate"]
    assert stats["mean"] == pytest.approx(rate.mean())
    assert stats["std"] == pytest.approx(rate.std())


def train_one_step_model(datamodule, conditioning, steps=150):
    torch.manual_seed(0)
    net = FNO(1, 1, n_modes=(4,), hidden_channels=8, n_layers=2, cond_dim=1)
    if not conditioning:
        net = FNO(1, 1, n_modes=(4,), hidden_channels=8, n_layers=2)
    task = AutoregressiveSurrogate(
        net,
        optimizer=partial(torch.optim.Adam, lr=1e-2),
        num_channels=1,
        time_history=1,
        conditioning=["rate"] if conditioning else None,
    )
    task.set_statistics(datamodule.statistics)
    task.set_parameter_names(datamodule.parameter_names)
    batch = next(
        iter(
            torch.utils.data.DataLoader(
                datamodule.window_dataset("train"), batch_size=64
            )
        )
    )
    optimizer = task.optimizer_factory(params=task.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        loss, _, _ = task.model_step(batch)
        loss.backward()
        optimizer.step()
    return task, batch, loss.item()


def test_conditioning_on_the_rate_lets_the_model_learn_rate_dependent_decay(
    datamodule,
):
    # The one-step change depends on each trajectory's rate, which the state alone
    # does not reveal: only the conditioned model can fit it.
    task, batch, conditioned = train_one_step_model(datamodule, conditioning=True)
    _, _, unconditioned = train_one_step_model(datamodule, conditioning=False)
    assert conditioned < unconditioned / 10
    with pytest.raises(ValueError, match="no per-trajectory parameters"):
        task.predict_next(batch["history"])
    with pytest.raises(ValueError, match="data's per-trajectory parameters are"):
        task.set_parameter_names(("nu",))


def test_conditioning_needs_a_backbone_with_the_same_cond_dim():
    net = FNO(1, 1, n_modes=(4,), hidden_channels=8, n_layers=1)
    with pytest.raises(ValueError, match="set the backbone's cond_dim to 2"):
        AutoregressiveSurrogate(
            net,
            optimizer=torch.optim.Adam,
            num_channels=1,
            time_history=1,
            conditioning=["L", "dt"],
        )


def test_statistics_without_parameter_moments_are_an_error(datamodule):
    net = FNO(1, 1, n_modes=(4,), hidden_channels=8, n_layers=1, cond_dim=1)
    task = AutoregressiveSurrogate(
        net,
        optimizer=torch.optim.Adam,
        num_channels=1,
        time_history=1,
        conditioning=["rate"],
    )
    stats = {**datamodule.statistics, "parameters": {}}
    with pytest.raises(ValueError, match="conditioning parameter 'rate'"):
        task.set_statistics(stats)
