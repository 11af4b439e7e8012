"""Progress of long loops: rich bars in a terminal, periodic plain lines otherwise.

rich draws its bars only on a terminal; when output goes to a file (a batch job, a CI
log, ``| tee``) its live display prints nothing until the loop ends, so a long run looks
hung. :class:`Progress` is rich's ``Progress`` in a terminal and, otherwise, a thread
that writes one plain line per task every ``interval`` seconds
(``PHYSIM_PROGRESS_SECONDS``, default 10), whatever the loop is doing: a heartbeat even
while one step takes minutes.
Lines go to the ``physim`` logger (so Hydra's run log gets them too), or to stderr when
logging is not configured. Alternatives: tqdm writes carriage-return updates that a log
file shows as one long line; rich has no periodic plain mode.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import rich
from rich import progress as rich_progress

__all__ = [
    "Progress",
    "bar_columns",
    "format_seconds",
    "progress_interval",
    "report_line",
    "track",
]

INTERVAL_VARIABLE = "PHYSIM_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 10.0
log = logging.getLogger("physim")
T = TypeVar("T")


def progress_interval() -> float:
    """Seconds between plain lines (``PHYSIM_PROGRESS_SECONDS``, default 10)."""
    value = os.environ.get(INTERVAL_VARIABLE, "")
    try:
        seconds = float(value) if value else DEFAULT_INTERVAL
    except ValueError:
        seconds = DEFAULT_INTERVAL
    return seconds if seconds > 0 else DEFAULT_INTERVAL


def is_terminal() -> bool:
    """Whether rich would draw live bars (stdout is an interactive terminal)."""
    return rich.get_console().is_terminal


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def report_line(line: str) -> None:
    """Write one progress line to the ``physim`` logger, or stderr without logging."""
    if log.hasHandlers():
        log.info(line)
    else:
        print(line, file=sys.stderr, flush=True)


class Periodic:
    """Calls ``report()`` every ``interval`` seconds from a daemon thread."""

    def __init__(self, report: Any, interval: float | None = None) -> None:
        self.report = report
        self.interval = interval or progress_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.report()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


class Progress(rich_progress.Progress):
    """rich's ``Progress`` on a terminal; plain periodic lines when not.

    Used exactly like ``rich.progress.Progress`` (``add_task``, ``update``,
    ``advance``, ``reset``, ``track``, as a context manager). ``disable=True`` shows
    nothing either way.

    Args:
        columns: rich columns for the terminal display.
        disable: show no progress at all.
        interval: seconds between plain lines (default :func:`progress_interval`).
        kwargs: passed to ``rich.progress.Progress``.
    """

    def __init__(
        self,
        *columns: Any,
        disable: bool = False,
        interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        console = kwargs.get("console") or rich.get_console()
        self.plain = not disable and not console.is_terminal
        super().__init__(*columns, disable=disable or self.plain, **kwargs)
        self._periodic = Periodic(self.report, interval) if self.plain else None

    def report(self) -> None:
        """Write one plain line per visible task (what the terminal bar would show)."""
        with self._lock:
            tasks = [task for task in self.tasks if task.visible]
            lines = [self.describe(task) for task in tasks]
        for line in lines:
            report_line(line)

    @staticmethod
    def describe(task: rich_progress.Task) -> str:
        total = task.total
        done = int(task.completed)
        count = f"{done}/{int(total)}" if total else f"{done}"
        percent = f" ({100 * task.completed / total:.0f}%)" if total else ""
        remaining = (
            "" if task.finished else f", {format_seconds(task.time_remaining)} left"
        )
        return (
            f"{task.description}: {count}{percent}, "
            f"{format_seconds(task.elapsed)} elapsed{remaining}"
        )

    def start(self) -> None:
        super().start()
        if self._periodic is not None:
            self._periodic.start()

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.stop()
            self.report()  # the final state
        super().stop()


def bar_columns() -> tuple[rich_progress.ProgressColumn, ...]:
    """New columns of physim's bars: description, bar, done/total, elapsed, left."""
    return (
        rich_progress.TextColumn("[progress.description]{task.description}"),
        rich_progress.BarColumn(),
        rich_progress.MofNCompleteColumn(),
        rich_progress.TimeElapsedColumn(),
        rich_progress.TimeRemainingColumn(),
    )


def track(
    sequence: Iterable[T] | Sequence[T],
    description: str,
    total: float | None = None,
    disable: bool = False,
    transient: bool = False,
) -> Iterator[T]:
    """``rich.progress.track`` with plain periodic lines when not on a terminal."""
    with Progress(*bar_columns(), disable=disable, transient=transient) as progress:
        yield from progress.track(sequence, total=total, description=description)
