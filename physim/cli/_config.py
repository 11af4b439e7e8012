"""Config helpers shared by the entry points: resolvers and error reporting."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from omegaconf import OmegaConf

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

# Errors a user can fix from the message alone: reported in one line, exit code 1.
USER_ERRORS = (
    DatasetError,
    NonFiniteError,
    FloatingPointError,
    FileNotFoundError,
    ValueError,
    TypeError,
    InstantiationException,
)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line; for a failed Hydra instantiation, the
    constructor's own message (which names the value and the fix) and the config key."""
    if isinstance(error, InstantiationException) and isinstance(
        error.__cause__, USER_ERRORS
    ):
        key = str(error).rsplit("full_key:", 1)
        where = f" (config key: {key[1].strip()})" if len(key) == 2 else ""
        return " ".join(str(error.__cause__).split()) + where
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
