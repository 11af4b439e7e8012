"""Trajectory data: physim's HDF5 format, normalisation statistics and errors.

One file per split, ``<root>/{train,valid,test}.h5``, holding ``fields`` of shape
``[N, T, C, *space]`` with named, attached coordinates (``xarray.open_dataset(path,
engine="h5netcdf")`` opens it), plus ``<root>/stats.json``. See
:mod:`physim.data._format`; per-trajectory coordinates, constant fields and
time-varying scalars: :mod:`physim.data._per_sample`.
"""

from typing import TYPE_CHECKING, Any

from physim._progress import Progress, bar_columns, track

from ._errors import DatasetError
from ._format import FORMAT_VERSION, TrajectoryFile, validate_trajectory_file
from ._format_write import TrajectoryWriter, write_trajectories
from ._per_sample import PerTrajectoryAccess, SampleData
from ._stats import (
    STATISTICS_FILE,
    compute_statistics,
    ensure_difference_statistics,
    load_statistics,
    save_statistics,
    statistics_at_stride,
    stream_statistics,
)
from ._windows import InMemorySource, TrajectoryDataset, WindowDataset

__all__ = [
    # format
    "FORMAT_VERSION",
    "STATISTICS_FILE",
    "DatasetError",
    "InMemorySource",
    "PerTrajectoryAccess",
    "Progress",
    "SampleData",
    "TrajectoryDataModule",
    "TrajectoryDataset",
    "WindowDataset",
    "TrajectoryFile",
    "TrajectoryWriter",
    "bar_columns",
    "compute_statistics",
    "ensure_difference_statistics",
    "statistics_at_stride",
    "stream_statistics",
    "load_statistics",
    "save_statistics",
    "track",
    "validate_trajectory_file",
    "write_trajectories",
]

if TYPE_CHECKING:
    from ._datamodule import TrajectoryDataModule


def __getattr__(name: str) -> Any:
    # The data module is imported on first use (PEP 562), so that the format, the
    # statistics and physim.solvers (dataset generation) do not pull in Lightning,
    # which takes seconds to import (in every generate run and spawned worker).
    if name == "TrajectoryDataModule":
        from ._datamodule import TrajectoryDataModule

        return TrajectoryDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
