"""Assembling a split from its shards, and the training statistics.

Whoever finds all shards of a split present concatenates them (trajectory by
trajectory) into ``<split>.h5``, written under a temporary name and then renamed, so
two racing processes write identical files; the shard files are removed afterwards.
``stats.json`` is computed from ``train.h5`` and carries the spec's fingerprint.
"""

from __future__ import annotations

from pathlib import Path

from physim.data import (
    DatasetError,
    TrajectoryFile,
    TrajectoryWriter,
    compute_statistics,
    load_statistics,
    save_statistics,
)

from ._files import check_file, remove_shards, shard_path, split_complete, split_path
from ._spec import DatasetSpec

__all__ = ["assemble", "statistics_current", "update_statistics"]


def assemble(spec: DatasetSpec, root: Path, split: str) -> bool:
    """Concatenate the shards of ``split`` into ``<split>.h5`` once all exist."""
    ranges = spec.shard_ranges(split)
    paths = [shard_path(root, split, s) for s in range(len(ranges))]
    if not all(p.exists() for p in paths):
        return False
    files: list[TrajectoryFile] = []
    try:
        for shard, (path, indices) in enumerate(zip(paths, ranges, strict=True)):
            try:
                check_file(spec, path, split, len(indices), shard)
                file = TrajectoryFile(path)
                # Hold an open handle: its data survive a concurrent unlink (POSIX).
                file.read(0, slice(0, 1))
            except DatasetError:
                if path.exists():
                    raise
                # Removed meanwhile: another process has assembled the split.
                return split_complete(spec, root, split)
            files.append(file)
        attrs = {
            **spec.attributes(),
            "split": split,
            "num_trajectories": spec.num_trajectories[split],
            "solver_steps_accepted": sum(
                f.attrs["solver_steps_accepted"] for f in files
            ),
            "solver_steps_rejected": sum(
                f.attrs["solver_steps_rejected"] for f in files
            ),
            "solver_dt_min": min(f.attrs["solver_dt_min"] for f in files),
            "solver_dt_max": max(f.attrs["solver_dt_max"] for f in files),
        }
        with TrajectoryWriter(
            split_path(root, split),
            num_trajectories=spec.num_trajectories[split],
            times=files[0].times,
            coords=files[0].coords,
            channel_names=files[0].channel_names,
            attrs=attrs,
            dtype=files[0].dtype,
            parameter_names=files[0].parameter_names,
        ) as writer:
            for file, indices in zip(files, ranges, strict=True):
                parameters = file.sample_parameters
                for row, index in enumerate(indices):
                    writer.write(
                        index,
                        file.read(row),
                        {k: v[row] for k, v in parameters.items()},
                    )
    finally:
        for file in files:
            file.close()
    remove_shards(root, split)
    return True


def statistics_current(spec: DatasetSpec, root: Path) -> bool:
    """Whether ``<root>/stats.json`` exists and was computed for this spec."""
    try:
        stats = load_statistics(root)
    except DatasetError:
        return False
    return stats.get("fingerprint") == spec.fingerprint


def update_statistics(spec: DatasetSpec, root: Path, progress: bool) -> None:
    """Compute ``stats.json`` from a complete ``train.h5`` unless it is current."""
    if (
        "train" in spec.num_trajectories
        and split_complete(spec, root, "train")
        and not statistics_current(spec, root)
    ):
        save_statistics(
            root, compute_statistics(split_path(root, "train"), progress=progress)
        )
