"""One system integrated interval by interval, by whichever integrator is asked for.

The environment and the evaluation share this book-keeping, so every method (a
policy, a fixed parameter, a reference integrator) is measured the same way: the
relative energy error ``|E(t) / E(0) - 1|`` from the phase-space state after each
interval, and the force evaluations each integrator reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float

from physim.timestepping import NonFiniteError

from . import _kernels as K
from ._base import MaxStepsError, NBodyIntegrator
from ._hermite import Hermite
from ._initial import NBodySystem
from ._leapfrog import Leapfrog
from ._rebound import ReboundIntegrator

#: Integrator name -> factory ``(masses, g) -> NBodyIntegrator``.
INTEGRATORS: dict[str, Callable[[np.ndarray, float], NBodyIntegrator]] = {
    "hermite": lambda m, g: Hermite(m, g),
    "leapfrog": lambda m, g: Leapfrog(m, g),
    "ias15": lambda m, g: ReboundIntegrator(m, "ias15", g),
    "whfast": lambda m, g: ReboundIntegrator(m, "whfast", g),
    "rebound_leapfrog": lambda m, g: ReboundIntegrator(m, "leapfrog", g),
}

#: Smallest relative energy error used in observations, rewards and the yardstick
#: (|dE| can be exactly 0 in round-off, where log10 is -inf).
ENERGY_ERROR_FLOOR = 1e-16


def check_integrator(name: str, key: str = "integrator") -> str:
    """``name`` if it is in :data:`INTEGRATORS`.

    Raises:
        ValueError: naming ``key`` and the known integrators.
    """
    if name not in INTEGRATORS:
        raise ValueError(
            f"{key}={name!r} is unknown; choose one of {sorted(INTEGRATORS)}."
        )
    return name


@dataclass(frozen=True)
class Interval:
    """What one interval of integration did.

    Attributes:
        energy_error: ``|dE|`` at its end (``inf`` when the integration failed).
        force_evaluations: evaluations spent, a restart included.
        nonfinite: the state went non-finite.
        stalled: the integrator hit its step cap (a near-collision).
        wall_time: seconds spent integrating.
    """

    energy_error: float
    force_evaluations: int
    nonfinite: bool
    stalled: bool
    wall_time: float

    @property
    def failed(self) -> bool:
        return self.nonfinite or self.stalled


class Simulation:
    """A system advanced one fixed interval at a time.

    Each :meth:`advance` names the integrator and its parameter for the coming
    interval. Changing integrator restarts the new one from the current phase-space
    state (its force derivatives recomputed, counted as ``restart_evaluations``);
    staying keeps the integrator's own state (REBOUND's step-size memory included).

    Args:
        system: the initial conditions.
        integrators: the integrators the run may use (built once per system).
        interval: the simulated time per :meth:`advance`, in N-body units.
    """

    def __init__(
        self, system: NBodySystem, integrators: Iterable[str], interval: float
    ) -> None:
        self.system = system
        self.interval = float(interval)
        self._pool = {
            name: INTEGRATORS[check_integrator(name)](system.masses, system.g)
            for name in dict.fromkeys(integrators)
        }
        self.y: Float[np.ndarray, "N 6"] = system.y.copy()
        self.energy0 = K.energy(system.y, system.masses, system.g)
        self.steps = 0
        #: Signed relative energy change ``E(t) / E(0) - 1`` (``nan`` after a failure).
        self.energy_drift = 0.0
        self.energy_error = 0.0
        self.previous_energy_error = 0.0
        self.force_evaluations = 0
        self.last: Interval | None = None
        self._active: str | None = None
        self._state: Any = None

    def integrator(self, name: str) -> NBodyIntegrator:
        """The integrator ``name`` of this run (e.g. to change its step cap)."""
        return self._pool[name]

    @property
    def active(self) -> str | None:
        """The integrator of the last interval (``None`` before the first)."""
        return self._active

    def advance(self, integrator: str, parameter: float) -> Interval:
        """Integrate the next interval with ``integrator`` at ``parameter``.

        A failure (non-finite state, step cap) is returned, not raised: the state
        stays at the last finite one and ``energy_error`` becomes ``inf``.
        """
        if integrator not in self._pool:
            raise ValueError(
                f"integrator={integrator!r} was not declared for this run; declare "
                f"it (declared: {sorted(self._pool)})."
            )
        chosen = self._pool[integrator]
        t0, t1 = self.steps * self.interval, (self.steps + 1) * self.interval
        evaluations = 0
        start = time.perf_counter()
        if integrator != self._active:
            if self._active is not None:
                evaluations += chosen.restart_evaluations
            self._state = chosen.start(self.y, t0)
            self._active = integrator
        nonfinite = stalled = False
        try:
            advance = chosen.advance(self._state, t0, t1, parameter)
        except NonFiniteError:
            nonfinite = True
        except MaxStepsError:  # a near-collision the step rule cannot pass
            stalled = True
        else:
            self._state = advance.state
            evaluations += advance.force_evaluations
            self.y = chosen.phase_space(self._state)
        wall_time = time.perf_counter() - start
        self.steps += 1
        self.force_evaluations += evaluations
        self.previous_energy_error = self.energy_error
        if nonfinite or stalled:
            self.energy_drift, self.energy_error = math.nan, math.inf
        else:
            energy = K.energy(self.y, self.system.masses, self.system.g)
            self.energy_drift = (energy - self.energy0) / self.energy0
            self.energy_error = abs(self.energy_drift)
        self.last = Interval(
            self.energy_error, evaluations, nonfinite, stalled, wall_time
        )
        return self.last
