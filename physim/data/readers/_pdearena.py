"""PDEArena files: one group per split (``f["train"]``, ``f["valid"]``, ``f["test"]``).

Navier-Stokes smoke (float64)::

    <split>/u, vx, vy   (N, T, X, Y)    channels: scalars first (u), then vx, vy
    <split>/t           (N, T) or (T,)  one row per trajectory
    <split>/x, y        (N, X) or (X,)
    <split>/dt, dx, dy, buo_y  (N,)     -> sample parameters

Kuramoto-Sivashinsky::

    <split>/pde_<T>-<X> (N, T, X)       one channel "u"
    <split>/dt, dx      (N,)            optional v (N,); -> sample parameters
    <split>/t, x        (N, T), (N, X)  optional (LPSDA writes them)

``t``, ``x`` and ``y`` hold one row per trajectory, as PDEArena's generator
(``pdedatagen/navier_stokes.py``) and LPSDA's (``generate/generate_data.py``, whose KS
data draw the domain length and the time span per trajectory) write them; without
``t``, times are ``k * dt`` of each trajectory (likewise ``x`` from ``dx``). Where the
rows differ they are kept per trajectory (``times_of(i)``, ``coords_of(i)``) and the
1-D ``times`` count frames (``attrs["time_units"] == "frames"``; ``x_units ==
"cells"``); a model that needs one grid gets each trajectory's ``dt``/``dx`` as
conditioning parameters (:attr:`sample_parameters`).

References:
    J. K. Gupta, J. Brandstetter, "Towards multi-spatiotemporal-scale generalized PDE
    modeling", TMLR (2023) -- https://github.com/pdearena/pdearena
"""

from __future__ import annotations

import h5py
import numpy as np

from .._per_sample import SampleData, unit_attrs
from ._base import ExternalFile, Layout, plain_attrs, time_block

__all__ = ["PDEArenaFile"]

SPLITS = ("train", "valid", "test")
NS_FIELDS = ("u", "vx", "vy")
NS_PARAMETERS = ("dt", "dx", "dy", "buo_y")
KS_PARAMETERS = ("dt", "dx", "v")


def _ks_key(group: h5py.Group) -> str | None:
    keys = [k for k in group if k.startswith("pde_")]
    return keys[0] if len(keys) == 1 else None


class PDEArenaFile(ExternalFile):
    """One split group of a PDEArena Navier-Stokes smoke or Kuramoto-Sivashinsky file.

    Args:
        path: the ``.h5`` file.
        group: the split group (``"train"``, ``"valid"`` or ``"test"``); default: the
            file's only split group.
    """

    format_name = "pdearena"

    @classmethod
    def recognises(cls, handle: h5py.File) -> bool:
        return any(
            isinstance(handle.get(s), h5py.Group)
            and ("u" in handle[s] or _ks_key(handle[s]) is not None)
            for s in SPLITS
        )

    @classmethod
    def groups(cls, handle: h5py.File) -> list[str | None]:
        return [s for s in SPLITS if isinstance(handle.get(s), h5py.Group)]

    @property
    def split(self) -> str | None:  # type: ignore[override]
        return self.group

    def _inspect(self, handle: h5py.File) -> Layout:
        if self.group is None:
            found = self.groups(handle)
            if len(found) != 1:
                raise self.error(
                    "/", f"holds split groups {found}", "one split group, or name one"
                )
            self.group = found[0]
        group = handle[self.group]
        ks = _ks_key(group)
        if ks is None:
            keys, names, parameters = NS_FIELDS, NS_FIELDS, NS_PARAMETERS
            expected = "(N, T, X, Y)"
        else:
            keys, names, parameters = (ks,), ("u",), KS_PARAMETERS
            expected = "(N, T, X)"
        fields = [self.dataset(handle, f"{self.group}/{k}", expected) for k in keys]
        shape = fields[0].shape
        if len(shape) != expected.count(",") + 1:
            raise self.error(
                f"{self.group}/{keys[0]}", f"has {len(shape)} axes {shape}", expected
            )
        for key, dataset in zip(keys[1:], fields[1:], strict=True):
            if dataset.shape != shape:
                raise self.error(
                    f"{self.group}/{key}", f"has shape {dataset.shape}", f"{shape}"
                )
        num, frames, *space = shape
        values = {}
        for name in parameters:
            if name not in group and name in ("v", "buo_y"):
                continue
            key = f"{self.group}/{name}"
            data = np.asarray(self.dataset(handle, key, f"({num},)")[()], np.float64)
            if data.shape != (num,):
                raise self.error(key, f"has shape {data.shape}", f"({num},)")
            values[name] = data
        attrs = {"source_format": self.format_name, "split": self.group}
        attrs.update(plain_attrs(handle.attrs))
        dims = ("x", "y")[: len(space)]
        coords, sample_coords = {}, {}
        for dim, length in zip(dims, space, strict=True):
            coords[dim], own = self._axis(group, dim, length, values[f"d{dim}"], num)
            if own is not None:
                sample_coords[dim] = own
        times, sample_times = self._axis(group, "t", frames, values["dt"], num)
        attrs.update(unit_attrs(sample_times, sample_coords))
        return Layout(
            shape=(num, frames, len(keys), *space),
            dtype=np.result_type(*(f.dtype for f in fields)),
            chunks=(1, min(time_block(f, 1) for f in fields), len(keys), *space),
            spatial_dims=dims,
            times=times,
            channel_names=names,
            coords=coords,
            attrs=attrs,
            parameters=values,
            sources=tuple(f"{self.group}/{k}" for k in keys),
            sample_data=SampleData(sample_times, sample_coords),
        )

    def _axis(
        self,
        group: h5py.Group,
        name: str,
        length: int,
        spacing: np.ndarray,
        num: int,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Coordinate ``name`` from its dataset (``[N, L]`` as LPSDA and PDEArena
        write it, or ``[L]``), else ``k * d<name>`` of each trajectory; kept per
        trajectory where the trajectories differ (see ``ExternalFile.per_trajectory``).
        """
        key = f"{self.group}/{name}"
        if name in group:
            values = self.coordinate(group.file, key, length, num=num)
        else:
            key = f"{self.group}/d{name}"
            values = np.arange(length)[None] * spacing[:, None]
        return self.per_trajectory(key, values, times=name == "t")

    def _read(self, index: int, frames: slice) -> np.ndarray:
        keys = self.layout.sources
        return np.stack([self.node(k)[index, frames] for k in keys], axis=1)
