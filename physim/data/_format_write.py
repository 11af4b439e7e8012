"""Writing physim trajectory files, incrementally and atomically.

The layout is specified, read and validated in :mod:`physim.data._format`; this module
only writes it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from ._errors import DatasetError
from ._format import (
    FIELDS,
    FORMAT_VERSION,
    LEADING_DIMS,
    SAMPLE_PARAMETERS,
    chunk_shape,
    record_finite_verdict,
    temporary_path,
)
from ._per_sample import (
    CONSTANT_DIM,
    CONSTANT_FIELDS,
    SCALAR_DIM,
    SCALARS,
    sample_coordinate,
)

__all__ = ["TrajectoryWriter", "write_trajectories"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PLAIN_TYPES = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)


def _physim_version() -> str:
    from physim import __version__

    return __version__


def _check_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    checked = {}
    for key, value in attrs.items():
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"Trajectory file attributes: key {key!r} must be a string."
            )
        if not isinstance(value, PLAIN_TYPES):
            raise TypeError(
                f"Trajectory file attribute '{key}' has type {type(value).__name__}; "
                "only str, int, float and bool are stored. Flatten it (param_<name>) "
                "or "
                "convert it to a string (e.g. json.dumps)."
            )
        checked[key] = value
    return checked


def _names(what: str, names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(
            f"TrajectoryWriter: {what} must be distinct non-empty strings, got "
            f"{list(names)!r}."
        )
    return names


def _check_sample_axis(dim: str, values: Any, shape: tuple[int, int]) -> np.ndarray:
    """A per-trajectory coordinate ``[N, L]``: finite, times increasing per row."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape or not np.isfinite(array).all():
        raise ValueError(
            f"TrajectoryWriter: per-trajectory {dim} must be a finite {list(shape)} "
            f"array, got shape {array.shape}."
        )
    if dim == "time" and np.any(np.diff(array, axis=1) <= 0):
        raise ValueError(
            "TrajectoryWriter: per-trajectory times must increase along each row."
        )
    return array


def _check_axis(name: str, values: Any, *, strictly_increasing: bool) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"Trajectory coordinate '{name}' must be a non-empty 1-D array, "
            f"got shape {array.shape}."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"Trajectory coordinate '{name}' holds NaN or Inf values.")
    if strictly_increasing and np.any(np.diff(array) <= 0):
        raise ValueError(f"Trajectory coordinate '{name}' must be strictly increasing.")
    return array


class TrajectoryWriter:
    """Writes a trajectory file incrementally and atomically.

    The array ``[num_trajectories, T, C, *space]`` is preallocated in
    ``<name>.tmp-<host>-<pid>`` next to ``path``; :meth:`write` fills trajectories; a
    successful exit from the ``with`` block (or :meth:`close`) checks that every
    trajectory was written and renames the file to ``path`` (replacing an existing one).
    On an exception (or :meth:`abort`) the temporary file is removed, so ``path`` never
    holds a partial file.

    Example::

        with TrajectoryWriter(path, num_trajectories=8, times=t, coords={"x": x},
                              channel_names=["u"], attrs={"pde": "heat"}) as writer:
            for i in range(8):
                writer.write(i, solve(i))      # [T, C, *space]

    Args:
        path: the final file name.
        num_trajectories: N.
        times: the physical output times ``[T]``, strictly increasing.
        coords: cell positions per spatial dimension, in axis order (``{"x": ..}``).
        channel_names: one name per channel.
        attrs: file attributes (str, int, float or bool values).
        dtype: the stored dtype of ``fields``.
        parameter_names: names of per-trajectory scalar parameters (e.g. a domain
            length drawn per trajectory), stored as ``[N]`` float64 datasets on the
            ``sample`` dimension and passed to :meth:`write` with each trajectory.
        record_finite: when every block written was finite, record that beside the
            file (``.<name>.finite``), so readers need not check it again (see
            :func:`physim.data._format.finite_verdict`); off for temporary files.
        sample_times: ``[N, T]`` times of each trajectory, when they differ between
            trajectories (``times`` then counts frames); stored as ``sample_time``.
        sample_coords: ``{dim: [N, X]}`` positions of the dims that differ between
            trajectories; stored as ``sample_<dim>``.
        constant_names: names of constant fields (``[K, *space]`` per trajectory,
            passed to :meth:`write`); conditioning inputs, never predicted.
        scalar_names: names of time-varying scalars (``[T, S]`` per trajectory,
            passed to :meth:`write`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        num_trajectories: int,
        times: Any,
        coords: Mapping[str, Any],
        channel_names: Sequence[str],
        attrs: Mapping[str, Any],
        dtype: Any = np.float32,
        parameter_names: Sequence[str] = (),
        record_finite: bool = True,
        sample_times: Any = None,
        sample_coords: Mapping[str, Any] | None = None,
        constant_names: Sequence[str] = (),
        scalar_names: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.record_finite = record_finite
        if int(num_trajectories) != num_trajectories or num_trajectories < 1:
            raise ValueError(
                f"TrajectoryWriter: num_trajectories must be a positive integer, got "
                f"{num_trajectories!r}."
            )
        times = _check_axis("time", times, strictly_increasing=True)
        names = [str(name) for name in channel_names]
        if not names or len(set(names)) != len(names) or not all(names):
            raise ValueError(
                f"TrajectoryWriter: channel_names must be distinct non-empty strings, "
                f"got {list(channel_names)!r}."
            )
        if not coords:
            raise ValueError(
                "TrajectoryWriter: coords needs one entry per spatial axis."
            )
        reserved = {FIELDS, *LEADING_DIMS, CONSTANT_FIELDS, CONSTANT_DIM, SCALARS}
        reserved |= {SCALAR_DIM, *(sample_coordinate(d) for d in ("time", *coords))}
        self.parameter_names = tuple(str(name) for name in parameter_names)
        for name in self.parameter_names:
            if name in reserved or name in coords or not _IDENTIFIER.fullmatch(name):
                raise ValueError(
                    f"TrajectoryWriter: parameter name {name!r} is not allowed; use a "
                    f"distinct identifier other than {sorted(reserved)} and the "
                    "spatial dimension names."
                )
        if len(set(self.parameter_names)) != len(self.parameter_names):
            raise ValueError(
                f"TrajectoryWriter: parameter_names repeat: {self.parameter_names}."
            )
        for name in coords:
            if name in reserved or not _IDENTIFIER.fullmatch(name):
                raise ValueError(
                    f"TrajectoryWriter: spatial dimension name {name!r} is not "
                    "allowed; "
                    f"use an identifier other than {sorted(reserved)} (e.g. 'x', 'y')."
                )
        axes = {
            name: _check_axis(name, values, strictly_increasing=False)
            for name, values in coords.items()
        }
        self.dtype = np.dtype(dtype)
        self.shape = (
            int(num_trajectories),
            len(times),
            len(names),
            *(len(a) for a in axes.values()),
        )
        self.constant_names = _names("constant_names", constant_names)
        self.scalar_names = _names("scalar_names", scalar_names)
        per_sample = {
            "time": sample_times,
            **{d: v for d, v in (sample_coords or {}).items() if v is not None},
        }
        unknown = set(per_sample) - {"time", *axes}
        if unknown:
            raise ValueError(
                f"TrajectoryWriter: sample_coords names {sorted(unknown)}, which are "
                f"not spatial dims {list(axes)}."
            )
        lengths = {"time": len(times), **{d: len(a) for d, a in axes.items()}}
        self.sample_axes = {
            dim: _check_sample_axis(dim, values, (self.shape[0], lengths[dim]))
            for dim, values in per_sample.items()
            if values is not None
        }
        user_attrs = _check_attrs(attrs)
        stored = {
            "physim_version": _physim_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **user_attrs,
            "physim_format_version": FORMAT_VERSION,
        }
        self._written = np.zeros(self.shape[0], dtype=bool)
        self._extras_written = {
            key: np.zeros(self.shape[0], dtype=bool)
            for key, names in ((CONSTANT_FIELDS, self.constant_names),
                               (SCALARS, self.scalar_names)) if names
        }  # fmt: skip
        self._all_finite = True  # recorded beside the file (see _format.finite_verdict)
        self._tmp = temporary_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self._tmp, "w")
        except OSError as error:
            raise DatasetError(
                f"{self.path}: cannot write here ({error}). Choose a writable folder."
            ) from error
        try:
            self._layout(times, axes, names, stored)
        except BaseException:
            self.abort()
            raise

    def _layout(
        self,
        times: np.ndarray,
        axes: dict[str, np.ndarray],
        names: list[str],
        attrs: dict[str, Any],
    ) -> None:
        f = self._file
        self._fields = f.create_dataset(
            FIELDS,
            shape=self.shape,
            dtype=self.dtype,
            chunks=chunk_shape(self.shape, self.dtype.itemsize),
        )
        scales = {
            "sample": np.arange(self.shape[0], dtype=np.int64),
            "time": times,
            "channel": np.array(names, dtype=h5py.string_dtype("utf-8")),
            **axes,
        }
        for axis, (name, values) in enumerate(scales.items()):
            scale = f.create_dataset(name, data=values)
            scale.make_scale(name)
            self._fields.dims[axis].attach_scale(scale)
            self._fields.dims[axis].label = name
        for name in self.parameter_names:
            parameter = f.create_dataset(name, shape=(self.shape[0],), dtype=np.float64)
            parameter.dims[0].attach_scale(f["sample"])
            parameter.dims[0].label = "sample"
            parameter.attrs["long_name"] = "per-trajectory parameter"
        if self.parameter_names:
            f.attrs[SAMPLE_PARAMETERS] = np.array(
                self.parameter_names, dtype=h5py.string_dtype("utf-8")
            )
        self._layout_per_sample(f, list(scales))
        f[FIELDS].attrs["long_name"] = "trajectories [sample, time, channel, *space]"
        f["time"].attrs["long_name"] = "physical time of each stored frame"
        for key, value in attrs.items():
            f.attrs[key] = value

    def _layout_per_sample(self, f: h5py.File, dims: list[str]) -> None:
        """Per-trajectory coordinates, constant fields and scalars (if any)."""
        for dim, values in self.sample_axes.items():
            name = sample_coordinate(dim)
            node = f.create_dataset(name, data=values)
            for axis, scale in enumerate(("sample", dim)):
                node.dims[axis].attach_scale(f[scale])
                node.dims[axis].label = scale
            node.attrs["long_name"] = f"{dim} of each trajectory"
        if self.sample_axes:
            # CF's auxiliary coordinates: xarray shows them as 2-D coordinates.
            f[FIELDS].attrs["coordinates"] = " ".join(
                sample_coordinate(d) for d in self.sample_axes
            )
        space = dims[3:]
        for key, scale, names, axes in (
            (CONSTANT_FIELDS, CONSTANT_DIM, self.constant_names, ["sample", *space]),
            (SCALARS, SCALAR_DIM, self.scalar_names, ["sample", "time"]),
        ):
            if not names:
                continue
            labels = np.array(names, dtype=h5py.string_dtype("utf-8"))
            f.create_dataset(scale, data=labels).make_scale(scale)
            axes.insert(1 if key == CONSTANT_FIELDS else 2, scale)
            shape = tuple(len(f[a]) for a in axes)
            node = f.create_dataset(
                key, shape=shape, dtype=self.dtype, chunks=(1, *shape[1:])
            )
            for axis, label in enumerate(axes):
                node.dims[axis].attach_scale(f[label])
                node.dims[axis].label = label

    def write(
        self,
        index: int | slice,
        block: Any,
        parameters: Mapping[str, Any] | None = None,
        *,
        constants: Any = None,
        scalars: Any = None,
    ) -> None:
        """Store trajectory ``index`` (``[T, C, *space]``) or a slice of them.

        Args:
            index: a trajectory index, or a ``slice`` (step 1) of trajectories.
            block: ``[T, C, *space]`` for an index, ``[n, T, C, *space]`` for a slice;
                cast to the file's dtype. Torch tensors are accepted (moved to CPU).
            parameters: one value (an index) or ``[n]`` values (a slice) per name of
                ``parameter_names``; required exactly when the file has parameters.
            constants: ``[K, *space]`` (``[n, K, *space]`` for a slice); required
                exactly when the file has ``constant_names``.
            scalars: ``[T, S]`` (``[n, T, S]`` for a slice); required exactly when
                the file has ``scalar_names``.
        """
        if self._file is None:
            raise RuntimeError(f"{self.path}: the writer is already closed.")
        if hasattr(block, "detach"):
            block = block.detach().cpu().numpy()
        block = np.asarray(block)
        if isinstance(index, slice):
            start, stop, step = index.indices(self.shape[0])
            if step != 1:
                raise ValueError(
                    f"TrajectoryWriter.write: slice step must be 1: {index}."
                )
            expected: tuple[int, ...] = (stop - start, *self.shape[1:])
            rows = slice(start, stop)
        else:
            if not 0 <= index < self.shape[0]:
                raise IndexError(
                    f"TrajectoryWriter.write: trajectory {index} out of range "
                    f"[0, {self.shape[0]})."
                )
            expected = self.shape[1:]
            rows = slice(index, index + 1)
        if block.shape != expected:
            raise ValueError(
                f"TrajectoryWriter.write: block for trajectories {index} has shape "
                f"{block.shape}; expected {expected} ([.., T, C, *space] of "
                f"{self.path})."
            )
        values = self._parameter_values(parameters, rows.stop - rows.start)
        extras = self._extra_values(rows, constants=constants, scalars=scalars)
        stored = block.reshape(-1, *self.shape[1:]).astype(self.dtype, copy=False)
        self._fields[rows] = stored
        self._all_finite = self._all_finite and bool(np.isfinite(stored).all())
        for name, value in values.items():
            self._file[name][rows] = value
        for key, value in extras.items():
            self._file[key][rows] = value
            self._all_finite = self._all_finite and bool(np.isfinite(value).all())
        self._written[rows] = True

    def _extra_values(self, rows: slice, **given: Any) -> dict[str, np.ndarray]:
        """The constant fields and scalars of ``rows``, checked and cast."""
        out = {}
        for key, name in ((CONSTANT_FIELDS, "constants"), (SCALARS, "scalars")):
            value = given[name]
            if (value is None) != (key not in self._extras_written):
                need = "needs" if key in self._extras_written else "has no"
                raise ValueError(
                    f"TrajectoryWriter.write: {self.path} {need} {name}; pass them "
                    "exactly when the writer was given their names."
                )
            if value is None:
                continue
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            node = self._file[key]
            expected = (rows.stop - rows.start, *node.shape[1:])
            value = np.asarray(value).astype(self.dtype, copy=False)
            if value.reshape(-1, *node.shape[1:]).shape != expected:
                raise ValueError(
                    f"TrajectoryWriter.write: {name} for trajectories {rows} have "
                    f"shape {value.shape}; expected {expected[1:]} per trajectory."
                )
            out[key] = value.reshape(expected)
            self._extras_written[key][rows] = True
        return out

    def _parameter_values(
        self, parameters: Mapping[str, Any] | None, count: int
    ) -> dict[str, np.ndarray]:
        given = dict(parameters or {})
        if set(given) != set(self.parameter_names):
            raise ValueError(
                f"TrajectoryWriter.write: parameters {sorted(given)} given, but "
                f"{self.path} holds {sorted(self.parameter_names)}; pass exactly those."
            )
        values = {}
        for name, value in given.items():
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            array = np.asarray(value, dtype=np.float64).reshape(-1)
            if array.size != count or not np.isfinite(array).all():
                raise ValueError(
                    f"TrajectoryWriter.write: parameter {name!r} needs {count} finite "
                    f"value(s), got {array.tolist()[:10]}."
                )
            values[name] = array
        return values

    def close(self) -> Path:
        """Finish: check completeness, then atomically rename to the final path."""
        if self._file is None:
            return self.path
        missing = np.flatnonzero(
            ~np.logical_and.reduce([self._written, *self._extras_written.values()])
        )
        if missing.size:
            self.abort()
            raise DatasetError(
                f"{self.path}: trajectories {missing[:10].tolist()} were never written "
                f"({missing.size} of {self.shape[0]}); nothing was saved. Write every "
                "trajectory before closing."
            )
        self._file.close()
        self._file = None
        os.replace(self._tmp, self.path)
        if self.record_finite and self._all_finite:  # seen finite: never read again
            record_finite_verdict(self.path, None)
        return self.path

    def abort(self) -> None:
        """Discard everything written: close and delete the temporary file."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def write_trajectories(
    path: str | Path,
    fields: Any,
    *,
    times: Any,
    coords: Mapping[str, Any],
    channel_names: Sequence[str],
    attrs: Mapping[str, Any],
    sample_parameters: Mapping[str, Any] | None = None,
    record_finite: bool = True,
    sample_times: Any = None,
    sample_coords: Mapping[str, Any] | None = None,
    constant_fields: Mapping[str, Any] | None = None,
    scalars: Mapping[str, Any] | None = None,
) -> Path:
    """Write a whole ``[N, T, C, *space]`` array atomically (dtype kept); return path.

    See :class:`TrajectoryWriter` for the arguments and the layout;
    ``sample_parameters`` maps parameter names to ``[N]`` values,
    ``constant_fields`` names to ``[N, *space]`` arrays and ``scalars`` names to
    ``[N, T]`` arrays.
    """
    if hasattr(fields, "detach"):
        fields = fields.detach().cpu().numpy()
    fields = np.asarray(fields)
    if fields.ndim < 4:
        raise ValueError(
            f"write_trajectories: fields must be [N, T, C, *space] with at least one "
            f"spatial axis, got shape {fields.shape}."
        )
    with TrajectoryWriter(
        path,
        num_trajectories=fields.shape[0],
        times=times,
        coords=coords,
        channel_names=channel_names,
        attrs=attrs,
        dtype=fields.dtype,
        parameter_names=list(sample_parameters or {}),
        record_finite=record_finite,
        sample_times=sample_times,
        sample_coords=sample_coords,
        constant_names=list(constant_fields or {}),
        scalar_names=list(scalars or {}),
    ) as writer:
        writer.write(
            slice(None),
            fields,
            sample_parameters,
            constants=_stack(constant_fields, axis=1),
            scalars=_stack(scalars, axis=2),
        )
    return writer.path


def _stack(arrays: Mapping[str, Any] | None, axis: int) -> np.ndarray | None:
    if not arrays:
        return None
    return np.stack([np.asarray(a) for a in arrays.values()], axis=axis)
