"""Initial conditions: the reference paper's distribution, figure-eight, Pythagorean.

N-body units (Heggie & Mathieu 1986 style, as AMUSE's ``nbody_to_si(M, L)``): G = 1,
mass unit M = the total mass (3 solar masses for the paper's systems), length unit
L = 1 au; the time unit is ``sqrt(L^3 / (G M))`` (about 0.0919 yr) and the velocity
unit ``L / T`` (about 51.6 km/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float

from ._base import check_masses, check_phase_space

#: IAU nominal solar mass parameter G M_sun [m^3 s^-2] and the astronomical unit [m].
GM_SUN = 1.3271244e20
AU = 1.495978707e11
#: Julian year [s] and km/s in m/s.
YEAR = 365.25 * 86400.0
KM_PER_S = 1e3


@dataclass(frozen=True)
class NBodyUnits:
    """N-body units with G = 1 for a total mass (solar masses) and length (au)."""

    total_mass_msun: float = 3.0
    length_au: float = 1.0

    @property
    def time_s(self) -> float:
        """The time unit in seconds."""
        length = self.length_au * AU
        return math.sqrt(length**3 / (GM_SUN * self.total_mass_msun))

    def years(self, t_yr: float) -> float:
        """``t_yr`` years in N-body time units."""
        return t_yr * YEAR / self.time_s

    def velocity(self, v_km_s: float) -> float:
        """``v_km_s`` km/s in N-body velocity units."""
        return v_km_s * KM_PER_S * self.time_s / (self.length_au * AU)


@dataclass(frozen=True)
class NBodySystem:
    """Masses and a phase-space state ``[N, 6]`` (positions, velocities), G given.

    Raises:
        ValueError: for a mass <= 0, a wrong shape, non-finite values or two bodies at
            (nearly) the same place (``min_separation``).
    """

    masses: Float[np.ndarray, " N"]
    y: Float[np.ndarray, "N 6"]
    g: float = 1.0
    min_separation: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        masses = check_masses(self.masses)
        y = np.asarray(self.y, dtype=np.float64)
        check_phase_space(y, masses, min_separation=self.min_separation)
        object.__setattr__(self, "masses", masses)
        object.__setattr__(self, "y", y)

    def centre_of_mass_frame(self) -> NBodySystem:
        """The same system seen from its centre of mass (at rest at the origin)."""
        weights = self.masses[:, None] / self.masses.sum()
        return NBodySystem(self.masses, self.y - (weights * self.y).sum(0), self.g)


def paper_initial_conditions(
    rng: np.random.Generator, units: NBodyUnits | None = None
) -> NBodySystem:
    """A planar three-body system from the reference paper's distribution.

    Three 1-solar-mass bodies: body 0 at the origin moving at (0, 10) km/s, body 1 at
    (U[5, 20], U[0, 10]) au moving at (-10, 0) km/s, body 2 at (U[-10, 0], U[5, 20]) au
    at rest; then moved to the centre-of-mass frame and converted to N-body units
    (M = 3 solar masses, L = 1 au).

    Args:
        rng: the random generator (one draw of four uniforms).
        units: the N-body units (default: 3 solar masses, 1 au).
    """
    units = units or NBodyUnits()
    x1, y1, x2, y2 = rng.uniform([5.0, 0.0, -10.0, 5.0], [20.0, 10.0, 0.0, 20.0])
    v = units.velocity(10.0)
    length = 1.0 / units.length_au
    y = np.zeros((3, 6))
    y[0, 4] = v
    y[1, :2] = (x1 * length, y1 * length)
    y[1, 3] = -v
    y[2, :2] = (x2 * length, y2 * length)
    masses = np.full(3, 1.0 / units.total_mass_msun)
    return NBodySystem(masses, y).centre_of_mass_frame()


#: Period of the figure-eight orbit (Chenciner & Montgomery 2000; Simo's values).
FIGURE_EIGHT_PERIOD = 6.32591398


def figure_eight() -> NBodySystem:
    """The figure-eight choreography (G = m = 1), period :data:`FIGURE_EIGHT_PERIOD`."""
    x1 = np.array([0.97000436, -0.24308753, 0.0])
    v3 = np.array([-0.93240737, -0.86473146, 0.0])
    y = np.zeros((3, 6))
    y[0, :3], y[1, :3] = x1, -x1
    y[0, 3:], y[1, 3:], y[2, 3:] = -v3 / 2, -v3 / 2, v3
    return NBodySystem(np.ones(3), y)


def pythagorean() -> NBodySystem:
    """Burrau's problem: masses 3, 4, 5 at rest at (1, 3), (-2, -1), (1, -1) (G = 1).

    The centre of mass is at the origin. The mass-3 body escapes (around t = 60) and the
    4 and 5 bodies leave as a binary (Szebehely & Peters 1967).
    """
    y = np.zeros((3, 6))
    y[:, :2] = [(1.0, 3.0), (-2.0, -1.0), (1.0, -1.0)]
    return NBodySystem(np.array([3.0, 4.0, 5.0]), y)
