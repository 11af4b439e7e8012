"""``DatasetGenerator``: make what is missing of a dataset, resumably and in parallel.

The orchestration only: the spec and its fingerprint are :mod:`._spec`, the file layout
and checks :mod:`._files`, shard solving :mod:`._solve`, assembly and statistics
:mod:`._assemble`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from physim.data import DatasetError

from ._assemble import assemble, statistics_current, update_statistics
from ._files import (
    check_file,
    prepare_root,
    remove_shards,
    shard_path,
    split_complete,
    split_path,
)
from ._solve import solve_shards
from ._spec import DatasetSpec

__all__ = ["DatasetGenerator"]


class DatasetGenerator(DatasetSpec):
    """Solves trajectories; writes ``<root>/{train,valid,test}.h5`` and ``stats.json``.

    Each split is cut into shards of ``shard_size`` trajectories. Shard ``s`` of a split
    draws its initial conditions from its own ``torch.Generator`` seeded with
    :func:`shard_seed` ``(seed, split, s)``, is solved as one batch and written
    atomically to ``<root>/.shards/<split>-<s:05d>.h5``. Existing shard files are
    skipped, so an interrupted run resumes where it stopped, and several processes may
    work on one dataset (``shards=``). Whoever finds all shards of a split present
    concatenates them (chunk by chunk) into ``<split>.h5`` (written under a temporary
    name, then renamed: two racing processes write identical files) and removes the
    shard files. Finally ``stats.json`` is computed from ``train.h5``.

    Frames are stored at ``first_output_time + k * output_interval``, ``k = 0 ..
    num_frames - 1``, starting from ``t = 0``; with the default ``first_output_time =
    output_interval`` the initial state is not stored (as in the FNO data: t = 1..50).
    A dataset *spec* (everything that changes the data: PDE and IC parameters, the
    controller, times, resolution, seed, shard size) is hashed into the attribute
    ``physim_dataset_fingerprint``; files of another spec are never overwritten or
    mixed in.

    Takes the arguments of :class:`~physim.solvers._generate.DatasetSpec` (its
    constructor, which checks them and derives the spec).
    """

    split_path = staticmethod(split_path)
    shard_path = staticmethod(shard_path)

    # ------------------------------------------------------------ checks
    def check_dataset(self, root: str | Path) -> None:
        """Refuse split files in ``root`` that this generator did not make.

        Reads attributes only. Called by :class:`physim.data.TrajectoryDataModule`
        before it reads a stored dataset, so training and evaluation never use data of
        other generator settings than the config's (``generate.py`` refuses them too).

        Raises:
            DatasetError: names the file, the settings that differ and the fix.
        """
        root = Path(root)
        for split, count in self.num_trajectories.items():
            path = split_path(root, split)
            try:
                check_file(self, path, split, count)
            except DatasetError as error:
                raise DatasetError(
                    f"{error} To use the stored data as they are, set "
                    "data.generator=null."
                ) from None

    def _split_complete(self, root: Path, split: str) -> bool:
        return split_complete(self, root, split)

    def is_complete(self, root: str | Path) -> bool:
        """Whether every split file (and ``stats.json``) of this spec is in ``root``."""
        root = Path(root)
        try:
            done = all(
                self._split_complete(root, split) for split in self.num_trajectories
            )
        except DatasetError:
            return False
        return done and (
            "train" not in self.num_trajectories or statistics_current(self, root)
        )

    # ------------------------------------------------------------ generation
    def __call__(
        self,
        root: str | Path,
        *,
        splits: Sequence[str] | None = None,
        shards: Sequence[int] | None = None,
        progress: bool = True,
    ) -> None:
        """Generate what is missing in ``root`` (resumes; idempotent).

        Args:
            root: the dataset folder.
            splits: only these splits (default: all of ``num_trajectories``).
            shards: only these shard indices of each split (parallel generation: give
                each process its own indices; the last one to finish assembles).
            progress: show progress (rich bars in a terminal, periodic plain lines
                when output goes to a file).

        Raises:
            ValueError: unknown split or shard.
            DatasetError: ``root`` is not writable, or holds files of another spec.
            NonFiniteError: a trajectory blew up (names its index in the split).
        """
        root = Path(root)
        selected = self._select(splits)
        wanted = self._select_shards(shards, selected)
        prepare_root(root)
        # Resume: a shard file that exists is complete (written atomically) and, once
        # checked to be of this spec, is not solved again.
        todo: list[tuple[str, int]] = []
        for split in selected:
            if self._split_complete(root, split):
                remove_shards(root, split)  # left over by an interrupted clean-up
                continue
            for shard, indices in enumerate(self.shard_ranges(split)):
                if wanted is not None and shard not in wanted:
                    continue
                if not check_file(
                    self, shard_path(root, split, shard), split, len(indices), shard
                ):
                    todo.append((split, shard))
        if todo:
            solve_shards(self, root, todo, progress)
        for split in selected:
            if not self._split_complete(root, split):
                self._assemble(root, split)
        update_statistics(self, root, progress)

    def _assemble(self, root: Path, split: str) -> bool:
        """Concatenate the shards of ``split`` into ``<split>.h5`` once all exist."""
        return assemble(self, root, split)

    def _select(self, splits: Sequence[str] | None) -> list[str]:
        if splits is None:
            return list(self.num_trajectories)
        if isinstance(splits, str):
            splits = [splits]
        for split in splits:
            if split not in self.num_trajectories:
                raise ValueError(
                    f"DatasetGenerator: unknown split {split!r}; dataset '{self.name}' "
                    f"has {list(self.num_trajectories)}."
                )
        return [s for s in self.num_trajectories if s in set(splits)]

    def _select_shards(
        self, shards: Sequence[int] | None, splits: list[str]
    ) -> set[int] | None:
        if shards is None:
            return None
        available = max(len(self.shard_ranges(s)) for s in splits)
        chosen = set()
        for shard in shards:
            if (
                isinstance(shard, bool)
                or int(shard) != shard
                or not 0 <= shard < available
            ):
                raise ValueError(
                    f"DatasetGenerator: shard {shard!r} does not exist; splits "
                    f"{splits} have shards 0..{available - 1} "
                    f"(shard_size={self.shard_size})."
                )
            chosen.add(int(shard))
        return chosen
