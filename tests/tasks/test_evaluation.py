"""EvaluableTask: every task satisfies it, the rollout report needs nothing else from
a task, and a task missing a member is refused with the member's name."""

from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from physim.cli._evaluate import write_trajectory_report
from physim.data import TrajectoryDataset, TrajectoryFile
from physim.models import FNO, SIREN, LearnedInterpolation
from physim.solvers import FiniteVolumeNS2D, KolmogorovForcing
from physim.tasks import (
    INSR,
    AdvectionProblem,
    AutoregressiveSurrogate,
    DataNames,
    EvaluableTask,
    PDERefiner,
    TemporalStencilModel,
    check_evaluable,
    missing_evaluation_members,
)
from tests.helpers.datasets import travelling_waves, write_dataset

pytestmark = pytest.mark.usefixtures("single_thread")

MEMBERS = [
    "device",
    "time_history",
    "correlation_threshold",
    "eval",
    "set_data_names",
    "rollout_batch",
]


def test_the_protocol_states_what_the_report_uses():
    assert missing_evaluation_members(object()) == MEMBERS


@pytest.mark.parametrize(
    "cls", [AutoregressiveSurrogate, PDERefiner, TemporalStencilModel, INSR]
)
def test_every_task_class_has_every_member(cls):
    assert missing_evaluation_members(cls) == []


def make_tasks() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    optimizer = partial(torch.optim.Adam, lr=1e-3)
    solver = FiniteVolumeNS2D(8, forcing=KolmogorovForcing())
    return {
        "surrogate": AutoregressiveSurrogate(
            FNO(2, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1),
            optimizer,
            num_channels=1,
            time_history=2,
            correlation_threshold=0.7,
        ),
        "refiner": PDERefiner(
            FNO(2, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1),
            optimizer,
            num_refinement_steps=0,
            ema_decay=None,
            num_channels=1,
            time_history=2,
        ),
        "tsm": TemporalStencilModel(
            LearnedInterpolation(2, hidden_channels=4, num_layers=1),
            solver,
            optimizer,
            dt=0.5 * solver.grid_spacing / 7,
            time_history=1,
            correlation_threshold=0.6,
        ),
        "insr": INSR({"u": SIREN(1, 1, 8, 1)}, AdvectionProblem(), dt=0.05),
    }


def test_every_task_satisfies_the_protocol():
    tasks = make_tasks()
    for name, task in tasks.items():
        assert isinstance(task, EvaluableTask), name
        check_evaluable(task)
    assert [task.time_history for task in tasks.values()] == [2, 2, 1, 1]
    thresholds = [task.correlation_threshold for task in tasks.values()]
    assert thresholds == [0.7, 0.8, 0.6, 0.8]


def test_the_surrogate_rolls_out_a_batch_with_its_parameters():
    task = make_tasks()["surrogate"].eval()
    trajectory = torch.randn(3, 5, 1, 8, 8)
    with torch.no_grad():
        pred, nonfinite = task.rollout_batch(
            {"trajectory": trajectory, "params": torch.zeros(3, 1)}
        )
        expected, _ = task.rollout(trajectory)
    assert pred.shape == (3, 3, 1, 8, 8)
    torch.testing.assert_close(pred, expected)
    assert nonfinite.tolist() == [-1, -1, -1]


class WithoutRollout(nn.Module):
    """Not a physim task: every member of the protocol but ``rollout_batch``."""

    correlation_threshold = 0.8

    def __init__(self, time_history: int = 2) -> None:
        super().__init__()
        self.time_history = time_history
        self.names: tuple | None = None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def set_data_names(self, names: DataNames) -> None:
        self.names = names


class Persistence(WithoutRollout):
    """The protocol's members and nothing else: the last history frame repeated."""

    def rollout_batch(self, batch):
        trajectory = batch["trajectory"]
        last = trajectory[:, self.time_history - 1 : self.time_history]
        steps = trajectory.shape[1] - self.time_history
        pred = last.expand(-1, steps, *last.shape[2:]).clone()
        return pred, torch.full((trajectory.shape[0],), -1)


@pytest.fixture(scope="module")
def waves(tmp_path_factory):
    root = write_dataset(
        tmp_path_factory.mktemp("waves"), {"train": travelling_waves(3, 8, size=8)}
    )
    return TrajectoryFile(root / "train.h5")


def test_the_report_evaluates_any_task_with_the_members(waves, tmp_path):
    task = Persistence()
    summary = write_trajectory_report(
        task,
        TrajectoryDataset(waves),
        waves,
        tmp_path,
        time_stride=1,
        parameter_names=["nu"],
        batch_size=2,
        attrs={"split": "train"},
    )
    assert task.names == DataNames(("nu",), (), ())
    assert not task.training
    # The task's prediction is the persistence baseline, so their errors agree.
    assert summary["num_trajectories"] == 3
    assert summary["rel_l2_mean"] == pytest.approx(summary["baseline_rel_l2_mean"])
    assert np.isfinite(summary["rel_l2_mean"]) and summary["rel_l2_mean"] > 0
    assert (tmp_path / "rollout.nc").exists()


def refusal(task, tmp_path) -> str:
    with pytest.raises(TypeError) as error:
        write_trajectory_report(
            task,
            None,  # refused before the data are touched
            None,
            tmp_path,
            time_stride=1,
            parameter_names=[],
            batch_size=1,
            attrs={},
        )
    return str(error.value)


def test_a_task_missing_a_member_is_refused_by_name(tmp_path):
    task = WithoutRollout()
    assert not isinstance(task, EvaluableTask)
    message = refusal(task, tmp_path)
    assert "WithoutRollout" in message and "lacks rollout_batch of" in message
    assert "physim.tasks.EvaluableTask" in message
    # Every missing member is named, and only those.
    message = refusal(nn.Linear(1, 1), tmp_path)
    missing = "device, time_history, correlation_threshold, set_data_names, "
    assert f"lacks {missing}rollout_batch of" in message
