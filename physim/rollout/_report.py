"""The rollout evaluation report: summary and per-step metrics, netCDF, PNGs, table.

One :class:`RolloutReport` serves every stepper (surrogate, solver, hybrid): it takes
the predicted and true trajectories and writes everything an evaluation needs.
Trajectories that diverge (go non-finite) are *counted*, never dropped: the headline
metrics average every trajectory, a diverged one contributing from its divergence step
the persistence forecast's error or 1, whichever is larger
(:func:`physim.rollout.metrics.counted_relative_l2`), so a blow-up neither turns the
summary into NaN nor makes a model look better by leaving the average. Finite-only
means are reported beside them, with a ``_finite`` suffix.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from rich.console import Console
from rich.table import Table
from torch import Tensor

from . import metrics as M
from ._plots import plot_error_vs_step, plot_fields, plot_spectrum

__all__ = ["RolloutReport"]

#: Names of the dims that the report itself uses; spatial coords must not reuse them.
_RESERVED_DIMS = ("sample", "time", "channel", "wavenumber")

#: Summary keys in table order, with a one-line meaning for the table.
_SUMMARY_DESCRIPTIONS = {
    "num_trajectories": "trajectories evaluated",
    "num_nonfinite": "trajectories that diverged (NaN/Inf; counted in the means)",
    "first_nonfinite_step": "earliest step at which one diverged (-1: none)",
    "rel_l2_mean": "relative L2 error, mean over steps and all trajectories",
    "rel_l2_first_half": "relative L2 error, mean over the first half of the steps",
    "rel_l2_final": "relative L2 error at the final step",
    "rel_l2_full": "FNO paper's metric: relative L2 of each whole trajectory, mean",
    "correlation_time_batch": "high-correlation time of the batch-mean correlation",
    "correlation_time_mean": "per-trajectory correlation time, mean",
    "correlation_threshold": "correlation threshold of the times",
    "baseline_rel_l2_mean": "persistence baseline: relative L2 error, mean",
    "baseline_ratio": "baseline / model relative L2 (> 1: model beats persistence)",
    "rel_l2_mean_finite": "relative L2 error, mean over finite trajectories only",
    "rel_l2_full_finite": "FNO paper's metric, finite trajectories only",
    "mse_mean_finite": "mean squared error, mean over finite trajectories only",
    "correlation_time_batch_finite": "high-correlation time, finite trajectories only",
    "baseline_ratio_finite": "baseline / model relative L2, finite trajectories only",
}

#: The rule for diverged trajectories, stated where the numbers are read.
DIVERGED_RULE = (
    "a diverged trajectory counts, from its divergence step, the persistence error "
    "or 1 (whichever is larger) and correlation min(persistence, 0)"
)

#: Per-sample arrays that are NaN after divergence, so averaged over finite samples.
_FINITE_ONLY = ("mse", "relative_l2_finite")

#: Samples per chunk when computing metrics, bounded to ~2**24 values per tensor.
_CHUNK_VALUES = 2**24


def _to_cpu(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"RolloutReport: {name} must be a torch.Tensor, got {type(x).__name__}."
        )
    return x.detach().cpu()


def _numpy(x: Tensor) -> np.ndarray:
    """CPU numpy copy; bfloat16 (which numpy lacks) goes to float32."""
    if x.dtype == torch.bfloat16:
        x = x.float()
    return x.detach().cpu().numpy()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _netcdf_attr(value: Any) -> Any:
    """A netCDF-safe attribute: numbers and strings as they are, others as text."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.integer | np.floating):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple | np.ndarray) and all(
        isinstance(v, int | float | np.integer | np.floating)
        and not isinstance(v, bool)
        for v in value
    ):
        return np.asarray(value)
    try:
        return json.dumps(value)
    except TypeError:
        return str(value)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def _json_value(value: float) -> float | None:
    """JSON has no NaN/Inf: write them as ``null``."""
    return value if math.isfinite(value) else None


class RolloutReport:
    """Metrics, netCDF file, figures and a table for one rollout evaluation.

    Args:
        pred: predictions ``[N, T, C, *space]`` (any device/dtype; kept on the CPU).
        target: truth, same shape.
        times: the physical times of the ``T`` predicted frames.
        coords: one entry per spatial dim, in order, name -> cell positions (e.g.
            ``{"x": ..., "y": ...}``); the names become the netCDF dims.
        channel_names: ``C`` names.
        first_nonfinite: ``[N]`` first non-finite step per trajectory (-1: none), as
            returned by :func:`physim.rollout.rollout`. It is merged with a check of
            ``pred`` itself, so ``None`` (check only) is always safe.
        baseline: a reference forecast of ``target``'s shape, usually
            :func:`physim.rollout.metrics.persistence_baseline`.
        correlation_threshold: threshold for the correlation times.
        attrs: extra attributes for the netCDF file (dataset, split, model...).
        output_interval: time between frames, for the correlation times; ``None``
            takes the spacing of ``times`` (which must then be uniform; 1.0 when there
            is a single frame).
        sample_times: ``[N, T]`` each trajectory's own times of the predicted frames,
            when they differ between trajectories (``times`` then counts frames);
            written as the 2-D coordinate ``sample_time``.
        sample_coords: ``{dim: [N, X]}`` each trajectory's own cell positions, for
            the dims where they differ; written as ``sample_<dim>``.

    Raises:
        ValueError: when shapes, times, coords or names do not match.
    """

    def __init__(
        self,
        pred: Tensor,
        target: Tensor,
        *,
        times: Sequence[float] | Tensor | np.ndarray,
        coords: dict[str, Sequence[float]],
        channel_names: Sequence[str],
        first_nonfinite: Tensor | None = None,
        baseline: Tensor | None = None,
        correlation_threshold: float = 0.8,
        attrs: dict | None = None,
        output_interval: float | None = None,
        sample_times: np.ndarray | Tensor | None = None,
        sample_coords: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.pred = _to_cpu(pred, "pred")
        self.target = _to_cpu(target, "target")
        if self.pred.shape != self.target.shape or self.pred.ndim < 3:
            raise ValueError(
                "RolloutReport: pred and target must both be [N, T, C, *space] with "
                f"the same shape, got pred {tuple(self.pred.shape)} and target "
                f"{tuple(self.target.shape)}."
            )
        n, t, c, *space = self.pred.shape
        if n < 1 or t < 1:
            raise ValueError(
                f"RolloutReport: need at least one trajectory and one step, got pred "
                f"shape {tuple(self.pred.shape)}."
            )
        self.times = np.asarray(
            _numpy(times) if isinstance(times, Tensor) else times, dtype=np.float64
        ).reshape(-1)
        if self.times.shape != (t,):
            raise ValueError(
                f"RolloutReport: times must hold one time per predicted step ({t}), "
                f"got {self.times.shape[0]} values."
            )
        self.coords = {str(k): np.asarray(v).reshape(-1) for k, v in coords.items()}
        if len(self.coords) != len(space) or any(
            len(v) != s for v, s in zip(self.coords.values(), space, strict=False)
        ):
            got = {k: len(v) for k, v in self.coords.items()}
            raise ValueError(
                "RolloutReport: coords must give one 1-D coordinate per spatial dim "
                f"of shape {tuple(space)}, in order; got lengths {got}."
            )
        clash = [k for k in self.coords if k in _RESERVED_DIMS]
        if clash:
            raise ValueError(
                f"RolloutReport: coords names {clash} are reserved ({_RESERVED_DIMS}); "
                "rename the spatial dims (e.g. x, y, z)."
            )
        self.channel_names = [str(name) for name in channel_names]
        if len(self.channel_names) != c:
            raise ValueError(
                f"RolloutReport: channel_names has {len(self.channel_names)} names for "
                f"{c} channels: {self.channel_names}."
            )
        self.sample_coordinates = self._sample_coordinates(sample_times, sample_coords)
        self.baseline = None if baseline is None else _to_cpu(baseline, "baseline")
        if self.baseline is not None and self.baseline.shape != self.target.shape:
            raise ValueError(
                f"RolloutReport: baseline shape {tuple(self.baseline.shape)} differs "
                f"from target shape {tuple(self.target.shape)}."
            )
        if not -1.0 <= correlation_threshold <= 1.0:
            raise ValueError(
                "RolloutReport: correlation_threshold must lie in [-1, 1], got "
                f"{correlation_threshold}."
            )
        self.correlation_threshold = float(correlation_threshold)
        self.attrs = dict(attrs or {})
        self.output_interval = self._output_interval(output_interval)
        self.first_nonfinite = self._merge_nonfinite(first_nonfinite)
        self._per_sample = self._compute_per_sample()
        self.finite = torch.from_numpy(
            ~np.isnan(self._per_sample["relative_l2_finite"]).any(axis=1)
        )
        self._full = self._compute_full()
        self._spectra: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ set-up
    def _sample_coordinates(
        self, sample_times: Any, sample_coords: dict[str, Any] | None
    ) -> dict[str, tuple[tuple[str, str], np.ndarray]]:
        """Per-trajectory coordinates as 2-D netCDF coordinates, checked."""
        n, t, _, *space = self.pred.shape
        given = {"time": sample_times, **(sample_coords or {})}
        lengths = {"time": t, **{d: len(v) for d, v in self.coords.items()}}
        out = {}
        for dim, values in given.items():
            if values is None:
                continue
            values = np.asarray(
                _numpy(values) if isinstance(values, Tensor) else values, np.float64
            )
            if dim not in lengths or values.shape != (n, lengths[dim]):
                raise ValueError(
                    f"RolloutReport: per-trajectory {dim} must be [{n}, "
                    f"{lengths.get(dim, '?')}] (one row per trajectory), got "
                    f"{values.shape}."
                )
            name = "sample_time" if dim == "time" else f"sample_{dim}"
            out[name] = (("sample", dim), values)
        return out

    def _output_interval(self, output_interval: float | None) -> float:
        if output_interval is not None:
            if not (math.isfinite(output_interval) and output_interval > 0):
                raise ValueError(
                    "RolloutReport: output_interval must be a positive number, got "
                    f"{output_interval!r}."
                )
            return float(output_interval)
        if self.times.shape[0] == 1:
            return 1.0
        spacing = np.diff(self.times)
        if not np.allclose(spacing, spacing.mean(), rtol=1e-5, atol=0.0) or (
            spacing.mean() <= 0
        ):
            raise ValueError(
                "RolloutReport: times are not uniformly increasing "
                f"({self.times[:5].tolist()}...); pass output_interval explicitly."
            )
        return float(spacing.mean())

    def _merge_nonfinite(self, given: Tensor | None) -> Tensor:
        given = None if given is None else _to_cpu(given, "first_nonfinite")
        try:
            return M.earliest_nonfinite(M.first_nonfinite_step(self.pred), given)
        except ValueError as error:
            raise ValueError(f"RolloutReport: {error}") from None

    def _chunks(self) -> list[slice]:
        per_sample = max(1, math.prod(self.pred.shape[1:]))
        size = max(1, _CHUNK_VALUES // per_sample)
        n = self.pred.shape[0]
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _compute_per_sample(self) -> dict[str, np.ndarray]:
        """``[N, T]`` float64 metrics, in sample chunks so memory stays bounded.

        ``relative_l2`` and ``correlation`` count diverged steps by the report's rule
        (:func:`physim.rollout.metrics.counted_relative_l2`); ``relative_l2_finite``
        and ``mse`` are the plain values, NaN from the step a trajectory diverged on.
        """
        names = ["mse", "relative_l2_finite", "relative_l2", "correlation"]
        if self.baseline is not None:
            names += ["baseline_relative_l2", "baseline_correlation"]
        out: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for part in self._chunks():
            pred = self.pred[part].double()
            target = self.target[part].double()
            first = self.first_nonfinite[part]
            raw = M.relative_l2(pred, target)
            base_rel = base_corr = None
            if self.baseline is not None:
                base = self.baseline[part].double()
                base_rel = M.relative_l2(base, target)
                base_corr = M.pearson_correlation(base, target)
                out["baseline_relative_l2"].append(base_rel.numpy())
                out["baseline_correlation"].append(base_corr.numpy())
            diverged = M.diverged_steps(first, raw)
            nan = torch.tensor(math.nan, dtype=raw.dtype)
            out["mse"].append(torch.where(diverged, nan, M.mse(pred, target)).numpy())
            out["relative_l2_finite"].append(torch.where(diverged, nan, raw).numpy())
            out["relative_l2"].append(
                M.counted_relative_l2(raw, first, base_rel).numpy()
            )
            out["correlation"].append(
                M.counted_correlation(
                    M.pearson_correlation(pred, target), first, base_corr
                ).numpy()
            )
        return {name: np.concatenate(parts) for name, parts in out.items()}

    def _compute_full(self) -> np.ndarray:
        """``[N]`` relative L2 of each whole trajectory (the FNO paper's metric),
        diverged trajectories counted as ``max(persistence, 1)`` (1 without a
        baseline)."""
        values = []
        for part in self._chunks():
            target = self.target[part].double()
            full = M.trajectory_relative_l2(self.pred[part].double(), target)
            penalty = torch.ones_like(full)
            if self.baseline is not None:
                base = M.trajectory_relative_l2(self.baseline[part].double(), target)
                penalty = base.clamp_min(M.DIVERGED_ERROR_FLOOR)
            values.append(torch.where(self.finite[part], full, penalty).numpy())
        return np.concatenate(values)

    def spectra(self) -> dict[str, np.ndarray]:
        """Per-sample ``error_spectrum`` and ``truth_spectrum``, ``[N, T, K]`` float64.

        Empty when the data have no spatial dims.
        """
        if self._spectra is None:
            self._spectra = {}
            if self.pred.ndim > 3:
                error, truth = [], []
                for part in self._chunks():
                    target = self.target[part].double()
                    error.append(
                        M.error_spectrum(self.pred[part].double(), target).numpy()
                    )
                    truth.append(M.power_spectrum(target).numpy())
                self._spectra = {
                    "error_spectrum": np.concatenate(error),
                    "truth_spectrum": np.concatenate(truth),
                }
        return self._spectra

    # ---------------------------------------------------------------- metrics
    @property
    def num_steps(self) -> int:
        return self.pred.shape[1]

    @property
    def num_diverged(self) -> int:
        """Trajectories that diverged (counted in the headline metrics)."""
        return int((~self.finite).sum())

    def _finite_rows(self, name: str) -> np.ndarray:
        return self._per_sample[name][self.finite.numpy()]

    def _correlation_times(self, corr: np.ndarray) -> tuple[float, float]:
        """(batch-mean, mean per-trajectory) correlation times; NaN for no rows."""
        if not corr.shape[0]:
            return math.nan, math.nan
        corr_t = torch.from_numpy(corr)
        thr, dt = self.correlation_threshold, self.output_interval
        return (
            float(M.batch_correlation_time(corr_t, thr, dt)),
            float(M.correlation_time(corr_t, thr, dt).mean()),
        )

    def metrics(self) -> dict[str, float]:
        """Summary metrics (see the table for meanings).

        Headline keys average *every* trajectory, diverged ones counted by the rule
        of :func:`physim.rollout.metrics.counted_relative_l2` (from the step it
        diverged on, the persistence error or 1, whichever is larger; correlation
        ``min(persistence, 0)``; without a baseline, 1 and 0): ``rel_l2_mean``,
        ``rel_l2_first_half``, ``rel_l2_final``, ``rel_l2_full`` (the FNO paper's
        metric: the relative L2 of each whole trajectory, all steps at once,
        averaged over trajectories; not the per-step mean ``rel_l2_mean``),
        ``correlation_time_batch``,
        ``correlation_time_mean`` and, with a baseline, ``baseline_rel_l2_mean`` and
        ``baseline_ratio``. Keys ending in ``_finite`` are the same over the
        trajectories that never diverged (NaN when none did). Also
        ``num_trajectories``, ``num_nonfinite``, ``first_nonfinite_step`` and
        ``correlation_threshold``.
        """
        rel = self._per_sample["relative_l2"]
        bad = self.first_nonfinite[self.first_nonfinite >= 0]
        half = max(1, self.num_steps // 2)

        def mean(values: np.ndarray) -> float:
            return float(values.mean()) if values.size else math.nan

        batch_time, mean_time = self._correlation_times(self._per_sample["correlation"])
        rel_finite = mean(self._finite_rows("relative_l2_finite"))
        summary = {
            "num_trajectories": float(self.pred.shape[0]),
            "num_nonfinite": float(self.num_diverged),
            "first_nonfinite_step": float(bad.min()) if bad.numel() else -1.0,
            "rel_l2_mean": mean(rel),
            "rel_l2_first_half": mean(rel[:, :half]),
            "rel_l2_final": mean(rel[:, -1]),
            "rel_l2_full": mean(self._full),
            "correlation_time_batch": batch_time,
            "correlation_time_mean": mean_time,
            "correlation_threshold": self.correlation_threshold,
        }
        if self.baseline is not None:
            base = mean(self._per_sample["baseline_relative_l2"])
            summary["baseline_rel_l2_mean"] = base
            summary["baseline_ratio"] = _ratio(base, summary["rel_l2_mean"])
        summary["rel_l2_mean_finite"] = rel_finite
        summary["rel_l2_full_finite"] = mean(self._full[self.finite.numpy()])
        summary["mse_mean_finite"] = mean(self._finite_rows("mse"))
        summary["correlation_time_batch_finite"] = self._correlation_times(
            self._finite_rows("correlation")
        )[0]
        if self.baseline is not None:
            summary["baseline_ratio_finite"] = _ratio(
                mean(self._finite_rows("baseline_relative_l2")), rel_finite
            )
        return summary

    def per_step(self) -> xr.Dataset:
        """Per-step metrics: batch means and per-sample values.

        Dims ``time`` (coordinate: the physical times, plus ``step``, the step index)
        and ``sample``. Variables with dims ``(time,)``: ``relative_l2`` and
        ``correlation`` (means over every trajectory, diverged ones counted), the
        ``baseline_*`` ones (every trajectory), ``relative_l2_finite`` and ``mse``
        (means over the finite trajectories only); ``<name>_sample`` with dims
        ``(sample, time)`` (the finite-only ones NaN after divergence);
        ``first_nonfinite`` and ``finite`` with dims ``(sample,)``.
        """
        finite = self.finite.numpy()
        data: dict[str, Any] = {}
        for name, values in self._per_sample.items():
            finite_only = name in _FINITE_ONLY
            rows = values[finite] if finite_only else values
            mean = (
                rows.mean(axis=0) if rows.shape[0] else np.full(self.num_steps, np.nan)
            )
            over = "finite samples" if finite_only else "all samples"
            data[name] = (("time",), mean, {"long_name": f"{name}, mean over {over}"})
            data[f"{name}_sample"] = (("sample", "time"), values)
        data["first_nonfinite"] = (("sample",), self.first_nonfinite.numpy())
        data["finite"] = (("sample",), finite)
        coords = {
            "time": self.times,
            "step": ("time", np.arange(self.num_steps)),
            "sample": np.arange(self.pred.shape[0]),
        }
        return xr.Dataset(
            data,
            coords=coords,
            attrs={
                "correlation_threshold": self.correlation_threshold,
                "diverged_rule": DIVERGED_RULE,
            },
        )

    def to_dataset(self) -> xr.Dataset:
        """Everything in one :class:`xarray.Dataset` (what :meth:`to_netcdf` writes)."""
        space_dims = tuple(self.coords)
        dims = ("sample", "time", "channel", *space_dims)
        ds = self.per_step()
        ds["prediction"] = (dims, _numpy(self.pred))
        ds["truth"] = (dims, _numpy(self.target))
        ds = ds.assign_coords(
            channel=self.channel_names, **self.coords, **self.sample_coordinates
        )
        for name, values in self.spectra().items():
            ds[name] = (("sample", "time", "wavenumber"), values)
        if self.spectra():
            k = next(iter(self.spectra().values())).shape[-1]
            ds = ds.assign_coords(wavenumber=np.arange(k))
        attrs = {k: _netcdf_attr(v) for k, v in self.attrs.items()}
        attrs.update({f"summary_{k}": v for k, v in self.metrics().items()})
        attrs["correlation_threshold"] = self.correlation_threshold
        attrs["output_interval"] = self.output_interval
        ds.attrs.update(attrs)
        return ds

    def to_netcdf(self, path: str | Path) -> Path:
        """Write :meth:`to_dataset` (engine h5netcdf) atomically: temp, then rename."""
        dataset = self.to_dataset()
        return _atomic_write(
            Path(path), lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf")
        )

    # ------------------------------------------------------------------ output
    def plot(
        self, out_dir: str | Path, *, sample: int = 0, n_times: int = 4
    ) -> list[Path]:
        """Write the figures as PNGs; return their paths.

        ``fields.png`` (truth / prediction / error of ``sample`` at ``n_times`` times),
        ``error_vs_step.png`` (relative L2 and correlation against time) and, for
        spatial data, ``error_spectrum.png`` (error and truth spectra, log-log).
        """
        if not 0 <= sample < self.pred.shape[0]:
            raise ValueError(
                f"RolloutReport.plot: sample must be in [0, {self.pred.shape[0] - 1}], "
                f"got {sample}."
            )
        if n_times < 1:
            raise ValueError(
                f"RolloutReport.plot: n_times must be >= 1, got {n_times}."
            )
        out = Path(out_dir)
        steps = sorted(
            {
                int(round(s))
                for s in np.linspace(
                    0, self.num_steps - 1, min(n_times, self.num_steps)
                )
            }
        )
        figures = {
            "fields.png": plot_fields(self, sample, steps),
            "error_vs_step.png": plot_error_vs_step(self),
        }
        if self.spectra():
            figures["error_spectrum.png"] = plot_spectrum(self, steps)
        return [
            _atomic_write(
                out / name, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100)
            )
            for name, fig in figures.items()
        ]

    def table(self) -> Table:
        """The summary metrics as a rich table."""
        table = Table(
            title=f"Rollout metrics ({self.pred.shape[0]} trajectories, "
            f"{self.num_steps} steps)"
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("meaning", style="dim")
        for key, value in self.metrics().items():
            text = (
                f"{int(value)}"
                if key.startswith(("num_", "first_"))
                else f"{value:.4g}"
            )
            table.add_row(key, text, _SUMMARY_DESCRIPTIONS.get(key, ""))
        return table

    def print_table(self, console: Console | None = None) -> None:
        """Print :meth:`table` to ``console`` (default: a new rich console), with a
        warning line when any trajectory diverged."""
        console = console or Console()
        console.print(self.table())
        if self.num_diverged:
            console.print(f"[bold red]WARNING[/]: {self.diverged_warning()}")

    def diverged_warning(self) -> str:
        """One line saying how many trajectories diverged and how they count."""
        first = int(self.first_nonfinite[self.first_nonfinite >= 0].min())
        return (
            f"{self.num_diverged} of {self.pred.shape[0]} trajectories diverged "
            f"(first at step {first}); the headline metrics count them "
            f"({DIVERGED_RULE}), the *_finite ones leave them out."
        )

    def write(
        self, out_dir: str | Path, *, sample: int = 0, n_times: int = 4
    ) -> dict[str, Path]:
        """Write ``rollout.nc``, ``metrics.json`` and the PNGs into ``out_dir``.

        Returns:
            ``{"netcdf": ..., "metrics": ..., "<figure stem>": ...}`` paths.
        """
        out = Path(out_dir)
        paths = {"netcdf": self.to_netcdf(out / "rollout.nc")}
        summary = {k: _json_value(v) for k, v in self.metrics().items()}
        text = json.dumps(summary, indent=2) + "\n"
        paths["metrics"] = _atomic_write(
            out / "metrics.json", lambda tmp: tmp.write_text(text)
        )
        for path in self.plot(out, sample=sample, n_times=n_times):
            paths[path.stem] = path
        return paths
