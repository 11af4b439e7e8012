"""`python scripts/convert.py path=<file or folder> output=<folder>`: convert a dataset.

Reads any file :mod:`physim.data.readers` reads and writes it in physim's format
(``to=physim``) or as valid files of The Well (``to=the_well``: files The Well's
formatting checker accepts and ``the_well.data.WellDataset`` reads with the same
fields, constant fields, boundaries, grid type, parameters and statistics); see
``conf/convert.yaml``.
This entry point imports no Lightning.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from physim.data.readers import ExternalSource, to_physim, to_the_well

from ._config import CONFIG_DIR, log, report_user_errors

TARGETS = ("physim", "the_well")


def convert(cfg: DictConfig) -> Path:
    """Convert ``cfg.path`` to ``cfg.output``; return the written dataset folder."""
    if cfg.to not in TARGETS:
        raise ValueError(f"to={cfg.to!r} is not a target format; use one of {TARGETS}.")
    channels = cfg.get("channels")
    source = ExternalSource(
        cfg.path,
        format=cfg.format,
        channels=None if channels is None else list(channels),
        split_fractions=OmegaConf.to_container(cfg.split_fractions),
        split_seed=cfg.split_seed,
    )
    log.info("Converting %s", source)
    options = {"overwrite": bool(cfg.overwrite), "progress": bool(cfg.progress)}
    try:
        if cfg.to == "physim":
            out = to_physim(source.splits, cfg.output, **options)
        else:
            name = cfg.get("name") or Path(cfg.path).stem
            boundaries = cfg.get("boundaries")
            out = to_the_well(
                source.splits,
                cfg.output,
                name,
                boundaries=None
                if boundaries is None
                else OmegaConf.to_container(boundaries),
                grid_type=cfg.get("grid_type"),
                **options,
            )
    finally:
        source.close()
    log.info("Wrote %s", out)
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="convert")
@report_user_errors
def main(cfg: DictConfig) -> None:
    convert(cfg)


if __name__ == "__main__":
    main()
