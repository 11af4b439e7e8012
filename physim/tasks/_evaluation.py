"""What a task must offer to be evaluated by rollout: :class:`EvaluableTask`.

The rollout report (``physim.cli._evaluate.write_rollout_report``, run by
``train.py`` after testing and by ``scripts/evaluate.py``) rolls a task out over every
trajectory of a split and compares the prediction with the truth. It needs nothing
else from the task than the members of :class:`EvaluableTask`, so every task
(:class:`~physim.tasks.AutoregressiveSurrogate`, :class:`~physim.tasks.PDERefiner`,
:class:`~physim.tasks.TemporalStencilModel`, :class:`~physim.tasks.INSR`) is
evaluated by the same code, with no branch on its class. A task whose rollout needs
the trajectories alone gets every member but ``rollout`` and ``device`` from
:class:`RolloutEvaluation`; a task conditioned on the data (the surrogate) overrides
:meth:`~RolloutEvaluation.set_data_names` and :meth:`~RolloutEvaluation.rollout_batch`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = [
    "DataNames",
    "EvaluableTask",
    "RolloutEvaluation",
    "check_evaluable",
    "missing_evaluation_members",
]


class DataNames(NamedTuple):
    """What a task may be conditioned on, by name: the data's per-trajectory
    parameters (the columns of batches' ``params``), constant fields (``constants``)
    and time-varying scalars (``scalars``)."""

    parameter_names: tuple[str, ...] = ()
    constant_names: tuple[str, ...] = ()
    scalar_names: tuple[str, ...] = ()


@runtime_checkable
class EvaluableTask(Protocol):
    """A task the rollout report can evaluate.

    A batch is a trajectory batch of :class:`physim.data.TrajectoryDataset`:
    ``trajectory [B, T, C, *S]`` and, when the data have them, ``params [B, P]``,
    ``constants [B, K, *S]`` and ``scalars [B, T, S]``, on the task's device. The
    report gives the task the first ``time_history`` frames of each trajectory and
    scores its prediction of the rest.
    """

    @property
    def device(self) -> torch.device:
        """Where the task's weights are; batches are moved there."""
        ...

    @property
    def time_history(self) -> int:
        """Frames of each trajectory given as the initial state (1 for a solver
        started from the initial frame)."""
        ...

    @property
    def correlation_threshold(self) -> float:
        """Correlation above which a prediction counts as correlated with the truth
        (the report's correlation time)."""
        ...

    def eval(self) -> nn.Module:
        """Evaluation mode (``nn.Module.eval``)."""
        ...

    def set_data_names(self, names: DataNames) -> None:
        """Locate what the task is conditioned on among the data's ``names``."""
        ...

    def rollout_batch(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Predict ``batch["trajectory"][:, time_history:]`` from its first
        ``time_history`` frames (and whatever else of the batch the task uses).

        Returns:
            The prediction ``[B, T - time_history, C, *S]`` and, per trajectory, the
            first step that went non-finite (-1: none).
        """
        ...


def missing_evaluation_members(task: object) -> list[str]:
    """The members of :class:`EvaluableTask` that ``task`` (an object or a class)
    lacks, in the protocol's order (empty when it has them all)."""
    members = [
        name
        for name in vars(EvaluableTask)
        if not name.startswith("_") and name not in vars(Protocol)
    ]
    return [name for name in members if not hasattr(task, name)]


def check_evaluable(task: object, purpose: str = "The rollout report") -> None:
    """Raise ``TypeError`` naming the missing members unless ``task`` satisfies
    :class:`EvaluableTask`."""
    missing = missing_evaluation_members(task)
    if missing:
        raise TypeError(
            f"{purpose} cannot evaluate a {type(task).__name__}: it lacks "
            f"{', '.join(missing)} of physim.tasks.EvaluableTask. Give the task those "
            "members (a task whose rollout needs the trajectories alone inherits all "
            "but rollout from physim.tasks.RolloutEvaluation)."
        )


class RolloutEvaluation:
    """:class:`EvaluableTask`'s members for a LightningModule whose hyperparameters
    hold ``time_history`` and ``correlation_threshold`` and whose
    ``rollout(trajectory)`` needs the trajectories alone (``device`` and ``eval``
    come from the LightningModule).

    Mixed in before ``pl.LightningModule``. A task conditioned on the data overrides
    :meth:`set_data_names` and :meth:`rollout_batch`.
    """

    hparams: Any
    rollout: Any  # (trajectory [B, T, C, *S]) -> (prediction, first non-finite)

    @property
    def time_history(self) -> int:
        """Frames of each trajectory given as the initial state."""
        return self.hparams.time_history

    @property
    def correlation_threshold(self) -> float:
        """Correlation threshold of the correlation time."""
        return self.hparams.correlation_threshold

    def set_data_names(self, names: DataNames) -> None:
        """Nothing to locate: the task is not conditioned on the data."""

    def rollout_batch(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """``rollout`` of ``batch["trajectory"]`` (see :class:`EvaluableTask`)."""
        return self.rollout(batch["trajectory"])
