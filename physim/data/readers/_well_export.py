"""Any readable split set written in The Well's layout, as valid Well files.

"Valid" means what upstream checks and reads, both followed rule by rule:

- The Well's formatting checker (``scripts/check_thewell_formatting.py`` of
  github.com/PolymathicAI/the_well): root attributes ``dataset_name`` (str),
  ``n_spatial_dims``, ``n_trajectories`` (int), ``grid_type`` (str),
  ``simulation_parameters``, each of which is a root attribute *and* a ``/scalars``
  dataset; ``sample_varying``/``time_varying`` booleans on every dimension, scalar,
  field and boundary group; ``dim_varying`` (one bool per spatial dim) on every field;
  a ``field_names`` list on ``/scalars`` and each ``t{0,1,2}_fields`` group; shapes
  ``[N if sample_varying][T if time_varying][dims that vary][D]*order``; boundary
  groups with ``bc_type``, ``associated_dims`` (spatial dims), ``associated_fields``
  and a ``mask`` over the associated dims, named after their type and dim.
- ``the_well.data.WellDataset`` (1.2.0): time-varying fields are its
  ``input_fields``/``output_fields``, fields with ``time_varying = False`` its
  ``constant_fields``, time-varying scalars its ``input_scalars``, the others its
  ``constant_scalars``; boundary codes come from the masks (``_padding_bcs``: a side
  is periodic/open when the mask marks it, wall when it marks all of it, open when
  nothing marks it), so masks are True on the sides of their type; ``stats.yaml``
  holds ``mean``/``std``/``rms`` per field (and ``*_delta`` for time-varying ones)
  shaped like one value of the field: a number, a list of ``D``, a ``D x D`` nested
  list for a tensor field (``ZScoreNormalization`` broadcasts them against
  ``[..., D, D]``).

A simulation parameter that varies between trajectories is a ``sample_varying``
``/scalars`` entry ``[N]`` and, as the checker wants a root attribute too, stored
there as the ``[N]`` array of its values (The Well's own datasets keep one parameter
value per file, so theirs are numbers).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from physim._progress import Progress

from .._errors import DatasetError
from .._format import chunk_shape, temporary_path
from ._convert import check_free
from ._source import source_statistics
from ._the_well import BOUNDARY_TYPES, FIELD_GROUPS

__all__ = ["to_the_well", "well_fields"]

# (name, tensor order, indices into the channel list)
WellField = tuple[str, int, list[int]]


def well_fields(channel_names: Sequence[str], dims: Sequence[str]) -> list[WellField]:
    """Group channels into The Well's fields: ``(name, tensor order, channels)``.

    ``<f>_x, <f>_y`` (consecutive, one per spatial dim) form a vector field ``f``;
    ``<f>_xx, <f>_xy, <f>_yx, <f>_yy`` a tensor field; anything else is a scalar.
    """
    fields, c = [], 0
    while c < len(channel_names):
        for order in (2, 1):
            suffixes = ["".join(p) for p in itertools.product(dims, repeat=order)]
            group = channel_names[c : c + len(suffixes)]
            base = group[0].rsplit("_", 1)[0] if "_" in group[0] else None
            if base and list(group) == [f"{base}_{s}" for s in suffixes]:
                fields.append((base, order, list(range(c, c + len(suffixes)))))
                c += len(suffixes)
                break
        else:
            fields.append((channel_names[c], 0, [c]))
            c += 1
    return fields


def to_the_well(
    splits: Mapping[str, Any],
    out_dir: str | Path,
    name: str,
    *,
    boundaries: Mapping[str, str] | None = None,
    grid_type: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``splits`` in The Well's layout: ``<out_dir>/<name>/data/<split>/
    <name>_<split>.hdf5`` and ``<out_dir>/<name>/stats.yaml``.

    Channels named ``<f>_x, <f>_y`` (one per spatial dim) become the vector field
    ``f``, ``<f>_xx, ...`` a tensor field, the rest scalar fields, each stored with its
    sample and time axes; constant fields are grouped the same way and stored with
    ``time_varying = False``; time-varying scalars and the per-trajectory parameters
    (the ``simulation_parameters``) go to ``/scalars``; coordinates that differ between
    trajectories are ``sample_varying``. See the module docstring for the rules
    followed. Returns ``<out_dir>/<name>``.

    Args:
        splits: ``{split: reader}``, e.g. ``ExternalSource.splits``.
        out_dir: the output folder.
        name: the dataset name (folder, file names, ``dataset_name``).
        boundaries: ``{dim: type}`` (``periodic``, ``wall``, ``open``, or
            ``"lower,upper"``) for dims whose boundaries the files do not record
            (their ``boundary_<dim>`` attribute); WellDataset reads an unrecorded
            boundary as open.
        grid_type: The Well's ``grid_type`` (default: the files' own, else
            ``cartesian``).
        overwrite: replace existing output files.
        progress: show progress bars.

    Raises:
        DatasetError: an output file exists and ``overwrite`` is false; a boundary
            type WellDataset cannot read; two fields of one name.
    """
    folder = Path(out_dir) / name
    paths = {s: folder / "data" / s / f"{name}_{s}.hdf5" for s in splits}
    check_free([*paths.values(), folder / "stats.yaml"], overwrite)
    with Progress(disable=not progress) as bar:
        for split, reader in splits.items():
            task = bar.add_task(paths[split].name, total=reader.num_trajectories)
            layout = _WellLayout(reader, name, dict(boundaries or {}), grid_type)
            layout.write(paths[split], partial(bar.advance, task))
    train = splits.get("train", next(iter(splits.values())))
    _write_well_stats(train, folder / "stats.yaml", progress)
    return folder


class _WellLayout:
    """One reader as one Well file: its fields, metadata and writing."""

    def __init__(
        self,
        reader: Any,
        name: str,
        boundaries: dict[str, str],
        grid_type: str | None,
    ) -> None:
        self.reader = reader
        self.name = name
        self.dims = tuple(reader.spatial_dims)
        self.fields = well_fields(reader.channel_names, self.dims)
        self.constants = well_fields(reader.constant_names, self.dims)
        self.boundaries = {
            dim: boundaries.get(dim, reader.attrs.get(f"boundary_{dim}"))
            for dim in self.dims
        }
        self.grid_type = grid_type or reader.attrs.get("grid_type") or "cartesian"
        names = [f[0] for f in self.fields + self.constants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DatasetError(
                f"{reader.path}: fields {repeated} would appear twice in The Well's "
                "layout (a field and a constant field of one name); rename or drop "
                "channels (ExternalSource(channels=...))."
            )

    def write(self, path: Path, advance: Callable[[], None]) -> None:
        reader = self.reader
        tmp = temporary_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with h5py.File(tmp, "w") as f:
                self._metadata(f)
                fields = self._field_datasets(f, self.fields, time_varying=True)
                constants = self._field_datasets(f, self.constants, time_varying=False)
                scalars = [f["scalars"][n] for n in reader.scalar_names]
                for index in range(reader.num_trajectories):
                    _store(fields, self.fields, index, reader.read(index), 1)
                    if constants:
                        block = reader.read_constants(index)
                        _store(constants, self.constants, index, block, 0)
                    if scalars:
                        values = reader.read_scalars(index)
                        for column, dataset in enumerate(scalars):
                            dataset[index] = values[:, column]
                    advance()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _field_datasets(
        self, f: h5py.File, fields: list[WellField], *, time_varying: bool
    ) -> list[h5py.Dataset]:
        reader, datasets = self.reader, []
        for field_name, order, _ in fields:
            shape = (
                reader.num_trajectories,
                *(reader.num_frames,) * time_varying,
                *reader.spatial_shape,
                *(len(self.dims),) * order,
            )
            group = f[FIELD_GROUPS[order]]
            dataset = group.create_dataset(
                field_name,
                shape=shape,
                dtype=reader.dtype,
                chunks=chunk_shape(shape, reader.dtype.itemsize),
            )
            dataset.attrs.update(
                dim_varying=np.ones(len(self.dims), dtype=bool),
                sample_varying=True,
                time_varying=time_varying,
            )
            group.attrs["field_names"] = _strings(
                [*group.attrs["field_names"], field_name]
            )
            datasets.append(dataset)
        return datasets

    def _metadata(self, f: h5py.File) -> None:
        reader = self.reader
        parameters = reader.sample_parameters
        f.attrs.update(
            dataset_name=self.name,
            grid_type=self.grid_type,
            n_spatial_dims=len(self.dims),
            n_trajectories=int(reader.num_trajectories),
            simulation_parameters=_strings(parameters),
        )
        for group in (*FIELD_GROUPS, "scalars"):
            f.create_group(group).attrs["field_names"] = _strings([])
        self._dimensions(f)
        self._boundary_conditions(f)
        scalars = f["scalars"]
        clash = sorted(set(parameters) & set(f.attrs))
        if clash:
            raise DatasetError(
                f"{reader.path}: parameters {clash} would overwrite The Well's root "
                "attributes of those names; rename them before converting."
            )
        for key, values in parameters.items():
            varying = not np.all(values == values[0])
            data = values if varying else np.float64(values[0])
            dataset = scalars.create_dataset(key, data=data)
            dataset.attrs.update(sample_varying=varying, time_varying=False)
            f.attrs[key] = data
        for key in reader.scalar_names:
            dataset = scalars.create_dataset(
                key, shape=(reader.num_trajectories, reader.num_frames), dtype="f8"
            )
            dataset.attrs.update(sample_varying=True, time_varying=True)
        scalars.attrs["field_names"] = _strings([*parameters, *reader.scalar_names])

    def _dimensions(self, f: h5py.File) -> None:
        reader, data = self.reader, self.reader.sample_data
        dimensions = f.create_group("dimensions")
        dimensions.attrs["spatial_dims"] = _strings(self.dims)
        varying = data.sample_times is not None
        time = dimensions.create_dataset(
            "time", data=data.sample_times if varying else reader.times
        )
        time.attrs.update(sample_varying=varying, time_varying=True)
        for dim, values in reader.coords.items():
            own = data.sample_coords.get(dim)
            coordinate = dimensions.create_dataset(
                dim, data=values if own is None else own
            )
            coordinate.attrs.update(sample_varying=own is not None, time_varying=False)

    def _boundary_conditions(self, f: h5py.File) -> None:
        """One group per type and dim, its mask True on the sides of that type."""
        group = f.create_group("boundary_conditions")
        for dim, kind in self.boundaries.items():
            if kind is None:
                continue
            sides = [s.strip().lower() for s in str(kind).split(",")]
            sides = sides * 2 if len(sides) == 1 else sides
            if len(sides) != 2 or not set(sides) <= set(BOUNDARY_TYPES):
                raise DatasetError(
                    f"{self.reader.path}: boundary of '{dim}' is {kind!r}; The Well "
                    f"reads {list(BOUNDARY_TYPES)} (or 'lower,upper' of two). Pass "
                    "boundaries={'<dim>': '<type>'} to set it."
                )
            for bc_type in dict.fromkeys(sides):
                mask = np.zeros(len(self.reader.coords[dim]), dtype=bool)
                mask[0], mask[-1] = sides[0] == bc_type, sides[1] == bc_type
                bc = group.create_group(f"{dim}_{bc_type}")
                bc.attrs.update(
                    bc_type=bc_type.upper(),
                    associated_dims=_strings([dim]),
                    associated_fields=_strings([]),
                    sample_varying=False,
                    time_varying=False,
                )
                bc.create_dataset("mask", data=mask)


def _strings(names: Any) -> np.ndarray:
    """A list of names as an HDF5 attribute: variable-length UTF-8 strings."""
    return np.array([str(n) for n in names], dtype=h5py.string_dtype("utf-8"))


def _store(
    datasets: list[h5py.Dataset],
    fields: list[WellField],
    index: int,
    block: np.ndarray,
    channel_axis: int,
) -> None:
    """Channels of ``block`` (channel axis ``channel_axis``) into their fields."""
    for dataset, (_, _, channels) in zip(datasets, fields, strict=True):
        values = np.moveaxis(
            np.take(block, channels, axis=channel_axis), channel_axis, -1
        )
        dataset[index] = values.reshape(dataset.shape[1:])


def _write_well_stats(reader: Any, path: Path, progress: bool) -> None:
    """``stats.yaml`` as The Well's ``scripts/compute_statistics.py`` writes it."""
    stats = source_statistics(reader, progress=progress)
    dims = reader.spatial_dims
    groups = [
        (well_fields(reader.channel_names, dims), "", True),
        (well_fields(reader.constant_names, dims), "constant_", False),
    ]
    out: dict[str, dict[str, Any]] = {
        k: {} for k in ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")
    }
    for fields, prefix, time_varying in groups:
        moments = [("", f"{prefix}mean", f"{prefix}std")]
        if time_varying:
            moments.append(("_delta", "delta_mean", "delta_std"))
        for suffix, mean_key, std_key in moments:
            for field_name, order, channels in fields:
                mean = np.array([stats[mean_key][c] for c in channels])
                std = np.array([stats[std_key][c] for c in channels])
                shape = (len(dims),) * order
                out[f"mean{suffix}"][field_name] = mean.reshape(shape).tolist()
                out[f"std{suffix}"][field_name] = std.reshape(shape).tolist()
                rms = np.hypot(mean, std)  # sqrt of the second moment
                out[f"rms{suffix}"][field_name] = rms.reshape(shape).tolist()
    tmp = temporary_path(path)
    try:
        tmp.write_text(yaml.safe_dump(out, sort_keys=False))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
