"""What every reader of a foreign file shares: the metadata record and its properties
(:mod:`physim.data._metadata`, shared with physim's own file), the lazy per-process
HDF5 handle, and the checks that turn a malformed file into one
:class:`~physim.data.DatasetError`.

A reader presents a file as physim trajectories ``[N, T, C, *space]`` with the same
interface as :class:`physim.data.TrajectoryFile` (``shape``, ``times``, ``coords``,
``channel_names``, ``read(index, frames)``, ...), plus ``sample_parameters`` (the PDE
parameters of each trajectory) and ``split`` (the split the file says it holds, if any).
Coordinates that differ between trajectories are kept per trajectory (``times_of(i)``,
``coords_of(i)``), and constant fields and time-varying scalars are read apart from the
predicted channels (``read_constants``, ``read_scalars``); see
:mod:`physim.data._per_sample`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from .._errors import DatasetError
from .._format import READ_CACHE_BYTES, _plain
from .._metadata import Layout, TrajectoryMetadata
from .._per_sample import collapse_rows

__all__ = ["ExternalFile", "Layout", "TrajectoryView"]


class TrajectoryView(TrajectoryMetadata, ABC):
    """Read-only trajectories ``[N, T, C, *space]`` described by a :class:`Layout`
    (the metadata properties are :class:`physim.data._metadata.TrajectoryMetadata`,
    shared with :class:`physim.data.TrajectoryFile`).

    Subclasses set ``path`` and ``layout`` and implement :meth:`read` and
    :meth:`close`.
    """

    split: str | None = None

    @abstractmethod
    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        """Frames of trajectory ``index`` as ``[T', C, *space]``."""

    @abstractmethod
    def close(self) -> None:
        """Release file handles (reopened on the next :meth:`read`)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.path}', shape={self.shape})"


def open_hdf5(path: Path) -> h5py.File:
    """Open ``path`` read-only with physim's chunk cache, or raise a DatasetError."""
    if not path.exists():
        raise DatasetError(f"{path}: file not found. Fix the path.")
    try:
        return h5py.File(path, "r", rdcc_nbytes=READ_CACHE_BYTES)
    except OSError as error:
        raise DatasetError(
            f"{path}: not a readable HDF5 file ({error}). Re-download or re-create it."
        ) from error


class ExternalFile(TrajectoryView):
    """A foreign HDF5 file read lazily: metadata at construction, values on demand.

    The HDF5 handle is opened on the first :meth:`read`, dropped when pickled and
    reopened after a ``fork`` (detected by pid), so every DataLoader worker and DDP
    process reads through its own handle. Every block read is checked for NaN/Inf.

    Subclasses implement :meth:`recognises` (structure-based detection),
    :meth:`_inspect` (build and check the :class:`Layout`) and :meth:`_read`.

    Args:
        path: the file.
        group: the HDF5 group holding the data (formats that keep one per split).

    Raises:
        DatasetError: the file is missing, not HDF5, or does not follow the layout.
    """

    format_name: ClassVar[str]

    def __init__(self, path: str | Path, group: str | None = None) -> None:
        self.path = Path(path)
        self.group = group
        with open_hdf5(self.path) as handle:
            self.layout = self._inspect(handle)
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._nodes: dict[str, h5py.Dataset] = {}

    @classmethod
    @abstractmethod
    def recognises(cls, handle: h5py.File) -> bool:
        """Whether the open file has this format's structure."""

    @classmethod
    def groups(cls, handle: h5py.File) -> list[str | None]:
        """The groups of ``handle`` to open one reader each for (default: the root)."""
        return [None]

    @abstractmethod
    def _inspect(self, handle: h5py.File) -> Layout:
        """Read and check the metadata."""

    @abstractmethod
    def _read(self, index: int, frames: slice) -> np.ndarray:
        """Frames of trajectory ``index`` as ``[T', C, *space]`` (via :meth:`node`)."""

    # ------------------------------------------------------------------ errors
    def error(self, key: str, problem: str, expected: str) -> DatasetError:
        """A :class:`DatasetError` naming this file, the dataset ``key`` and the
        expected layout."""
        return DatasetError(
            f"{self.path}: '{key}' {problem}; expected {expected} ({self.format_name} "
            "layout). Check the format option or repair the file."
        )

    def dataset(self, handle: h5py.Group, key: str, expected: str) -> h5py.Dataset:
        """``handle[key]`` if it is a dataset, else a DatasetError."""
        node = handle.get(key)
        if not isinstance(node, h5py.Dataset):
            problem = "is missing" if node is None else "is a group, not a dataset"
            raise self.error(key, problem, expected)
        return node

    def coordinate(
        self,
        handle: h5py.Group,
        key: str,
        length: int,
        *,
        drop_last: bool = False,
        num: int | None = None,
    ) -> np.ndarray:
        """A coordinate of ``length`` entries: ``[length]``, or ``[num, length]`` (one
        row per trajectory) when ``num`` is given; ``length + 1`` entries are accepted
        and the last dropped when ``drop_last``."""
        lengths = f"[{length}]" + (f" or [{length + 1}]" if drop_last else "")
        values = self.dataset(handle, key, f"{lengths} coordinate values")[()]
        values = np.asarray(values, dtype=np.float64)
        rows = values.ndim == 2 and num is not None
        if rows and values.shape[0] != num:
            raise self.error(
                key,
                f"has {values.shape[0]} rows {values.shape}",
                f"one row per trajectory ({num}) or a 1-D coordinate",
            )
        if drop_last and values.shape[-1:] == (length + 1,):
            values = values[..., :-1]
        if values.ndim != 1 + rows or values.shape[-1] != length:
            extra = f" (or {length + 1}, the last dropped)" if drop_last else ""
            per = f" per trajectory ({list(values.shape)} stored)" if rows else ""
            shape = values.shape[-1:] if rows else values.shape
            raise self.error(key, f"has shape {shape}", f"{length}{extra} entries{per}")
        if not np.isfinite(values).all():
            raise self.error(key, "holds NaN/Inf", "finite coordinates")
        return values

    def per_trajectory(
        self, key: str, values: np.ndarray, *, times: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(1-D coordinate, [N, L] or None)`` of a coordinate read by
        :meth:`coordinate`: rows that differ are kept per trajectory (the 1-D one
        then counts frames or cells), equal rows are stored once."""
        if times:
            self.check_times(key, values)
        return (values, None) if values.ndim == 1 else collapse_rows(values)

    def source_key(self, index: int, channel: int) -> str:
        """The HDF5 key channel ``channel`` of trajectory ``index`` is read from."""
        return self.layout.sources[channel]

    def check_times(self, key: str, times: np.ndarray) -> np.ndarray:
        """``times`` (``[T]``, or ``[N, T]`` per trajectory) if increasing."""
        steps = np.diff(times, axis=-1)
        if np.any(steps <= 0):
            row = np.argwhere(steps <= 0)[0][:-1]
            where = f" in trajectory {int(row[0])}" if row.size else ""
            raise self.error(
                key,
                f"is not increasing{where} ({np.atleast_2d(times)[tuple(row)][:4]}...)",
                "increasing times",
            )
        return times

    # ------------------------------------------------------------------ data
    def node(self, key: str) -> h5py.Dataset:
        """Dataset ``key`` through this process's handle, looked up once (an h5py
        path lookup costs about as much as reading a small window)."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = open_hdf5(self.path)
            self._pid = os.getpid()
            self._nodes = {}
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes[key] = self._handle[key]
        return node

    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        """Frames of trajectory ``index`` as ``[T', C, *space]``.

        Raises:
            DatasetError: the block holds NaN or Inf (naming the dataset and frame).
        """
        self.check_index(index)
        block = self._read(index, frames)
        if not np.isfinite(block).all():
            frame, channel = np.argwhere(~np.isfinite(block))[0, :2]
            start = frames.indices(self.num_frames)[0]
            raise self.error(
                self.source_key(index, int(channel)),
                f"holds NaN/Inf in trajectory {index} (frame "
                f"{start + frame * (frames.step or 1)})",
                "finite values; drop or repair that trajectory",
            )
        return block

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._pid = None
        self._nodes = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_handle=None, _pid=None, _nodes={})
        return state


def plain_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    """HDF5 attributes as plain Python values."""
    return {key: _plain(value) for key, value in attrs.items()}


def numeric_parameters(
    attrs: Mapping[str, Any], count: int, names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Scalar numeric attributes (all, or ``names``) broadcast to ``[count]``."""
    keys = attrs if names is None else [n for n in names if n in attrs]
    return {
        key: np.full(count, float(attrs[key]))
        for key in keys
        if isinstance(attrs[key], (int, float)) and not isinstance(attrs[key], bool)
    }


def time_block(dataset: h5py.Dataset, time_axis: int) -> int:
    """Frames per chunk along ``time_axis`` (all frames when contiguous)."""
    chunks = dataset.chunks or dataset.shape
    return int(chunks[time_axis])
