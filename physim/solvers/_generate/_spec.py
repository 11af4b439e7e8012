"""The dataset spec: checked generator settings, their fingerprint, file attributes.

A spec is everything that changes the data (PDE and IC parameters, the controller,
times, resolution, seed, shard size). It is hashed into the attribute
``physim_dataset_fingerprint`` of every file, so files of another spec are recognised
and never overwritten or mixed in (:mod:`._files`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["FINGERPRINT", "SPLITS", "STORE_DTYPES", "DatasetSpec"]

SPLITS = ("train", "valid", "test")
STORE_DTYPES = {"float32": torch.float32, "float64": torch.float64}
FINGERPRINT = "physim_dataset_fingerprint"


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


class DatasetSpec:
    """The settings of a generated dataset, checked, with what follows from them.

    The base of :class:`~physim.solvers.DatasetGenerator`, which adds the generation
    (its constructor is this one, and its error messages name it). Holds the settings
    as given (``name``, ``pde``, ..., ``seed``, ``max_steps``) and derives the output
    ``times`` per split, the stored ``coords``, the ``spec`` dictionary and its
    ``fingerprint``.

    The shard size belongs to the spec because a shard is one batch, and adaptive
    controllers (CFL) take the same steps for the whole batch, so a trajectory's
    discretisation error depends on its shard mates (per-trajectory steps would need
    per-sample scheme coefficients; not worth it for similar trajectories). The
    trajectory counts do not: a larger split starts with the same trajectories.

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

    def shard_ranges(self, split: str) -> list[range]:
        """The trajectory indices of each shard of ``split``."""
        total = self.num_trajectories[split]
        return [
            range(start, min(start + self.shard_size, total))
            for start in range(0, total, self.shard_size)
        ]
