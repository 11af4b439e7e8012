"""Tiny PDEBench, PDEArena, LPSDA and The Well files written exactly in their
documented layouts (see /shared/reference/datasets.md), for the reader and conversion
tests. Each writer names the upstream file whose layout it follows (PDEBench:
github.com/pdebench/PDEBench; PDEArena: github.com/pdearena/pdearena; LPSDA:
github.com/brandstetter-johannes/LPSDA; The Well: github.com/PolymathicAI/the_well)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

CFD = ("density", "pressure", "Vx", "Vy", "Vz")


def random_fields(
    shape: tuple[int, ...], seed: int = 0, dtype=np.float32
) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def write_pdebench_scalar(path: Path, fields: np.ndarray, **attrs) -> np.ndarray:
    """``fields`` [N, T, 1, X] as ``tensor`` (N, T, X); returns the stored t (T + 1).

    Layout of ``transform`` in PDEBench's
    ``pdebench/data_gen/data_gen_NLE/Data_Merge.py`` (``tensor``, ``x-coordinate``,
    ``t-coordinate``, attrs ``beta``/``Nu``/``rho``)."""
    n, t, _, x = fields.shape
    times = np.linspace(0.0, 2.0, t + 1)
    with h5py.File(path, "w") as f:
        f["tensor"] = fields[:, :, 0]
        f["x-coordinate"] = np.linspace(0, 1, x, endpoint=False) + 0.5 / x
        f["t-coordinate"] = times
        f.attrs.update(attrs)
    return times


def write_pdebench_cfd(path: Path, fields: np.ndarray) -> None:
    """``fields`` [N, T, C, X, Y] as density, pressure, Vx, Vy (+ Vz for C = 5).

    Layout of ``merge`` (CFD) in PDEBench's
    ``pdebench/data_gen/data_gen_NLE/Data_Merge.py``."""
    n, t, c, x, y = fields.shape
    with h5py.File(path, "w") as f:
        # Written in reverse order: the reader must order channels itself.
        for k in reversed(range(c)):
            f[CFD[k]] = fields[:, :, k]
        f["x-coordinate"] = np.arange(x) / x
        f["y-coordinate"] = np.arange(y) / y + 1.0
        f["t-coordinate"] = np.arange(t + 1) * 0.05


def write_pdebench_seeds(path: Path, fields: np.ndarray) -> None:
    """``fields`` [N, T, C, X, Y] as groups 0000, 0001, ... with data (T, X, Y, C).

    Layout of PDEBench's ``pdebench/data_gen/gen_diff_react.py`` (``<seed>/data``,
    ``<seed>/grid/x``, ``grid/y``, ``grid/t``)."""
    n, t, c, x, y = fields.shape
    with h5py.File(path, "w") as f:
        for i in range(n):
            group = f.create_group(f"{i:04d}")
            group["data"] = np.moveaxis(fields[i], 1, -1)
            group["grid/x"] = np.linspace(-1, 1, x)
            group["grid/y"] = np.linspace(-1, 1, y)
            group["grid/t"] = np.linspace(0, 5, t)
            group.attrs["seed"] = i


def write_pdearena_ns(path: Path, split: str, fields: np.ndarray) -> dict:
    """``fields`` [N, T, 3, X, Y] (u, vx, vy), float64, PDEArena's NS smoke layout
    (``pdedatagen/navier_stokes.py``: u, vx, vy, t (N, T), x (N, X), y (N, Y), dt, dx,
    dy, buo_y (N,)); returns the per-sample parameters written."""
    n, t, _, x, y = fields.shape
    params = {
        "dt": np.full(n, 1.5),
        "dx": np.full(n, 32.0 / x),
        "dy": np.full(n, 32.0 / y),
        "buo_y": np.linspace(0.2, 0.5, n),
    }
    with h5py.File(path, "w") as f:
        group = f.create_group(split)
        for k, name in enumerate(("u", "vx", "vy")):
            group.create_dataset(name, data=fields[:, :, k].astype(np.float64))
        group["t"] = np.tile(np.linspace(18.0, 102.0, t), (n, 1))
        group["x"] = np.tile(np.linspace(0, 32.0, x), (n, 1))
        group["y"] = np.tile(np.linspace(0, 32.0, y), (n, 1))
        for name, values in params.items():
            group[name] = values
    return params


def write_pdearena_ks(path: Path, split: str, fields: np.ndarray, dt: np.ndarray):
    """``fields`` [N, T, 1, X] as ``pde_<T>-<X>``, with dt, dx and v per sample: the
    keys PDEArena's reader opens (``pdearena/data/oned/datapipes/
    kuramotosivashinsky1d.py``; ``t`` and ``x`` are optional there)."""
    n, t, _, x = fields.shape
    with h5py.File(path, "w") as f:
        group = f.create_group(split)
        group[f"pde_{t}-{x}"] = fields[:, :, 0]
        group["dt"] = dt
        group["dx"] = np.full(n, 64.0 / x)
        group["v"] = np.linspace(0.5, 1.0, n)


def write_the_well(
    path: Path,
    num: int = 3,
    frames: int = 5,
    size=(6, 4),
    *,
    sample_varying: bool = False,
    time_scalar: bool = False,
    profile: bool = True,
) -> dict:
    """A 2-D Well file with a full scalar field, constant fields (no sample/time axes;
    no time axis), a field without a y axis, a vector and a tensor field.

    Layout: The Well's ``docs/data_format.md`` and what its checker
    ``scripts/check_thewell_formatting.py`` enforces (github.com/PolymathicAI/the_well);
    boundary masks True on the boundary's end points, as The Well's generator writes
    them (``datasets/planetswe/generation/interpolate_swe_data.py``,
    ``create_boundary_conditions``). ``sample_varying``: ``dimensions/time`` ``[N, T]``
    and ``dimensions/x`` ``[N, X]`` differ per trajectory; ``time_scalar``: a
    time-varying scalar ``forcing`` ``[N, T]`` (as ``the_well/utils/dummy_data.py``'s
    ``time_varying_scalar``); ``profile``: include the field without a y axis
    (``dim_varying = [True, False]``; the_well 1.2.0's ``WellDataset._pad_axes``
    tiles such a field wrongly, its ``hdf5_to_xarray`` reads it right).

    Returns ``fields`` (the time-varying channels ``[N, T, C, X, Y]``), ``channels``,
    ``constants`` ``[N, K, X, Y]`` and ``constant_names`` (the fields with
    ``time_varying = False``), ``params``, ``times`` ``[N, T]``, ``x`` ``[N, X]``,
    ``scalars`` ``[N, T, S]`` and ``scalar_names``.
    """
    x, y = size
    profile_field = profile
    rng = np.random.default_rng(1)
    density = rng.standard_normal((num, frames, x, y)).astype(np.float32)
    obstacle = rng.standard_normal((x, y)).astype(np.float32)  # constant everywhere
    source = rng.standard_normal((num, x, y)).astype(np.float32)  # per sample only
    profile = rng.standard_normal((num, frames, x)).astype(np.float32)  # no y axis
    velocity = rng.standard_normal((num, frames, x, y, 2)).astype(np.float32)
    stress = rng.standard_normal((num, frames, x, y, 2, 2)).astype(np.float32)
    forcing = rng.standard_normal((num, frames))
    reynolds = np.linspace(100.0, 300.0, num)
    times = np.arange(frames) * 0.25 + 1.0
    xs = (np.arange(x) + 0.5) / x
    if sample_varying:  # each trajectory its own time span and domain length
        times = times[None] * (1.0 + 0.1 * np.arange(num))[:, None]
        xs = xs[None] * (1.0 + 0.5 * np.arange(num))[:, None]

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(
            dataset_name="toy_flow",
            grid_type="cartesian",
            n_spatial_dims=2,
            n_trajectories=num,
            simulation_parameters=["Reynolds", "Schmidt"],
            Reynolds=float(reynolds[0]),
            Schmidt=0.7,
        )
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        time = dims.create_dataset("time", data=times)
        time.attrs.update(sample_varying=sample_varying, time_varying=True)
        for name, values in (("x", xs), ("y", (np.arange(y) + 0.5) / y)):
            d = dims.create_dataset(name, data=values)
            d.attrs.update(sample_varying=values.ndim == 2, time_varying=False)
        bcs = f.create_group("boundary_conditions")
        for dim, kind in (("x", "periodic"), ("y", "wall")):
            bc = bcs.create_group(f"{dim}_{kind}")
            bc.attrs.update(
                bc_type=kind,
                associated_dims=[dim],
                associated_fields=[],
                sample_varying=False,
                time_varying=False,
            )
            mask = np.zeros(x if dim == "x" else y, dtype=bool)
            mask[[0, -1]] = True
            bc["mask"] = mask
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["Reynolds", "Schmidt"] + ["forcing"] * (
            time_scalar
        )
        s = scalars.create_dataset("Reynolds", data=reynolds)
        s.attrs.update(sample_varying=True, time_varying=False)
        s = scalars.create_dataset("Schmidt", data=np.array(0.7))
        s.attrs.update(sample_varying=False, time_varying=False)
        if time_scalar:
            s = scalars.create_dataset("forcing", data=forcing)
            s.attrs.update(sample_varying=True, time_varying=True)

        def field(group, name, data, sample, time, dim_varying):
            d = group.create_dataset(name, data=data)
            d.attrs.update(
                sample_varying=sample, time_varying=time, dim_varying=dim_varying
            )

        t0 = f.create_group("t0_fields")
        # field_names fixes the order (not HDF5's alphabetical order).
        t0.attrs["field_names"] = ["obstacle", "density", "source"] + ["profile"] * (
            profile_field
        )
        field(t0, "density", density, True, True, [True, True])
        field(t0, "obstacle", obstacle, False, False, [True, True])
        field(t0, "source", source, True, False, [True, True])
        if profile_field:
            field(t0, "profile", profile, True, True, [True, False])
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        field(t1, "velocity", velocity, True, True, [True, True])
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = ["stress"]
        field(t2, "stress", stress, True, True, [True, True])

    full = (num, frames, x, y)
    channels = [
        density,
        *[np.broadcast_to(profile[..., None], full)] * profile_field,
        velocity[..., 0],
        velocity[..., 1],
        stress[..., 0, 0],
        stress[..., 0, 1],
        stress[..., 1, 0],
        stress[..., 1, 1],
    ]
    names = ["density", "profile", "velocity_x", "velocity_y",
             "stress_xx", "stress_xy", "stress_yx", "stress_yy"]  # fmt: skip
    if not profile_field:
        names.remove("profile")
    constants = np.stack([np.broadcast_to(obstacle, (num, x, y)), source], axis=1)
    return {
        "fields": np.stack(channels, axis=2),
        "channels": names,
        "constants": constants,
        "constant_names": ["obstacle", "source"],
        "params": {"Reynolds": reynolds, "Schmidt": np.full(num, 0.7)},
        "times": np.broadcast_to(times, (num, frames)),
        "x": np.broadcast_to(xs, (num, x)),
        "scalars": forcing[..., None] if time_scalar else None,
        "scalar_names": ["forcing"] if time_scalar else [],
    }


def write_lpsda_ks(path: Path, split: str, fields: np.ndarray) -> dict:
    """``fields`` [N, T, 1, X] in LPSDA's KS layout, the layout of PDEArena's (and
    PDE-Refiner's) KS files: ``generate_trajectories`` in LPSDA's
    ``generate/generate_data.py`` writes ``pde_<T>-<X>`` (N, T, X), ``x`` (N, X),
    ``dx`` (N,), ``t`` (N, T) and ``dt`` (N,) into the split group, each trajectory
    with its own domain length ``L`` (``x = linspace(0, (1 - 1/nx) L, nx)``,
    ``dx = L / nx``) and time span ``T`` (the last ``nt_effective`` of
    ``linspace(tmin, T, nt)``, ``dt = T / (nt - 1)``). Returns ``t``, ``x``, ``dt``,
    ``dx``."""
    n, frames, _, nx = fields.shape
    nt, tmin = frames + 4, 0.0
    lengths = 64.0 * (0.9 + 0.2 * np.arange(n) / max(n - 1, 1))
    spans = 40.0 * (0.9 + 0.2 * np.arange(n)[::-1] / max(n - 1, 1))
    t = np.stack([np.linspace(tmin, span, nt)[-frames:] for span in spans])
    x = np.stack([np.linspace(0, (1 - 1.0 / nx) * L, nx) for L in lengths])
    out = {"t": t, "x": x, "dt": spans / (nt - 1), "dx": lengths / nx}
    with h5py.File(path, "w") as f:
        group = f.create_group(split)
        group.create_dataset(f"pde_{frames}-{nx}", data=fields[:, :, 0], dtype=float)
        for name, values in out.items():
            group.create_dataset(name, data=values, dtype=float)
    return out


def write_pdebench_darcy(path: Path, num: int = 3, size=(8, 8)) -> None:
    """PDEBench's 2-D Darcy flow as ``merge`` in PDEBench's
    ``pdebench/data_gen/data_gen_NLE/Data_Merge.py`` writes it: ``tensor``
    (N, 1, X, Y), ``nu`` (N, X, Y), ``x-coordinate``, ``y-coordinate``, attr ``beta``;
    no ``t-coordinate``."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["tensor"] = rng.standard_normal((num, 1, *size)).astype(np.float32)
        f["nu"] = rng.standard_normal((num, *size)).astype(np.float32)
        f["x-coordinate"] = np.linspace(0, 1, size[0])
        f["y-coordinate"] = np.linspace(0, 1, size[1])
        f.attrs["beta"] = 1.0
