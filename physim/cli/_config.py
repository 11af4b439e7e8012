"""Config helpers shared by the entry points: resolvers and error reporting."""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from physim.data import DatasetError
from physim.timestepping import NonFiniteError

log = logging.getLogger("physim")

# conf/ at the repository root (absolute: Hydra reads a relative config_path of a
# module inside a package as a python package path).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

F = TypeVar("F", bound=Callable[..., Any])

# `${mul:${data.time_history},${data.num_channels}}` -> model input channels.
OmegaConf.register_new_resolver(
    "mul", lambda *xs: functools.reduce(lambda a, b: a * b, xs), replace=True
)
# `${add:a,b}` -> e.g. PDE-Refiner's input channels (history plus noisy target).
OmegaConf.register_new_resolver("add", lambda *xs: sum(xs), replace=True)
# `${courant_step:N,u_max,C}` -> C (2 pi / N) / u_max: jax-cfd's `stable_time_step`
# on an N-point grid of the 2 pi-periodic Kolmogorov domain (the coarse solver step).
OmegaConf.register_new_resolver(
    "courant_step", lambda n, u_max, c: c * (2 * math.pi / n) / u_max, replace=True
)
# `${cwd:}` -> the launch directory. Unlike `${hydra:runtime.cwd}` it resolves before
# Hydra sets its per-job config, which multirun needs for `hydra.sweep.dir` (the jobs
# keep the launch directory: hydra.job.chdir=false).
OmegaConf.register_new_resolver("cwd", os.getcwd, replace=True)

# Errors a user can fix from the message alone: reported in one line, exit code 1.
USER_ERRORS = (
    DatasetError,
    NonFiniteError,
    FloatingPointError,
    OSError,  # FileNotFoundError, PermissionError, NotADirectoryError, ...
    ValueError,
    TypeError,
    InstantiationException,
    MissingMandatoryValue,
)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line; for a failed Hydra instantiation, the
    constructor's own message (which names the value and the fix) and the config key."""
    if isinstance(error, InstantiationException) and isinstance(
        error.__cause__, USER_ERRORS
    ):
        key = str(error).rsplit("full_key:", 1)
        where = f" (config key: {key[1].strip()})" if len(key) == 2 else ""
        return one_line(error.__cause__) + where
    if isinstance(error, MissingMandatoryValue):
        key = error.full_key or str(error.key)
        return (
            f"{key} has no value (??? in the config); give it on the command line: "
            f"{key}=<value>."
        )
    if isinstance(error, OSError) and error.filename and error.strerror:
        fix = (
            "Check the path."
            if isinstance(error, FileNotFoundError)
            else "Choose a path you can write to, or fix the folder's permissions."
        )
        return f"{error.filename}: {error.strerror}. {fix}"
    return " ".join(str(error).split())


def report_user_errors(main: F) -> F:
    """Turn user-fixable errors into one message on stderr and exit status 1.

    Set ``PHYSIM_DEBUG=1`` to get the full traceback instead.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as error:
            if os.environ.get("PHYSIM_DEBUG"):
                raise
            print(f"physim: error: {one_line(error)}", file=sys.stderr)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


class CheckOutputDir(Callback):
    """Hydra callback: refuse an unusable run folder with one line, before the job.

    Hydra creates ``hydra.run.dir`` (``hydra.sweep.dir`` for ``-m``) itself, so a
    read-only folder or a path through a file would end in Hydra's traceback before
    any physim code runs. Configured in ``conf/hydra/default.yaml``.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")

    @staticmethod
    def _check(config: DictConfig, key: str) -> None:
        HydraConfig.instance().set_config(config)
        folder = Path(str(OmegaConf.select(config, key)))
        probe = folder / f".physim-probe-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.touch()
            probe.unlink()
        except OSError as error:
            if os.environ.get("PHYSIM_DEBUG"):
                raise
            reason = error.strerror or str(error)
            print(
                f"physim: error: {key}={folder}: cannot write the run folder here "
                f"({reason}: {error.filename or folder}). Give a writable folder, e.g. "
                f"{key}=<folder> or paths.log_dir=<folder>.",
                file=sys.stderr,
            )
            sys.exit(1)
