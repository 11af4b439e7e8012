"""physim's trajectory file: one HDF5 file per split, readable by h5py and xarray.

Layout of ``<root>/<split>.h5`` (format version 1)::

    fields    [N, T, C, *space]  the trajectories (dtype as given, float32 by default),
                                 one trajectory (or a time block of one) per chunk
    sample    [N]  int64         trajectory index                  -- dimension scale
    time      [T]  float64       physical output times             -- dimension scale
    channel   [C]  utf-8 str     channel names                     -- dimension scale
    x, y, ... [M]  float64       cell positions per spatial axis   -- dimension scales
    <param>   [N]  float64       optional per-trajectory parameters (e.g. a domain
                                 length drawn per trajectory) on the ``sample`` dim;
                                 their names: the attribute ``sample_parameters``
    attrs: physim_format_version (int), physim_version, created (ISO time), and what
           the writer passes (pde, param_*, solver, controller, output_interval, seed)

Optional (version 2; see :mod:`physim.data._per_sample`): per-trajectory coordinates
``sample_time [N, T]`` and ``sample_<dim> [N, X]`` where they differ between
trajectories (the 1-D ``time``/``<dim>`` then count frames/cells), constant fields
``constant_fields [N, K, *space]`` and time-varying scalars ``scalars [N, T, S]``, the
last two conditioning inputs that are never predicted. Version 1 files (none of these)
read unchanged.

Coordinates are 1-D datasets *named like their dimension* and attached to ``fields`` as
HDF5 dimension scales; that is how netCDF-4 stores coordinate variables, so
``xarray.open_dataset(path, engine="h5netcdf")`` sees the named dimensions
``("sample", "time", "channel", "x", "y")`` and their values, with no ``phony_dim_*``.

Files are written (by :mod:`physim.data._format_write`) under a temporary name in the
same folder and renamed with ``os.replace`` (atomic on POSIX) only when complete, so a
crash never leaves a file that looks finished. Alternatives considered: zarr (many small
files, poor on shared filesystems) and netCDF4-python (an extra C dependency; h5py
writes the same layout).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._errors import DatasetError
from ._metadata import Layout, TrajectoryMetadata
from ._per_sample import (
    CONSTANT_DIM,
    CONSTANT_FIELDS,
    SCALAR_DIM,
    SCALARS,
    SampleData,
    sample_coordinate,
)

__all__ = [
    "FORMAT_VERSION",
    "TrajectoryFile",
    "check_finite",
    "finite_verdict",
    "nonfinite_message",
    "validate_trajectory_file",
]

# ------------------------------------------- layout, shared with _format_write (writer)
# 2: optional per-trajectory coordinates, constant fields and scalars. A version-1
# reader would ignore them (and collapse the coordinates), so it is refused a v2 file.
FORMAT_VERSION = 2
FIELDS = "fields"
LEADING_DIMS = ("sample", "time", "channel")
SAMPLE_PARAMETERS = "sample_parameters"
# Chunks of about this many bytes: HDF5's guidance is 10 KiB - 1 MiB for random access
# and a few MiB for streaming. Training reads whole windows of one trajectory, so one
# trajectory per chunk (a time block when a trajectory is larger) keeps a window to one
# or two chunk reads. No compression: float fields barely compress and decompression
# would cost more than the disk read.
CHUNK_TARGET_BYTES = 4 * 1024**2
# Chunk cache per open file (HDF5's default is 1 MiB, smaller than one chunk here).
READ_CACHE_BYTES = 16 * 1024**2


def _plain(value: Any) -> Any:
    """An attribute value read by h5py as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    return value


def chunk_shape(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    """One trajectory per chunk, cut along time (then channel, space) if too big."""
    chunk = [1, *shape[1:]]
    for axis in range(1, len(shape)):
        total = math.prod(chunk) * itemsize
        if total <= CHUNK_TARGET_BYTES:
            break
        others = total // chunk[axis]
        chunk[axis] = max(1, CHUNK_TARGET_BYTES // others)
    return tuple(max(1, c) for c in chunk)


def temporary_path(path: Path) -> Path:
    """``<name>.tmp-<host>-<pid>`` next to ``path`` (unique per process, NFS too)."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:40]
    return path.with_name(f"{path.name}.tmp-{host}-{os.getpid()}")


# ---------------------------------------------------------------------------- reading
def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise DatasetError(
            f"{path}: trajectory file not found. Generate the dataset "
            "(python scripts/generate.py data=<name>) or fix the path."
        )
    if not path.is_file():
        raise DatasetError(f"{path}: is not a file; point at a <split>.h5 file.")
    try:
        return h5py.File(path, "r", rdcc_nbytes=READ_CACHE_BYTES)
    except OSError as error:
        raise DatasetError(
            f"{path}: not a readable HDF5 file (corrupt, truncated or another format: "
            f"{error}). Delete it and regenerate the dataset."
        ) from error


def _metadata(handle: h5py.File, path: Path) -> Layout:
    """Read and check everything except the field values."""
    attrs = {key: _plain(value) for key, value in handle.attrs.items()}
    version = attrs.get("physim_format_version")
    if version is None:
        raise DatasetError(
            f"{path}: attribute 'physim_format_version' is missing, so this is not a "
            "physim trajectory file (foreign file). Convert it with physim.data."
            "write_trajectories, or use the matching reader."
        )
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DatasetError(
            f"{path}: physim_format_version={version!r}, but this physim reads version "
            f"<= {FORMAT_VERSION}. Upgrade physim or regenerate the file."
        )
    fields = handle.get(FIELDS)
    if not isinstance(fields, h5py.Dataset):
        raise DatasetError(
            f"{path}: key '{FIELDS}' is missing (or not a dataset); the file is "
            "incomplete or foreign. Delete it and regenerate the dataset."
        )
    if fields.ndim < 4:
        raise DatasetError(
            f"{path}: '{FIELDS}' has {fields.ndim} axes {fields.shape}; expected "
            "[sample, time, channel, *space] with at least one spatial axis."
        )
    dims = tuple(dim.label for dim in fields.dims)
    if dims[:3] != LEADING_DIMS or not all(dims[3:]):
        raise DatasetError(
            f"{path}: '{FIELDS}' has dimension names {dims}; expected "
            f"{LEADING_DIMS} followed by the spatial dimensions. Regenerate the file."
        )
    values: dict[str, np.ndarray] = {}
    for axis, name in enumerate(dims):
        scale = handle.get(name)
        if not isinstance(scale, h5py.Dataset):
            raise DatasetError(
                f"{path}: coordinate key '{name}' (axis {axis} of '{FIELDS}') is "
                "missing. Regenerate the file."
            )
        if scale.shape != (fields.shape[axis],):
            raise DatasetError(
                f"{path}: coordinate '{name}' has shape {scale.shape} but axis {axis} "
                f"of '{FIELDS}' has length {fields.shape[axis]}. Regenerate the file."
            )
        values[name] = scale[()]
    times = np.asarray(values["time"], dtype=np.float64)
    if not np.isfinite(times).all() or np.any(np.diff(times) <= 0):
        raise DatasetError(
            f"{path}: coordinate 'time' must be finite and strictly increasing, got "
            f"{times[:5].tolist()}... Regenerate the file."
        )
    channel_names = tuple(_plain(v) for v in values["channel"])
    coords = {name: np.asarray(values[name], dtype=np.float64) for name in dims[3:]}
    names = attrs.pop(SAMPLE_PARAMETERS, [])
    parameters = {}
    for name in [names] if isinstance(names, str) else names:
        dataset = handle.get(name)
        if not isinstance(dataset, h5py.Dataset) or dataset.shape != fields.shape[:1]:
            raise DatasetError(
                f"{path}: per-trajectory parameter '{name}' (listed in the attribute "
                f"'{SAMPLE_PARAMETERS}') is missing or not a [{fields.shape[0]}] "
                "dataset. Regenerate the file."
            )
        parameters[name] = np.asarray(dataset[()], dtype=np.float64)
        if not np.isfinite(parameters[name]).all():
            raise DatasetError(
                f"{path}: per-trajectory parameter '{name}' holds NaN or Inf values. "
                "Regenerate the file."
            )
    return Layout(
        shape=tuple(fields.shape),
        dtype=fields.dtype,
        chunks=tuple(fields.chunks or fields.shape),
        spatial_dims=dims[3:],
        times=times,
        channel_names=channel_names,
        coords=coords,
        attrs=attrs,
        parameters=parameters,
        sample_data=_sample_data(handle, path, fields.shape, dims),
    )


def _sample_data(
    handle: h5py.File, path: Path, shape: tuple[int, ...], dims: tuple[str, ...]
) -> SampleData:
    """The optional per-trajectory datasets (see :mod:`physim.data._per_sample`)."""

    def optional(key: str, expected: tuple[int, ...]) -> h5py.Dataset | None:
        node = handle.get(key)
        if node is None:
            return None
        if not isinstance(node, h5py.Dataset) or node.shape != expected:
            got = node.shape if isinstance(node, h5py.Dataset) else "a group"
            raise DatasetError(
                f"{path}: '{key}' is {got}; expected a dataset of shape {expected}. "
                "Regenerate or re-convert the file."
            )
        return node

    num, frames = shape[:2]
    coordinates = {}
    for axis, dim in ((1, "time"), *((3 + i, d) for i, d in enumerate(dims[3:]))):
        node = optional(sample_coordinate(dim), (num, shape[axis]))
        if node is None:
            continue
        values = np.asarray(node[()], dtype=np.float64)
        increasing = dim != "time" or bool(np.all(np.diff(values, axis=1) > 0))
        if node.ndim != 2 or not np.isfinite(values).all() or not increasing:
            raise DatasetError(
                f"{path}: '{node.name.lstrip('/')}' must be [{num}, {shape[axis]}], "
                "finite (and increasing in time). Regenerate or re-convert the file."
            )
        coordinates[dim] = values
    constant_names = _names(handle, CONSTANT_DIM)
    optional(CONSTANT_FIELDS, (num, len(constant_names), *shape[3:]))
    scalar_names = _names(handle, SCALAR_DIM)
    optional(SCALARS, (num, frames, len(scalar_names)))
    return SampleData(
        sample_times=coordinates.pop("time", None),
        sample_coords=coordinates,
        constant_names=constant_names if CONSTANT_FIELDS in handle else (),
        scalar_names=scalar_names if SCALARS in handle else (),
    )


def _names(handle: h5py.File, scale: str) -> tuple[str, ...]:
    node = handle.get(scale)
    if not isinstance(node, h5py.Dataset):
        return ()
    return tuple(_plain(v) for v in node[()])


def validate_trajectory_file(
    path: str | Path, *, expect: Mapping[str, Any] | None = None
) -> None:
    """Check that ``path`` is a complete physim trajectory file.

    Checks: the file exists and is HDF5; it carries ``physim_format_version`` (else it
    is a foreign file); ``fields`` exists with ``[sample, time, channel, *space]`` axes;
    every coordinate exists and matches its axis length; times increase. Field values
    are not read here (non-finite values are caught by
    :func:`physim.data.compute_statistics`).

    Args:
        path: the file.
        expect: attribute values the file must have, e.g. ``{"split": "train"}``.

    Raises:
        DatasetError: naming the file, the key or attribute at fault and the fix.
    """
    path = Path(path)
    with _open(path) as handle:
        meta = _metadata(handle, path)
    for key, wanted in (expect or {}).items():
        if key not in meta.attrs:
            raise DatasetError(
                f"{path}: attribute '{key}' is missing (expected {wanted!r}); the file "
                "was written for a different dataset spec."
            )
        if meta.attrs[key] != wanted:
            raise DatasetError(
                f"{path}: attribute '{key}' is {meta.attrs[key]!r}, expected "
                f"{wanted!r}; the file was written for a different dataset spec."
            )


class TrajectoryFile(TrajectoryMetadata):
    """Lazy reader of one trajectory file.

    The file is validated and its metadata read when the object is created (its
    properties, :class:`physim.data._metadata.TrajectoryMetadata`, are those of the
    external readers); the HDF5 handle for the field values is opened on the first
    :meth:`read` and is not pickled, so every DataLoader worker and DDP process opens
    its own (HDF5 handles must not be shared across processes; a handle inherited
    through ``fork`` is detected by pid and reopened).

    Args:
        path: the ``<split>.h5`` file.

    Raises:
        DatasetError: see :func:`validate_trajectory_file`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with _open(self.path) as handle:
            self.layout = _metadata(handle, self.path)
        self._handle: h5py.File | None = None
        self._fields: h5py.Dataset | None = None
        self._pid: int | None = None

    # ------------------------------------------------------------ data
    def _dataset(self) -> h5py.Dataset:
        if self._fields is None or self._pid != os.getpid():
            self._handle = _open(self.path)
            self._fields = self._handle[FIELDS]
            self._pid = os.getpid()
        return self._fields

    def read(self, index: int, frames: slice = slice(None)) -> np.ndarray:
        """Frames of trajectory ``index`` as ``[T', C, *space]`` (the stored dtype).

        Args:
            index: trajectory index in ``[0, num_trajectories)``.
            frames: which frames (any slice with a positive step).
        """
        self.check_index(index)
        return self._dataset()[index, frames]

    def _read_constants(self, index: int) -> np.ndarray:
        return self._dataset().file[CONSTANT_FIELDS][index]

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        return self._dataset().file[SCALARS][index, frames]

    def close(self) -> None:
        """Close the HDF5 handle (reopened on the next :meth:`read`)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._fields = self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_handle=None, _fields=None, _pid=None)
        return state

    def __repr__(self) -> str:
        return f"TrajectoryFile('{self.path}', shape={self.shape}, dtype={self.dtype})"


# ------------------------------------------------------------------ finite values
# A NaN or Inf stored in a split would train or score silently wrong, so every split is
# checked before it is used, without reading paper-sized data twice:
#  - the writer sees every block it stores; when all were finite it records that in a
#    sidecar ``.<name>.finite`` keyed by the file's identity (size, mtime, inode), so
#    data physim generated is never re-read to be checked;
#  - a split read into memory is checked as it is loaded (InMemorySource.load, free);
#  - a split without a current record (edited in place, or written by other code) is
#    streamed once, one trajectory at a time, by TrajectoryDataModule.prepare_data
#    (rank 0), and the verdict recorded; every rank's setup() then reads the same
#    verdict. An edit changes the identity, so a stale record is never trusted.
# Alternatives: a checksum in the file's attributes cannot be checked without reading
# everything; a per-window check while training finds a bad frame only when it is
# drawn (mid-epoch, on one DDP rank while the others wait).
FINITE_RECORD_VERSION = 1


def finite_record_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.finite")


def _identity(path: Path) -> dict[str, int]:
    status = path.stat()
    return {
        "size": status.st_size,
        "mtime_ns": status.st_mtime_ns,
        "ino": status.st_ino,
    }


def record_finite_verdict(path: str | Path, location: Sequence[int] | None) -> None:
    """Record ``path``'s finite check (``None``: all finite), if the folder allows."""
    path = Path(path)
    record = {
        "version": FINITE_RECORD_VERSION,
        **_identity(path),
        "nonfinite": None if location is None else [int(i) for i in location],
    }
    target = finite_record_path(path)
    tmp = temporary_path(target)
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, target)
    except OSError:  # a read-only folder: check again next time
        tmp.unlink(missing_ok=True)


def _recorded_verdict(path: Path) -> tuple[bool, list[int] | None]:
    """``(known, location)`` from a record matching the file's identity."""
    try:
        record = json.loads(finite_record_path(path).read_text())
        current = _identity(path)
    except (OSError, ValueError):
        return False, None
    if record.get("version") != FINITE_RECORD_VERSION or any(
        record.get(key) != value for key, value in current.items()
    ):
        return False, None
    return True, record.get("nonfinite")


def first_nonfinite(block: np.ndarray) -> tuple[int, int] | None:
    """``(frame, channel)`` of the first NaN/Inf of ``block [T, C, *space]``."""
    bad = ~np.isfinite(block)
    if not bad.any():
        return None
    frame, channel = np.argwhere(bad.reshape(bad.shape[0], bad.shape[1], -1))[0][:2]
    return int(frame), int(channel)


def check_finite(file: TrajectoryFile) -> tuple[int, int, int] | None:
    """Stream ``file`` one trajectory at a time; ``(trajectory, frame, channel)`` of
    the first NaN/Inf, or ``None``."""
    for index in range(file.num_trajectories):
        found = first_nonfinite(file.read(index))
        if found is not None:
            return (index, *found)
    return None


def finite_verdict(path: str | Path) -> tuple[int, int, int] | None:
    """Where ``path`` first holds a NaN/Inf, or ``None``: recorded, else streamed once.

    Every process reaches the same verdict for the same file (DDP ranks included).
    """
    path = Path(path)
    known, location = _recorded_verdict(path)
    if not known:
        with TrajectoryFile(path) as file:
            found = check_finite(file)
        record_finite_verdict(path, found)
        return found
    return None if location is None else (location[0], location[1], location[2])


def nonfinite_message(
    path: Any,
    trajectory: int,
    frame: int,
    channel: int,
    times: Sequence[float] | None = None,
    channel_names: Sequence[str] | None = None,
) -> str:
    """The one-line refusal of a split holding NaN/Inf values."""
    when = f" (t = {float(times[frame]):g})" if times is not None else ""
    which = f"'{channel_names[channel]}'" if channel_names else str(channel)
    return (
        f"{path}: trajectory {trajectory}, frame {frame}{when}, channel {which} holds "
        "NaN or Inf values, so the data cannot be trained on or scored. Delete the "
        "file and regenerate the dataset (python scripts/generate.py data=<name>), "
        "or repair it."
    )
