"""Which seeds a run trained and selected on, and the check that evaluation avoids them.

A system is ``paper_initial_conditions(default_rng(seed))``. Training environment
``i`` of a run with ``seed`` starts its random stream at
``10_000 + 1_000 * seed + i`` (its first system is that seed's; later ones continue
the stream and are no seed's first draw), so runs with different seeds never share a
stream. Model selection replays fixed held-out seeds (1000... by default); the
evaluation's seeds (0..99 by default) must avoid both: the authors' released code drew
training systems from seeds 0-999, which include its test seeds 0-99.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: First stream seed of training run 0; run ``seed`` starts at ``+ 1_000 * seed``.
TRAINING_STREAM_BASE = 10_000
#: Streams reserved per training run (the most environments one run may use).
STREAMS_PER_RUN = 1_000


def training_seeds(seed: int, n_envs: int) -> list[int]:
    """The stream seeds of a training run's ``n_envs`` environments.

    Raises:
        ValueError: for ``n_envs`` outside ``[1, 1000)`` or a negative seed.
    """
    if not 1 <= n_envs < STREAMS_PER_RUN:
        raise ValueError(
            f"n_envs={n_envs}: must lie in [1, {STREAMS_PER_RUN}) (one random stream "
            "per environment)."
        )
    if seed < 0:
        raise ValueError(f"seed={seed}: must be >= 0.")
    base = TRAINING_STREAM_BASE + STREAMS_PER_RUN * seed
    return [base + i for i in range(n_envs)]


def check_disjoint_seeds(
    evaluation: Iterable[int], used: Mapping[str, Iterable[int]]
) -> None:
    """Refuse evaluation seeds that a model trained or was selected on.

    Args:
        evaluation: the evaluation's seeds.
        used: label (e.g. ``"training seeds of policy[seed=0]"``) -> its seeds.

    Raises:
        ValueError: one message naming every overlap and the fix.
    """
    seeds = {int(s) for s in evaluation}
    clashes = []
    for label, other in used.items():
        overlap = sorted(seeds & {int(s) for s in other})
        if overlap:
            shown = overlap[:10] + (["..."] if len(overlap) > 10 else [])
            clashes.append(f"{label}: {shown}")
    if clashes:
        raise ValueError(
            "evaluation seeds overlap seeds used for training or selection ("
            + "; ".join(clashes)
            + "); evaluate on disjoint seeds (change first_seed/num_seeds) or "
            "retrain/reselect on other seeds."
        )
