"""Residual targets have unit scale at the data module's time stride (ks1d: 4)."""

import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from physim.data import load_statistics
from tests.cli.conftest import compose_train, shrink_data


def test_ks1d_residual_target_has_unit_std_at_stride_4(tmp_path):
    cfg = compose_train(["+experiment=ks1d"], tmp_path / "out")
    shrink_data(cfg, tmp_path / "data")
    with open_dict(cfg):  # a few more frames than the shrunk default, for the std
        cfg.data.generator.num_frames = 41
        cfg.data.generator.num_trajectories = {"train": 4, "valid": 1, "test": 1}
    assert cfg.data.time_stride == 4
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    task = instantiate(cfg.model)
    task.set_statistics(dm.statistics)
    targets = [
        task.encode_target(batch["future"], batch["history"])
        for batch in dm.train_dataloader()
    ]
    std = torch.cat(targets).std().item()
    assert abs(std - 1.0) < 0.1, std
    # Scaled by the stored one-step difference std instead (the old defect), the
    # target would be several times too large.
    one_step = load_statistics(cfg.data.root)["delta_std"][0]
    assert dm.statistics["delta_std"][0] > 2.5 * one_step
    assert dm.statistics["delta_stride"] == 4
