"""What an action means: which integrator runs the next interval, with which parameter.

Three maps, one per setting:

- :class:`ParameterGrid`, the paper's: ``Discrete(n)`` over one integrator's grid.
- :class:`Menu`: ``Discrete(n)`` over ``(integrator, parameter)`` pairs, e.g. Hermite
  at a cheap eta or IAS15 at a tight tolerance, so a policy can choose the integrator
  per interval, which no fixed setting can adapt.
- :class:`ResidualParameter`: a bounded log-multiplier on a baseline parameter
  (``Box(-1, 1)``), so the zero policy is the fixed baseline exactly and learning
  starts on the fixed-parameter front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from ._simulation import INTEGRATORS, check_integrator

#: Each integrator's valid parameter range (open interval): Hermite's eta, IAS15's
#: epsilon, the fixed steps of leapfrog and WHFast (N-body time units).
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "hermite": (0.0, 1.0),
    "leapfrog": (0.0, math.inf),
    "ias15": (0.0, 1.0),
    "whfast": (0.0, math.inf),
    "rebound_leapfrog": (0.0, math.inf),
}


def check_parameter(integrator: str, value: float, key: str) -> float:
    """``value`` as a float if it lies in the integrator's valid range.

    Raises:
        ValueError: naming ``key``, the value and the range.
    """
    low, high = PARAMETER_RANGES[check_integrator(integrator)]
    value = float(value)
    if not (math.isfinite(value) and low < value < high):
        raise ValueError(
            f"{key}={value!r}: {integrator}'s parameter must lie in ({low:g}, "
            f"{high:g}); pass a value inside it."
        )
    return value


class ActionMap(Protocol):
    """Turns an agent's action into ``(integrator, parameter)``."""

    space: gym.spaces.Space
    #: Every integrator an action can name (the simulation builds them up front).
    integrators: tuple[str, ...]

    def decode(self, action: Any) -> tuple[str, float]: ...


class Menu:
    """``Discrete(n)``: action ``i`` runs ``options[i] = (integrator, parameter)``.

    Args:
        options: ``[(integrator, parameter), ...]``, e.g.
            ``[("hermite", 0.006), ("ias15", 1e-6)]``.

    Raises:
        ValueError: for no options, an unknown integrator or a parameter outside
            its integrator's range.
    """

    def __init__(self, options: Sequence[Sequence[Any]]) -> None:
        if not options:
            raise ValueError("Menu: options must not be empty; pass [[name, value]].")
        checked = []
        for i, option in enumerate(options):
            if len(option) != 2:
                raise ValueError(
                    f"options[{i}]={list(option)!r}: expected [integrator, parameter]."
                )
            name = check_integrator(str(option[0]), f"options[{i}][0]")
            checked.append((name, check_parameter(name, option[1], f"options[{i}][1]")))
        self.options: tuple[tuple[str, float], ...] = tuple(checked)
        self.integrators = tuple(dict.fromkeys(name for name, _ in self.options))
        self.space = gym.spaces.Discrete(len(self.options))

    def decode(self, action: Any) -> tuple[str, float]:
        n = self.space.n
        if not self.space.contains(action):
            raise ValueError(
                f"action={action!r} is outside the action space Discrete({n}); pass "
                f"an integer in [0, {n})."
            )
        return self.options[int(action)]

    def __repr__(self) -> str:
        return f"Menu({[list(o) for o in self.options]})"


class ParameterGrid(Menu):
    """The paper's action: ``Discrete(len(values))`` over one integrator's grid.

    Args:
        integrator: the integrator (its ``default_grid`` when ``values`` is None;
            Hermite: eta = logspace(-4, -1, 10)).
        values: the parameter of each action.
    """

    def __init__(
        self, integrator: str = "hermite", values: Sequence[float] | None = None
    ) -> None:
        check_integrator(integrator)
        if values is None:
            values = INTEGRATORS[integrator](np.ones(3), 1.0).default_grid
        super().__init__([(integrator, v) for v in values])
        self.integrator = integrator
        self.values = tuple(v for _, v in self.options)


class ResidualParameter:
    """``Box(-1, 1, (1,))``: ``parameter = baseline * 10 ** (a * max_log10_factor)``.

    Clipped to ``[low, high]``. ``a = 0`` gives ``baseline`` exactly (``10 ** 0.0`` is
    1.0 in floating point), so the zero policy reproduces the fixed baseline's
    trajectory bit for bit and a policy that learns nothing stays on the fixed front.

    Args:
        integrator: the integrator (e.g. ``hermite``: the parameter is eta).
        baseline: the parameter of the zero action; inside ``[low, high]``.
        max_log10_factor: the largest change, in decades, either way.
        low, high: the grid's bounds (Hermite: the paper's 1e-4 ... 0.1).

    Raises:
        ValueError: for an unknown integrator, a baseline outside the grid or a
            factor <= 0.
    """

    def __init__(
        self,
        integrator: str = "hermite",
        baseline: float = 0.01,
        max_log10_factor: float = 1.0,
        low: float = 1e-4,
        high: float = 0.1,
    ) -> None:
        check_integrator(integrator)
        self.low = check_parameter(integrator, low, "low")
        self.high = check_parameter(integrator, high, "high")
        if not self.low < self.high:
            raise ValueError(f"low={low} must be < high={high}.")
        baseline = float(baseline)
        if not self.low <= baseline <= self.high:
            raise ValueError(
                f"baseline={baseline!r} is outside the grid [{self.low:g}, "
                f"{self.high:g}]; pass a baseline inside it or widen low/high."
            )
        if not (math.isfinite(max_log10_factor) and max_log10_factor > 0):
            raise ValueError(
                f"max_log10_factor={max_log10_factor!r}: must be > 0 (decades)."
            )
        self.integrator = integrator
        self.integrators = (integrator,)
        self.baseline = baseline
        self.max_log10_factor = float(max_log10_factor)
        self.space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def decode(self, action: Any) -> tuple[str, float]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.size != 1 or not np.isfinite(a[0]):
            raise ValueError(
                f"action={action!r}: expected one finite number in [-1, 1]."
            )
        step = min(max(float(a[0]), -1.0), 1.0) * self.max_log10_factor
        value = self.baseline * 10.0**step
        return self.integrator, min(max(value, self.low), self.high)

    def encode(self, parameter: float) -> np.ndarray:
        """The action whose parameter is ``parameter`` (clipped to the box); float64,
        so that ``decode(encode(p))`` is ``p`` to round-off."""
        step = math.log10(parameter / self.baseline) / self.max_log10_factor
        return np.array([min(max(step, -1.0), 1.0)], dtype=np.float64)

    def __repr__(self) -> str:
        return (
            f"ResidualParameter({self.integrator!r}, baseline={self.baseline:g}, "
            f"max_log10_factor={self.max_log10_factor:g})"
        )
