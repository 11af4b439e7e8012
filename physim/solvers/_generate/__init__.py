"""Sharded, resumable, deterministic generation of trajectory datasets with a solver.

One job per module:

- :mod:`._spec`: :class:`DatasetSpec`, the validated settings, their fingerprint and
  the attributes every file carries;
- :mod:`._files`: where the split and shard files lie, and whether a file there is a
  complete one of the spec (resume) or a foreign one (refused);
- :mod:`._solve`: per-shard seeding (:func:`shard_seed`), solving a shard as one batch,
  progress;
- :mod:`._assemble`: concatenating a split's shards into its file, ``stats.json``;
- :mod:`._generator`: :class:`DatasetGenerator`, which decides what is missing and
  runs the parts above.
"""

from ._files import SHARD_DIR
from ._generator import DatasetGenerator
from ._solve import shard_seed
from ._spec import SPLITS, DatasetSpec

__all__ = ["SHARD_DIR", "SPLITS", "DatasetGenerator", "DatasetSpec", "shard_seed"]

# The names these had when generation was one module, ``physim.solvers._generate``:
# Hydra's error messages ("Error in call to target '...'"), reprs and pickles name them.
DatasetGenerator.__module__ = __name__
shard_seed.__module__ = __name__
