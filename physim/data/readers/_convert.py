"""Conversion: any readable split set to physim's format (The Well's layout:
:mod:`physim.data.readers._well_export`).

Both writers read one trajectory at a time (memory: one trajectory), show a rich
progress bar, and write every file under a temporary name that is renamed only when
complete, so an interrupted conversion never leaves a file that looks finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from physim._progress import Progress

from .._errors import DatasetError
from .._format_write import PLAIN_TYPES, TrajectoryWriter
from .._stats import STATISTICS_FILE, compute_statistics, save_statistics

__all__ = ["check_free", "to_physim"]


def check_free(paths: list[Path], overwrite: bool) -> None:
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
    datasets; per-trajectory coordinates, constant fields and time-varying scalars
    are kept (see :mod:`physim.data._per_sample`); plain file attributes are kept.
    Training on ``root`` gives the same batches as training on the readers
    themselves.

    Raises:
        DatasetError: an output file exists and ``overwrite`` is false; a file
            cannot be written.
    """
    root = Path(root)
    check_free([root / f"{s}.h5" for s in splits] + [root / STATISTICS_FILE], overwrite)
    with Progress(disable=not progress) as bar:
        for split, reader in splits.items():
            attrs = {
                k: v for k, v in reader.attrs.items() if isinstance(v, PLAIN_TYPES)
            }
            attrs.update(split=split, converted_from=str(reader.path))
            parameters = reader.sample_parameters
            data = reader.sample_data
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
                sample_times=data.sample_times,
                sample_coords=data.sample_coords,
                constant_names=data.constant_names,
                scalar_names=data.scalar_names,
            ) as writer:
                for index in range(reader.num_trajectories):
                    values = {k: v[index] for k, v in parameters.items()}
                    writer.write(
                        index,
                        reader.read(index),
                        values,
                        constants=reader.read_constants(index)
                        if data.constant_names
                        else None,
                        scalars=reader.read_scalars(index)
                        if data.scalar_names
                        else None,
                    )
                    bar.advance(task)
    save_statistics(root, compute_statistics(root / "train.h5", progress=progress))
    return root
