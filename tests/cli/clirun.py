"""Running physim's documented commands as a user does: a subprocess, from a folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(
    script: str,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``python <repo>/<script> args`` in ``cwd`` (one thread, data under cwd/data,
    stdout and stderr to pipes: not a terminal, as in a batch job)."""
    environment = dict(
        os.environ,
        PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        OMP_NUM_THREADS="1",
        WANDB_MODE="disabled",
        PHYSIM_DATA_DIR=str(cwd / "data"),
        **(env or {}),
    )
    environment.pop("PHYSIM_DEBUG", None)
    environment.pop("PHYSIM_ROOT", None)
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The single ``physim: error:`` line of a refused command (asserts the form)."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("physim: error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]
