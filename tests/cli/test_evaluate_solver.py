"""`evaluate reference=solver`: fresh solver trajectories instead of a stored split."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from physim.cli._solver_reference import solve_reference
from physim.cli.evaluate import evaluate
from physim.data import TrajectoryFile
from tests.cli.conftest import compose_train, shrink_data

SEED = 7


pytestmark = pytest.mark.usefixtures("single_thread")


def write_checkpoint(tmp_path, drop_generator: bool = False):
    """A checkpoint of an (untrained, fixed-seed) ns2d FNO on tiny 32^2 data: what
    `evaluate` reads from one is the run config and the weights."""
    cfg = compose_train(["+experiment=ns2d"], tmp_path / "train")
    shrink_data(cfg, tmp_path / "train_data")
    torch.manual_seed(0)
    task = instantiate(cfg.model)
    config = OmegaConf.to_container(cfg, resolve=True)
    if drop_generator:
        config["data"].pop("generator")
    path = tmp_path / "model.ckpt"
    torch.save({"physim_config": config, "state_dict": task.state_dict()}, path)
    return path


def evaluate_with(tmp_path, name: str, checkpoint, *overrides: str):
    cfg = compose_train(
        [f"ckpt_path={checkpoint}", "data=ns2d", *overrides],
        tmp_path / name,
        config_name="evaluate",
    )
    # The stored-data route: the same tiny generator, its seed set to SEED.
    shrink_data(cfg, tmp_path / f"data_seed{SEED}")
    with open_dict(cfg):
        cfg.data.generator.seed = SEED
        cfg.solver_reference.cache_dir = str(tmp_path / "cache")
    return evaluate(cfg)


def test_solver_reference_matches_stored_data_of_the_same_seed(tmp_path):
    checkpoint = write_checkpoint(tmp_path)
    stored = evaluate_with(tmp_path, "stored", checkpoint)
    solved = evaluate_with(
        tmp_path,
        "solved",
        checkpoint,
        "reference=solver",
        f"solver_reference.seed={SEED}",
    )
    assert solved["num_trajectories"] == stored["num_trajectories"] == 2
    assert solved == pytest.approx(stored, rel=0, abs=0, nan_ok=True)
    assert stored["rel_l2_mean"] > 0
    # Cached: one solve, found again (not redone) for the same spec and seed.
    (cached,) = (tmp_path / "cache").iterdir()
    before = (cached / "test.h5").stat().st_mtime_ns
    data = torch.load(checkpoint, weights_only=True)["physim_config"]["data"]
    options = {"num_trajectories": None, "cache_dir": tmp_path / "cache", "source": ""}
    again = solve_reference(data, seed=SEED, **options)
    assert again == cached / "test.h5" and again.stat().st_mtime_ns == before
    # Another seed: other initial states, in another cache entry.
    other = solve_reference(
        data,
        seed=SEED + 1,
        num_trajectories=None,
        cache_dir=tmp_path / "cache",
        source="",
    )
    assert other.parent != cached
    with TrajectoryFile(again) as first, TrajectoryFile(other) as second:
        assert not (first.read(0) == second.read(0)).all()


def test_checkpoint_without_a_solver_is_refused(tmp_path):
    checkpoint = write_checkpoint(tmp_path, drop_generator=True)
    with pytest.raises(ValueError, match="names no solver") as error:
        evaluate_with(tmp_path, "none", checkpoint, "reference=solver")
    assert str(checkpoint) in str(error.value)


def test_unknown_reference_is_refused(tmp_path):
    with pytest.raises(ValueError, match="reference must be 'data'"):
        evaluate_with(tmp_path, "bad", tmp_path / "x.ckpt", "reference=truth")
