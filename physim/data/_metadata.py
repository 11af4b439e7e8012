"""The metadata of a set of trajectories, written once for every kind of source.

physim's own file (:class:`physim.data.TrajectoryFile`) and the readers of foreign
files (:class:`physim.data.readers.TrajectoryView` and its subclasses) describe their
trajectories ``[N, T, C, *space]`` with the same :class:`Layout` record and present it
through the same properties, :class:`TrajectoryMetadata`. A source only builds its
``Layout`` (from an HDF5 file's attributes and coordinates, or from the sources it
combines) and implements ``read`` and ``close``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._per_sample import PerTrajectoryAccess, SampleData

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

__all__ = ["Layout", "TrajectoryMetadata"]


@dataclass(frozen=True)
class Layout:
    """Everything about a set of trajectories except the field values.

    Attributes:
        shape: ``(N, T, C, *space)``.
        dtype: the dtype ``read`` returns.
        chunks: the block shape reads follow: ``(1, frames per read block, C,
            *space)`` for a foreign file, the HDF5 chunk shape of ``fields`` for
            physim's own.
        spatial_dims: spatial dimension names, e.g. ``("x", "y")``.
        times: physical output times ``[T]``.
        channel_names: one name per channel.
        coords: cell positions per spatial dimension.
        attrs: file-level metadata as plain values.
        parameters: per-trajectory PDE parameters, ``name -> [N]``.
        sources: the HDF5 key each channel is read from (for error messages; empty
            for physim's file, which stores every channel in ``fields``).
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


class TrajectoryMetadata(PerTrajectoryAccess):
    """The metadata properties of a source of trajectories, read from its ``layout``.

    Hosts set ``path`` and ``layout`` (a :class:`Layout`) and implement ``read`` and
    :meth:`close`. Arrays and dictionaries are returned as copies, so a caller cannot
    change the source's record.
    """

    path: Path
    layout: Layout

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
    def channel_names(self) -> tuple[str, ...]:
        return self.layout.channel_names

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.layout.shape[3:]

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        """Spatial dimension names, e.g. ``("x", "y")``."""
        return self.layout.spatial_dims

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
        """File attributes as plain Python values."""
        return dict(self.layout.attrs)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the per-trajectory parameters (empty if there are none)."""
        return tuple(self.layout.parameters)

    @property
    def sample_parameters(self) -> dict[str, np.ndarray]:
        """Per-trajectory (PDE) parameters, ``{name: [N] float64}``."""
        return {name: v.copy() for name, v in self.layout.parameters.items()}

    @property
    def sample_data(self) -> SampleData:
        """Per-trajectory coordinates and conditioning names (see
        :class:`physim.data.PerTrajectoryAccess`)."""
        return self.layout.sample_data

    @property
    def dtype(self) -> np.dtype:
        return self.layout.dtype

    @property
    def chunks(self) -> tuple[int, ...]:
        """The block shape reads follow (see :attr:`Layout.chunks`)."""
        return self.layout.chunks

    @property
    def nbytes(self) -> int:
        """Size of all field values in memory."""
        return math.prod(self.layout.shape) * self.layout.dtype.itemsize

    def __len__(self) -> int:
        return self.num_trajectories

    def check_index(self, index: int) -> None:
        """Raise ``IndexError`` (naming the file) unless ``index`` is a trajectory."""
        if not 0 <= index < self.num_trajectories:
            raise IndexError(
                f"{self.path}: trajectory {index} out of range "
                f"[0, {self.num_trajectories})."
            )

    def close(self) -> None:
        """Release file handles (reopened on the next read)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
