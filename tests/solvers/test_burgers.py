"""Burgers1D against the Cole-Hopf exact solution, conservation and bad input.

float64, single-threaded (tiny transforms; see tests/solvers/test_ks.py).
"""

import math

import pytest
import torch

from physim.solvers import Burgers1D, RandomSines, burgers_sine_solution
from physim.timestepping import CFLController, ConstantStep, integrate

LENGTH, NU = 2 * math.pi, 0.1


pytestmark = pytest.mark.usefixtures("single_thread")


def rel_l2(a, b):
    return float((a - b).norm() / b.norm())


def test_cole_hopf_series_is_the_initial_sine_and_solves_burgers():
    x = torch.linspace(0, LENGTH, 65, dtype=torch.float64)[:-1]
    u0 = burgers_sine_solution(x, 0.0, NU, 1.0, LENGTH)
    torch.testing.assert_close(u0, torch.sin(x), rtol=0, atol=1e-11)
    # A negative amplitude is the half-period shift.
    shifted = burgers_sine_solution(x, 0.7, NU, -1.0, LENGTH)
    torch.testing.assert_close(
        shifted,
        burgers_sine_solution(x + math.pi, 0.7, NU, 1.0, LENGTH),
        rtol=0,
        atol=1e-11,
    )
    # The residual u_t + u u_x - nu u_xx of the series vanishes (finite differences).
    xs = torch.tensor([0.3, 2.0, 3.0, 5.5], dtype=torch.float64)
    h, t = 1e-3, 1.0

    def u(x, t):
        return burgers_sine_solution(x, t, NU, 1.0, LENGTH)

    u_t = (u(xs, t + h) - u(xs, t - h)) / (2 * h)
    u_x = (u(xs + h, t) - u(xs - h, t)) / (2 * h)
    u_xx = (u(xs + h, t) - 2 * u(xs, t) + u(xs - h, t)) / h**2
    residual = u_t + u(xs, t) * u_x - NU * u_xx
    assert float(residual.abs().max()) < 1e-5


def test_matches_cole_hopf_for_a_sine_before_the_front_outgrows_the_grid():
    # t = 2: the front has steepened (max |u_x| ~ 3x its initial value) and is still
    # resolved by 256 points; ETDRK4 at dt = 0.01 (Courant number ~ 0.4).
    solver = Burgers1D(256, NU, LENGTH, dtype="float64")
    x = solver.coordinates()["x"]
    u0 = torch.sin(x)[None, None]
    t1 = 2.0
    sol = integrate(
        solver, ConstantStep(0.01), solver.encode(u0), 0.0, t1, save_fn=solver.decode
    )
    exact = burgers_sine_solution(x, t1, NU, 1.0, LENGTH)
    assert rel_l2(sol.ys[0, -1, 0], exact) <= 1e-6
    # Not vacuous: the front steepened.
    slope = (exact.roll(-1) - exact.roll(1)).abs().max() / (2 * float(x[1]))
    assert float(slope) > 2.5


def test_momentum_is_conserved_and_energy_decays():
    ic = RandomSines(128, num_waves=2, amplitude=1.0, wavenumbers=[1, 2, 3, 4])
    u0 = ic.sample(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u0 = u0 + 0.25
    solver = Burgers1D(128, 0.02, 1.0, dtype="float64")
    sol = integrate(
        solver,
        CFLController(courant_number=0.5, dt_max=0.01),
        solver.encode(u0),
        0.0,
        0.5,
        save_at=[0.25, 0.5],
        save_fn=solver.decode,
    )
    means = sol.ys.mean(dim=-1)
    torch.testing.assert_close(means, u0.mean(-1, keepdim=True).expand_as(means))
    energy = sol.ys.square().mean(dim=(-1, -2))
    assert bool((energy[:, 1] < energy[:, 0]).all())
    assert bool((energy[:, 0] < u0.square().mean(dim=(-1, -2))).all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"viscosity": -0.01}, "viscosity must be a positive"),
        ({"viscosity": 0.0}, "viscosity"),
        ({"viscosity": math.inf}, "viscosity"),
        ({"num_points": 7}, "num_points"),
        ({"num_points": 6}, "num_points must be an even integer >= 8"),
        ({"domain_extent": 0.0}, "domain_extent"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_settings_are_rejected_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Burgers1D(**{"num_points": 64, **kwargs})


def test_bad_state_shape_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"\[B, 1, 64\]"):
        Burgers1D(64).encode(torch.zeros(2, 1, 32))
