"""`TrajectoryDataModule`: the one data module every physim model trains on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, DistributedSampler

from ._errors import DatasetError
from ._format import TrajectoryFile, finite_verdict, nonfinite_message
from ._stats import (
    ensure_difference_statistics,
    load_statistics,
    statistics_at_stride,
)
from ._windows import FrameSource, InMemorySource, TrajectoryDataset, WindowDataset

if TYPE_CHECKING:
    from .readers import ExternalSource

log = logging.getLogger("physim")
SPLITS = ("train", "valid", "test")
# Splits smaller than this are read into memory once (fast random windows); larger
# ones stay on disk and are read lazily, chunk by chunk, by each worker's own handle.
IN_MEMORY_LIMIT_BYTES = 2 * 1024**3


class TrajectoryDataModule(pl.LightningDataModule):
    """Training windows; one-step and full-trajectory loaders for validation and test.

    The dataset lives in ``root`` as ``{train,valid,test}.h5`` plus ``stats.json`` (see
    :mod:`physim.data`). When files are missing, :meth:`prepare_data` (rank 0) calls
    ``generator(root)`` to create them with the built-in solver. With ``external``
    (PDEBench, PDEArena or The Well files, see :mod:`physim.data.readers`) the splits
    are read from those files as they are, and ``root`` only caches their statistics.

    Batches are dicts of float32 tensors in physical units, ``[B, T, C, *space]``:
    training and one-step loaders give ``history`` (``time_history`` frames) and
    ``future`` (``time_future * (1 + unroll_steps)`` frames); rollout loaders give
    ``trajectory`` (all frames). Every batch also carries ``times`` ``[B, T]``
    (float64), each trajectory's own times of those frames; ``params`` ``[B, P]``
    (per-trajectory parameters), ``constants`` ``[B, K, *space]`` (constant fields),
    ``scalars`` ``[B, T, S]`` (time-varying scalars) and ``coords`` (``{dim: [B, X]}``,
    positions that differ between trajectories) when the data have them; constant
    fields and scalars are conditioning inputs, never among the predicted channels.
    Validation and test each have two loaders: index 0 is one-step, index 1 is
    rollout. Normalisation statistics are in :attr:`statistics`; the task applies
    them, so a checkpoint carries its own normalisation. Their
    ``delta_mean``/``delta_std`` are those of the differences the model predicts,
    over ``time_stride`` stored frames (computed from the training split on first use
    and cached in ``stats.json``), so a residual target has unit scale at any stride.

    Args:
        root: the dataset folder.
        num_channels: channels the model expects; checked against the files.
        time_history: input frames per sample.
        time_future: frames predicted per model call.
        time_stride: use every ``time_stride``-th stored frame.
        unroll_steps: extra model calls per training sample (pushforward/unrolling).
        rollout_steps: frames predicted in rollout evaluation (default: all remaining).
        batch_size: training batch size (per process under DDP).
        eval_batch_size: batch size for validation/test (default: ``batch_size``).
        num_workers: DataLoader worker processes.
        in_memory: read splits into memory; ``None`` decides by size.
        max_trajectories: cap per split, e.g. ``{"train": 100}``, for quick experiments.
        val_rollout_trajectories: validation rollouts use the first so many trajectories
            (rollouts are costly; the test split always uses all).
        seed: seeds the training shuffle, one permutation per epoch (so a resumed run
            sees the same batches as an uninterrupted one).
        generator: called as ``generator(root)`` to create a missing dataset.
        external: read the splits from foreign files instead of ``root``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        num_channels: int,
        time_history: int = 1,
        time_future: int = 1,
        time_stride: int = 1,
        unroll_steps: int = 0,
        rollout_steps: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        in_memory: bool | None = None,
        max_trajectories: dict[str, int] | None = None,
        val_rollout_trajectories: int | None = None,
        seed: int = 0,
        generator: Callable[[Path], Any] | None = None,
        external: ExternalSource | None = None,
    ) -> None:
        super().__init__()
        for name, value, minimum in [
            ("num_channels", num_channels, 1),
            ("time_history", time_history, 1),
            ("time_future", time_future, 1),
            ("time_stride", time_stride, 1),
            ("unroll_steps", unroll_steps, 0),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
        ]:
            if int(value) != value or value < minimum:
                raise ValueError(
                    f"TrajectoryDataModule: {name} must be an integer >= {minimum}, "
                    f"got {value!r}."
                )
        unknown = set(max_trajectories or {}) - set(SPLITS)
        if unknown:
            raise ValueError(
                f"TrajectoryDataModule: max_trajectories has unknown split(s) "
                f"{sorted(unknown)}; use {list(SPLITS)}."
            )
        self.root = Path(root)
        self.num_channels = num_channels
        self.time_history = time_history
        self.time_future = time_future
        self.time_stride = time_stride
        self.unroll_steps = unroll_steps
        self.rollout_steps = rollout_steps
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.in_memory = in_memory
        self.max_trajectories = dict(max_trajectories or {})
        self.val_rollout_trajectories = val_rollout_trajectories
        self.seed = seed
        self.generator = generator
        self.external = external
        self.files: dict[str, TrajectoryFile] = {}
        self.statistics: dict[str, list[float]] = {}
        self._sources: dict[str, FrameSource] = {}

    # ------------------------------------------------------------------ preparation
    def split_path(self, split: str) -> Path:
        return self.root / f"{split}.h5"

    def missing_files(self) -> list[Path]:
        paths = [self.split_path(s) for s in SPLITS] + [self.root / "stats.json"]
        return [p for p in paths if not p.exists()]

    def prepare_data(self) -> None:
        """Generate the dataset if files are missing and cache the statistics at
        ``time_stride`` (Lightning calls it on rank 0 only)."""
        if self.external is None:
            missing = self.missing_files()
            if missing and self.generator is None:
                raise DatasetError(
                    f"{missing[0]}: dataset file not found and no generator "
                    "configured. Generate it (python scripts/generate.py data=<name>) "
                    "or set data.root to a folder holding train.h5, valid.h5, test.h5 "
                    "and stats.json."
                )
            if missing:
                self.generator(self.root)
            # Rank 0 records each split's finite check (free for files physim wrote;
            # others are streamed once). It raises nothing here: setup() refuses a
            # non-finite split on every rank alike, where a raise on rank 0 alone
            # would leave the other ranks waiting at Lightning's barrier.
            verdicts = [finite_verdict(self.split_path(split)) for split in SPLITS]
            if any(verdicts):
                return  # no statistics pass over data setup() refuses
        self._load_statistics()

    def _load_statistics(self) -> dict[str, Any]:
        """The training split's statistics, with differences over ``time_stride``
        frames as ``delta_mean``/``delta_std`` (computed and cached if missing)."""
        if self.external is not None:
            stats = self.external.statistics(self.root)
            cache = self.external.statistics_dir(self.root)
        else:
            stats, cache = load_statistics(self.root), self.root
        stats = ensure_difference_statistics(
            cache, stats, self.time_stride, self._train_reader
        )
        return statistics_at_stride(stats, self.time_stride)

    def _train_reader(self) -> Any:
        """The training split's frames, for a statistics pass (closed after it)."""
        if self.external is not None:
            return self.external.splits["train"]
        return TrajectoryFile(self.split_path("train"))

    def setup(self, stage: str | None = None) -> None:
        """Open the split files lazily and build the datasets for ``stage``."""
        if self._sources:
            return
        if self.external is None:
            self._check_generator_spec()
        for split in SPLITS:
            file = (
                self.external.splits[split]
                if self.external is not None
                else TrajectoryFile(self.split_path(split))
            )
            if len(file.channel_names) != self.num_channels:
                raise DatasetError(
                    f"{file.path}: holds {len(file.channel_names)} channel(s) "
                    f"{list(file.channel_names)} but the model is configured for "
                    f"num_channels={self.num_channels}; set data.num_channels (and the "
                    "model's channels) to match the data."
                )
            self.files[split] = file
            self._sources[split] = self._source(file)  # in memory: checked finite
            if self._sources[split] is file and isinstance(file, TrajectoryFile):
                self._check_finite(file)
        self.statistics = self._load_statistics()
        self._report_per_trajectory_coordinates()
        self.window_dataset("train", self.unroll_steps)  # validates the window length
        stored = self.files["test"].num_frames // self.time_stride
        if self.rollout_steps is None:
            self.rollout_steps = stored - self.time_history
        if not 1 <= self.rollout_steps <= stored - self.time_history:
            raise ValueError(
                f"TrajectoryDataModule: rollout_steps={self.rollout_steps} does not "
                "fit "
                f"trajectories of {stored} frames after {self.time_history} history "
                "frames."
            )

    def _report_per_trajectory_coordinates(self) -> None:
        """Say so when trajectories have their own times or grids (never collapsed)."""
        varying = self.varying_coordinates
        if varying:
            names = ", ".join(self.parameter_names) or "none"
            log.info(
                "%s: trajectories have their own %s; batches carry each one's "
                "('times', 'coords'). A model on one grid should be conditioned on "
                "the per-trajectory spacing (model.conditioning; parameters: %s).",
                self.files["train"].path,
                " and ".join(varying),
                names,
            )

    def _reads_into_memory(self, file: TrajectoryFile) -> bool:
        if self.in_memory is None:
            return file.nbytes <= IN_MEMORY_LIMIT_BYTES
        return bool(self.in_memory)

    def _source(self, file: TrajectoryFile) -> FrameSource:
        return InMemorySource.load(file) if self._reads_into_memory(file) else file

    @staticmethod
    def _check_finite(file: TrajectoryFile) -> None:
        """Refuse a lazily read split holding NaN/Inf (verdict recorded per file)."""
        found = finite_verdict(file.path)
        if found is not None:
            raise DatasetError(
                nonfinite_message(
                    file.path,
                    *found,
                    times=file.times,
                    channel_names=file.channel_names,
                )
            )

    def _check_generator_spec(self) -> None:
        """Refuse stored splits made with other generator settings than configured.

        ``generator.check_dataset(root)`` (:class:`physim.solvers.DatasetGenerator`)
        compares the files' spec fingerprint with the generator's and names the
        differences; a generator without it is not checked.
        """
        check = getattr(self.generator, "check_dataset", None)
        if callable(check):
            check(self.root)

    def _trajectories(self, split: str, limit: int | None = None) -> list[int]:
        count = self.files[split].num_trajectories
        cap = self.max_trajectories.get(split)
        for bound in (cap, limit):
            if bound is not None:
                count = min(count, bound)
        return list(range(count))

    # ------------------------------------------------------------------ datasets
    def window_dataset(self, split: str, unroll_steps: int = 0) -> WindowDataset:
        return WindowDataset(
            self._sources[split],
            self.time_history,
            self.time_future * (1 + unroll_steps),
            stride=self.time_stride,
            trajectories=self._trajectories(split),
        )

    def rollout_dataset(self, split: str) -> TrajectoryDataset:
        limit = self.val_rollout_trajectories if split == "valid" else None
        return TrajectoryDataset(
            self._sources[split],
            stride=self.time_stride,
            trajectories=self._trajectories(split, limit),
            num_frames=self.time_history + self.rollout_steps,
        )

    # ------------------------------------------------------------------ loaders
    def _loader(self, dataset, batch_size: int, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        replicas = trainer.world_size if trainer else 1
        rank = trainer.global_rank if trainer else 0
        if shuffle:
            # A DistributedSampler even in one process: its permutation is a function of
            # (seed, epoch), which Lightning sets each epoch and restores on resume.
            # Under DDP each rank takes its share; Lightning leaves it in place.
            sampler = DistributedSampler(
                dataset, num_replicas=replicas, rank=rank, shuffle=True, seed=self.seed
            )
        elif replicas > 1:
            # Evaluation under DDP: every sample exactly once. Lightning's default
            # DistributedSampler pads a split whose size the world size does not
            # divide by repeating samples, which biases means and double-counts
            # diverged rollouts; this one gives ranks unequal shares instead (the
            # metrics are sums that torchmetrics reduces, so shares may differ).
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=replicas, rank=rank, shuffle=False
            )
        else:
            sampler = None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.window_dataset("train", self.unroll_steps)
        return self._loader(dataset, self.batch_size, shuffle=True)

    def _eval_loaders(self, split: str) -> list[DataLoader]:
        return [
            self._loader(self.window_dataset(split), self.eval_batch_size, False),
            self._loader(self.rollout_dataset(split), self.eval_batch_size, False),
        ]

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders("valid")

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders("test")

    # ------------------------------------------------------------------ metadata
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the per-trajectory parameters in batches' ``params [B, P]``."""
        return self.files["train"].parameter_names

    @property
    def constant_names(self) -> tuple[str, ...]:
        """Names of the constant fields in batches' ``constants [B, K, *space]``."""
        return tuple(getattr(self.files["train"], "constant_names", ()))

    @property
    def scalar_names(self) -> tuple[str, ...]:
        """Names of the time-varying scalars in batches' ``scalars [B, T, S]``."""
        return tuple(getattr(self.files["train"], "scalar_names", ()))

    @property
    def varying_coordinates(self) -> tuple[str, ...]:
        """Coordinates that differ between trajectories (``"time"``, spatial dims)."""
        found: dict[str, None] = {}
        for file in self.files.values():
            found.update(dict.fromkeys(getattr(file, "varying_coordinates", ())))
        return tuple(found)

    @property
    def output_interval(self) -> float:
        """Physical time between consecutive frames the model sees (in frames when
        the trajectories have their own times)."""
        times = self.files["test"].times
        return float(times[1] - times[0]) * self.time_stride if len(times) > 1 else 1.0
