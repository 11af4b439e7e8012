"""Progress when output is not a terminal: plain lines at a fixed interval."""

from __future__ import annotations

import logging
import time

import pytest
from rich.console import Console

from physim._progress import DEFAULT_INTERVAL, progress_interval
from physim.data import Progress


def test_plain_lines_keep_coming_while_a_step_is_slow(caplog):
    console = Console(force_terminal=False, file=open("/dev/null", "w"))  # noqa: SIM115
    with (
        caplog.at_level(logging.INFO, logger="physim"),
        Progress(console=console, interval=0.05) as progress,
    ):
        assert progress.plain
        task = progress.add_task("solve", total=4)
        progress.advance(task)
        time.sleep(0.4)  # one slow step: no update, the lines go on
    lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("solve")
    ]
    assert len(lines) >= 4
    assert lines[-1].startswith("solve: 1/4 (25%)")


def test_the_default_interval_is_well_under_30_seconds(monkeypatch):
    monkeypatch.delenv("PHYSIM_PROGRESS_SECONDS", raising=False)
    assert progress_interval() == DEFAULT_INTERVAL <= 30
    monkeypatch.setenv("PHYSIM_PROGRESS_SECONDS", "2.5")
    assert progress_interval() == pytest.approx(2.5)


def test_a_terminal_gets_rich_bars():
    console = Console(force_terminal=True, file=open("/dev/null", "w"))  # noqa: SIM115
    assert not Progress(console=console).plain
