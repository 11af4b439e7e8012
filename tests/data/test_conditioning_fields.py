"""Constant fields and time-varying scalars are conditioning inputs: never among the
predicted channels, stored and read back, and given to the backbone as extra input
channels (normalised) at every call of a training step and a rollout."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from physim.data import (
    TrajectoryDataModule,
    TrajectoryFile,
    TrajectoryWriter,
    write_trajectories,
)
from physim.data.readers import ExternalSource, to_physim
from physim.models import FNO
from physim.tasks import AutoregressiveSurrogate
from tests.helpers.external import write_the_well

CHANNELS = 8  # the toy Well file's time-varying channels (constant fields apart)


class Recorder(nn.Module):
    """A 1x1-conv backbone that keeps the inputs it was called with."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.conv(x)


@pytest.fixture()
def well_data(tmp_path):
    data = tmp_path / "toy_flow" / "data"
    expected = {
        split: write_the_well(data / split / "a.hdf5", num=num, time_scalar=True)
        for split, num in (("train", 4), ("valid", 2), ("test", 2))
    }
    return data, expected


def datamodule(root, **options):
    dm = TrajectoryDataModule(
        root / "cache" if "external" in options else root,
        num_channels=CHANNELS,
        time_history=2,
        batch_size=2,
        **options,
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_constant_fields_and_scalars_are_stored_apart_from_the_channels(
    tmp_path, well_data
):
    data, expected = well_data
    physim_root = to_physim(ExternalSource(data).splits, tmp_path / "p", progress=False)
    file = TrajectoryFile(physim_root / "train.h5")
    assert file.constant_names == ("obstacle", "source")
    assert file.scalar_names == ("forcing",)
    assert "obstacle" not in file.channel_names and len(file.channel_names) == CHANNELS
    for i in range(4):
        np.testing.assert_array_equal(file.read(i), expected["train"]["fields"][i])
        np.testing.assert_array_equal(
            file.read_constants(i), expected["train"]["constants"][i]
        )
        np.testing.assert_allclose(
            file.read_scalars(i), expected["train"]["scalars"][i], rtol=1e-6
        )  # stored in the fields' dtype (float32)
    dm = datamodule(physim_root, in_memory=True)
    batch = next(iter(dm.val_dataloader()[1]))
    assert batch["trajectory"].shape[2] == CHANNELS
    np.testing.assert_array_equal(
        batch["constants"].numpy(), expected["valid"]["constants"]
    )
    assert batch["scalars"].shape == (2, 5, 1)


def test_a_constant_field_reaches_the_model_as_conditioning(tmp_path, well_data):
    data, expected = well_data
    dm = datamodule(tmp_path, external=ExternalSource(data), unroll_steps=1)
    names = ["obstacle", "forcing"]
    t_in = dm.time_history
    net = Recorder(t_in * CHANNELS + 1 + t_in, CHANNELS)  # + obstacle + forcing(t)
    task = AutoregressiveSurrogate(
        net, torch.optim.Adam, num_channels=CHANNELS, time_history=t_in,
        conditioning_fields=names,
    )  # fmt: skip
    task.set_statistics(dm.statistics)
    task.set_field_names(dm.constant_names, dm.scalar_names)
    assert task.conditioning_channels == 2 + 1
    stats = dm.statistics
    windows = dm.window_dataset("train", unroll_steps=1)
    batch = torch.utils.data.default_collate([windows[0], windows[7]])
    loss, pred, target = task.model_step(batch)
    assert pred.shape == target.shape == (2, 1, CHANNELS, 6, 4)  # never predicted
    first, second = net.inputs  # the pushforward call, then the trained one
    obstacle = (batch["constants"][:, 0] - stats["constant_mean"][0]) / stats[
        "constant_std"
    ][0]
    forcing = (batch["scalars"][..., 0] - stats["scalar_mean"][0]) / stats[
        "scalar_std"
    ][0]
    for call, x in enumerate((first, second)):
        extra = x[:, t_in * CHANNELS :]
        torch.testing.assert_close(extra[:, 0], obstacle)
        # forcing at this call's history frames, uniform in space
        expected_forcing = forcing[:, call : call + t_in, None, None].expand(
            -1, -1, 6, 4
        )
        torch.testing.assert_close(extra[:, 1:], expected_forcing.float())
    # The constants change the prediction: they are inputs, not ignored.
    changed = {**batch, "constants": batch["constants"] + 1.0}
    assert not torch.allclose(task.model_step(changed)[1], pred)

    net.inputs.clear()
    trajectory = next(iter(dm.test_dataloader()[1]))
    pred, _ = task.rollout(
        trajectory["trajectory"], **task.conditioning_batch(trajectory)
    )
    assert pred.shape == (2, 3, CHANNELS, 6, 4)
    test_forcing = (trajectory["scalars"][..., 0] - stats["scalar_mean"][0]) / stats[
        "scalar_std"
    ][0]
    assert len(net.inputs) == 3
    for step, x in enumerate(net.inputs):  # the window advances one frame per call
        torch.testing.assert_close(
            x[:, -t_in:, 0, 0], test_forcing[:, step : step + t_in].float()
        )


def test_unknown_conditioning_field_is_named(tmp_path, well_data):
    data, _ = well_data
    dm = datamodule(tmp_path, external=ExternalSource(data))
    task = AutoregressiveSurrogate(
        Recorder(2 * CHANNELS + 1, CHANNELS), torch.optim.Adam,
        num_channels=CHANNELS, time_history=2, conditioning_fields=["density"],
    )  # fmt: skip
    with pytest.raises(
        ValueError, match=r"'density'.*constant fields are \['obstacle'"
    ):
        task.set_field_names(dm.constant_names, dm.scalar_names)


def test_backbone_input_channels_must_count_the_conditioning_fields(
    tmp_path, well_data
):
    data, _ = well_data
    dm = datamodule(tmp_path, external=ExternalSource(data))
    t_in = dm.time_history
    names = ["obstacle", "forcing"]  # a constant field (1) and a scalar (t_in)

    def task(in_channels):
        net = FNO(in_channels, CHANNELS, n_modes=[4, 2], hidden_channels=8)
        return AutoregressiveSurrogate(
            net, torch.optim.Adam, num_channels=CHANNELS, time_history=t_in,
            conditioning_fields=names,
        )  # fmt: skip

    forgotten = task(t_in * CHANNELS)  # in_channels left at the history's
    expected = t_in * CHANNELS + 1 + t_in
    with pytest.raises(ValueError, match=rf"set model.net.in_channels={expected}\."):
        forgotten.set_field_names(dm.constant_names, dm.scalar_names)
    task(expected).set_field_names(dm.constant_names, dm.scalar_names)


def test_format_stores_them_as_named_xarray_variables(tmp_path):
    rng = np.random.default_rng(0)
    fields = rng.standard_normal((3, 4, 2, 5, 6)).astype(np.float32)
    mask = rng.standard_normal((3, 5, 6)).astype(np.float32)
    forcing = rng.standard_normal((3, 4)).astype(np.float32)
    path = write_trajectories(
        tmp_path / "train.h5",
        fields,
        times=np.arange(4.0),
        coords={"x": np.arange(5.0), "y": np.arange(6.0)},
        channel_names=["u", "v"],
        attrs={},
        constant_fields={"mask": mask},
        scalars={"forcing": forcing},
    )
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["constant_fields"].dims == ("sample", "constant", "x", "y")
        assert list(ds["constant"].values) == ["mask"]
        assert ds["scalars"].dims == ("sample", "time", "scalar")
        np.testing.assert_array_equal(ds["scalars"].values[..., 0], forcing)
    file = TrajectoryFile(path)
    np.testing.assert_array_equal(file.read_constants(2), mask[2:3])
    writer = TrajectoryWriter(
        tmp_path / "b.h5", num_trajectories=1, times=[0.0, 1.0],
        coords={"x": np.arange(5.0)}, channel_names=["u"], attrs={},
        constant_names=["mask"],
    )  # fmt: skip
    with pytest.raises(ValueError, match="needs constants"), writer:
        writer.write(0, np.zeros((2, 1, 5)))
    assert not (tmp_path / "b.h5").exists()
