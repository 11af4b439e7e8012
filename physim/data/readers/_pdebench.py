"""PDEBench files: the single-file family (scalar PDEs and CFD) and the per-seed family.

Single file (``.hdf5``)::

    tensor          (N, T, X[, Y[, Z]])   scalar PDEs (Advection, Burgers, 1-D
                                          reaction-diffusion); one channel "u"
    density, pressure, Vx[, Vy[, Vz]]     CFD, each (N, T, X[, Y[, Z]]); channels in
                                          this order, one velocity per spatial axis
    x-coordinate (X,), y-coordinate, z-coordinate
    t-coordinate    (T + 1,)              the last entry is dropped (T also accepted)
    attrs           beta / Nu / rho ...   numeric root attributes -> sample parameters

Per seed (``.h5``; 2-D reaction-diffusion, shallow water)::

    0000/data (T, X[, Y], C), 0000/grid/x, 0000/grid/y, 0000/grid/t (T,), 0001/...

Every seed's grid is read; seeds whose grids differ keep their own (``times_of``,
``coords_of``; see :mod:`physim.data._per_sample`).

Darcy flow (``2D_DarcyFlow_beta*.hdf5``, written by ``merge`` in PDEBench's
``pdebench/data_gen/data_gen_NLE/Data_Merge.py``)::

    tensor (N, 1, X, Y)   the steady solution u      nu (N, X, Y)  the coefficient a
    x-coordinate, y-coordinate; attr beta; no t-coordinate

is a static map ``a -> u`` (PDEBench's FNO reads ``nu`` as the input and ``tensor`` as
the label), not trajectories: physim trains time steppers and refuses it with a
message saying so.

References:
    M. Takamoto et al., "PDEBench: an extensive benchmark for scientific machine
    learning", NeurIPS Datasets and Benchmarks (2022).
"""

from __future__ import annotations

import h5py
import numpy as np

from .._errors import DatasetError
from .._per_sample import SampleData, unit_attrs
from ._base import ExternalFile, Layout, numeric_parameters, plain_attrs, time_block

__all__ = ["PDEBenchFile", "PDEBenchSeedFile"]

SCALAR_KEY = "tensor"
DARCY_INPUT = "nu"
CFD_KEYS = ("density", "pressure", "Vx", "Vy", "Vz")
SPATIAL = ("x", "y", "z")


class PDEBenchFile(ExternalFile):
    """A PDEBench single-file dataset (scalar or CFD), see the module docstring."""

    format_name = "pdebench"

    @classmethod
    def recognises(cls, handle: h5py.File) -> bool:
        # Loose on purpose: a file with PDEBench's names but a missing piece is
        # recognised, so that _inspect names what is missing.
        keys = set(handle.keys())
        return bool(keys & {SCALAR_KEY, *CFD_KEYS}) or any(
            k.endswith("-coordinate") for k in keys
        )

    def _inspect(self, handle: h5py.File) -> Layout:
        expected = "(N, T, X[, Y[, Z]])"
        self._refuse_static_maps(handle)
        if SCALAR_KEY in handle:
            keys = (SCALAR_KEY,)
        else:
            first = self.dataset(
                handle, "density", f"{expected} ('tensor' for a scalar PDE)"
            )
            # CFD: density, pressure and one velocity component per spatial axis.
            keys = CFD_KEYS[: 2 + max(first.ndim - 2, 0)]
        names = ("u",) if keys == (SCALAR_KEY,) else keys
        first = self.dataset(handle, keys[0], expected)
        if not 3 <= first.ndim <= 5:
            raise self.error(keys[0], f"has {first.ndim} axes {first.shape}", expected)
        for key in keys[1:]:
            shape = self.dataset(handle, key, f"shape {first.shape}").shape
            if shape != first.shape:
                raise self.error(
                    key, f"has shape {shape}", f"{first.shape} as {keys[0]}"
                )
        num, frames, *space = first.shape
        dims = SPATIAL[: len(space)]
        coords = {
            d: self.coordinate(handle, f"{d}-coordinate", n)
            for d, n in zip(dims, space, strict=True)
        }
        times = self.coordinate(handle, "t-coordinate", frames, drop_last=True)
        attrs = plain_attrs(handle.attrs)
        return Layout(
            shape=(num, frames, len(keys), *space),
            dtype=np.result_type(*(handle[k].dtype for k in keys)),
            chunks=(1, min(time_block(handle[k], 1) for k in keys), len(keys), *space),
            spatial_dims=dims,
            times=self.check_times("t-coordinate", times),
            channel_names=names,
            coords=coords,
            attrs={"source_format": self.format_name, **attrs},
            parameters=numeric_parameters(attrs, num),
            sources=keys,
        )

    def _refuse_static_maps(self, handle: h5py.File) -> None:
        """Darcy flow: ``tensor`` (N, 1, X, Y) from ``nu`` (N, X, Y), no times."""
        tensor, nu = handle.get(SCALAR_KEY), handle.get(DARCY_INPUT)
        if not isinstance(tensor, h5py.Dataset) or not isinstance(nu, h5py.Dataset):
            return
        if "t-coordinate" in handle or tensor.ndim != 4 or tensor.shape[1] != 1:
            return
        raise DatasetError(
            f"{self.path}: is a PDEBench Darcy-flow file ('{DARCY_INPUT}' "
            f"{nu.shape} the coefficient field, '{SCALAR_KEY}' {tensor.shape} its "
            "steady solution, no 't-coordinate'): a static map from one field to "
            "another, not trajectories in time. physim trains time steppers (history "
            "frames -> next frames), so it does not train on it; use an "
            "operator-learning code for it (e.g. PDEBench's FNO, config_Darcy.yaml)."
        )

    def _read(self, index: int, frames: slice) -> np.ndarray:
        keys = self.layout.sources
        return np.stack([self.node(k)[index, frames] for k in keys], axis=1)


class PDEBenchSeedFile(ExternalFile):
    """A PDEBench per-seed dataset: one group per trajectory, see the module docstring.

    Channels are named ``data_0``, ``data_1``, ... (the file does not name them;
    select or reorder them with ``ExternalSource(channels=...)``). Numeric attributes of
    the root (broadcast) and of the seed groups (when every group has them) are the
    sample parameters.
    """

    format_name = "pdebench"

    @classmethod
    def recognises(cls, handle: h5py.File) -> bool:
        keys = list(handle.keys())
        return (
            bool(keys)
            and all(k.isdigit() for k in keys)
            and isinstance(handle[keys[0]], h5py.Group)
            and "data" in handle[keys[0]]
        )

    def _inspect(self, handle: h5py.File) -> Layout:
        seeds = sorted(handle.keys())
        expected = "(T, X[, Y[, Z]], C)"
        first = self.dataset(handle, f"{seeds[0]}/data", expected)
        if not 3 <= first.ndim <= 5:
            raise self.error(f"{seeds[0]}/data", f"has {first.ndim} axes", expected)
        for seed in seeds[1:]:
            shape = self.dataset(handle, f"{seed}/data", expected).shape
            if shape != first.shape:
                raise self.error(
                    f"{seed}/data", f"has shape {shape}", f"{first.shape} as {seeds[0]}"
                )
        frames, *space, channels = first.shape
        dims = SPATIAL[: len(space)]
        coords, sample_coords = {}, {}
        for dim, length in zip(dims, space, strict=True):
            rows = [self.coordinate(handle, f"{s}/grid/{dim}", length) for s in seeds]
            coords[dim], own = self.per_trajectory(
                f"{seeds[0]}/grid/{dim}", np.stack(rows)
            )
            if own is not None:
                sample_coords[dim] = own
        rows = [
            self.check_times(
                f"{s}/grid/t",
                self.coordinate(handle, f"{s}/grid/t", frames, drop_last=True),
            )
            for s in seeds
        ]
        times, sample_times = self.per_trajectory(f"{seeds[0]}/grid/t", np.stack(rows))
        root = plain_attrs(handle.attrs)
        per_seed = [plain_attrs(handle[s].attrs) for s in seeds]
        shared = set.intersection(*(set(a) for a in per_seed))
        parameters = numeric_parameters(root, len(seeds))
        for name in sorted(shared):
            values = [a[name] for a in per_seed]
            if all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            ):
                parameters[name] = np.asarray(values, dtype=np.float64)
        self.seeds = seeds
        return Layout(
            shape=(len(seeds), frames, channels, *space),
            dtype=first.dtype,
            chunks=(1, time_block(first, 0), channels, *space),
            spatial_dims=dims,
            times=times,
            channel_names=tuple(f"data_{c}" for c in range(channels)),
            coords=coords,
            attrs={
                "source_format": self.format_name,
                **root,
                **unit_attrs(sample_times, sample_coords),
            },
            parameters=parameters,
            sources=("data",) * channels,
            sample_data=SampleData(sample_times, sample_coords),
        )

    def source_key(self, index: int, channel: int) -> str:
        return f"{self.seeds[index]}/data"

    def _read(self, index: int, frames: slice) -> np.ndarray:
        block = self.node(f"{self.seeds[index]}/data")[frames]
        return np.moveaxis(block, -1, 1)
