"""REBOUND (Rein & Liu 2012) as the trusted reference: IAS15, WHFast and leapfrog."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import rebound
from jaxtyping import Float

from physim.timestepping import NonFiniteError

from . import _kernels as K
from ._base import Advance, check_masses, check_phase_space

#: IAS15's action grid: epsilon = 1e-10 ... 1e-1, log-spaced (accurate to cheap).
IAS15_EPSILON_GRID = tuple(float(x) for x in np.logspace(-10, -1, 10))
#: Fixed-step REBOUND integrators: dt = 1e-4 ... 1e-1 N-body time units.
FIXED_DT_GRID = tuple(float(x) for x in np.logspace(-4, -1, 10))

#: REBOUND integrator name -> its accuracy parameter.
_PARAMETERS = {"ias15": "epsilon", "whfast": "dt", "leapfrog": "dt"}


class ReboundIntegrator:
    """One REBOUND simulation per system, driven through :class:`NBodyIntegrator`.

    The parameter is IAS15's ``epsilon`` (its adaptive-step tolerance; 1e-9 by
    default, machine-precision energy errors) or the fixed ``dt`` of WHFast/leapfrog.
    Each :meth:`advance` integrates with ``exact_finish_time`` so that the interval
    ends on ``t1``. Force evaluations are counted through REBOUND's
    ``additional_forces`` hook (called once per gravity evaluation: IAS15 evaluates
    1 + 7 per predictor-corrector iteration per step), which costs a Python call each;
    set ``count_forces=False`` for timing. WHFast splits each body's Kepler motion about
    the centre of mass (Jacobi coordinates), so it suits hierarchical systems, not
    the close equal-mass encounters of the three-body problem.

    Args:
        masses: ``N`` masses > 0.
        integrator: ``ias15``, ``whfast`` or ``leapfrog``.
        g: the gravitational constant.
        count_forces: count force evaluations (otherwise reported as 0).

    Raises:
        ValueError: for an unknown integrator or a bad mass.
    """

    def __init__(
        self,
        masses: Sequence[float] | np.ndarray,
        integrator: str = "ias15",
        g: float = 1.0,
        count_forces: bool = True,
    ) -> None:
        if integrator not in _PARAMETERS:
            raise ValueError(
                f"ReboundIntegrator: unknown integrator {integrator!r}; choose one of "
                f"{sorted(_PARAMETERS)}."
            )
        self.masses = check_masses(masses)
        self.integrator = integrator
        self.g = float(g)
        self.count_forces = count_forces
        self.parameter_name = _PARAMETERS[integrator]
        self.default_grid = (
            IAS15_EPSILON_GRID if integrator == "ias15" else FIXED_DT_GRID
        )
        self._evaluations = 0

    #: Force evaluations of a restart from a phase-space state (REBOUND evaluates
    #: the forces inside its first step).
    restart_evaluations = 0

    def _count(self, sim: rebound.Simulation) -> None:  # REBOUND callback
        self._evaluations += 1

    def start(self, y: Float[np.ndarray, "N 6"], t0: float = 0.0) -> rebound.Simulation:
        """A REBOUND simulation at ``t0`` holding the system ``y``.

        A restart mid-run (``t0 > 0``, when a policy switches to IAS15) guesses
        IAS15's first step as ``0.05 t_coll``; REBOUND's fixed default (0.001) costs
        about 3% more force evaluations over such a run (measured on 20 systems), as
        IAS15 grows its step by at most 4x per step. A start at ``t0 = 0`` keeps
        REBOUND's default, so fixed IAS15 runs are REBOUND's own.
        """
        y = np.asarray(y, dtype=np.float64)
        check_phase_space(y, self.masses)
        sim = rebound.Simulation()
        sim.G = self.g
        sim.integrator = self.integrator
        sim.exact_finish_time = 1
        sim.t = float(t0)
        if t0 > 0 and self.integrator == "ias15":
            sim.dt = 0.05 * K.collision_time(y, self.masses, self.g)
        for m, row in zip(self.masses, y, strict=True):
            sim.add(m=float(m), x=row[0], y=row[1], z=row[2], vx=row[3], vy=row[4],
                    vz=row[5])  # fmt: skip
        if self.count_forces:
            sim.additional_forces = self._count
            sim.force_is_velocity_dependent = 0
        return sim

    def advance(
        self, state: rebound.Simulation, t0: float, t1: float, parameter: float
    ) -> Advance:
        """Integrate ``state`` (in place) to ``t1``; ``t0`` must be its time."""
        if not math.isclose(state.t, t0, rel_tol=1e-12, abs_tol=1e-12):
            raise ValueError(
                f"ReboundIntegrator: the simulation is at t={state.t}, not t0={t0}."
            )
        if self.integrator == "ias15":
            state.integrator.epsilon = float(parameter)
        else:
            state.dt = float(parameter)
        self._evaluations = 0
        try:
            state.integrate(t1)
        except (
            rebound.Collision,
            rebound.Encounter,
            rebound.Escape,
            FloatingPointError,
        ) as error:
            raise NonFiniteError(state.t, [0], where=f"REBOUND: {error}: ") from error
        if not np.isfinite(self.phase_space(state)).all():
            raise NonFiniteError(t1, [0], where="REBOUND: ")
        return Advance(state, self._evaluations)

    def phase_space(self, state: rebound.Simulation) -> Float[np.ndarray, "N 6"]:
        xyz, vxvyvz = np.empty((state.N, 3)), np.empty((state.N, 3))
        state.serialize_particle_data(xyz=xyz, vxvyvz=vxvyvz)
        return np.hstack([xyz, vxvyvz])

    def __repr__(self) -> str:
        return f"ReboundIntegrator({self.integrator!r}, masses={self.masses.tolist()})"
