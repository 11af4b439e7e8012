"""Per-channel normalisation statistics of a trajectory file, in one streaming pass.

``<root>/stats.json`` holds, per channel, the mean and standard deviation of the fields
and of the one-step differences ``fields[:, 1:] - fields[:, :-1]`` (``delta_mean``,
``delta_std``), computed from the training split.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from ._errors import DatasetError
from ._format import TrajectoryFile, temporary_path

__all__ = [
    "STATISTICS_FILE",
    "compute_statistics",
    "load_statistics",
    "save_statistics",
]

STATISTICS_FILE = "stats.json"
REQUIRED_KEYS = ("mean", "std", "delta_mean", "delta_std")


@dataclass
class _Moments:
    """Per-channel count, mean and sum of squared deviations (M2), merged block-wise.

    Numerics: each block (one time block of one trajectory) is reduced in float64 with
    a two-pass mean/M2, and blocks are merged with Chan et al.'s pairwise update

        n = n_a + n_b,  d = m_b - m_a,  m = m_a + d n_b / n,
        M2 = M2_a + M2_b + d^2 n_a n_b / n.

    Alternatives: the textbook ``E[x^2] - E[x]^2`` in one pass cancels catastrophically
    when ``|mean| >> std`` (e.g. a field of 1000 + small fluctuations); Welford's update
    per element is stable but a Python loop; a global two-pass needs the whole split in
    memory or two reads. Block-wise Chan is stable, vectorised, reads each chunk once.

    References:
        T. F. Chan, G. H. Golub, R. J. LeVeque, "Algorithms for computing the sample
        variance", The American Statistician 37 (1983).
    """

    num_channels: int
    count: int = 0
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.num_channels)
        self.m2 = np.zeros(self.num_channels)

    def update(self, block: np.ndarray) -> None:
        """Add ``block`` of shape ``[T, C, *space]`` (float64)."""
        axes = (0, *range(2, block.ndim))
        n_b = block.size // self.num_channels
        if n_b == 0:
            return
        mean_b = block.mean(axis=axes)
        shape = (1, -1) + (1,) * (block.ndim - 2)
        m2_b = np.square(block - mean_b.reshape(shape)).sum(axis=axes)
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.count * n_b / n)
        self.count = n

    def std(self) -> np.ndarray:
        """Population standard deviation (divides by the count, not count - 1)."""
        return np.sqrt(np.maximum(self.m2, 0.0) / self.count)


def compute_statistics(path: str | Path, *, progress: bool = False) -> dict[str, Any]:
    """Per-channel statistics of a trajectory file, reading one chunk at a time.

    Memory stays bounded by one chunk (one trajectory or a time block of it) in float64.
    The one-step differences are taken between consecutive frames of each trajectory,
    across time-block boundaries too.

    Args:
        path: a trajectory file (normally ``<root>/train.h5``).
        progress: show a progress bar over trajectories.

    Returns:
        ``mean``, ``std``, ``delta_mean``, ``delta_std`` (lists, one value per channel)
        plus ``channel_names``, ``num_trajectories``, ``num_frames``, ``source`` (the
        file name), ``fingerprint`` (the file's dataset fingerprint, if any) and
        ``parameters``: ``{name: {"mean": m, "std": s}}`` of the per-trajectory
        parameters (empty if the file has none), for normalising conditioning inputs.

    Raises:
        DatasetError: the file is invalid, has fewer than two frames, or holds NaN/Inf
            (naming the trajectory and frame).
    """
    file = TrajectoryFile(path)
    if file.num_frames < 2:
        raise DatasetError(
            f"{file.path}: has {file.num_frames} frame(s); statistics of one-step "
            "differences need at least 2. Store more frames per trajectory."
        )
    fields = _Moments(file.num_channels)
    deltas = _Moments(file.num_channels)
    block_frames = file.chunks[1]
    indices = range(file.num_trajectories)
    if progress:
        indices = track(indices, description=f"Statistics of {file.path.name}")
    try:
        for index in indices:
            previous = None
            for start in range(0, file.num_frames, block_frames):
                stop = min(start + block_frames, file.num_frames)
                block = file.read(index, slice(start, stop)).astype(np.float64)
                if not np.isfinite(block).all():
                    frame = start + int(np.argwhere(~np.isfinite(block))[0, 0])
                    raise DatasetError(
                        f"{file.path}: trajectory {index} holds NaN/Inf values "
                        f"(first at frame {frame}). The data are unusable; delete the "
                        "file and regenerate it (e.g. with a smaller time step)."
                    )
                fields.update(block)
                if previous is not None:
                    block = np.concatenate([previous[None], block])
                deltas.update(np.diff(block, axis=0))
                previous = block[-1]
    finally:
        file.close()
    return {
        "mean": fields.mean.tolist(),
        "std": fields.std().tolist(),
        "delta_mean": deltas.mean.tolist(),
        "delta_std": deltas.std().tolist(),
        "channel_names": list(file.channel_names),
        "num_trajectories": file.num_trajectories,
        "num_frames": file.num_frames,
        "source": file.path.name,
        "fingerprint": file.attrs.get("physim_dataset_fingerprint"),
        "parameters": {
            name: {"mean": float(values.mean()), "std": float(values.std())}
            for name, values in file.sample_parameters.items()
        },
    }


def save_statistics(root: str | Path, stats: dict[str, Any]) -> Path:
    """Write ``stats`` to ``<root>/stats.json`` atomically; return the path."""
    _check(stats, Path(root) / STATISTICS_FILE)
    path = Path(root) / STATISTICS_FILE
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(stats, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            f"{path}: cannot write statistics ({error}). Choose a writable root."
        ) from error
    return path


def load_statistics(root: str | Path) -> dict[str, Any]:
    """Read ``<root>/stats.json`` (see :func:`compute_statistics` for the keys).

    Raises:
        DatasetError: the file is missing, not JSON, or lacks/garbles a required key.
    """
    path = Path(root) / STATISTICS_FILE
    if not path.is_file():
        raise DatasetError(
            f"{path}: normalisation statistics not found. Recompute them with "
            "physim.data.save_statistics(root, compute_statistics(root / 'train.h5')) "
            "or regenerate the dataset."
        )
    try:
        stats = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"{path}: not a readable JSON file ({error}). Delete it and recompute the "
            "statistics."
        ) from error
    _check(stats, path)
    return stats


def _check(stats: Any, path: Path) -> None:
    if not isinstance(stats, dict):
        raise DatasetError(f"{path}: statistics must be a JSON object (a dict).")
    lengths = set()
    for key in REQUIRED_KEYS:
        values = stats.get(key)
        if not isinstance(values, list) or not values:
            raise DatasetError(
                f"{path}: key '{key}' is missing or not a non-empty list of numbers "
                "(one per channel). Recompute the statistics."
            )
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise DatasetError(
                f"{path}: key '{key}' holds non-numeric or non-finite values {values}. "
                "Recompute the statistics."
            )
        if key.endswith("std") and min(values) < 0:
            raise DatasetError(f"{path}: key '{key}' has negative values {values}.")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise DatasetError(
            f"{path}: keys {list(REQUIRED_KEYS)} have different numbers of channels. "
            "Recompute the statistics."
        )
