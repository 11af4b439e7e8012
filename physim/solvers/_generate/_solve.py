"""Solving shards: per-shard seeding, one solver batch per shard, progress.

Shard ``s`` of a split draws its initial conditions from its own ``torch.Generator``
seeded with :func:`shard_seed` ``(seed, split, s)``, so a shard's data do not depend on
which process solves it, in which order, or how many trajectories the split has. It is
solved as one batch and written atomically to its shard file (:mod:`._files`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from physim._progress import Progress, bar_columns
from physim.data import write_trajectories
from physim.timestepping import NonFiniteError, integrate

from .._spectral import spectral_resample
from ._files import shard_path
from ._spec import STORE_DTYPES, DatasetSpec

__all__ = ["shard_seed", "solve_shard", "solve_shards"]


def shard_seed(seed: int, split: str, shard: int) -> int:
    """A 63-bit seed for shard ``shard`` of ``split``, stable across runs and machines.

    Derived with SHA-256 (Python's ``hash`` of a string is salted per process, and
    ``seed + shard`` would make neighbouring seeds share shards).
    """
    digest = hashlib.sha256(f"physim/{seed}/{split}/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def solve_shards(
    spec: DatasetSpec, root: Path, todo: list[tuple[str, int]], progress: bool
) -> None:
    """Solve the shards ``todo`` (``(split, shard)`` pairs) one after another."""
    with Progress(*bar_columns(), disable=not progress) as bar:
        overall = bar.add_task(f"{spec.name}: shards", total=len(todo))
        frames = bar.add_task("frames", total=max(spec.frames.values()))
        for split, shard in todo:
            bar.reset(
                frames,
                total=spec.frames[split],
                description=f"{split} shard {shard}",
            )

            def advance(index: int, time: float) -> None:
                bar.update(frames, completed=index + 1)  # noqa: B023

            solve_shard(spec, root, split, shard, advance)
            bar.advance(overall)


def solve_shard(
    spec: DatasetSpec,
    root: Path,
    split: str,
    shard: int,
    on_save: Callable[[int, float], None] | None = None,
) -> Path:
    """Solve shard ``shard`` of ``split`` as one batch and write it atomically."""
    indices = spec.shard_ranges(split)[shard]
    path = shard_path(root, split, shard)
    pde = spec.pde
    generator = torch.Generator().manual_seed(shard_seed(spec.seed, split, shard))
    u0, parameters = _sample(spec, len(indices), generator)
    if parameters:
        pde = pde.bind(parameters)
    expected = (len(indices), len(spec.channel_names), *spec.solve_shape)
    if tuple(u0.shape) != expected:
        raise ValueError(
            "DatasetGenerator: initial_condition.sample gave shape "
            f"{tuple(u0.shape)}; expected {expected} ([n, C, *space] on the "
            "solver's grid). Give the initial condition the solver's num_points."
        )
    store_dtype = STORE_DTYPES[spec.store_dtype]

    def keep(y: torch.Tensor) -> torch.Tensor:
        # Only the stored frames leave the solver's device.
        return _resample(spec, pde.decode(y)).to(device="cpu", dtype=store_dtype)

    try:
        with torch.no_grad():
            solution = integrate(
                pde,
                spec.controller,
                pde.encode(u0),
                0.0,
                spec.times[split][-1],
                save_at=spec.times[split],
                save_fn=keep,
                max_steps=spec.max_steps,
                on_save=on_save,
            )
    except NonFiniteError as error:
        raise _non_finite(spec, error, path, split, shard, indices) from error
    stats = solution.stats
    attrs = {
        **spec.attributes(),
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
        times=spec.times[split],
        coords=spec.coords,
        channel_names=spec.channel_names,
        attrs=attrs,
        sample_parameters=parameters,
        record_finite=False,  # a shard is read once, by assemble
    )


def _sample(
    spec: DatasetSpec, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Initial states ``[n, C, *space]`` and per-trajectory parameters ``{k: [n]}``.

    An initial condition that draws parameters per trajectory (a domain length, an
    output interval) returns ``(u0, parameters)``; the solver's ``bind(parameters)``
    then gives the solver for that batch, and the parameters are stored per
    trajectory in the files.
    """
    drawn = spec.initial_condition.sample(
        n, generator=generator, dtype=spec.pde.dtype, device=spec.pde.device
    )
    if not isinstance(drawn, tuple):
        return drawn, {}
    u0, parameters = drawn
    if parameters and not callable(getattr(spec.pde, "bind", None)):
        raise TypeError(
            f"DatasetGenerator: the initial condition draws per-trajectory "
            f"parameters {sorted(parameters)}, but the solver "
            f"{type(spec.pde).__name__} has no bind(parameters) to use them."
        )
    return u0, dict(parameters)


def _resample(spec: DatasetSpec, u: torch.Tensor) -> torch.Tensor:
    # Fourier truncation/zero-padding: exact for band-limited fields. The FNO data
    # subsample in physical space (w[::4, ::4]), which aliases the high modes.
    if spec.store_points is None or all(n == spec.store_points for n in u.shape[2:]):
        return u
    return spectral_resample(u, spec.store_points)


def _non_finite(
    spec: DatasetSpec,
    error: NonFiniteError,
    path: Path,
    split: str,
    shard: int,
    indices: range,
) -> NonFiniteError:
    """The error with batch rows translated to trajectory indices of the split."""
    rows = error.indices or list(range(len(indices)))
    trajectories = [indices[row] for row in rows]
    shown = trajectories[:10] + (["..."] if len(trajectories) > 10 else [])
    translated = NonFiniteError(error.t, trajectories)
    translated.args = (
        f"Dataset '{spec.name}', split '{split}' (shard {shard}, file "
        f"{path.name}): the state became non-finite at t={error.t:.6g} in "
        f"trajectory(ies) {shown} of the split. Reduce the time step "
        "(courant_number / dt) or check the parameters (viscosity, resolution) "
        "for an unresolved flow.",
    )
    return translated
