"""What a trajectory carries besides the fields a model predicts.

- **Per-trajectory coordinates.** Times ``[N, T]`` and cell positions ``[N, X]`` that
  differ between trajectories: LPSDA's Kuramoto-Sivashinsky data (PDEArena's KS files)
  draw the domain length and the time span per trajectory; The Well marks such
  coordinates ``sample_varying``. Where every trajectory has the same coordinates
  they are stored once, as the 1-D ``times``/``coords``; where they differ, the 1-D
  ones count frames and cells (``attrs["time_units"] == "frames"``,
  ``attrs["<dim>_units"] == "cells"``) and :meth:`PerTrajectoryAccess.times_of` /
  :meth:`~PerTrajectoryAccess.coords_of` give each trajectory's own. Nothing is
  collapsed to one trajectory's grid.
- **Constant fields** ``[N, K, *space]``: inputs that do not evolve (a wall mask, a
  sound-speed map; The Well's fields with ``time_varying = False``).
- **Time-varying scalars** ``[N, T, S]`` (The Well's ``/scalars`` with
  ``time_varying = True``).

The last two are never predicted channels; a model receives them as conditioning
inputs (``AutoregressiveSurrogate(conditioning_fields=...)``), as The Well's
``WellDataset`` returns them apart from the fields (``constant_fields``,
``input_scalars``).

In physim's file (format version 2) they are optional datasets beside ``fields``::

    sample_time      [N, T]           on (sample, time)   \\ listed in the attribute
    sample_<dim>     [N, X]           on (sample, <dim>)  / ``coordinates`` of fields
    constant_fields  [N, K, *space]   on (sample, constant, *space); scale constant [K]
    scalars          [N, T, S]        on (sample, time, scalar); scale scalar [S]

so ``xarray.open_dataset(path, engine="h5netcdf")`` shows the per-trajectory
coordinates as 2-D coordinates of ``fields`` and the others as named variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CONSTANT_DIM",
    "CONSTANT_FIELDS",
    "SAMPLE_TIME",
    "SCALARS",
    "SCALAR_DIM",
    "PerTrajectoryAccess",
    "SampleData",
    "collapse_rows",
    "concatenate_sample_data",
    "sample_coordinate",
    "unit_attrs",
]

SAMPLE_TIME = "sample_time"
CONSTANT_FIELDS = "constant_fields"
CONSTANT_DIM = "constant"
SCALARS = "scalars"
SCALAR_DIM = "scalar"


def sample_coordinate(dim: str) -> str:
    """The dataset name of the per-trajectory coordinate of ``dim`` (``sample_x``)."""
    return SAMPLE_TIME if dim == "time" else f"sample_{dim}"


def collapse_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``[N, L]`` coordinates -> ``(shared [L], None)`` when every row is the same,
    else ``(arange(L), values)``: the 1-D coordinate then counts frames or cells."""
    values = np.asarray(values, dtype=np.float64)
    if np.array_equal(values, np.broadcast_to(values[:1], values.shape)):
        return values[0].copy(), None
    return np.arange(values.shape[1], dtype=np.float64), values


def unit_attrs(sample_times: Any, sample_coords: Any) -> dict[str, str]:
    """The attributes saying which 1-D coordinates count frames or cells."""
    units = {"time_units": "frames"} if sample_times is not None else {}
    units.update({f"{dim}_units": "cells" for dim in sample_coords})
    return units


@dataclass(frozen=True)
class SampleData:
    """The per-trajectory record of a split (see the module docstring).

    Attributes:
        sample_times: ``[N, T]`` when times differ between trajectories, else None.
        sample_coords: ``{dim: [N, X]}`` for the dims whose positions differ.
        constant_names: names of the constant fields (``K``).
        scalar_names: names of the time-varying scalars (``S``).
    """

    sample_times: np.ndarray | None = None
    sample_coords: dict[str, np.ndarray] = field(default_factory=dict)
    constant_names: tuple[str, ...] = ()
    scalar_names: tuple[str, ...] = ()

    def subset(self, indices: np.ndarray) -> SampleData:
        """The record of trajectories ``indices`` only."""
        return SampleData(
            None if self.sample_times is None else self.sample_times[indices],
            {d: v[indices] for d, v in self.sample_coords.items()},
            self.constant_names,
            self.scalar_names,
        )


class PerTrajectoryAccess:
    """Per-trajectory coordinates, constant fields and scalars of a split.

    A mixin of :class:`physim.data.TrajectoryFile`, the external readers and the
    in-memory source. Hosts provide ``times``, ``coords``, ``num_trajectories``,
    :attr:`sample_data` and, when they have constant fields or scalars,
    ``_read_constants(index)`` and ``_read_scalars(index, frames)``.
    """

    times: Any
    coords: Any
    num_trajectories: int

    @property
    def sample_data(self) -> SampleData:
        raise NotImplementedError

    @property
    def varying_coordinates(self) -> tuple[str, ...]:
        """The coordinates that differ between trajectories (``"time"``, dims)."""
        data = self.sample_data
        return ("time",) * (data.sample_times is not None) + tuple(data.sample_coords)

    def times_of(self, index: int) -> np.ndarray:
        """Physical times ``[T]`` of trajectory ``index`` (float64)."""
        self._check_trajectory(index)
        times = self.sample_data.sample_times
        shared = np.array(self.times, dtype=np.float64)
        return shared if times is None else times[index].copy()

    def coords_of(self, index: int) -> dict[str, np.ndarray]:
        """Cell positions per spatial dimension of trajectory ``index``."""
        self._check_trajectory(index)
        own = self.sample_data.sample_coords
        return {
            d: own[d][index].copy() if d in own else v for d, v in self.coords.items()
        }

    def time_matrix(self) -> np.ndarray:
        """Every trajectory's times ``[N, T]`` (a read-only broadcast when shared)."""
        times = self.sample_data.sample_times
        if times is not None:
            return times
        shared = np.asarray(self.times, dtype=np.float64)
        return np.broadcast_to(shared, (self.num_trajectories, shared.shape[0]))

    @property
    def constant_names(self) -> tuple[str, ...]:
        """Names of the constant fields (never predicted; conditioning inputs)."""
        return self.sample_data.constant_names

    @property
    def scalar_names(self) -> tuple[str, ...]:
        """Names of the time-varying scalars (never predicted; conditioning inputs)."""
        return self.sample_data.scalar_names

    def read_constants(self, index: int) -> np.ndarray:
        """Constant fields of trajectory ``index`` as ``[K, *space]``."""
        self._check_trajectory(index)
        if not self.constant_names:
            raise ValueError(f"{self!r} has no constant fields.")
        return self._read_constants(index)

    def read_scalars(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        """Time-varying scalars of trajectory ``index`` as ``[T', S]``."""
        self._check_trajectory(index)
        if not self.scalar_names:
            raise ValueError(f"{self!r} has no time-varying scalars.")
        return self._read_scalars(index, frames)

    def _read_constants(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        raise NotImplementedError

    def _check_trajectory(self, index: int) -> None:
        if not 0 <= index < self.num_trajectories:
            raise IndexError(
                f"trajectory {index} out of range [0, {self.num_trajectories})."
            )


def concatenate_sample_data(sources: Sequence[Any]) -> tuple[Any, Any, SampleData]:
    """``(times, coords, SampleData)`` of ``sources`` read one after another.

    Coordinates are gathered per trajectory and collapsed again when every
    trajectory of every source has the same; the conditioning names must agree (the
    caller checks).
    """
    first = sources[0]
    times, sample_times = collapse_rows(
        np.concatenate([s.time_matrix() for s in sources])
    )
    coords, sample_coords = {}, {}
    for dim in first.coords:
        rows = [
            s.sample_data.sample_coords.get(dim)
            if dim in s.sample_data.sample_coords
            else np.broadcast_to(
                s.coords[dim], (s.num_trajectories, len(s.coords[dim]))
            )
            for s in sources
        ]
        coords[dim], own = collapse_rows(np.concatenate(rows))
        if own is not None:
            sample_coords[dim] = own
    data = SampleData(
        sample_times, sample_coords, first.constant_names, first.scalar_names
    )
    return times, coords, data
