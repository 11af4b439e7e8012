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
        # A short unroll exercises the same code path as a paper's long one (e.g.
        # ns2d_fno_paper's 39) at a fraction of the data and time.
        data.unroll_steps = min(data.unroll_steps, 2)
        frames = data.time_history + data.time_future * (1 + data.unroll_steps)
        generator.num_frames = frames * data.time_stride + 1
        if (data.get("rollout_steps") or 0) > frames - data.time_history:
            data.rollout_steps = None  # all the (few) frames after the history
        generator.num_trajectories = {"train": 2, "valid": 2, "test": 2}
        generator.shard_size = 2
        # A quarter of the grid, at least 32 points (KS at L ~ 64 needs > 32 points
        # for its dealiasing rule; 2-D grids shrink to 32 as before). Sizes are read
        # before any is set: the initial condition may interpolate the solver's.
        nodes = [generator.get("pde"), generator.get("initial_condition")]
        nodes = [node for node in nodes if node is not None and "num_points" in node]
        for node, points in [(node, max(32, node.num_points // 4)) for node in nodes]:
            node.num_points = points
        if "store_points" in generator and generator.store_points is not None:
            generator.store_points = 32
        pde = generator.get("pde")
        if pde is not None and "coarse_points" in pde:
            # A DNS averaged down to the stored grid (Kolmogorov flow): keep it finer
            # than the stored grid, or the truth is the coarse solver itself (zero
            # error), and shorten its warm-up.
            for node in nodes:
                node.num_points = 2 * generator.store_points
            generator.first_output_time = min(generator.first_output_time, 1.0)
        controller = generator.get("controller")
        for key in ("dt", "dt_max"):
            if controller is not None and controller.get(key) is not None:
                # Coarser, never finer, than configured (ks1d's 0.25 frames stays;
                # ns2d_paper's 1e-4 cap becomes 0.01).
                step = controller[key]
                controller[key] = max(step, min(step * 100, 0.05))


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()
