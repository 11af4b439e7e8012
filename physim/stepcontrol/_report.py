"""Evaluation output: every run (CSV), the points and summary tables, the diagrams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

__all__ = [
    "markdown_summary",
    "plot_work_precision",
    "print_summary",
    "write_report",
]

_STYLE = {"constant": ("tab:gray", "s"), "pi": ("tab:blue", "o"),
          "learned": ("tab:red", "*")}  # fmt: skip


def plot_work_precision(points: pd.DataFrame, path: str | Path) -> Path:
    """One panel per family: mean ``log10`` global error against mean evaluations,
    one line per method (its settings), with the front's 95% intervals shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted(points.family.unique())
    fig, axes = plt.subplots(1, len(families), figsize=(6.5 * len(families), 5))
    axes = np.atleast_1d(axes)
    for ax, family in zip(axes, families, strict=True):
        for i, (method, rows) in enumerate(
            points[points.family == family].groupby("method")
        ):
            rows = rows.sort_values("mean_evaluations")
            colour, marker = _STYLE.get(rows.kind.iloc[0], ("tab:green", "^"))
            if rows.kind.iloc[0] == "pi" and "default" in method:
                colour = "tab:cyan"
            ax.plot(rows.mean_evaluations, rows.mean_log10_error, "-" + marker,
                    color=colour, ms=6 if marker != "*" else 10, label=method,
                    zorder=3 + i)  # fmt: skip
        ax.set_xscale("log")
        ax.set(
            xlabel="mean right-hand-side evaluations (rejected, trial steps included)",
            ylabel="mean log10 relative L2 error at the horizon",
            title=f"{family}: held-out parameters",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cell(row: pd.Series, key: str, fmt: str) -> str:
    value = row.get(key, np.nan)
    if not isinstance(value, float) or not np.isfinite(value):
        return "-"
    text = fmt.format(value)
    lo, hi = row.get(f"{key}_lo", np.nan), row.get(f"{key}_hi", np.nan)
    if np.isfinite(lo) and np.isfinite(hi):
        text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return text


def print_summary(summary: pd.DataFrame, console: Console | None = None) -> None:
    """A rich table of the per-method summary."""
    table = Table(title="Work-precision against the tuned PI front (95% intervals)")
    for title in ("family", "method", "gap [dec]", "cost factor", "tol. slope",
                  "rejected", "failed", "mean evals", "wall ms/run"):  # fmt: skip
        table.add_column(
            title, justify="left" if title in ("family", "method") else "right"
        )
    for _, row in summary.iterrows():
        table.add_row(
            row.family,
            row.method,
            _cell(row, "gap", "{:+.3f}"),
            _cell(row, "cost_factor", "{:.3f}"),
            _cell(row, "tolerance_slope", "{:.2f}"),
            f"{100 * row.rejection_rate:.1f}%",
            f"{int(row.failed)}/{int(row.runs)}",
            f"{row.mean_evaluations:.0f}",
            f"{1e3 * row.mean_wall_time:.1f}",
        )
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)
    console.print(table)


def markdown_summary(summary: pd.DataFrame, label: str) -> str:
    """The per-method summary as a markdown table (``label`` tags the learned row)."""
    lines = [
        "| family | method | gap to tuned-PI front [dec] | cost factor at equal error "
        "| tolerance slope | rejected steps | failed runs | mean evaluations "
        "| wall ms / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        method = f"{row.method} ({label})" if row.kind == "learned" else row.method
        lines.append(
            f"| {row.family} | {method} | {_cell(row, 'gap', '{:+.3f}')} | "
            f"{_cell(row, 'cost_factor', '{:.3f}')} | "
            f"{_cell(row, 'tolerance_slope', '{:.2f}')} | "
            f"{100 * row.rejection_rate:.1f}% | {int(row.failed)}/{int(row.runs)} | "
            f"{row.mean_evaluations:.0f} | {1e3 * row.mean_wall_time:.1f} |"
        )
    return "\n".join(lines)


def write_report(
    runs: pd.DataFrame, points: pd.DataFrame, summary: pd.DataFrame, out_dir: str | Path
) -> dict[str, Path]:
    """Write ``runs.csv``, ``points.csv``, ``summary.csv`` and
    ``work_precision.png`` to ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "runs": out / "runs.csv",
        "points": out / "points.csv",
        "summary": out / "summary.csv",
        "plot": out / "work_precision.png",
    }
    runs.to_csv(paths["runs"], index=False)
    points.to_csv(paths["points"], index=False)
    summary.to_csv(paths["summary"], index=False)
    plot_work_precision(points, paths["plot"])
    return paths
