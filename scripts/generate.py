"""`python scripts/generate.py data=<name>`: generate a dataset with physim's solver.

Instantiates ``cfg.data.generator`` (a :class:`physim.solvers.DatasetGenerator`) and
calls it with ``cfg.data.root``; see ``conf/generate.yaml`` for ``splits``, ``shards``
(parallel generation) and ``progress``. User errors (a bad config value, a foreign file
in the root, a blown-up solve) are printed as one line on stderr with exit status 1;
set ``PHYSIM_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from physim.data import DatasetError
from physim.timestepping import NonFiniteError

log = logging.getLogger("physim")

# Errors a user can fix from the message alone (the same set as physim.cli, which is
# not imported here so that generating data needs none of the training stack).
USER_ERRORS = (
    DatasetError,
    NonFiniteError,
    FileNotFoundError,
    ValueError,
    TypeError,
    InstantiationException,
)


def _optional_list(value: object) -> list | None:
    if value is None:
        return None
    if isinstance(value, (str, int)):
        return [value]
    return list(OmegaConf.to_container(value))  # type: ignore[arg-type]


def generate(cfg: DictConfig) -> Path:
    """Generate ``cfg.data.root`` with ``cfg.data.generator``; return the root."""
    node = cfg.data.get("generator")
    if node is None:
        raise ValueError(
            "The data config has no 'generator' node; choose a data config with one "
            "(e.g. data=ns2d) or add data.generator (a "
            "physim.solvers.DatasetGenerator)."
        )
    generator = instantiate(node, _convert_="all")
    root = Path(cfg.data.root)
    generator(
        root,
        splits=_optional_list(cfg.get("splits")),
        shards=_optional_list(cfg.get("shards")),
        progress=bool(cfg.get("progress", True)),
    )
    if generator.is_complete(root):
        log.info("Dataset '%s' is complete in %s", generator.name, root)
    else:
        log.info("Generated the requested shards of '%s' in %s", generator.name, root)
    return root


def _one_line(error: BaseException) -> str:
    cause = error.__cause__
    if isinstance(error, InstantiationException) and isinstance(cause, USER_ERRORS):
        error = cause  # the constructor's own message says what to fix
    return " ".join(str(error).split())


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    try:
        generate(cfg)
    except USER_ERRORS as error:
        if os.environ.get("PHYSIM_DEBUG"):
            raise
        print(f"physim: error: {_one_line(error)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
