"""Tiny PDEBench, PDEArena and The Well files written exactly in their documented
layouts (see /shared/reference/datasets.md), for the reader and conversion tests."""

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
    """``fields`` [N, T, 1, X] as ``tensor`` (N, T, X); returns the stored t (T + 1)."""
    n, t, _, x = fields.shape
    times = np.linspace(0.0, 2.0, t + 1)
    with h5py.File(path, "w") as f:
        f["tensor"] = fields[:, :, 0]
        f["x-coordinate"] = np.linspace(0, 1, x, endpoint=False) + 0.5 / x
        f["t-coordinate"] = times
        f.attrs.update(attrs)
    return times


def write_pdebench_cfd(path: Path, fields: np.ndarray) -> None:
    """``fields`` [N, T, C, X, Y] as density, pressure, Vx, Vy (+ Vz for C = 5)."""
    n, t, c, x, y = fields.shape
    with h5py.File(path, "w") as f:
        # Written in reverse order: the reader must order channels itself.
        for k in reversed(range(c)):
            f[CFD[k]] = fields[:, :, k]
        f["x-coordinate"] = np.arange(x) / x
        f["y-coordinate"] = np.arange(y) / y + 1.0
        f["t-coordinate"] = np.arange(t + 1) * 0.05


def write_pdebench_seeds(path: Path, fields: np.ndarray) -> None:
    """``fields`` [N, T, C, X, Y] as groups 0000, 0001, ... with data (T, X, Y, C)."""
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
    """``fields`` [N, T, 3, X, Y] (u, vx, vy), float64, PDEArena's NS smoke layout;
    returns the per-sample parameters written."""
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
    """``fields`` [N, T, 1, X] as ``pde_<T>-<X>``, with dt, dx and v per sample."""
    n, t, _, x = fields.shape
    with h5py.File(path, "w") as f:
        group = f.create_group(split)
        group[f"pde_{t}-{x}"] = fields[:, :, 0]
        group["dt"] = dt
        group["dx"] = np.full(n, 64.0 / x)
        group["v"] = np.linspace(0.5, 1.0, n)


def write_the_well(path: Path, num: int = 3, frames: int = 5, size=(6, 4)) -> dict:
    """A 2-D Well file with a full scalar field, constant fields (no sample/time axes,
    no time axis, one spatial axis missing), a vector and a tensor field.

    Returns ``fields`` (the expected ``[N, T, C, X, Y]``), ``channels`` and ``params``.
    """
    x, y = size
    rng = np.random.default_rng(1)
    density = rng.standard_normal((num, frames, x, y)).astype(np.float32)
    obstacle = rng.standard_normal((x, y)).astype(np.float32)  # constant everywhere
    source = rng.standard_normal((num, x, y)).astype(np.float32)  # per sample only
    profile = rng.standard_normal((num, frames, x)).astype(np.float32)  # no y axis
    velocity = rng.standard_normal((num, frames, x, y, 2)).astype(np.float32)
    stress = rng.standard_normal((num, frames, x, y, 2, 2)).astype(np.float32)
    reynolds = np.linspace(100.0, 300.0, num)

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
        time = dims.create_dataset("time", data=np.arange(frames) * 0.25 + 1.0)
        time.attrs.update(sample_varying=False, time_varying=True)
        for name, n in (("x", x), ("y", y)):
            d = dims.create_dataset(name, data=(np.arange(n) + 0.5) / n)
            d.attrs.update(sample_varying=False, time_varying=False)
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
            bc["mask"] = np.zeros(x if dim == "x" else y, dtype=bool)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["Reynolds", "Schmidt"]
        s = scalars.create_dataset("Reynolds", data=reynolds)
        s.attrs.update(sample_varying=True, time_varying=False)
        s = scalars.create_dataset("Schmidt", data=np.array(0.7))
        s.attrs.update(sample_varying=False, time_varying=False)

        def field(group, name, data, sample, time, dim_varying):
            d = group.create_dataset(name, data=data)
            d.attrs.update(
                sample_varying=sample, time_varying=time, dim_varying=dim_varying
            )

        t0 = f.create_group("t0_fields")
        # field_names fixes the channel order (not HDF5's alphabetical order).
        t0.attrs["field_names"] = ["obstacle", "density", "source", "profile"]
        field(t0, "density", density, True, True, [True, True])
        field(t0, "obstacle", obstacle, False, False, [True, True])
        field(t0, "source", source, True, False, [True, True])
        field(t0, "profile", profile, True, True, [True, False])
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        field(t1, "velocity", velocity, True, True, [True, True])
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = ["stress"]
        field(t2, "stress", stress, True, True, [True, True])

    full = (num, frames, x, y)
    channels = [
        np.broadcast_to(obstacle, full),
        density,
        np.broadcast_to(source[:, None], full),
        np.broadcast_to(profile[..., None], full),
        velocity[..., 0],
        velocity[..., 1],
        stress[..., 0, 0],
        stress[..., 0, 1],
        stress[..., 1, 0],
        stress[..., 1, 1],
    ]
    names = ["obstacle", "density", "source", "profile", "velocity_x", "velocity_y",
             "stress_xx", "stress_xy", "stress_yx", "stress_yy"]  # fmt: skip
    return {
        "fields": np.stack(channels, axis=2),
        "channels": names,
        "params": {"Reynolds": reynolds, "Schmidt": np.full(num, 0.7)},
    }
