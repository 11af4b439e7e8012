"""`python scripts/generate.py data=<name>`: generate a dataset with physim's solvers.

Instantiates ``cfg.data.generator`` (a :class:`physim.solvers.DatasetGenerator`) and
calls it with ``cfg.data.root``; see ``conf/generate.yaml`` for ``splits``, ``shards``
(parallel generation) and ``progress``. This entry point imports no Lightning.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ._config import CONFIG_DIR, log, report_user_errors


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


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
