"""The rollout report's figures: fields, error against time, error spectra.

Each function takes a :class:`~physim.rollout.RolloutReport` and returns a
``matplotlib.figure.Figure``; :meth:`RolloutReport.plot` picks the steps and writes
them as PNGs.

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: no global
figure registry (so nothing to close or leak), and rendering uses the Agg canvas
whatever backend pyplot would pick. matplotlib is imported on first use, to keep
``import physim.rollout`` light for training code that never plots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._report import RolloutReport

__all__ = ["plot_error_vs_step", "plot_fields", "plot_spectrum"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _finite_mean(values: np.ndarray, finite: np.ndarray) -> np.ndarray:
    rows = values[finite]
    return rows.mean(axis=0) if rows.shape[0] else np.full(values.shape[1:], np.nan)


def _limits(*arrays: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """Colour limits from the finite values (NaN/Inf would otherwise poison them)."""
    values = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if values.size == 0:
        return (-1.0, 1.0)
    if symmetric:
        top = float(np.abs(values).max()) or 1.0
        return (-top, top)
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low - 1.0, high + 1.0)


def plot_fields(report: RolloutReport, sample: int, steps: list[int]) -> Any:
    """Truth / prediction / error of one sample at the chosen steps.

    2-D (and the middle slice of higher-D) data are images with one colour scale per
    channel shared by the truth and prediction rows (taken from the truth, so a
    blown-up prediction saturates rather than washing the truth out) and a symmetric
    one for the error row; 1-D data are lines over x; data without space are lines
    over time.
    """
    truth = report.target[sample].double().numpy()
    pred = report.pred[sample].double().numpy()
    names = list(report.coords)
    channels = report.channel_names
    title = f"sample {sample}"
    if truth.ndim == 2:  # [T, C]: no space
        fig = _figure(4.0 * len(channels), 3.0)
        axes = fig.subplots(1, len(channels), squeeze=False)[0]
        for c, ax in enumerate(axes):
            ax.plot(report.times, truth[:, c], label="truth")
            ax.plot(report.times, pred[:, c], "--", label="prediction")
            ax.set(title=f"{channels[c]} ({title})", xlabel="time")
            ax.legend()
        return fig
    if truth.ndim == 3:  # [T, C, X]: lines over x
        x = report.coords[names[0]]
        fig = _figure(3.2 * len(steps), 2.6 * len(channels))
        axes = fig.subplots(len(channels), len(steps), squeeze=False, sharey="row")
        for c in range(len(channels)):
            for j, s in enumerate(steps):
                ax = axes[c, j]
                ax.plot(x, truth[s, c], label="truth")
                ax.plot(x, pred[s, c], "--", label="prediction")
                ax.set_title(f"{channels[c]}, t={report.times[s]:.4g}")
                ax.set_xlabel(names[0])
            axes[c, 0].legend()
        fig.suptitle(title)
        return fig
    # [T, C, X, Y, *rest]: images; the middle slice of any further dims.
    middle = tuple(n // 2 for n in truth.shape[4:])
    if middle:
        title += ", middle slice in " + ", ".join(names[2:])
    truth = truth[(..., *middle)]
    pred = pred[(..., *middle)]
    error = pred - truth
    x, y = report.coords[names[0]], report.coords[names[1]]
    extent = (float(x[0]), float(x[-1]), float(y[0]), float(y[-1]))
    fig = _figure(2.6 * len(steps) + 1.0, 2.4 * 3 * len(channels))
    axes = fig.subplots(3 * len(channels), len(steps), squeeze=False)
    for c, channel in enumerate(channels):
        scale = _limits(truth[steps, c])
        rows = [
            ("truth", truth, scale, "viridis"),
            ("prediction", pred, scale, "viridis"),
            ("error", error, _limits(error[steps, c], symmetric=True), "RdBu_r"),
        ]
        for r, (label, field, (vmin, vmax), cmap) in enumerate(rows):
            row = axes[3 * c + r]
            for j, s in enumerate(steps):
                image = row[j].imshow(
                    field[s, c].T,
                    origin="lower",
                    extent=extent,
                    cmap=cmap,
                    vmin=vmin,
                    vmax=vmax,
                    aspect="auto",
                )
                row[j].set_xticks([])
                row[j].set_yticks([])
                if r == 0:
                    row[j].set_title(f"t={report.times[s]:.4g}")
            row[0].set_ylabel(f"{channel}\n{label}")
            fig.colorbar(image, ax=row.tolist(), shrink=0.9)
    fig.suptitle(title)
    return fig


def plot_error_vs_step(report: RolloutReport) -> Any:
    """Relative L2 and correlation against time, means over every trajectory.

    Diverged trajectories count by the report's rule (see :class:`RolloutReport`);
    when any diverged, the finite-only mean error is drawn too (dotted).
    """
    per_step = report.per_step()
    fig = _figure(10.0, 3.6)
    ax_err, ax_corr = fig.subplots(1, 2)
    times = report.times
    rel = per_step["relative_l2"].values
    ax_err.plot(times, rel, label="model")
    ax_corr.plot(times, per_step["correlation"].values, label="model")
    diverged = report.num_diverged
    if diverged:
        ax_err.plot(
            times, per_step["relative_l2_finite"].values, ":", label="model, finite"
        )
    if "baseline_relative_l2" in per_step:
        for ax, name in [(ax_err, "relative_l2"), (ax_corr, "correlation")]:
            ax.plot(
                times, per_step[f"baseline_{name}"].values, "--", label="persistence"
            )
    ax_corr.axhline(
        report.correlation_threshold,
        color="grey",
        linestyle=":",
        label=f"threshold {report.correlation_threshold:g}",
    )
    if np.all(np.isfinite(rel)) and np.all(rel > 0):
        ax_err.set_yscale("log")
    ax_err.set(xlabel="time", ylabel="relative L2 error")
    ax_corr.set(xlabel="time", ylabel="correlation")
    ax_err.legend()
    ax_corr.legend()
    note = (
        f" ({diverged} diverged, counted as persistence or worse)" if diverged else ""
    )
    fig.suptitle(f"Mean over {report.pred.shape[0]} trajectories{note}")
    return fig


def plot_spectrum(report: RolloutReport, steps: list[int]) -> Any:
    """Error (solid) and truth (dashed) spectra at the chosen steps, log-log."""
    finite = report.finite.numpy()
    spectra = report.spectra()
    error = _finite_mean(spectra["error_spectrum"], finite)
    truth = _finite_mean(spectra["truth_spectrum"], finite)
    k = np.arange(error.shape[-1])
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    for s in steps:
        # k = 0 (the mean) has no place on a log axis; show k >= 1.
        line = ax.loglog(k[1:], error[s, 1:], label=f"error, t={report.times[s]:.4g}")[
            0
        ]
        ax.loglog(k[1:], truth[s, 1:], "--", color=line.get_color(), alpha=0.6)
    ax.plot([], [], "k--", alpha=0.6, label="truth (same colour)")
    if len(report.coords) > 1 and np.isfinite(error[steps[-1], -1]):
        # power_spectrum adds the corner modes (|k| > K - 1) into the last shell.
        ax.annotate(
            "last shell includes\nthe corner modes",
            xy=(k[-1], error[steps[-1], -1]),
            xytext=(0.6, 0.08),
            textcoords="axes fraction",
            fontsize="small",
            arrowprops={"arrowstyle": "->", "alpha": 0.5},
        )
    ax.set(xlabel="wavenumber |k|", ylabel="power (summed over channels)")
    ax.legend(fontsize="small")
    ax.set_title("Error and truth power spectra, mean over finite trajectories")
    return fig
