"""Conversion: any readable split set to physim's format, or to The Well's layout.

Both writers read one trajectory at a time (memory: one trajectory), show a rich
progress bar, and write every file under a temporary name that is renamed only when
complete, so an interrupted conversion never leaves a file that looks finished.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml
from rich.progress import Progress

from .._errors import DatasetError
from .._format import chunk_shape, temporary_path
from .._format_write import PLAIN_TYPES, TrajectoryWriter
from .._stats import STATISTICS_FILE, compute_statistics, save_statistics
from ._source import source_statistics

__all__ = ["to_physim", "to_the_well"]


def _check_free(paths: list[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise DatasetError(
            f"{existing[0]}: already exists. Choose another output folder or pass "
            "overwrite=true to replace it."
        )


def to_physim(
    splits: Mapping[str, Any],
    root: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``splits`` (``{split: reader}``, e.g. ``ExternalSource.splits``) as a
    physim dataset ``<root>/{train,valid,test}.h5`` plus ``stats.json``.

    Field values keep their dtype; per-trajectory parameters become parameter
    datasets; plain file attributes are kept. Training on ``root`` gives the same
    batches as training on the readers themselves.

    Raises:
        DatasetError: an output file exists and ``overwrite`` is false; a file
            cannot be written.
    """
    root = Path(root)
    _check_free(
        [root / f"{s}.h5" for s in splits] + [root / STATISTICS_FILE], overwrite
    )
    with Progress(disable=not progress) as bar:
        for split, reader in splits.items():
            attrs = {
                k: v for k, v in reader.attrs.items() if isinstance(v, PLAIN_TYPES)
            }
            attrs.update(split=split, converted_from=str(reader.path))
            parameters = reader.sample_parameters
            task = bar.add_task(f"{split}.h5", total=reader.num_trajectories)
            with TrajectoryWriter(
                root / f"{split}.h5",
                num_trajectories=reader.num_trajectories,
                times=reader.times,
                coords=reader.coords,
                channel_names=reader.channel_names,
                attrs=attrs,
                dtype=reader.dtype,
                parameter_names=list(parameters),
            ) as writer:
                for index in range(reader.num_trajectories):
                    values = {k: v[index] for k, v in parameters.items()}
                    writer.write(index, reader.read(index), values)
                    bar.advance(task)
    save_statistics(root, compute_statistics(root / "train.h5", progress=progress))
    return root


def well_fields(
    channel_names: tuple[str, ...], dims: tuple[str, ...]
) -> list[tuple[str, int, list[int]]]:
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
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``splits`` in The Well's layout: ``<out_dir>/<name>/data/<split>/
    <name>_<split>.hdf5`` and ``<out_dir>/<name>/stats.yaml``.

    Channels named ``<f>_x, <f>_y`` (one per spatial dim) become the vector field
    ``f``, ``<f>_xx, ...`` a tensor field, the rest scalar fields; every field is
    stored with its sample and time axes. Per-trajectory parameters become
    ``simulation_parameters`` (a ``/scalars`` entry each). Returns ``<out_dir>/<name>``.

    Raises:
        DatasetError: an output file exists and ``overwrite`` is false.
    """
    folder = Path(out_dir) / name
    paths = {s: folder / "data" / s / f"{name}_{s}.hdf5" for s in splits}
    _check_free([*paths.values(), folder / "stats.yaml"], overwrite)
    with Progress(disable=not progress) as bar:
        for split, reader in splits.items():
            task = bar.add_task(paths[split].name, total=reader.num_trajectories)
            _write_well_file(reader, paths[split], name, partial(bar.advance, task))
    train = splits.get("train", next(iter(splits.values())))
    _write_well_stats(train, folder / "stats.yaml", progress)
    return folder


def _write_well_file(
    reader: Any, path: Path, name: str, advance: Callable[[], None]
) -> None:
    dims = reader.spatial_dims
    fields = well_fields(reader.channel_names, dims)
    tmp = temporary_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            _well_metadata(f, reader, name)
            datasets = []
            for field_name, order, _ in fields:
                shape = (
                    *reader.shape[:2],
                    *reader.spatial_shape,
                    *(len(dims),) * order,
                )
                chunks = chunk_shape(shape, reader.dtype.itemsize)
                group = f[f"t{order}_fields"]
                dataset = group.create_dataset(
                    field_name, shape=shape, dtype=reader.dtype, chunks=chunks
                )
                dataset.attrs.update(
                    dim_varying=[True] * len(dims),
                    sample_varying=True,
                    time_varying=True,
                )
                datasets.append(dataset)
            for order in range(3):
                f[f"t{order}_fields"].attrs["field_names"] = [
                    n for n, o, _ in fields if o == order
                ]
            for index in range(reader.num_trajectories):
                block = reader.read(index)  # [T, C, *space]
                for dataset, (_, _, channels) in zip(datasets, fields, strict=True):
                    values = np.moveaxis(block[:, channels], 1, -1)
                    dataset[index] = values.reshape(dataset.shape[1:])
                advance()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _well_metadata(f: h5py.File, reader: Any, name: str) -> None:
    dims = reader.spatial_dims
    parameters = reader.sample_parameters
    f.attrs.update(
        dataset_name=name,
        grid_type="cartesian",
        n_spatial_dims=len(dims),
        n_trajectories=reader.num_trajectories,
        simulation_parameters=list(parameters),
    )
    dimensions = f.create_group("dimensions")
    dimensions.attrs["spatial_dims"] = list(dims)
    time = dimensions.create_dataset("time", data=reader.times)
    time.attrs.update(sample_varying=False, time_varying=True)
    for dim, values in reader.coords.items():
        coordinate = dimensions.create_dataset(dim, data=values)
        coordinate.attrs.update(sample_varying=False, time_varying=False)
    boundaries = f.create_group("boundary_conditions")
    for dim in dims:
        kind = reader.attrs.get(f"boundary_{dim}")
        if kind is not None:
            bc = boundaries.create_group(f"{dim}_{kind}")
            bc.attrs.update(bc_type=kind, associated_dims=[dim], associated_fields=[])
            bc["mask"] = np.zeros(len(reader.coords[dim]), dtype=bool)
    scalars = f.create_group("scalars")
    scalars.attrs["field_names"] = list(parameters)
    for key, values in parameters.items():
        constant = bool(np.all(values == values[0]))
        dataset = scalars.create_dataset(key, data=values[0] if constant else values)
        dataset.attrs.update(sample_varying=not constant, time_varying=False)
        if constant:
            f.attrs[key] = float(values[0])
    for order in range(3):
        f.create_group(f"t{order}_fields")


def _write_well_stats(reader: Any, path: Path, progress: bool) -> None:
    stats = source_statistics(reader, progress=progress)
    out: dict[str, dict[str, Any]] = {}
    for key, source in (("mean", "mean"), ("std", "std"), ("mean_delta", "delta_mean"),
                        ("std_delta", "delta_std")):  # fmt: skip
        out[key] = {}
        for field_name, order, channels in well_fields(
            reader.channel_names, reader.spatial_dims
        ):
            values = [stats[source][c] for c in channels]
            out[key][field_name] = values if order else values[0]
    for suffix in ("", "_delta"):
        mean, std = out[f"mean{suffix}"], out[f"std{suffix}"]
        out[f"rms{suffix}"] = {
            k: [math.hypot(m, s) for m, s in zip(mean[k], std[k], strict=True)]
            if isinstance(mean[k], list)
            else math.hypot(mean[k], std[k])
            for k in mean
        }
    tmp = temporary_path(path)
    try:
        tmp.write_text(yaml.safe_dump(out, sort_keys=False))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
