"""Where a dataset's files lie, and whether a file there is a complete one of its spec.

A split is one file, ``<root>/<split>.h5``; while it is being made, shard ``s`` is
``<root>/.shards/<split>-<s:05d>.h5``. Every file is written under a temporary name and
renamed (:mod:`physim.data`), so a file that exists is complete; :func:`check_file`
then tells a file of this spec (skip it: resume) from a foreign one (refuse it).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from physim.data import DatasetError, TrajectoryFile

from ._spec import FINGERPRINT, DatasetSpec

__all__ = [
    "SHARD_DIR",
    "check_file",
    "prepare_root",
    "remove_shards",
    "shard_path",
    "split_complete",
    "split_path",
]

SHARD_DIR = ".shards"


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"{split}.h5"


def shard_path(root: str | Path, split: str, shard: int) -> Path:
    return Path(root) / SHARD_DIR / f"{split}-{shard:05d}.h5"


def check_file(
    spec: DatasetSpec, path: Path, split: str, num: int, shard: int | None = None
) -> bool:
    """``False`` if ``path`` is absent, ``True`` if it is a complete file of ``spec``.

    Raises:
        DatasetError: the file is corrupt, foreign or of another spec.
    """
    if not path.exists():
        return False
    what = "the shard folder " + str(path.parent) if shard is not None else str(path)
    fix = (
        f"The generator of dataset '{spec.name}' will not overwrite it: delete "
        f"{what} to regenerate it, or choose another root."
    )
    try:
        file = TrajectoryFile(path)
    except DatasetError as error:
        raise DatasetError(f"{error} {fix}") from error
    expected = {FINGERPRINT: spec.fingerprint, "split": split}
    if shard is not None:
        expected["shard"] = shard
    for key, value in expected.items():
        found = file.attrs.get(key)
        if found != value:
            differences = spec.spec_differences(file.attrs)
            detail = (
                f"; the settings that differ (file vs config): {differences}"
                if key == FINGERPRINT and differences
                else ""
            )
            raise DatasetError(
                f"{path}: attribute '{key}' is {found!r}, expected {value!r} (the "
                "file belongs to another dataset spec or was not written by "
                f"physim){detail}. {fix}"
            )
    shape = (num, spec.frames[split], len(spec.channel_names))
    if file.shape[:3] != shape:
        raise DatasetError(
            f"{path}: holds [N, T, C] = {list(file.shape[:3])}, but the spec asks "
            f"for {list(shape)}. {fix}"
        )
    return True


def split_complete(spec: DatasetSpec, root: Path, split: str) -> bool:
    """Whether ``<root>/<split>.h5`` is a complete file of ``spec`` (see check_file)."""
    return check_file(
        spec, split_path(root, split), split, spec.num_trajectories[split]
    )


def prepare_root(root: Path) -> None:
    """Create ``root`` and its shard folder, and make sure they are writable."""
    try:
        (root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root / SHARD_DIR, prefix=".probe-"):
            pass
    except OSError as error:
        raise DatasetError(
            f"{root}: cannot write the dataset here ({error}). Choose a writable "
            "root (data.root=<folder>, or PHYSIM_DATA_DIR)."
        ) from error


def remove_shards(root: Path, split: str) -> None:
    """Delete the shard files of ``split``, and the shard folder once it is empty."""
    for path in (root / SHARD_DIR).glob(f"{split}-*.h5"):
        path.unlink(missing_ok=True)
    # Not empty (other splits in progress) or already gone: leave it.
    with contextlib.suppress(OSError):
        (root / SHARD_DIR).rmdir()
