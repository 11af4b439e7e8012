"""Every experiment composes, instantiates and survives a fast dev run."""

import pytest
from hydra.utils import instantiate
from omegaconf import open_dict

from physim.cli.train import train
from tests.cli.conftest import EXPERIMENTS, compose_train, shrink_data


def test_experiments_are_discovered():
    assert "ns2d" in EXPERIMENTS and "ns2d_fno_paper" in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(experiment, tmp_path):
    cfg = compose_train(
        [
            f"+experiment={experiment}",
            "debug=default",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "logger=csv",
        ],
        tmp_path / "out",
    )
    with open_dict(cfg):
        cfg.trainer.pop("strategy", None)
        cfg.trainer.pop("sync_batchnorm", None)
        cfg.data.num_workers = 0
    shrink_data(cfg, tmp_path / "data")
    metrics = train(cfg)
    # The fast dev run trained, validated and tested; the report summarised the rollout.
    assert metrics["train/loss_step"] > 0
    assert 0 < metrics["test/rollout_rel_l2"] < 10
    assert (tmp_path / "out" / "rollout" / "rollout.nc").exists()


def test_main_groups_instantiate(tmp_path):
    cfg = compose_train(["+experiment=ns2d", "logger=many"], tmp_path)
    assert len([instantiate(node) for node in cfg.logger.values()]) == 2
    for name, node in cfg.callbacks.items():
        assert instantiate(node) is not None, name
    trainer = instantiate(cfg.trainer)
    assert trainer.max_epochs == cfg.trainer.max_epochs
