"""Compose physim configs the way `python train.py` does, with tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import physim.cli  # noqa: F401  (registers the config resolvers)

CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_train(
    overrides: list[str], output_dir: Path, config_name="train"
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` and make ``${hydra:...}`` resolvable."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        del cfg.hydra
    return cfg


def shrink_data(cfg: DictConfig, data_dir: Path) -> None:
    """Point the data at ``data_dir`` and make its generator tiny (32^2, few frames)."""
    data = cfg.data
    with open_dict(cfg):
        data.root = str(data_dir)
        generator = data.get("generator")
        if generator is None:
            return
        frames = data.time_history + data.time_future * (1 + data.unroll_steps)
        generator.num_frames = frames * data.time_stride + 1
        generator.num_trajectories = {"train": 2, "valid": 2, "test": 2}
        generator.shard_size = 2
        for node in (generator.get("pde"), generator.get("initial_condition")):
            if node is not None and "num_points" in node:
                node.num_points = 32
        if "store_points" in generator and generator.store_points is not None:
            generator.store_points = 32
        controller = generator.get("controller")
        if controller is not None and "dt" in controller:
            controller.dt = min(controller.dt * 100, 0.05)


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()
