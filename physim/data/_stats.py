"""Per-channel normalisation statistics of a trajectory file, in one streaming pass.

``<root>/stats.json`` holds, per channel, the mean and standard deviation of the fields
and of the one-step differences ``fields[:, 1:] - fields[:, :-1]`` (``delta_mean``,
``delta_std``), computed from the training split. A model that steps ``s`` stored
frames at a time (a data module's ``time_stride``) predicts differences over ``s``
frames, whose scale differs (about ``sqrt(s)`` to ``s`` times the one-step one): those
are cached under ``differences[str(s)]`` the first time a data module needs them
(:func:`ensure_difference_statistics`) and :func:`statistics_at_stride` puts them in
``delta_mean``/``delta_std``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from physim._progress import track

from ._errors import DatasetError
from ._format import TrajectoryFile, temporary_path

__all__ = [
    "STATISTICS_FILE",
    "compute_statistics",
    "ensure_difference_statistics",
    "load_statistics",
    "save_statistics",
    "statistics_at_stride",
    "stream_statistics",
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


class FrameReader(Protocol):
    """What a statistics pass reads: a physim file or any external reader."""

    path: Path
    num_trajectories: int
    num_frames: int
    num_channels: int
    chunks: tuple[int, ...]
    channel_names: Sequence[str]
    sample_parameters: dict[str, np.ndarray]

    def read(self, index: int, frames: slice = ...) -> np.ndarray: ...


def stream_statistics(
    source: FrameReader,
    *,
    strides: Sequence[int] = (1,),
    nonfinite: Callable[[int, int], str],
    progress: bool = False,
) -> tuple[_Moments, dict[int, _Moments]]:
    """Moments of the fields and of their differences over each of ``strides``.

    One pass, one time block (the file's chunk length) of one trajectory at a time,
    in trajectory order; differences ``x[t + s] - x[t]`` are taken within each
    trajectory, across time-block boundaries too (the last ``max(strides)`` frames
    of a block are kept for the next).

    Args:
        source: the frames to read.
        strides: the frame offsets of the differences (each >= 1).
        nonfinite: ``(trajectory, frame) -> message`` for a NaN/Inf value (raised as
            :class:`DatasetError`).
        progress: show a progress bar over trajectories.

    Returns:
        The fields' moments and ``{stride: moments of the differences}``.
    """
    if min(strides) < 1 or source.num_frames <= max(strides):
        raise DatasetError(
            f"{source.path}: has {source.num_frames} frame(s); differences over "
            f"{max(strides)} frame(s) need at least {max(strides) + 1}. Store more "
            "frames per trajectory or lower the time stride."
        )
    fields = _Moments(source.num_channels)
    deltas = {s: _Moments(source.num_channels) for s in strides}
    keep = max(strides)
    block_frames = max(1, source.chunks[1])
    indices: Any = range(source.num_trajectories)
    if progress:
        indices = track(indices, description=f"Statistics of {source.path.name}")
    for index in indices:
        tail = np.empty((0,))
        for start in range(0, source.num_frames, block_frames):
            stop = min(start + block_frames, source.num_frames)
            block = source.read(index, slice(start, stop)).astype(np.float64)
            if not np.isfinite(block).all():
                frame = start + int(np.argwhere(~np.isfinite(block))[0, 0])
                raise DatasetError(nonfinite(index, frame))
            fields.update(block)
            joined = np.concatenate([tail, block]) if tail.size else block
            first_new = joined.shape[0] - block.shape[0]
            for stride, moments in deltas.items():
                begin = max(first_new, stride)  # differences ending in this block
                if begin < joined.shape[0]:
                    moments.update(joined[begin:] - joined[begin - stride : -stride])
            tail = joined[-keep:]
    return fields, deltas


def _summary(
    source: FrameReader, fields: _Moments, deltas: dict[int, _Moments]
) -> dict[str, Any]:
    """The statistics dict of a pass (stride-1 differences as ``delta_*``)."""
    stats = {
        "mean": fields.mean.tolist(),
        "std": fields.std().tolist(),
        "delta_mean": deltas[1].mean.tolist(),
        "delta_std": deltas[1].std().tolist(),
        "channel_names": list(source.channel_names),
        "num_trajectories": source.num_trajectories,
        "num_frames": source.num_frames,
        "parameters": {
            name: {"mean": float(values.mean()), "std": float(values.std())}
            for name, values in source.sample_parameters.items()
        },
    }
    others = {s: m for s, m in deltas.items() if s != 1}
    if others:
        stats["differences"] = _differences(others)
    stats.update(conditioning_statistics(source))
    return stats


def conditioning_statistics(source: Any) -> dict[str, Any]:
    """Mean/std of a source's constant fields (per field, over trajectories and
    space) and time-varying scalars (per scalar, over trajectories and frames), for
    normalising them as conditioning inputs: ``constant_mean``, ``constant_std``,
    ``constant_names`` and ``scalar_*`` likewise; empty when it has neither."""
    stats: dict[str, Any] = {}
    for kind, names, read in (
        ("constant", getattr(source, "constant_names", ()), "read_constants"),
        ("scalar", getattr(source, "scalar_names", ()), "read_scalars"),
    ):
        if not names:
            continue
        moments = _Moments(len(names))
        for index in range(source.num_trajectories):
            block = np.asarray(getattr(source, read)(index), dtype=np.float64)
            # [K, *space] -> [1, K, *space]; [T, S] is already [T, S].
            moments.update(block[None] if kind == "constant" else block)
        stats[f"{kind}_names"] = list(names)
        stats[f"{kind}_mean"] = moments.mean.tolist()
        stats[f"{kind}_std"] = moments.std().tolist()
    return stats


def _differences(deltas: dict[int, _Moments]) -> dict[str, dict[str, list[float]]]:
    return {
        str(s): {"mean": m.mean.tolist(), "std": m.std().tolist()}
        for s, m in sorted(deltas.items())
    }


def compute_statistics(
    path: str | Path, *, strides: Sequence[int] = (), progress: bool = False
) -> dict[str, Any]:
    """Per-channel statistics of a trajectory file, reading one chunk at a time.

    Memory stays bounded by one chunk (one trajectory or a time block of it) in float64.
    The one-step differences are taken between consecutive frames of each trajectory,
    across time-block boundaries too.

    Args:
        path: a trajectory file (normally ``<root>/train.h5``).
        strides: further frame offsets whose difference statistics to include (under
            ``differences``), e.g. a data module's ``time_stride``.
        progress: show a progress bar over trajectories.

    Returns:
        ``mean``, ``std``, ``delta_mean``, ``delta_std`` (lists, one value per channel)
        plus ``channel_names``, ``num_trajectories``, ``num_frames``, ``source`` (the
        file name), ``fingerprint`` (the file's dataset fingerprint, if any),
        ``parameters``: ``{name: {"mean": m, "std": s}}`` of the per-trajectory
        parameters (empty if the file has none), for normalising conditioning inputs,
        and with ``strides``, ``differences``: ``{str(stride): {"mean", "std"}}``.

    Raises:
        DatasetError: the file is invalid, has too few frames, or holds NaN/Inf
            (naming the trajectory and frame).
    """
    file = TrajectoryFile(path)

    def nonfinite(index: int, frame: int) -> str:
        return (
            f"{file.path}: trajectory {index} holds NaN/Inf values (first at frame "
            f"{frame}). The data are unusable; delete the file and regenerate it "
            "(e.g. with a smaller time step)."
        )

    try:
        fields, deltas = stream_statistics(
            file,
            strides=sorted({1, *strides}),
            nonfinite=nonfinite,
            progress=progress,
        )
        stats = _summary(file, fields, deltas)
    finally:
        file.close()
    stats["source"] = file.path.name
    stats["fingerprint"] = file.attrs.get("physim_dataset_fingerprint")
    return stats


def statistics_at_stride(stats: dict[str, Any], stride: int) -> dict[str, Any]:
    """A copy of ``stats`` whose ``delta_mean``/``delta_std`` are the differences over
    ``stride`` stored frames (recorded as ``delta_stride``).

    Raises:
        DatasetError: the statistics hold no differences at ``stride`` (see
            :func:`ensure_difference_statistics`).
    """
    out = dict(stats)
    out["delta_stride"] = int(stride)
    if stride == 1:
        return out
    moments = stats.get("differences", {}).get(str(stride))
    if moments is None:
        raise DatasetError(
            f"The normalisation statistics hold no differences over {stride} frames "
            "(time_stride); compute them with ensure_difference_statistics (the data "
            "module does this on first use)."
        )
    out["delta_mean"], out["delta_std"] = moments["mean"], moments["std"]
    return out


def ensure_difference_statistics(
    root: str | Path,
    stats: dict[str, Any],
    stride: int,
    source: Callable[[], Any],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """``stats`` with the differences over ``stride`` frames, computed once and cached.

    When ``stats`` lacks them, one pass over ``source()`` (the training split's
    frames: a :class:`TrajectoryFile` or an external reader; closed after the pass)
    computes them, and ``<root>/stats.json`` is rewritten (atomically) with them
    added.
    """
    if stride == 1 or str(stride) in stats.get("differences", {}):
        return stats
    reader = source()
    try:
        _, deltas = stream_statistics(
            reader,
            strides=(stride,),
            nonfinite=lambda i, f: (
                f"{reader.path}: trajectory {i} holds NaN/Inf values near frame {f}."
            ),
            progress=progress,
        )
    finally:
        reader.close()
    stats = dict(stats)
    stats["differences"] = {**stats.get("differences", {}), **_differences(deltas)}
    save_statistics(root, stats)
    return stats


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
