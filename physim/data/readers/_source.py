"""`ExternalSource`: foreign files as train/valid/test splits with cached statistics."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DatasetError
from .._stats import _summary, load_statistics, save_statistics, stream_statistics
from ._detect import check_format, open_files
from ._views import ChannelSelection, ConcatenatedFiles, TrajectorySubset, split_of

__all__ = ["ExternalSource", "source_statistics"]

SPLITS = ("train", "valid", "test")
# Part of the statistics cache key: bumped when the readers present the same files
# differently (2: The Well's constant fields became conditioning inputs, no longer
# channels), so that statistics cached by an older reader are never reused.
READER_VERSION = 2
DEFAULT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


class ExternalSource:
    """PDEBench, PDEArena, The Well or physim files as physim's three splits.

    The files are opened (metadata only) when the object is created, so a wrong path
    or format fails at once. When the files name their splits (PDEArena's groups, The
    Well's ``data/{train,valid,test}`` folders, physim's ``split`` attribute) and all
    three are present, they are used as they are (several files of a split are read
    as one). When they hold one split only, or do not say (PDEBench), the
    trajectories are split at random (seeded) by ``split_fractions``; each split
    keeps the file's trajectory order, so reads follow the file's layout.

    Normalisation statistics of the train split are computed once and cached in
    ``<cache_root>/external-stats-<key>/stats.json``, where the key hashes the
    files' paths, sizes and modification times and the split settings; nothing is
    written next to the user's files.

    Args:
        path: an HDF5 file, or a folder holding a dataset's files.
        format: ``auto`` (detect), ``pdebench``, ``pdearena``, ``the_well`` or
            ``physim``; a named format must match the files' structure.
        channels: keep these channels, in this order (default: all).
        split_fractions: ``{"train": .., "valid": .., "test": ..}`` for splitting.
        split_seed: seeds the random split.

    Raises:
        DatasetError: see :func:`physim.data.readers.open_files`; too few
            trajectories to split; files that name some splits but not all three.
        ValueError: an unknown format, bad fractions or unknown channels.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        format: str = "auto",
        channels: Sequence[str] | None = None,
        split_fractions: Mapping[str, float] | None = None,
        split_seed: int = 0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.format = check_format(format)
        self.fractions = dict(split_fractions or DEFAULT_FRACTIONS)
        if set(self.fractions) != set(SPLITS) or not all(
            0 < v < 1 for v in self.fractions.values()
        ):
            raise ValueError(
                f"split_fractions={self.fractions}: give a fraction in "
                f"(0, 1) for each of {list(SPLITS)} (they are normalised to sum 1)."
            )
        self.split_seed = int(split_seed)
        self.channels = list(channels) if channels else None
        self.files = open_files(self.path, self.format)
        self.splits = self._splits()

    def _splits(self) -> dict[str, Any]:
        by_split: dict[str | None, list[Any]] = {}
        for file in self.files:
            by_split.setdefault(split_of(file), []).append(file)
        views = {
            split: files[0] if len(files) == 1 else ConcatenatedFiles(files)
            for split, files in by_split.items()
        }
        if self.channels is not None:
            views = {s: ChannelSelection(v, self.channels) for s, v in views.items()}
        if set(views) == set(SPLITS):
            return {split: views[split] for split in SPLITS}
        if len(views) != 1:
            raise DatasetError(
                f"{self.path}: holds the splits {sorted(map(str, views))} but not all "
                f"of {list(SPLITS)}. Provide all three, or point the path at "
                "the files of one split to split them by trajectory."
            )
        (source,) = views.values()
        return self._random_split(source)

    def _random_split(self, source: Any) -> dict[str, Any]:
        num = source.num_trajectories
        total = sum(self.fractions.values())
        counts = {s: int(round(num * self.fractions[s] / total)) for s in SPLITS[1:]}
        counts["train"] = num - sum(counts.values())
        if min(counts.values()) < 1:
            raise DatasetError(
                f"{source.path}: {num} trajectories cannot be split into {counts} "
                f"(split_fractions={self.fractions}); every split needs at "
                "least one. Use a file with more trajectories or other fractions."
            )
        order = np.random.default_rng(self.split_seed).permutation(num)
        start, splits = 0, {}
        for split in SPLITS:
            chosen = np.sort(order[start : start + counts[split]])
            splits[split] = TrajectorySubset(source, chosen, split)
            start += counts[split]
        return splits

    # ------------------------------------------------------------------ statistics
    def cache_key(self) -> str:
        """Hash of the files (path, size, mtime) and the split and channel settings."""
        entries = []
        for file in self.files:
            stat = file.path.stat()
            group = getattr(file, "group", None)
            entries.append(
                [str(file.path.resolve()), group, stat.st_size, stat.st_mtime_ns]
            )
        spec = [entries, self.channels, self.fractions, self.split_seed]
        spec.append(READER_VERSION)
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]

    def statistics_dir(self, cache_root: str | Path) -> Path:
        return Path(cache_root) / f"external-stats-{self.cache_key()}"

    def statistics(self, cache_root: str | Path, *, progress: bool = True) -> dict:
        """Statistics of the train split: from the cache, else computed and cached.

        Raises:
            DatasetError: non-finite values; an unwritable ``cache_root``.
        """
        folder = self.statistics_dir(cache_root)
        if (folder / "stats.json").is_file():
            return load_statistics(folder)
        stats = source_statistics(self.splits["train"], progress=progress)
        # Drop this process's handles, so that forked workers inherit no open file.
        self.splits["train"].close()
        stats["source"] = str(self.path)
        save_statistics(folder, stats)
        return stats

    def close(self) -> None:
        for view in self.splits.values():
            view.close()

    def __repr__(self) -> str:
        shapes = {s: v.shape for s, v in self.splits.items()}
        return f"ExternalSource('{self.path}', format={self.format!r}, splits={shapes})"


def source_statistics(
    source: Any, *, strides: Sequence[int] = (), progress: bool = False
) -> dict[str, Any]:
    """Per-channel mean/std of the fields and one-step differences of any reader.

    The same quantities as :func:`physim.data.compute_statistics` (the same
    streaming pass, :func:`physim.data.stream_statistics`), read one time block (the
    file's chunk length) of one trajectory at a time, in trajectory order.

    Raises:
        DatasetError: too few frames; NaN/Inf values.
    """

    def nonfinite(index: int, frame: int) -> str:
        return (
            f"{source.path}: trajectory {index} holds NaN/Inf values near frame "
            f"{frame}; expected finite fields. Repair or drop it."
        )

    fields, deltas = stream_statistics(
        source, strides=sorted({1, *strides}), nonfinite=nonfinite, progress=progress
    )
    return _summary(source, fields, deltas)
