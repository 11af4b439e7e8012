"""The Well files: ``{name}/data/{train,valid,test}/*.hdf5``.

Layout (shared by every dataset of The Well; ``docs/data_format.md`` and
``scripts/check_thewell_formatting.py`` of github.com/PolymathicAI/the_well)::

    attrs       dataset_name, grid_type, n_spatial_dims, n_trajectories,
                simulation_parameters (names; each a root attr and a /scalars entry)
    dimensions/ attr spatial_dims; time (T,) and one dataset per spatial dim, each with
                attrs sample_varying / time_varying ((N, ...) when sample_varying)
    boundary_conditions/<name>  attrs bc_type, associated_dims, associated_fields,
                sample_varying, time_varying; mask (True where the boundary is)
    scalars/    one dataset per scalar ([N] [T] when sample/time varying)
    t0_fields/  scalar fields  [N] [T] *space          (attr field_names: the order)
    t1_fields/  vector fields  [N] [T] *space D
    t2_fields/  tensor fields  [N] [T] *space D D

Every field has attrs ``sample_varying``, ``time_varying`` and ``dim_varying`` (one
bool per spatial dim); an axis exists only when the field varies along it, so a
field constant along an axis is read once and broadcast. What physim makes of it, as
``the_well.data.WellDataset`` does:

- fields with ``time_varying`` are the channels: t0 fields, then t1 components
  (``velocity_x``, ``velocity_y``), then t2 components (``stress_xy``, ...);
- fields without ``time_varying`` are *constant fields* (``read_constants``), never
  channels: a model gets them as conditioning inputs, not as something to predict;
- scalars with ``time_varying`` are time-varying scalars (``read_scalars``); the
  others, with the ``simulation_parameters``, are the sample parameters;
- ``sample_varying`` coordinates are kept per trajectory (``times_of``,
  ``coords_of``); time-varying (moving) grids are refused;
- boundaries: ``attrs["boundary_<dim>"]`` is the type WellDataset's padding reads from
  the masks (``open`` where no mask marks a side), or ``"lower,upper"`` when the two
  sides differ; ``attrs["grid_type"]`` is kept.

References:
    R. Ohana et al., "The Well: a large-scale collection of diverse physics
    simulations for machine learning", NeurIPS Datasets and Benchmarks (2024).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import h5py
import numpy as np

from .._per_sample import SampleData, unit_attrs
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
        frames = self.dataset(handle, "dimensions/time", "(T,) times").shape[-1]
        times, sample_times = self.per_trajectory(
            "dimensions/time",
            self.coordinate(handle, "dimensions/time", frames, num=num),
            times=True,
        )
        space = tuple(
            self.dataset(handle, f"dimensions/{d}", "(X,)").shape[-1] for d in dims
        )
        coords, sample_coords = {}, {}
        for dim, length in zip(dims, space, strict=True):
            key = f"dimensions/{dim}"
            if plain_attrs(handle[key].attrs).get("time_varying"):
                raise self.error(
                    key,
                    "is time_varying (a moving grid, which physim does not read)",
                    "a fixed grid per trajectory",
                )
            values = self.coordinate(handle, key, length, num=num)
            coords[dim], own = self.per_trajectory(key, values)
            if own is not None:
                sample_coords[dim] = own
        grid = dict(zip(dims, space, strict=True))
        self.fields: list[_Field] = []
        self.constants: list[_Field] = []
        names, constant_names, sources, dtypes, blocks = [], [], [], [], []
        for order, group in enumerate(FIELD_GROUPS):
            listed = plain_attrs(handle[group].attrs).get("field_names")
            for name in listed if listed is not None else list(handle[group]):
                key = f"{group}/{name}"
                spec = self._field(handle, key, order, num, frames, grid)
                components = [
                    "_".join([name, "".join(suffix)]) if order else name
                    for suffix in itertools.product(dims, repeat=order)
                ]
                if not spec.time_varying:
                    self.constants.append(spec)
                    constant_names.extend(components)
                    continue
                self.fields.append(spec)
                dtypes.append(handle[key].dtype)
                names.extend(components)
                sources.extend([key] * len(components))
                blocks.append(time_block(handle[key], int(spec.sample_varying)))
        if not names:
            raise self.error(
                "t0_fields",
                "and t1/t2_fields hold no time-varying field",
                "at least one field with time_varying=True (constant fields are "
                "conditioning inputs, not trajectories)",
            )
        parameters, scalars = self._scalars(handle, attrs, num, frames)
        return Layout(
            shape=(num, frames, len(names), *space),
            dtype=np.result_type(*dtypes),
            chunks=(1, min(blocks, default=frames), len(names), *space),
            spatial_dims=dims,
            times=times,
            channel_names=tuple(names),
            coords=coords,
            attrs={
                "source_format": self.format_name,
                **self._attrs(handle, attrs),
                **unit_attrs(sample_times, sample_coords),
            },
            parameters=parameters,
            sources=tuple(sources),
            sample_data=SampleData(
                sample_times,
                sample_coords,
                tuple(constant_names),
                tuple(scalars),
            ),
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
        dims = list(plain_attrs(handle["dimensions"].attrs)["spatial_dims"])
        out.update(
            {f"boundary_{d}": kind for d, kind in boundary_types(handle, dims).items()}
        )
        return out

    def _scalars(
        self, handle: h5py.File, attrs: dict, num: int, frames: int
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """``(sample parameters {name: [N]}, time-varying scalars {name: key})``."""
        names = attrs.get("simulation_parameters") or []
        names = [names] if isinstance(names, str) else list(names)
        listed = plain_attrs(handle["scalars"].attrs).get("field_names")
        listed = list(handle["scalars"]) if listed is None else list(listed)
        parameters, scalars = {}, {}
        for name in names + [n for n in listed if n not in names]:
            key = f"scalars/{name}"
            node = handle.get(key)
            if node is None and name in attrs:
                node_values = np.asarray([attrs[name]], np.float64)
            elif isinstance(node, h5py.Dataset):
                if plain_attrs(node.attrs).get("time_varying"):
                    self._scalar_shape(key, node, num, frames)
                    scalars[name] = key
                    continue
                node_values = np.asarray(node[()], np.float64).ravel()
            else:
                raise self.error(
                    key, "is missing", "a /scalars entry or root attribute"
                )
            if node_values.size == 1:
                node_values = np.full(num, node_values[0])
            if node_values.shape != (num,):
                raise self.error(key, f"has {node_values.size} values", f"1 or {num}")
            parameters[name] = node_values
        self.scalar_keys = tuple(scalars.values())
        return parameters, scalars

    def _scalar_shape(
        self, key: str, node: h5py.Dataset, num: int, frames: int
    ) -> None:
        sample = bool(plain_attrs(node.attrs).get("sample_varying"))
        expected = (num,) * sample + (frames,)
        if node.shape != expected:
            raise self.error(
                key,
                f"has shape {node.shape}",
                f"{expected} (a time-varying scalar, sample_varying={sample})",
            )

    def _read(self, index: int, frames: slice) -> np.ndarray:
        steps = range(*frames.indices(self.num_frames))
        out = np.empty((len(steps), *self.shape[2:]), dtype=self.dtype)
        channel = 0
        for spec in self.fields:
            block = self._broadcast(spec, index, frames)
            out[:, channel : channel + block.shape[1]] = block
            channel += block.shape[1]
        return out

    def _broadcast(self, spec: _Field, index: int, frames: slice) -> np.ndarray:
        """Field ``spec`` of trajectory ``index``: ``[T' (1 if constant), D^order,
        *space]``."""
        selection = (index,) * spec.sample_varying + (frames,) * spec.time_varying
        dataset = self.node(spec.key)
        block = dataset[selection] if selection else dataset[()]
        if not spec.time_varying:
            block = block[None]
        for axis, varying in enumerate(spec.dim_varying):
            if not varying:
                block = np.expand_dims(block, 1 + axis)
        block = np.broadcast_to(
            block,
            (
                *block.shape[:1],
                *self.spatial_shape,
                *block.shape[1 + len(spec.dim_varying) :],
            ),
        )
        count = len(self.spatial_shape) ** spec.order
        block = block.reshape(*block.shape[: 1 + len(spec.dim_varying)], count)
        return np.moveaxis(block, -1, 1)

    def _read_constants(self, index: int) -> np.ndarray:
        block = np.concatenate(
            [self._broadcast(spec, index, slice(None))[0] for spec in self.constants]
        )
        if not np.isfinite(block).all():
            raise self.error(
                self.constants[0].key if len(self.constants) == 1 else "t*_fields",
                f"constant fields hold NaN/Inf in trajectory {index}",
                "finite values; drop or repair that trajectory",
            )
        return block

    def _read_scalars(self, index: int, frames: slice) -> np.ndarray:
        columns = []
        for key in self.scalar_keys:
            node = self.node(key)
            sample = node.ndim == 2
            columns.append(node[(index, frames) if sample else frames])
        block = np.stack(columns, axis=-1)
        if not np.isfinite(block).all():
            raise self.error(
                "scalars",
                f"hold NaN/Inf in trajectory {index}",
                "finite values; drop or repair that trajectory",
            )
        return block


# The Well's boundary codes, as WellDataset's padding reads them
# (the_well/data/datasets.py, WellDataset._padding_bcs, the_well 1.2.0).
BOUNDARY_TYPES = ("wall", "open", "periodic")


def boundary_types(handle: h5py.File, dims: list[str]) -> dict[str, str]:
    """``{dim: type}`` for every dim some boundary group names: ``"periodic"``,
    ``"wall"`` or ``"open"``, or ``"lower,upper"`` when the two sides differ.

    A side takes a group's ``bc_type`` when its mask marks that side (for ``wall``,
    the whole side; for the others any of it); a side no group marks is ``open``.
    This is ``WellDataset._padding_bcs``'s rule, so physim reads the boundaries the
    upstream loader reads. Sample- or time-varying masks are reduced over their
    leading axes the same way.
    """
    sides: dict[str, list[str]] = {}
    for group in handle["boundary_conditions"].values():
        bc = plain_attrs(group.attrs)
        kind = str(bc.get("bc_type", "")).lower()
        associated = bc.get("associated_dims") or []
        associated = [associated] if isinstance(associated, str) else associated
        mask = np.asarray(group["mask"][()], dtype=bool) if "mask" in group else None
        reduce = np.all if kind == "wall" else np.any
        for position, dim in enumerate(associated):
            if dim not in dims:
                continue
            found = sides.setdefault(dim, ["open", "open"])
            if mask is None:
                continue
            axis = mask.ndim - len(associated) + position
            for side, index in enumerate((0, -1)):
                if reduce(np.take(mask, index, axis=axis)):
                    found[side] = kind
    return {
        dim: lower if lower == upper else f"{lower},{upper}"
        for dim, (lower, upper) in sides.items()
    }
