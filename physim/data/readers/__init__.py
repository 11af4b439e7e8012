"""Readers of the files users already have: PDEBench, PDEArena and The Well.

Each reader presents one file as physim trajectories ``[N, T, C, *space]`` with the
interface of :class:`physim.data.TrajectoryFile` (``times``, ``coords``,
``channel_names``, ``read(index, frames)``, lazy per-process handles) plus
``sample_parameters``; coordinates that differ between trajectories stay per
trajectory (``times_of``, ``coords_of``), and constant fields and time-varying scalars
are read apart from the predicted channels (``read_constants``, ``read_scalars``).
:class:`ExternalSource` turns a file or a folder of them into physim's train/valid/test
splits for :class:`physim.data.TrajectoryDataModule`
(``data=external``); ``scripts/convert.py`` writes them in physim's format or as
valid files of The Well.
"""

from ._base import ExternalFile, Layout, TrajectoryView
from ._convert import to_physim
from ._detect import FORMATS, detect_format, open_files
from ._pdearena import PDEArenaFile
from ._pdebench import PDEBenchFile, PDEBenchSeedFile
from ._source import ExternalSource, source_statistics
from ._the_well import TheWellFile
from ._views import ChannelSelection, ConcatenatedFiles, TrajectorySubset
from ._well_export import to_the_well, well_fields

__all__ = [
    "FORMATS",
    "ChannelSelection",
    "ConcatenatedFiles",
    "ExternalFile",
    "ExternalSource",
    "Layout",
    "PDEArenaFile",
    "PDEBenchFile",
    "PDEBenchSeedFile",
    "TheWellFile",
    "TrajectorySubset",
    "TrajectoryView",
    "detect_format",
    "open_files",
    "source_statistics",
    "to_physim",
    "to_the_well",
    "well_fields",
]
