"""Tiny trajectory datasets in physim's format, for data-module and task tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physim.data import compute_statistics, save_statistics, write_trajectories


def labelled_fields(
    num: int, frames: int, channels: int = 1, size: int = 8
) -> np.ndarray:
    """Frame ``t`` of trajectory ``i`` is constant ``1000 i + t`` (+ channel offset)."""
    i = np.arange(num)[:, None, None, None, None]
    t = np.arange(frames)[None, :, None, None, None]
    c = np.arange(channels)[None, None, :, None, None]
    fields = 1000.0 * i + t + 0.5 * c + np.zeros((1, 1, 1, size, size))
    return fields.astype(np.float32)


def travelling_waves(
    num: int, frames: int, size: int = 16, seed: int = 0
) -> np.ndarray:
    """Smooth 2-D fields advected at a per-trajectory constant velocity (learnable)."""
    rng = np.random.default_rng(seed)
    x = np.arange(size) / size
    fields = np.empty((num, frames, 1, size, size), dtype=np.float32)
    for i in range(num):
        a, b, vx, vy = rng.uniform(0.5, 1.5, 4)
        for t in range(frames):
            xs = x[:, None] - 0.05 * vx * t
            ys = x[None, :] - 0.05 * vy * t
            fields[i, t, 0] = a * np.sin(2 * np.pi * xs) + b * np.cos(2 * np.pi * ys)
    return fields


def write_dataset(
    root: Path, splits: dict[str, np.ndarray], *, channel_names: list[str] | None = None
) -> Path:
    """Write ``{split: fields}``, unit-spaced times and stats.json; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for split, fields in splits.items():
        n, t, c, *space = fields.shape
        names = channel_names or [f"u{k}" for k in range(c)]
        coords = {
            d: np.arange(s) / s for d, s in zip(("x", "y", "z"), space, strict=False)
        }
        write_trajectories(
            root / f"{split}.h5",
            fields,
            times=np.arange(1, t + 1, dtype=np.float64),
            coords=coords,
            channel_names=names,
            attrs={"pde": "test", "split": split, "output_interval": 1.0, "seed": 0},
        )
    save_statistics(root, compute_statistics(root / "train.h5"))
    return root
