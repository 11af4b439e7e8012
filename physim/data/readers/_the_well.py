"""The Well files: ``{name}/data/{train,valid,test}/*.hdf5``.

Layout (shared by every dataset of The Well)::

    attrs       dataset_name, grid_type, n_spatial_dims, n_trajectories,
                simulation_parameters (names; each a root attr and a /scalars entry)
    dimensions/ attr spatial_dims; time (T,) and one dataset per spatial dim, each with
                attrs sample_varying / time_varying ((N, ...) when sample_varying)
    boundary_conditions/<name>  attrs bc_type, associated_dims, associated_fields; mask
    scalars/    one dataset per scalar
    t0_fields/  scalar fields  [N] [T] *space          (attr field_names: the order)
    t1_fields/  vector fields  [N] [T] *space D
    t2_fields/  tensor fields  [N] [T] *space D D

Every field has attrs ``sample_varying``, ``time_varying`` and ``dim_varying`` (one
bool per spatial dim); an axis exists only when the field varies along it, so a
constant field is read once and broadcast. Channels: t0 fields, then t1 components
(``velocity_x``, ``velocity_y``), then t2 components (``stress_xy``, ...).

References:
    R. Ohana et al., "The Well: a large-scale collection of diverse physics
    simulations for machine learning", NeurIPS Datasets and Benchmarks (2024).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import h5py
import numpy as np

from ._base import ExternalFile, Layout, plain_attrs, time_block

__all__ = ["TheWellFile"]

FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class _Field:
    key: str  # e.g. "t1_fields/velocity"
    order: int  # tensor order: 0 scalar, 1 vector, 2 tensor
    sample_varying: bool
    time_varying: bool
    dim_varying: tuple[bool, ...]


class TheWellFile(ExternalFile):
    """One file of a dataset of The Well (see the module docstring).

    :attr:`split` is the name of the folder holding the file when it is ``train``,
    ``valid`` or ``test``. Sample parameters are the ``simulation_parameters``, from
    ``/scalars`` (per trajectory when ``sample_varying``) or the root attributes.
    """

    format_name = "the_well"

    @classmethod
    def recognises(cls, handle: h5py.File) -> bool:
        # Loose on purpose, so that _inspect names a missing group or attribute.
        return "n_spatial_dims" in handle.attrs or (
            "dimensions" in handle and any(g in handle for g in FIELD_GROUPS)
        )

    @property
    def split(self) -> str | None:  # type: ignore[override]
        parent = self.path.parent.name
        return parent if parent in SPLITS else None

    def _inspect(self, handle: h5py.File) -> Layout:
        attrs = plain_attrs(handle.attrs)
        for name in ("n_spatial_dims", "n_trajectories"):
            if not isinstance(attrs.get(name), int):
                raise self.error(f"/@{name}", "is missing", "an integer root attribute")
        num, ndim = attrs["n_trajectories"], attrs["n_spatial_dims"]
        for group in ("dimensions", "scalars", "boundary_conditions", *FIELD_GROUPS):
            if not isinstance(handle.get(group), h5py.Group):
                raise self.error(group, "is missing", "a group (present even if empty)")
        dims = tuple(plain_attrs(handle["dimensions"].attrs).get("spatial_dims") or ())
        if len(dims) != ndim:
            raise self.error(
                "dimensions/@spatial_dims", f"is {list(dims)}", f"{ndim} names"
            )
        time = self.dataset(handle, "dimensions/time", "(T,) times")
        frames = time.shape[-1]
        times = self.check_times(
            "dimensions/time", self.coordinate(handle, "dimensions/time", frames)
        )
        space = tuple(
            self.dataset(handle, f"dimensions/{d}", "(X,)").shape[-1] for d in dims
        )
        coords = {
            d: self.coordinate(handle, f"dimensions/{d}", n)
            for d, n in zip(dims, space, strict=True)
        }
        grid = dict(zip(dims, space, strict=True))
        self.fields: list[_Field] = []
        names, sources, dtypes, blocks = [], [], [], []
        for order, group in enumerate(FIELD_GROUPS):
            listed = plain_attrs(handle[group].attrs).get("field_names")
            for name in listed if listed is not None else list(handle[group]):
                key = f"{group}/{name}"
                spec = self._field(handle, key, order, num, frames, grid)
                self.fields.append(spec)
                for suffix in itertools.product(dims, repeat=order):
                    names.append("_".join([name, "".join(suffix)]) if order else name)
                    sources.append(key)
                dtypes.append(handle[key].dtype)
                if spec.time_varying:
                    blocks.append(time_block(handle[key], int(spec.sample_varying)))
        if not names:
            raise self.error(
                "t0_fields", "and t1/t2_fields hold no fields", "at least one field"
            )
        return Layout(
            shape=(num, frames, len(names), *space),
            dtype=np.result_type(*dtypes),
            chunks=(1, min(blocks, default=frames), len(names), *space),
            spatial_dims=dims,
            times=times,
            channel_names=tuple(names),
            coords=coords,
            attrs={"source_format": self.format_name, **self._attrs(handle, attrs)},
            parameters=self._parameters(handle, attrs, num),
            sources=tuple(sources),
        )

    def _field(
        self,
        handle: h5py.File,
        key: str,
        order: int,
        num: int,
        frames: int,
        grid: dict[str, int],
    ) -> _Field:
        space = tuple(grid.values())
        dataset = self.dataset(handle, key, "a field dataset")
        attrs = plain_attrs(dataset.attrs)
        missing = {"sample_varying", "time_varying", "dim_varying"} - set(attrs)
        if missing:
            raise self.error(key, f"lacks attributes {sorted(missing)}", "all three")
        dim_varying = tuple(bool(v) for v in np.atleast_1d(attrs["dim_varying"]))
        if len(dim_varying) != len(space):
            raise self.error(
                f"{key}/@dim_varying", f"is {list(dim_varying)}", f"{len(space)} flags"
            )
        spec = _Field(
            key,
            order,
            bool(attrs["sample_varying"]),
            bool(attrs["time_varying"]),
            dim_varying,
        )
        expected = (
            (num,) * spec.sample_varying
            + (frames,) * spec.time_varying
            + tuple(n for n, v in zip(space, dim_varying, strict=True) if v)
            + (len(space),) * order
        )
        if dataset.shape != expected:
            lengths = ", ".join(f"{d}={n}" for d, n in grid.items())
            raise self.error(
                key,
                f"has shape {dataset.shape}",
                f"{expected} (sample_varying={spec.sample_varying}, "
                f"time_varying={spec.time_varying}, "
                f"dim_varying={list(dim_varying)}, D={len(space)}; grid {lengths} "
                "from the lengths of the dimensions/ coordinates)",
            )
        return spec

    def _attrs(self, handle: h5py.File, attrs: dict) -> dict:
        out = {k: v for k, v in attrs.items() if not isinstance(v, list)}
        for name, bc in handle["boundary_conditions"].items():
            bc_attrs = plain_attrs(bc.attrs)
            dims = bc_attrs.get("associated_dims") or []
            for dim in [dims] if isinstance(dims, str) else dims:
                out[f"boundary_{dim}"] = bc_attrs.get("bc_type", name)
        return out

    def _parameters(self, handle: h5py.File, attrs: dict, num: int) -> dict:
        names = attrs.get("simulation_parameters") or []
        parameters = {}
        for name in [names] if isinstance(names, str) else names:
            if name in handle["scalars"]:
                values = np.asarray(handle["scalars"][name][()], np.float64).ravel()
            elif name in attrs:
                values = np.asarray([attrs[name]], np.float64)
            else:
                raise self.error(
                    f"scalars/{name}",
                    "is missing",
                    "a /scalars entry or root attribute",
                )
            if values.size == 1:
                values = np.full(num, values[0])
            if values.shape != (num,):
                raise self.error(
                    f"scalars/{name}", f"has {values.size} values", f"1 or {num}"
                )
            parameters[name] = values
        return parameters

    def _read(self, index: int, frames: slice) -> np.ndarray:
        steps = range(*frames.indices(self.num_frames))
        out = np.empty((len(steps), *self.shape[2:]), dtype=self.dtype)
        channel = 0
        for spec in self.fields:
            selection = (index,) * spec.sample_varying + (frames,) * spec.time_varying
            dataset = self.node(spec.key)
            block = dataset[selection] if selection else dataset[()]
            if not spec.time_varying:
                block = block[None]
            for axis, varying in enumerate(spec.dim_varying):
                if not varying:
                    block = np.expand_dims(block, 1 + axis)
            count = len(self.spatial_shape) ** spec.order
            block = block.reshape(*block.shape[: 1 + len(spec.dim_varying)], count)
            out[:, channel : channel + count] = np.moveaxis(block, -1, 1)
            channel += count
        return out
