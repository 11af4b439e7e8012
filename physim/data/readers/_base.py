"""What every reader of a foreign file shares: the metadata record, the lazy
per-process HDF5 handle, and the checks that turn a malformed file into one
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

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from .._errors import DatasetError
from .._format import READ_CACHE_BYTES, _plain
from .._per_sample import PerTrajectoryAccess, SampleData, collapse_rows

__all__ = ["ExternalFile", "Layout", "TrajectoryView"]


@dataclass(frozen=True)
class Layout:
    """Everything about a set of trajectories except the field values.

    Attributes:
        shape: ``(N, T, C, *space)``.
        dtype: the dtype :meth:`TrajectoryView.read` returns.
        chunks: ``(1, frames per read block, C, *space)``: reading whole time blocks of
            this length follows the file's own chunking.
        spatial_dims: spatial dimension names, e.g. ``("x", "y")``.
        times: physical output times ``[T]``.
        channel_names: one name per channel.
        coords: cell positions per spatial dimension.
        attrs: file-level metadata as plain values.
        parameters: per-trajectory PDE parameters, ``name -> [N]``.
        sources: the HDF5 key each channel is read from (for error messages).
        sample_data: per-trajectory coordinates (where they differ between
            trajectories; ``times``/``coords`` then count frames/cells) and the names
            of the constant fields and time-varying scalars.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...]
    spatial_dims: tuple[str, ...]
    times: np.ndarray
    channel_names: tuple[str, ...]
    coords: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, np.ndarray] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    sample_data: SampleData = field(default_factory=SampleData)

    def subset(self, indices: np.ndarray) -> Layout:
        """The layout of trajectories ``indices`` only."""
        return replace(
            self,
            shape=(len(indices), *self.shape[1:]),
            parameters={k: v[indices] for k, v in self.parameters.items()},
            sample_data=self.sample_data.subset(indices),
        )


class TrajectoryView(PerTrajectoryAccess, ABC):
    """Read-only trajectories ``[N, T, C, *space]`` described by a :class:`Layout`.

    Subclasses set ``path`` and ``layout`` and implement :meth:`read`.
    """

    path: Path
    layout: Layout
    split: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, T, C, *space)``."""
        return self.layout.shape

    @property
    def num_trajectories(self) -> int:
        return self.layout.shape[0]

    @property
    def num_frames(self) -> int:
        return self.layout.shape[1]

    @property
    def num_channels(self) -> int:
        return self.layout.shape[2]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.layout.shape[3:]

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        return self.layout.spatial_dims

    @property
    def channel_names(self) -> tuple[str, ...]:
        return self.layout.channel_names

    @property
    def times(self) -> np.ndarray:
        """Physical output times ``[T]`` (float64)."""
        return self.layout.times.copy()

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Cell positions per spatial dimension (float64)."""
        return {name: values.copy() for name, values in self.layout.coords.items()}

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.layout.attrs)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the per-trajectory parameters (empty if there are none)."""
        return tuple(self.layout.parameters)

    @property
    def sample_parameters(self) -> dict[str, np.ndarray]:
        """PDE parameters per trajectory, ``name -> [N]``."""
        return {name: v.copy() for name, v in self.layout.parameters.items()}

    @property
    def sample_data(self) -> SampleData:
        return self.layout.sample_data

    @property
    def dtype(self) -> np.dtype:
        return self.layout.dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        """``(1, frames per read block, C, *space)``."""
        return self.layout.chunks

    @property
    def nbytes(self) -> int:
        return math.prod(self.layout.shape) * self.layout.dtype.itemsize

    def __len__(self) -> int:
        return self.num_trajectories

    def check_index(self, index: int) -> None:
        if not 0 <= index < self.num_trajectories:
            raise IndexError(
                f"{self.path}: trajectory {index} out of range "
                f"[0, {self.num_trajectories})."
            )

    @abstractmethod
    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        """Frames of trajectory ``index`` as ``[T', C, *space]``."""

    @abstractmethod
    def close(self) -> None:
        """Release file handles (reopened on the next :meth:`read`)."""

    def __enter__(self) -> TrajectoryView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
