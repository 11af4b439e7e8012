"""Map-style datasets over trajectory files: training windows and whole trajectories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ._errors import DatasetError
from ._format import first_nonfinite, nonfinite_message
from ._per_sample import PerTrajectoryAccess, SampleData


class FrameSource(Protocol):
    """Anything that reads frames of trajectory ``index`` as ``[T', C, *space]``.

    A source may also have ``sample_parameters`` (``{name: [N]}``, per-trajectory
    parameters); windows and trajectories then carry them as ``"params"`` ``[P]``.
    A source with the :class:`~physim.data._per_sample.PerTrajectoryAccess` interface
    (physim's files, the external readers, :class:`InMemorySource`) also gives each
    item its frames' physical ``"times"`` ``[T']`` (float64; each trajectory's own),
    its ``"coords"`` (``{dim: [X]}``, only for dims whose positions differ between
    trajectories), its constant fields ``"constants"`` ``[K, *space]`` and
    time-varying scalars ``"scalars"`` ``[T', S]`` (when it has them): conditioning
    inputs, never part of ``history``/``future``.
    """

    num_trajectories: int
    num_frames: int

    def read(self, index: int, frames: slice = ...) -> np.ndarray: ...


def parameter_matrix(source: FrameSource) -> np.ndarray | None:
    """The source's per-trajectory parameters as ``[N, P]`` float32, or ``None``."""
    parameters = getattr(source, "sample_parameters", None) or {}
    if not parameters:
        return None
    return np.stack([np.asarray(v) for v in parameters.values()], axis=1).astype(
        np.float32
    )


class InMemorySource(PerTrajectoryAccess):
    """A whole split held in memory (``[N, T, C, *space]``), read like a file."""

    def __init__(
        self,
        fields: np.ndarray,
        sample_parameters: dict[str, np.ndarray] | None = None,
        *,
        times: np.ndarray | None = None,
        coords: dict[str, np.ndarray] | None = None,
        sample_data: SampleData | None = None,
        constants: np.ndarray | None = None,
        scalars: np.ndarray | None = None,
    ) -> None:
        self.fields = fields
        self.sample_parameters = dict(sample_parameters or {})
        self.num_trajectories, self.num_frames = fields.shape[:2]
        self.times = (
            np.arange(self.num_frames, dtype=np.float64) if times is None else times
        )
        self.coords = dict(coords or {})
        self._sample_data = sample_data or SampleData()
        self.constants = constants
        self.scalars = scalars

    @property
    def sample_data(self) -> SampleData:
        return self._sample_data

    @classmethod
    def load(cls, source: FrameSource) -> InMemorySource:
        """Read every trajectory of ``source`` once (chunk by chunk) into one array.

        Each trajectory is checked for NaN/Inf as it arrives (no second read); its
        constant fields and scalars, if any, are read too.

        Raises:
            DatasetError: naming the source's path, the trajectory, frame and channel
                of the first non-finite value.
        """
        first = source.read(0)
        fields = np.empty((source.num_trajectories, *first.shape), dtype=first.dtype)
        for index in range(source.num_trajectories):
            fields[index] = first if index == 0 else source.read(index)
            found = first_nonfinite(fields[index])
            if found is not None:
                raise DatasetError(
                    nonfinite_message(
                        getattr(source, "path", type(source).__name__),
                        index,
                        *found,
                        times=getattr(source, "times", None),
                        channel_names=getattr(source, "channel_names", None),
                    )
                )
        data = getattr(source, "sample_data", SampleData())
        every = range(source.num_trajectories)
        return cls(
            fields,
            getattr(source, "sample_parameters", None),
            times=getattr(source, "times", None),
            coords=getattr(source, "coords", None),
            sample_data=data,
            constants=np.stack([source.read_constants(i) for i in every])
            if data.constant_names
            else None,
            scalars=np.stack([source.read_scalars(i) for i in every])
            if data.scalar_names
            else None,
        )

    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        return self.fields[index, frames]

    def _read_constants(self, index: int) -> np.ndarray:
        return self.constants[index]

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        return self.scalars[index, frames]


class _Conditioning:
    """What an item carries besides its frames (see :class:`FrameSource`)."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.parameters = parameter_matrix(source)
        per_trajectory = isinstance(source, PerTrajectoryAccess)
        self.times = source.time_matrix() if per_trajectory else None
        data = source.sample_data if per_trajectory else SampleData()
        self.sample_coords = data.sample_coords
        self.constants = bool(data.constant_names)
        self.scalars = bool(data.scalar_names)

    def item(self, index: int, frames: slice) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.parameters is not None:
            out["params"] = torch.from_numpy(self.parameters[index])
        if self.times is not None:
            out["times"] = torch.from_numpy(self.times[index, frames].copy())
        if self.sample_coords:
            out["coords"] = {
                d: torch.from_numpy(v[index].copy())
                for d, v in self.sample_coords.items()
            }
        if self.constants:
            values = self.source.read_constants(index)
            out["constants"] = torch.from_numpy(np.ascontiguousarray(values)).float()
        if self.scalars:
            values = self.source.read_scalars(index, frames)
            out["scalars"] = torch.from_numpy(np.ascontiguousarray(values)).float()
        return out


class WindowDataset(Dataset):
    """Windows of ``length`` frames, ``stride`` stored frames apart, in one trajectory.

    Item ``k`` is the window of trajectory ``k // windows_per_trajectory`` starting at
    frame ``k % windows_per_trajectory``; windows never cross two trajectories. The
    window is split into ``history`` (the first ``time_history`` frames) and ``future``
    (the rest).

    Args:
        source: the frames.
        time_history: frames given to the model.
        num_future: frames after the history (``time_future * (1 + unroll_steps)``).
        stride: take every ``stride``-th stored frame (temporal subsampling).
        trajectories: restrict to these trajectory indices (default: all).
    """

    def __init__(
        self,
        source: FrameSource,
        time_history: int,
        num_future: int,
        stride: int = 1,
        trajectories: Sequence[int] | None = None,
    ) -> None:
        self.source = source
        self.time_history = time_history
        self.length = time_history + num_future
        self.stride = stride
        span = (self.length - 1) * stride + 1
        self.windows_per_trajectory = source.num_frames - span + 1
        if self.windows_per_trajectory < 1:
            raise ValueError(
                f"A window of {self.length} frames with time_stride={stride} spans "
                f"{span} stored frames, but trajectories have only "
                f"{source.num_frames}. Reduce time_history, time_future, unroll_steps "
                "or time_stride."
            )
        self.trajectories = (
            list(range(source.num_trajectories))
            if trajectories is None
            else list(trajectories)
        )
        self.conditioning = _Conditioning(source)

    def __len__(self) -> int:
        return len(self.trajectories) * self.windows_per_trajectory

    def locate(self, item: int) -> tuple[int, int]:
        """Return ``(trajectory index, first frame)`` of window ``item``."""
        if not 0 <= item < len(self):
            raise IndexError(f"window {item} out of range [0, {len(self)})")
        trajectory, start = divmod(item, self.windows_per_trajectory)
        return self.trajectories[trajectory], start

    def __getitem__(self, item: int) -> dict[str, Tensor]:
        index, start = self.locate(item)
        stop = start + (self.length - 1) * self.stride + 1
        window = slice(start, stop, self.stride)
        frames = torch.from_numpy(
            np.ascontiguousarray(self.source.read(index, window))
        ).float()
        return {
            "history": frames[: self.time_history],
            "future": frames[self.time_history :],
            **self.conditioning.item(index, window),
        }


class TrajectoryDataset(Dataset):
    """Trajectories (every ``stride``-th frame, first ``num_frames``) for rollouts."""

    def __init__(
        self,
        source: FrameSource,
        stride: int = 1,
        trajectories: Sequence[int] | None = None,
        num_frames: int | None = None,
    ) -> None:
        self.source = source
        self.stride = stride
        self.frames = slice(
            0, None if num_frames is None else num_frames * stride, stride
        )
        self.trajectories = (
            list(range(source.num_trajectories))
            if trajectories is None
            else list(trajectories)
        )
        self.conditioning = _Conditioning(source)

    def __len__(self) -> int:
        return len(self.trajectories)

    def __getitem__(self, item: int) -> dict[str, Tensor]:
        index = self.trajectories[item]
        frames = self.source.read(index, self.frames)
        return {
            "trajectory": torch.from_numpy(np.ascontiguousarray(frames)).float(),
            **self.conditioning.item(index, self.frames),
        }
