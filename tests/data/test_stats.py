"""Normalisation statistics: exact against numpy, stable, streaming, strict input."""

import json

import numpy as np
import pytest

from physim.data import (
    DatasetError,
    TrajectoryFile,
    _format,
    compute_statistics,
    ensure_difference_statistics,
    load_statistics,
    save_statistics,
    statistics_at_stride,
    write_trajectories,
)


def write(path, fields):
    n, t, c, *space = fields.shape
    return write_trajectories(
        path,
        fields,
        times=np.arange(1.0, t + 1),
        coords={d: np.arange(s) / s for d, s in zip("xy", space, strict=False)},
        channel_names=[f"c{k}" for k in range(c)],
        attrs={"pde": "test", "physim_dataset_fingerprint": "abc"},
    )


def reference(fields):
    """Two-pass float64 statistics over (N, T, *space) per channel."""
    x = fields.astype(np.float64)
    d = np.diff(x, axis=1)
    axes = (0, 1, *range(3, x.ndim))
    return x.mean(axes), x.std(axes), d.mean(axes), d.std(axes)


@pytest.mark.parametrize("chunk_target", [None, 700])
def test_statistics_match_numpy(tmp_path, monkeypatch, chunk_target):
    rng = np.random.default_rng(0)
    fields = rng.standard_normal((5, 9, 2, 6, 5)) * [[[[[3.0]], [[0.5]]]]] + [
        [[[[1.0]], [[-2.0]]]]
    ]
    fields += np.cumsum(rng.standard_normal((5, 9, 1, 1, 1)), axis=1)  # drifts in time
    fields = fields.astype(np.float32)
    if chunk_target is not None:  # time blocks of 2 frames: deltas cross block borders
        monkeypatch.setattr(_format, "CHUNK_TARGET_BYTES", chunk_target)
    path = write(tmp_path / "train.h5", fields)
    if chunk_target is not None:
        assert TrajectoryFile(path).chunks[1] == 2
    stats = compute_statistics(path)
    for key, expected in zip(
        ("mean", "std", "delta_mean", "delta_std"), reference(fields), strict=True
    ):
        np.testing.assert_allclose(
            stats[key], expected, rtol=1e-12, atol=1e-13, err_msg=key
        )
    assert stats["channel_names"] == ["c0", "c1"]
    assert (stats["num_trajectories"], stats["num_frames"]) == (5, 9)
    assert stats["source"] == "train.h5" and stats["fingerprint"] == "abc"


def test_accumulation_is_stable_for_a_large_offset(tmp_path):
    # std 1e-3 on top of 1e8: E[x^2] - E[x]^2 would lose every digit (1e16 vs 1e-6).
    rng = np.random.default_rng(1)
    fields = 1e8 + 1e-3 * rng.standard_normal((6, 5, 1, 8))
    stats = compute_statistics(write(tmp_path / "train.h5", fields))
    _, std, _, delta_std = reference(fields)
    np.testing.assert_allclose(stats["std"], std, rtol=1e-6)
    np.testing.assert_allclose(stats["delta_std"], delta_std, rtol=1e-6)


def test_reads_one_chunk_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(
        _format, "CHUNK_TARGET_BYTES", 3 * 64 * 4
    )  # 3 frames of 8x8 f32
    fields = np.ones((4, 10, 1, 8, 8), dtype=np.float32)
    path = write(tmp_path / "train.h5", fields)
    sizes = []
    original = TrajectoryFile.read

    def spy(self, index, frames=slice(None)):
        block = original(self, index, frames)
        sizes.append(block.shape[0])
        return block

    monkeypatch.setattr(TrajectoryFile, "read", spy)
    compute_statistics(path)
    assert max(sizes) == 3 and sum(sizes) == 4 * 10


def test_non_finite_values_are_reported(tmp_path):
    fields = np.zeros((3, 4, 1, 5), dtype=np.float32)
    fields[2, 3, 0, 1] = np.nan
    with pytest.raises(DatasetError, match="train.h5: trajectory 2 .*NaN/Inf.*frame 3"):
        compute_statistics(write(tmp_path / "train.h5", fields))


def test_one_frame_is_not_enough(tmp_path):
    with pytest.raises(DatasetError, match="at least 2"):
        compute_statistics(write(tmp_path / "train.h5", np.zeros((2, 1, 1, 4))))


def test_save_and_load_round_trip(tmp_path):
    fields = np.random.default_rng(2).standard_normal((2, 3, 2, 4)).astype(np.float32)
    stats = compute_statistics(write(tmp_path / "train.h5", fields))
    path = save_statistics(tmp_path, stats)
    assert path == tmp_path / "stats.json"
    assert load_statistics(tmp_path) == json.loads(json.dumps(stats))
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "stats.json: normalisation statistics not found"),
        ("{not json", "not a readable JSON"),
        (
            json.dumps({"mean": [0.0], "std": [1.0], "delta_mean": [0.0]}),
            "'delta_std' is missing",
        ),
        (
            json.dumps(
                {"mean": [0.0], "std": [-1.0], "delta_mean": [0.0], "delta_std": [1.0]}
            ),
            "'std' has negative",
        ),
        (
            json.dumps(
                {
                    "mean": [0.0, 1.0],
                    "std": [1.0],
                    "delta_mean": [0.0],
                    "delta_std": [1.0],
                }
            ),
            "different numbers of channels",
        ),
        (
            json.dumps(
                {"mean": ["a"], "std": [1.0], "delta_mean": [0.0], "delta_std": [1.0]}
            ),
            "'mean' holds non-numeric",
        ),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    if content is not None:
        (tmp_path / "stats.json").write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_statistics(tmp_path)


@pytest.mark.parametrize("chunk_target", [None, 700])
def test_difference_statistics_at_a_stride_match_numpy(
    tmp_path, monkeypatch, chunk_target
):
    rng = np.random.default_rng(1)
    fields = np.cumsum(rng.standard_normal((4, 11, 2, 5, 3)), axis=1).astype(np.float32)
    if chunk_target is not None:  # 2-frame time blocks: strides cross block borders
        monkeypatch.setattr(_format, "CHUNK_TARGET_BYTES", chunk_target)
    path = write(tmp_path / "train.h5", fields)
    stats = compute_statistics(path, strides=[3, 4])
    x = fields.astype(np.float64)
    for stride in (3, 4):
        d = x[:, stride:] - x[:, :-stride]
        axes = (0, 1, 3, 4)
        moments = stats["differences"][str(stride)]
        np.testing.assert_allclose(moments["mean"], d.mean(axes), rtol=1e-12)
        np.testing.assert_allclose(moments["std"], d.std(axes), rtol=1e-12)
        at_stride = statistics_at_stride(stats, stride)
        assert at_stride["delta_std"] == moments["std"]
    # Stride 1 stays where it was; a missing stride is refused, naming the fix.
    np.testing.assert_allclose(stats["delta_std"], np.diff(x, axis=1).std(axes))
    with pytest.raises(DatasetError, match="ensure_difference_statistics"):
        statistics_at_stride(stats, 2)


def test_difference_statistics_are_computed_once_and_cached(tmp_path):
    fields = np.cumsum(np.ones((2, 9, 1, 4, 4), dtype=np.float32), axis=1)
    write(tmp_path / "train.h5", fields)
    save_statistics(tmp_path, compute_statistics(tmp_path / "train.h5"))
    stats = load_statistics(tmp_path)
    opened = []

    def reader():
        opened.append(1)
        return TrajectoryFile(tmp_path / "train.h5")

    stats = ensure_difference_statistics(tmp_path, stats, 4, reader, progress=False)
    assert stats["differences"]["4"]["mean"] == [4.0]
    again = ensure_difference_statistics(
        tmp_path, load_statistics(tmp_path), 4, reader, progress=False
    )
    assert again["differences"] == stats["differences"] and len(opened) == 1
