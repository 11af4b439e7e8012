"""Sharded, resumable, deterministic generation of trajectory datasets with a solver."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from physim.data import (
    DatasetError,
    Progress,
    TrajectoryFile,
    TrajectoryWriter,
    compute_statistics,
    load_statistics,
    save_statistics,
    write_trajectories,
)
from physim.timestepping import NonFiniteError, integrate

from ._spectral import spectral_resample

__all__ = ["SPLITS", "DatasetGenerator", "shard_seed"]

SPLITS = ("train", "valid", "test")
SHARD_DIR = ".shards"
STORE_DTYPES = {"float32": torch.float32, "float64": torch.float64}
FINGERPRINT = "physim_dataset_fingerprint"


def shard_seed(seed: int, split: str, shard: int) -> int:
    """A 63-bit seed for shard ``shard`` of ``split``, stable across runs and machines.

    Derived with SHA-256 (Python's ``hash`` of a string is salted per process, and
    ``seed + shard`` would make neighbouring seeds share shards).
    """
    digest = hashlib.sha256(f"physim/{seed}/{split}/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _plain(value: Any) -> str | int | float | bool:
    """A value storable as an HDF5 attribute (str, int, float or bool)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return json.dumps([_plain(v) for v in value])
    return str(value)


def _flatten(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"<prefix>a_b": 1}`` with plain values."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(f"{prefix}{key}_", value))
        else:
            flat[f"{prefix}{key}"] = _plain(value)
    return flat


def _parameters(obj: Any) -> dict[str, Any]:
    method = getattr(obj, "parameters", None)
    return dict(method()) if callable(method) else {}


def _describe(obj: Any) -> str:
    """``repr(obj)`` when it is informative, else ``Class(attr=value, ...)``.

    The default ``object.__repr__`` holds a memory address, which would change the
    dataset fingerprint from run to run.
    """
    if type(obj).__repr__ is not object.__repr__:
        return repr(obj)
    fields = {
        k: v
        for k, v in sorted(getattr(obj, "__dict__", {}).items())
        if not k.startswith("_") and isinstance(v, (bool, int, float, str))
    }
    inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{type(obj).__name__}({inner})"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(
            f"DatasetGenerator: {name} must be a positive integer, got {value!r}."
        )
    return int(value)


class DatasetGenerator:
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
    mixed in. The shard size belongs to the spec because a shard is one batch, and
    adaptive controllers (CFL) take the same steps for the whole batch, so a
    trajectory's discretisation error depends on its shard mates (per-trajectory steps
    would need per-sample scheme coefficients; not worth it for similar trajectories).
    The trajectory counts do not: a larger split starts with the same trajectories.

    Args:
        name: the dataset name (stored in the files).
        pde: a solver following physim's PDE protocol (``encode``, ``decode``, ``step``,
            ``channel_names``, ``coordinates``, ``parameters``, ``dtype``, ``device``).
        initial_condition: has ``sample(n, generator=, dtype=, device=)`` returning
            ``[n, C, *space]`` at the solver's resolution.
        controller: a :mod:`physim.timestepping` step-size controller.
        num_trajectories: trajectories per split, e.g. ``{"train": 256, "valid": 32}``.
        num_frames: stored frames per trajectory, or per split (``{"train": 140,
            "valid": 640, "test": 640}``, PDE-Refiner's KS data).
        output_interval: physical time between stored frames.
        first_output_time: time of the first stored frame (default ``output_interval``;
            0 stores the initial state).
        store_points: stored grid points per axis (spectral resampling of the solution);
            ``None`` stores the solver's grid.
        store_dtype: ``"float32"`` (default, half the disk of float64 and what models
            train on) or ``"float64"``.
        shard_size: trajectories per shard (= per solver batch).
        seed: the dataset seed.
        max_steps: safety cap on solver steps per shard.
    """

    def __init__(
        self,
        name: str,
        pde: Any,
        initial_condition: Any,
        controller: Any,
        *,
        num_trajectories: Mapping[str, int],
        num_frames: int | Mapping[str, int],
        output_interval: float,
        first_output_time: float | None = None,
        store_points: int | None = None,
        store_dtype: str = "float32",
        shard_size: int = 32,
        seed: int = 0,
        max_steps: int = 10_000_000,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"DatasetGenerator: name must be a non-empty string, got {name!r}."
            )
        counts = dict(num_trajectories.items())
        unknown = sorted(set(counts) - set(SPLITS))
        if unknown or not counts:
            raise ValueError(
                f"DatasetGenerator: num_trajectories has unknown or no split names "
                f"{unknown or counts}; use keys from {list(SPLITS)}."
            )
        self.num_trajectories = {
            split: _positive_int(f"num_trajectories.{split}", counts[split])
            for split in SPLITS
            if split in counts
        }
        if isinstance(num_frames, Mapping):
            missing = sorted(set(self.num_trajectories) - set(num_frames))
            if missing:
                raise ValueError(
                    f"DatasetGenerator: num_frames gives no count for split(s) "
                    f"{missing}; give one per split of num_trajectories or one number."
                )
            self.frames = {
                split: _positive_int(f"num_frames.{split}", num_frames[split])
                for split in self.num_trajectories
            }
            self.num_frames: int | dict[str, int] = dict(self.frames)
        else:
            self.num_frames = _positive_int("num_frames", num_frames)
            self.frames = dict.fromkeys(self.num_trajectories, self.num_frames)
        if not (math.isfinite(output_interval) and output_interval > 0):
            raise ValueError(
                "DatasetGenerator: output_interval must be > 0, got "
                f"{output_interval!r}."
            )
        first = output_interval if first_output_time is None else first_output_time
        if not (math.isfinite(first) and first >= 0):
            raise ValueError(
                f"DatasetGenerator: first_output_time must be >= 0, got {first!r}."
            )
        if first == 0 and min(self.frames.values()) == 1:
            raise ValueError(
                "DatasetGenerator: first_output_time=0 with num_frames=1 stores only "
                "the initial state; ask for num_frames >= 2 or a positive "
                "first_output_time."
            )
        if store_dtype not in STORE_DTYPES:
            raise ValueError(
                f"DatasetGenerator: store_dtype must be one of {list(STORE_DTYPES)}, "
                f"got {store_dtype!r}."
            )
        check = getattr(pde, "check_controller", None)
        if callable(check):
            check(controller)  # e.g. a Courant number above the scheme's bound
        self.name = name
        self.pde = pde
        self.initial_condition = initial_condition
        self.controller = controller
        self.output_interval = float(output_interval)
        self.first_output_time = float(first)
        self.store_points = (
            None
            if store_points is None
            else _positive_int("store_points", store_points)
        )
        self.store_dtype = store_dtype
        self.shard_size = _positive_int("shard_size", shard_size)
        self.seed = int(seed)
        self.max_steps = _positive_int("max_steps", max_steps)
        # Output times as first + k * interval (not a running sum: no drift).
        self.times = {
            split: [
                self.first_output_time + k * self.output_interval for k in range(count)
            ]
            for split, count in self.frames.items()
        }
        self.channel_names = tuple(pde.channel_names)
        self.solve_shape = tuple(len(v) for v in pde.coordinates(None).values())
        self.coords = {
            dim: np.asarray(values.detach().cpu(), dtype=np.float64)
            for dim, values in pde.coordinates(self.store_points).items()
        }
        self.spec = self._spec()
        self.fingerprint = hashlib.sha256(
            json.dumps(self.spec, sort_keys=True).encode()
        ).hexdigest()[:16]

    # ------------------------------------------------------------------ spec
    def _spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pde": str(getattr(self.pde, "name", type(self.pde).__name__)),
            "solver": type(self.pde).__name__,
            "pde_parameters": _flatten("", _parameters(self.pde)),
            "initial_condition": type(self.initial_condition).__name__,
            "ic_parameters": _flatten("", _parameters(self.initial_condition)),
            "controller": _describe(self.controller),
            "num_frames": self.num_frames,  # a number, or {split: number}
            "output_interval": self.output_interval,
            "first_output_time": self.first_output_time,
            "store_points": self.store_points,
            "store_dtype": self.store_dtype,
            "shard_size": self.shard_size,
            "seed": self.seed,
        }

    def attributes(self) -> dict[str, Any]:
        """Attributes common to every file of this dataset (plain values)."""
        spec = self.spec
        attrs: dict[str, Any] = {
            "dataset": self.name,
            "pde": spec["pde"],
            "solver": spec["solver"],
            **_flatten("param_", spec["pde_parameters"]),
            "initial_condition": spec["initial_condition"],
            **_flatten("ic_", spec["ic_parameters"]),
            "controller": spec["controller"],
        }
        if "scheme" in spec["pde_parameters"]:
            attrs["scheme"] = spec["pde_parameters"]["scheme"]
        # Tolerances and limits (dt, courant_number, safety, rtol, atol, ...): every
        # public plain-valued setting of the controller.
        for key, value in sorted(getattr(self.controller, "__dict__", {}).items()):
            if not key.startswith("_") and isinstance(value, (bool, int, float, str)):
                attrs[f"controller_{key}"] = value
        attrs.update(
            output_interval=self.output_interval,
            first_output_time=self.first_output_time,
            num_frames=_plain(self.num_frames),
            store_points=self.store_points or 0,
            store_dtype=self.store_dtype,
            shard_size=self.shard_size,
            seed=self.seed,
        )
        attrs[FINGERPRINT] = self.fingerprint
        return attrs

    def shard_ranges(self, split: str) -> list[range]:
        """The trajectory indices of each shard of ``split``."""
        total = self.num_trajectories[split]
        return [
            range(start, min(start + self.shard_size, total))
            for start in range(0, total, self.shard_size)
        ]

    # ------------------------------------------------------------ paths and checks
    @staticmethod
    def split_path(root: str | Path, split: str) -> Path:
        return Path(root) / f"{split}.h5"

    @staticmethod
    def shard_path(root: str | Path, split: str, shard: int) -> Path:
        return Path(root) / SHARD_DIR / f"{split}-{shard:05d}.h5"

    def _check(
        self, path: Path, split: str, num: int, shard: int | None = None
    ) -> bool:
        """``False`` if ``path`` is absent, ``True`` if it is a complete file of ours.

        Raises:
            DatasetError: the file is corrupt, foreign or of another spec.
        """
        if not path.exists():
            return False
        what = (
            "the shard folder " + str(path.parent) if shard is not None else str(path)
        )
        fix = (
            f"The generator of dataset '{self.name}' will not overwrite it: delete "
            f"{what} to regenerate it, or choose another root."
        )
        try:
            file = TrajectoryFile(path)
        except DatasetError as error:
            raise DatasetError(f"{error} {fix}") from error
        expected = {FINGERPRINT: self.fingerprint, "split": split}
        if shard is not None:
            expected["shard"] = shard
        for key, value in expected.items():
            found = file.attrs.get(key)
            if found != value:
                differences = self.spec_differences(file.attrs)
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
        shape = (num, self.frames[split], len(self.channel_names))
        if file.shape[:3] != shape:
            raise DatasetError(
                f"{path}: holds [N, T, C] = {list(file.shape[:3])}, but the spec asks "
                f"for {list(shape)}. {fix}"
            )
        return True

    def spec_differences(self, attrs: Mapping[str, Any]) -> str:
        """The spec attributes in which ``attrs`` (a file's) differ from this spec."""
        ours = self.attributes()
        ours.pop(FINGERPRINT)
        spec_keys = {k for k in attrs if k.startswith(("param_", "ic_", "controller_"))}
        changed = []
        for key in sorted(set(ours) | spec_keys):
            mine, theirs = ours.get(key, "<absent>"), attrs.get(key, "<absent>")
            if mine != theirs:
                changed.append(f"{key}: {theirs!r} vs {mine!r}")
        return ", ".join(changed)

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
            path = self.split_path(root, split)
            try:
                self._check(path, split, count)
            except DatasetError as error:
                raise DatasetError(
                    f"{error} To use the stored data as they are, set "
                    "data.generator=null."
                ) from None

    def _split_complete(self, root: Path, split: str) -> bool:
        return self._check(
            self.split_path(root, split), split, self.num_trajectories[split]
        )

    def _statistics_current(self, root: Path) -> bool:
        try:
            stats = load_statistics(root)
        except DatasetError:
            return False
        return stats.get("fingerprint") == self.fingerprint

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
            "train" not in self.num_trajectories or self._statistics_current(root)
        )

    # ------------------------------------------------------------------ generation
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
        self._prepare_root(root)
        todo: list[tuple[str, int]] = []
        for split in selected:
            if self._split_complete(root, split):
                self._remove_shards(root, split)  # left over by an interrupted clean-up
                continue
            for shard, indices in enumerate(self.shard_ranges(split)):
                if wanted is not None and shard not in wanted:
                    continue
                if not self._check(
                    self.shard_path(root, split, shard), split, len(indices), shard
                ):
                    todo.append((split, shard))
        if todo:
            self._solve_shards(root, todo, progress)
        for split in selected:
            if not self._split_complete(root, split):
                self._assemble(root, split)
        if (
            "train" in self.num_trajectories
            and self._split_complete(root, "train")
            and not self._statistics_current(root)
        ):
            save_statistics(
                root,
                compute_statistics(self.split_path(root, "train"), progress=progress),
            )

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

    def _prepare_root(self, root: Path) -> None:
        try:
            (root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root / SHARD_DIR, prefix=".probe-"):
                pass
        except OSError as error:
            raise DatasetError(
                f"{root}: cannot write the dataset here ({error}). Choose a writable "
                "root (data.root=<folder>, or PHYSIM_DATA_DIR)."
            ) from error

    def _solve_shards(
        self, root: Path, todo: list[tuple[str, int]], progress: bool
    ) -> None:
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=not progress) as bar:
            overall = bar.add_task(f"{self.name}: shards", total=len(todo))
            frames = bar.add_task("frames", total=max(self.frames.values()))
            for split, shard in todo:
                bar.reset(
                    frames,
                    total=self.frames[split],
                    description=f"{split} shard {shard}",
                )

                def advance(index: int, time: float) -> None:
                    bar.update(frames, completed=index + 1)  # noqa: B023

                self._solve_shard(root, split, shard, advance)
                bar.advance(overall)

    def _solve_shard(self, root: Path, split: str, shard: int, on_save: Any) -> Path:
        """Solve shard ``shard`` of ``split`` as one batch and write it atomically."""
        indices = self.shard_ranges(split)[shard]
        path = self.shard_path(root, split, shard)
        pde = self.pde
        generator = torch.Generator().manual_seed(shard_seed(self.seed, split, shard))
        u0, parameters = self._sample(len(indices), generator)
        if parameters:
            pde = pde.bind(parameters)
        expected = (len(indices), len(self.channel_names), *self.solve_shape)
        if tuple(u0.shape) != expected:
            raise ValueError(
                "DatasetGenerator: initial_condition.sample gave shape "
                f"{tuple(u0.shape)}; expected {expected} ([n, C, *space] on the "
                "solver's grid). Give the initial condition the solver's num_points."
            )
        store_dtype = STORE_DTYPES[self.store_dtype]

        def keep(y: torch.Tensor) -> torch.Tensor:
            # Only the stored frames leave the solver's device.
            return self._resample(pde.decode(y)).to(device="cpu", dtype=store_dtype)

        try:
            with torch.no_grad():
                solution = integrate(
                    pde,
                    self.controller,
                    pde.encode(u0),
                    0.0,
                    self.times[split][-1],
                    save_at=self.times[split],
                    save_fn=keep,
                    max_steps=self.max_steps,
                    on_save=on_save,
                )
        except NonFiniteError as error:
            raise self._non_finite(error, path, split, shard, indices) from error
        stats = solution.stats
        attrs = {
            **self.attributes(),
            "split": split,
            "shard": shard,
            "shard_start": indices.start,
            "solver_steps_accepted": int(stats["n_accepted"]),
            "solver_steps_rejected": int(stats["n_rejected"]),
            "solver_dt_min": float(stats["dt_min"]),
            "solver_dt_max": float(stats["dt_max"]),
        }
        return write_trajectories(
            path,
            solution.ys.numpy(),
            times=self.times[split],
            coords=self.coords,
            channel_names=self.channel_names,
            attrs=attrs,
            sample_parameters=parameters,
            record_finite=False,  # a shard is read once, by _assemble
        )

    def _sample(
        self, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Initial states ``[n, C, *space]`` and per-trajectory parameters ``{k: [n]}``.

        An initial condition that draws parameters per trajectory (a domain length, an
        output interval) returns ``(u0, parameters)``; the solver's ``bind(parameters)``
        then gives the solver for that batch, and the parameters are stored per
        trajectory in the files.
        """
        drawn = self.initial_condition.sample(
            n, generator=generator, dtype=self.pde.dtype, device=self.pde.device
        )
        if not isinstance(drawn, tuple):
            return drawn, {}
        u0, parameters = drawn
        if parameters and not callable(getattr(self.pde, "bind", None)):
            raise TypeError(
                f"DatasetGenerator: the initial condition draws per-trajectory "
                f"parameters {sorted(parameters)}, but the solver "
                f"{type(self.pde).__name__} has no bind(parameters) to use them."
            )
        return u0, dict(parameters)

    def _resample(self, u: torch.Tensor) -> torch.Tensor:
        # Fourier truncation/zero-padding: exact for band-limited fields. The FNO data
        # subsample in physical space (w[::4, ::4]), which aliases the high modes.
        if self.store_points is None or all(
            n == self.store_points for n in u.shape[2:]
        ):
            return u
        return spectral_resample(u, self.store_points)

    def _non_finite(
        self, error: NonFiniteError, path: Path, split: str, shard: int, indices: range
    ) -> NonFiniteError:
        """The error with batch rows translated to trajectory indices of the split."""
        rows = error.indices or list(range(len(indices)))
        trajectories = [indices[row] for row in rows]
        shown = trajectories[:10] + (["..."] if len(trajectories) > 10 else [])
        translated = NonFiniteError(error.t, trajectories)
        translated.args = (
            f"Dataset '{self.name}', split '{split}' (shard {shard}, file "
            f"{path.name}): the state became non-finite at t={error.t:.6g} in "
            f"trajectory(ies) {shown} of the split. Reduce the time step "
            "(courant_number / dt) or check the parameters (viscosity, resolution) "
            "for an unresolved flow.",
        )
        return translated

    def _assemble(self, root: Path, split: str) -> bool:
        """Concatenate the shards of ``split`` into ``<split>.h5`` once all exist."""
        ranges = self.shard_ranges(split)
        paths = [self.shard_path(root, split, s) for s in range(len(ranges))]
        if not all(p.exists() for p in paths):
            return False
        files: list[TrajectoryFile] = []
        try:
            for shard, (path, indices) in enumerate(zip(paths, ranges, strict=True)):
                try:
                    self._check(path, split, len(indices), shard)
                    file = TrajectoryFile(path)
                    # Hold an open handle: its data survive a concurrent unlink (POSIX).
                    file.read(0, slice(0, 1))
                except DatasetError:
                    if path.exists():
                        raise
                    # Removed meanwhile: another process has assembled the split.
                    return self._split_complete(root, split)
                files.append(file)
            attrs = {
                **self.attributes(),
                "split": split,
                "num_trajectories": self.num_trajectories[split],
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
                self.split_path(root, split),
                num_trajectories=self.num_trajectories[split],
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
        self._remove_shards(root, split)
        return True

    def _remove_shards(self, root: Path, split: str) -> None:
        for path in (root / SHARD_DIR).glob(f"{split}-*.h5"):
            path.unlink(missing_ok=True)
        # Not empty (other splits in progress) or already gone: leave it.
        with contextlib.suppress(OSError):
            (root / SHARD_DIR).rmdir()
