"""The pde_stepcontrol Hydra app: a tiny tune-train-evaluate run, evaluating a saved
controller, and bad input refused in one message before any solve."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from physim.cli.pde_stepcontrol import STEPCONTROL_CONFIG_DIR, pde_stepcontrol
from physim.timestepping import CorrectionNetwork

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = [
    "progress=false",
    "families.ks.num_points=32",
    "families.ks.horizon=1.0",
    "families.burgers.num_points=16",
    "families.burgers.horizon=0.05",
    "train.parameters.ks=[12.0]",
    "train.parameters.burgers=[0.05]",
    "train.num_seeds=1",
    "train.tolerances=[1e-4,1e-6]",
    "evaluate.parameters.ks=[14.0]",
    "evaluate.parameters.burgers=[0.04]",
    "evaluate.num_seeds=2",
    "evaluate.tolerances={low: 1e-7, high: 1e-4, num: 4}",
    "evaluate.bootstrap.samples=20",
    "evaluate.constant_steps.ks={low: 10, high: 40, num: 2}",
    "evaluate.constant_steps.burgers={low: 10, high: 40, num: 2}",
    "reference_tolerance=1e-10",
    "tune.grid.pcoeff=[0.0,0.4]",
    "tune.grid.icoeff=[0.3]",
    "tune.grid.safety=[0.9]",
    "cmaes.max_evaluations=4",
    "cmaes.popsize=4",
]


def compose_app(tmp_path: Path, overrides: list[str]):
    with initialize_config_dir(STEPCONTROL_CONFIG_DIR, version_base="1.3"):
        return compose(
            "pde_stepcontrol",
            overrides=[f"paths.output_dir={tmp_path}", *TINY, *overrides],
        )


def test_experiments_compose():
    for name in ("ks_burgers_cmaes", "ks_burgers_ppo"):
        with initialize_config_dir(STEPCONTROL_CONFIG_DIR, version_base="1.3"):
            cfg = compose("pde_stepcontrol", overrides=[f"+experiment={name}"])
        assert cfg.method in ("cmaes", "ppo")
        assert set(cfg.families) == {"ks", "burgers"}


def test_app_tunes_trains_evaluates_and_reuses_the_controller(tmp_path):
    result = pde_stepcontrol(
        compose_app(tmp_path / "train", ["+experiment=ks_burgers_cmaes"])
    )
    for name in ("coefficients.json", "controller.json", "training.csv", "runs.csv",
                 "summary.csv", "points.csv", "work_precision.png"):  # fmt: skip
        assert (tmp_path / "train" / name).is_file(), name
    summary = result["summary"].set_index(["family", "method"])
    assert len(summary) == 8  # constant, default PI, tuned PI, learned x 2 families
    # The front is the tuned PI's lower-left envelope: its own points lie on or above.
    assert summary.loc[("ks", "pi_tuned"), "gap"] >= 0.0
    assert (summary.failed == 0).all()
    runs = result["runs"]
    assert set(runs[runs.method == "pi_tuned"].point.round(12)) > set(
        runs[runs.method == "learned"].point.round(12)
    )  # the front reaches beyond the other controllers' tolerances
    # A saved controller is evaluated as it was trained (its coefficients too).
    again = pde_stepcontrol(
        compose_app(
            tmp_path / "again",
            [
                "method=none",
                "tune.enabled=false",
                f"controller.checkpoint={tmp_path / 'train' / 'controller.json'}",
            ],
        )
    )
    assert again["coefficients"] == result["coefficients"]
    learned = runs[runs.method == "learned"].reset_index(drop=True)
    rerun = again["runs"][again["runs"].method == "learned"].reset_index(drop=True)
    assert learned.evaluations.tolist() == rerun.evaluations.tolist()


def _refused(tmp_path: Path, overrides: list[str], match: str) -> None:
    cfg = compose_app(tmp_path, overrides)
    with pytest.raises((ValueError, TypeError), match=match):
        pde_stepcontrol(cfg)
    assert not any(tmp_path.glob("*.json")) and not any(tmp_path.glob("*.csv"))


def test_bad_input_is_refused_before_any_solve(tmp_path):
    other = CorrectionNetwork(["log_error", "log_tolerance"], ()).save(
        tmp_path / "other.json"
    )
    _refused(
        tmp_path / "a",
        ["method=none", f"controller.checkpoint={other}"],
        r"trained on features \['log_error', 'log_tolerance'\]",
    )
    _refused(
        tmp_path / "b",
        ["+families.burgers.dtype=float32"],
        r"rtol=1e-\d+ is below what a float32 state resolves",
    )
    _refused(tmp_path / "c", ["evaluate.parameters.ks=[12.0]"], "held-out")
    _refused(tmp_path / "d", ["evaluate.first_seed=10000"], "overlap")
    _refused(
        tmp_path / "e",
        ["evaluate.tolerances={low: 1e-6, high: 1e-4, num: 3}"],
        "at least 3",
    )
