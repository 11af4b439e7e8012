"""The trainer config: every Lightning argument settable, checked by name and type."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf, open_dict

from physim.cli._trainer import (
    PASSED_SEPARATELY,
    check_trainer_config,
    trainer_parameters,
)
from tests.cli.clirun import REPO, one_line_error, run_cli

DEFAULT = REPO / "conf" / "trainer" / "default.yaml"


def test_default_lists_every_trainer_argument_with_lightnings_default():
    node = OmegaConf.load(DEFAULT)
    parameters = trainer_parameters()
    assert set(node) - {"_target_"} == set(parameters) - set(PASSED_SEPARATELY)
    physim_choices = {
        line.split(":")[0]
        for line in DEFAULT.read_text().splitlines()
        if line.rstrip().endswith("# physim")
    }
    for key, parameter in parameters.items():
        if key in node and key not in physim_choices:
            assert node[key] == parameter.default, key


def trainer(**values):
    node = OmegaConf.load(DEFAULT)
    with open_dict(node):
        node.default_root_dir = "/tmp/run"
        node.update(values)
    return node


def test_values_are_checked_by_name_and_type():
    assert check_trainer_config(trainer(max_steps=5, precision="bf16-mixed")).max_steps
    with pytest.raises(ValueError, match=r"trainer.max_epochs='abc'.*Integer"):
        check_trainer_config(trainer(max_epochs="abc"))
    with pytest.raises(ValueError, match=r"did you mean trainer.max_epochs\?"):
        check_trainer_config(trainer(max_epoch=3))
    with pytest.raises(ValueError, match=r"trainer.limit_val_batches='all'"):
        check_trainer_config(trainer(limit_val_batches="all"))
    # An argument of another Lightning version left at null is dropped, not refused.
    assert "future_argument" not in check_trainer_config(trainer(future_argument=None))


def test_wrong_type_on_the_command_line_names_the_key(tmp_path):
    # Under debug=default too, where fast_dev_run made Lightning ignore max_epochs.
    done = run_cli(
        "train.py",
        "+experiment=ns2d",
        "debug=default",
        "trainer.max_epochs=abc",
        cwd=tmp_path,
    )
    line = one_line_error(done)
    assert "trainer.max_epochs='abc'" in line and "Optional[int]" in line
    assert not (tmp_path / "data").exists()  # refused before any data work


def test_evaluate_without_a_checkpoint_is_one_line(tmp_path):
    line = one_line_error(run_cli("scripts/evaluate.py", cwd=tmp_path))
    assert "ckpt_path is required" in line and "ckpt_path=outputs/" in line
