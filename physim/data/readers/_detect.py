"""Which reader reads a file: detected from the file's structure, or named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from .._errors import DatasetError
from .._format import TrajectoryFile
from ._base import ExternalFile, open_hdf5
from ._pdearena import PDEArenaFile
from ._pdebench import PDEBenchFile, PDEBenchSeedFile
from ._the_well import TheWellFile

__all__ = ["FORMATS", "detect_format", "open_files"]

# Format name -> readers tried in order. "physim" is physim's own format.
READERS: dict[str, tuple[type[ExternalFile], ...]] = {
    "pdebench": (PDEBenchFile, PDEBenchSeedFile),
    "pdearena": (PDEArenaFile,),
    "the_well": (TheWellFile,),
}
FORMATS = ("auto", "physim", *READERS)
SUFFIXES = (".h5", ".hdf5", ".hdf")


def _reader(handle: h5py.File) -> tuple[str, type[ExternalFile] | None] | None:
    if "physim_format_version" in handle.attrs:
        return "physim", None
    for name, readers in READERS.items():
        for reader in readers:
            if reader.recognises(handle):
                return name, reader
    return None


def detect_format(path: str | Path) -> str | None:
    """The format of the HDF5 file ``path`` (a name in :data:`FORMATS`), or ``None``."""
    with open_hdf5(Path(path)) as handle:
        found = _reader(handle)
    return None if found is None else found[0]


def check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(
            f"format={format!r} is not a known format; use one of "
            f"{list(FORMATS)} ('auto' detects it from the file)."
        )
    return format


def _not_readable(file: Path, found: str | None, format: str) -> DatasetError:
    if found is None:
        return DatasetError(
            f"{file}: is not a recognised PDEBench, PDEArena, The Well or physim file "
            "(see physim.data.readers for the layouts). Check the path."
        )
    return DatasetError(
        f"{file}: has the structure of a {found!r} file, not {format!r}. Set format "
        f"to {found!r} or 'auto'."
    )


def open_files(path: str | Path, format: str = "auto") -> list[Any]:
    """Readers for the file ``path``, or for every recognised file under the folder
    ``path`` (searched recursively, in sorted order; one reader per split group).

    Args:
        path: an HDF5 file, or a folder holding some (e.g. The Well's ``{name}/data``).
        format: a name in :data:`FORMATS`.

    Raises:
        DatasetError: the path does not exist; a folder holds no recognised file; a
            file is not of the named format; a file is malformed.
    """
    check_format(format)
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"{path}: no such file or folder. Set the path to a PDEBench, "
            "PDEArena, The Well or physim HDF5 file, or a folder holding them."
        )
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    )
    readers: list[Any] = []
    skipped: list[str] = []
    for file in files:
        with open_hdf5(file) as handle:
            found = _reader(handle)
            groups = (
                [None] if found is None or found[1] is None else found[1].groups(handle)
            )
        name = None if found is None else found[0]
        if name is None or (format != "auto" and name != format):
            if path.is_file():
                raise _not_readable(file, name, format)
            skipped.append(f"{file.name} ({name or 'unrecognised'})")
            continue
        if found[1] is None:
            readers.append(TrajectoryFile(file))
        else:
            readers.extend(found[1](file, group) for group in groups)
    if not readers:
        raise DatasetError(
            f"{path}: no {'' if format == 'auto' else format + ' '}files found "
            f"(looked for {list(SUFFIXES)}; skipped {skipped[:5] or 'none'}). Point "
            "the path at a dataset file or at the folder holding its files, "
            "and check the format option."
        )
    return readers
