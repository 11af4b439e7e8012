"""Hermite and leapfrog against Kepler's exact orbit, the figure-eight and REBOUND."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physim.nbody import (
    FIGURE_EIGHT_PERIOD,
    CollisionTimeController,
    Hermite,
    Leapfrog,
    ReboundIntegrator,
    figure_eight,
    pythagorean,
)
from physim.nbody import _kernels as K
from physim.timestepping import ConstantStep, integrate

# A two-body Kepler orbit (G = 1, m = 1 + 1), started at pericentre: after one period
# P = 2 pi sqrt(a^3 / M) the exact solution is the initial state again.
SEMI_MAJOR, ECCENTRICITY, MASSES = 1.0, 0.5, np.array([1.0, 1.0])
PERIOD = 2 * math.pi * math.sqrt(SEMI_MAJOR**3 / MASSES.sum())


def kepler_state() -> np.ndarray:
    r = SEMI_MAJOR * (1 - ECCENTRICITY)
    v = math.sqrt(MASSES.sum() * (1 + ECCENTRICITY) / r)
    y = np.zeros((2, 6))
    y[0, 0], y[1, 0] = -r / 2, r / 2
    y[0, 4], y[1, 4] = -v / 2, v / 2
    return y


def one_period(integrator, steps: int) -> tuple[float, float]:
    """(max state error, relative energy error) after one period in ``steps`` steps."""
    y0 = kepler_state()
    state = integrator.prepare(torch.from_numpy(y0)[None])
    y1, n = integrator.integrate(state, 0.0, PERIOD, ConstantStep(PERIOD / steps))
    assert n == steps
    y1 = y1[0].numpy()
    e0, e1 = K.energy(y0, MASSES, 1.0), K.energy(y1, MASSES, 1.0)
    return float(np.abs(y1[:, :6] - y0).max()), abs(e1 / e0 - 1)


def observed_orders(errors: list[float]) -> np.ndarray:
    """log2 of the error ratios of step counts that double."""
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def test_hermite_fourth_order_on_kepler() -> None:
    results = [one_period(Hermite(MASSES), n) for n in (400, 800, 1600)]
    state_errors, energy_errors = zip(*results, strict=True)
    assert observed_orders(list(state_errors)).min() >= 3.8, state_errors
    # Energy is not conserved exactly (Hermite is not symplectic); its error after a
    # period falls at least as fast as the state error, and sits at the level
    # (dt / P)^4 predicts: 1.5e-7 at 400 steps.
    assert observed_orders(list(energy_errors)).min() >= 3.8, energy_errors
    assert energy_errors[0] < 1e-6
    assert energy_errors[-1] < 1e-9


def test_leapfrog_second_order_on_kepler() -> None:
    errors = [one_period(Leapfrog(MASSES), n)[0] for n in (800, 1600, 3200)]
    orders = observed_orders(errors)
    assert (orders > 1.9).all() and (orders < 2.1).all(), errors


def test_fast_path_takes_the_driver_steps() -> None:
    """The compiled loop and the generic driver + controller give the same answer."""
    system = figure_eight()
    hermite = Hermite(system.masses)
    y = hermite.prepare(torch.from_numpy(system.y)[None])
    controller = CollisionTimeController(0.01)
    fast, n_fast = hermite.integrate(y, 0.0, 1.0, controller)
    sol = integrate(hermite, controller, y, 0.0, 1.0)
    assert n_fast == sol.stats["n_steps"]
    torch.testing.assert_close(fast, sol.ys[:, -1], rtol=0, atol=1e-13)


def test_figure_eight_returns_after_one_period() -> None:
    system = figure_eight()
    hermite = Hermite(system.masses)
    state = hermite.start(system.y)
    advance = hermite.advance(state, 0.0, FIGURE_EIGHT_PERIOD, 1e-3)
    error = np.abs(hermite.phase_space(advance.state) - system.y).max()
    # The limit is the 8-digit initial conditions and period (error ~4e-8), not the
    # integrator; a coarse eta leaves a larger error, so the check can fail.
    assert error <= 1e-6
    coarse = hermite.advance(state, 0.0, FIGURE_EIGHT_PERIOD, 0.1)
    assert np.abs(hermite.phase_space(coarse.state) - system.y).max() > 1e-6


def test_pythagorean_agrees_with_ias15_at_t10() -> None:
    system = pythagorean()
    hermite = Hermite(system.masses)
    advance = hermite.advance(hermite.start(system.y), 0.0, 10.0, 1e-3)
    ias15 = ReboundIntegrator(system.masses, "ias15")
    sim = ias15.start(system.y)
    reference = ias15.advance(sim, 0.0, 10.0, 1e-9)
    assert reference.force_evaluations > 0
    positions = hermite.phase_space(advance.state)[:, :3]
    assert np.abs(positions - ias15.phase_space(sim)[:, :3]).max() <= 1e-8


def binary_and_escaper(y: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """Two-body energy of bodies 1, 2 (masses 4, 5), the energy of body 0 (mass 3)
    relative to their centre of mass, and body 0's distance from it."""
    m12 = m[1] + m[2]
    r12 = np.linalg.norm(y[1, :3] - y[2, :3])
    v12 = np.linalg.norm(y[1, 3:] - y[2, 3:])
    binary = 0.5 * m[1] * m[2] / m12 * v12**2 - m[1] * m[2] / r12
    com = (m[1] * y[1] + m[2] * y[2]) / m12
    r0 = np.linalg.norm(y[0, :3] - com[:3])
    v0 = np.linalg.norm(y[0, 3:] - com[3:])
    outer = 0.5 * m[0] * m12 / (m[0] + m12) * v0**2 - m[0] * m12 / r0
    return float(binary), float(outer), float(r0)


@pytest.mark.parametrize("eta", [1e-3])
def test_pythagorean_mass3_escapes_by_t70(eta: float) -> None:
    system = pythagorean()
    hermite = Hermite(system.masses)
    advance = hermite.advance(hermite.start(system.y), 0.0, 70.0, eta)
    y = hermite.phase_space(advance.state)
    binary, outer, distance = binary_and_escaper(y, system.masses)
    assert binary < 0  # 4 and 5 stay bound
    assert outer > 0  # 3 is unbound from them, hyperbolic ...
    assert distance > 20  # ... and already far away (IAS15: 28.6)
    e0 = K.energy(system.y, system.masses, 1.0)
    assert abs(K.energy(y, system.masses, 1.0) / e0 - 1) < 1e-7


def test_pythagorean_coarse_eta_misses_the_escape() -> None:
    """The escape check can fail: at eta = 0.01 the close encounters go wrong."""
    system = pythagorean()
    hermite = Hermite(system.masses)
    advance = hermite.advance(hermite.start(system.y), 0.0, 70.0, 0.01)
    _, outer, _ = binary_and_escaper(hermite.phase_space(advance.state), system.masses)
    assert outer < 0


@pytest.mark.parametrize("name", ["whfast", "leapfrog"])
def test_rebound_fixed_step_integrators_run(name: str) -> None:
    """The fixed-step REBOUND adapters land on t1, count forces and keep a
    hierarchical (Sun-planet) orbit's energy (WHFast suits nothing else)."""
    masses = np.array([1.0, 1e-3])
    y = np.zeros((2, 6))
    y[1, 0], y[1, 4] = 1.0, math.sqrt(masses.sum())
    rebound_integrator = ReboundIntegrator(masses, name)
    sim = rebound_integrator.start(y)
    advance = rebound_integrator.advance(sim, 0.0, 0.5, 1e-3)
    assert sim.t == pytest.approx(0.5, abs=1e-12)
    assert advance.force_evaluations >= 500
    y1 = rebound_integrator.phase_space(sim)
    e0, e1 = K.energy(y, masses, 1.0), K.energy(y1, masses, 1.0)
    assert abs(e1 / e0 - 1) < 1e-6


def test_bad_masses_and_overlap() -> None:
    with pytest.raises(ValueError, match=r"masses\[1\] = 0.0"):
        Hermite([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"masses\[0\] = -1.0"):
        Leapfrog([-1.0, 1.0])
    y = np.zeros((1, 2, 6))
    y[0, :, 3] = (0.1, -0.1)
    with pytest.raises(ValueError, match="bodies 0 and 1 overlap"):
        Hermite([1.0, 1.0]).prepare(torch.from_numpy(y))
    with pytest.raises(ValueError, match="unknown integrator 'mercurius'"):
        ReboundIntegrator([1.0, 1.0], "mercurius")
    with pytest.raises(ValueError, match="eta must be a number > 0"):
        CollisionTimeController(0.0)
