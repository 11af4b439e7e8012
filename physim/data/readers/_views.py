"""Views that combine readers without copying data: several files as one, a subset of
trajectories (a split cut out of a file), a selection of channels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DatasetError
from .._per_sample import SampleData, concatenate_sample_data, unit_attrs
from ._base import Layout, TrajectoryView

__all__ = ["ChannelSelection", "ConcatenatedFiles", "TrajectorySubset"]


class ConcatenatedFiles(TrajectoryView):
    """Files with the same frames, channels and grid size read as one (trajectories of
    the first file first). Times and positions may differ between files: they are
    kept per trajectory then (``times_of``, ``coords_of``), never taken from one file.

    Raises:
        DatasetError: two files disagree on shape, channels, constant fields or
            scalars.
    """

    def __init__(self, files: Sequence[Any]) -> None:
        self.files = list(files)
        first = self.files[0]
        for other in self.files[1:]:
            for name in (
                "channel_names",
                "spatial_dims",
                "constant_names",
                "scalar_names",
            ):
                if getattr(other, name) != getattr(first, name):
                    raise self._mismatch(first, other, name)
            if other.shape[1:] != first.shape[1:]:
                raise self._mismatch(first, other, "shape [T, C, *space]")
        times, coords, sample_data = concatenate_sample_data(self.files)
        units = {f"{d}_units" for d in ("time", *first.spatial_dims)}
        self.path = Path(os.path.commonpath([str(f.path) for f in self.files]))
        self.split = split_of(first)
        self.offsets = np.cumsum([0] + [f.num_trajectories for f in self.files])
        parameters = [_layout_of(f).parameters for f in self.files]
        names = set.intersection(*(set(p) for p in parameters))
        self.layout = Layout(
            shape=(int(self.offsets[-1]), *first.shape[1:]),
            dtype=np.result_type(*(f.dtype for f in self.files)),
            chunks=(1, min(f.chunks[1] for f in self.files), *first.shape[2:]),
            spatial_dims=first.spatial_dims,
            times=times,
            channel_names=first.channel_names,
            coords=coords,
            attrs={
                **{k: v for k, v in first.attrs.items() if k not in units},
                "files": len(self.files),
                **unit_attrs(sample_data.sample_times, sample_data.sample_coords),
            },
            parameters={
                n: np.concatenate([p[n] for p in parameters]) for n in sorted(names)
            },
            sample_data=sample_data,
        )

    @staticmethod
    def _mismatch(first: Any, other: Any, what: str) -> DatasetError:
        return DatasetError(
            f"{other.path}: its {what} differs from that of {first.path}, so the two "
            "cannot be read as one dataset. Point the path at one file, or at "
            "a folder holding files of one dataset only."
        )

    def _locate(self, index: int) -> tuple[Any, int]:
        self.check_index(index)
        file = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.files[file], index - int(self.offsets[file])

    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        file, local = self._locate(index)
        return file.read(local, frames)

    def _read_constants(self, index: int) -> np.ndarray:
        file, local = self._locate(index)
        return file.read_constants(local)

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        file, local = self._locate(index)
        return file.read_scalars(local, frames)

    def close(self) -> None:
        for file in self.files:
            file.close()


class TrajectorySubset(TrajectoryView):
    """Trajectories ``indices`` of ``source`` (kept in the given order).

    Args:
        source: any reader.
        indices: trajectory indices of ``source``.
        split: the split this subset is.
    """

    def __init__(
        self, source: Any, indices: Sequence[int], split: str | None = None
    ) -> None:
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.path = source.path
        self.split = split
        self.layout = replace(
            _layout_of(source).subset(self.indices),
            attrs={**source.attrs, "split": split} if split else source.attrs,
        )

    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        self.check_index(index)
        return self.source.read(int(self.indices[index]), frames)

    def _read_constants(self, index: int) -> np.ndarray:
        return self.source.read_constants(int(self.indices[index]))

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        return self.source.read_scalars(int(self.indices[index]), frames)

    def close(self) -> None:
        self.source.close()


class ChannelSelection(TrajectoryView):
    """Channels ``names`` of ``source``, in that order.

    Raises:
        ValueError: a name is not a channel of ``source`` (the message lists them).
    """

    def __init__(self, source: Any, names: Sequence[str]) -> None:
        available = list(source.channel_names)
        unknown = [n for n in names if n not in available]
        if unknown or not names:
            raise ValueError(
                f"channels={list(names)}: {unknown or 'empty'} not among "
                f"the channels {available} of {source.path}; choose from those."
            )
        self.source = source
        self.select = [available.index(n) for n in names]
        self.path = source.path
        self.split = split_of(source)
        layout = _layout_of(source)
        self.layout = replace(
            layout,
            shape=(*layout.shape[:2], len(names), *layout.shape[3:]),
            chunks=(*layout.chunks[:2], len(names), *layout.chunks[3:]),
            channel_names=tuple(names),
            sources=tuple(layout.sources[i] for i in self.select)
            if layout.sources
            else (),
        )

    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        return self.source.read(index, frames)[:, self.select]

    def _read_constants(self, index: int) -> np.ndarray:
        return self.source.read_constants(index)

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        return self.source.read_scalars(index, frames)

    def close(self) -> None:
        self.source.close()


def split_of(source: Any) -> str | None:
    """The split a reader says it holds (``None``: unknown)."""
    split = getattr(source, "split", None) or source.attrs.get("split")
    return split if isinstance(split, str) else None


def _layout_of(source: Any) -> Layout:
    """The :class:`Layout` of any reader (physim's TrajectoryFile included)."""
    layout = getattr(source, "layout", None)
    if layout is not None:
        return layout
    return Layout(
        shape=tuple(source.shape),
        dtype=source.dtype,
        chunks=tuple(source.chunks),
        spatial_dims=tuple(source.spatial_dims),
        times=source.times,
        channel_names=tuple(source.channel_names),
        coords=source.coords,
        attrs=source.attrs,
        parameters=getattr(source, "sample_parameters", {}),
        sample_data=getattr(source, "sample_data", SampleData()),
    )
