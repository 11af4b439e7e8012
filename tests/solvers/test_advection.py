"""Advection1D: the exact shift, textbook orders of the grid schemes, Courant bounds."""

import math

import numpy as np
import pytest
import torch

from physim.solvers import Advection1D, GaussianPulse
from physim.timestepping import CFLController, ConstantStep, integrate

VELOCITY, DOMAIN = 0.25, (-2.0, 2.0)


def smooth(x):
    """A smooth periodic profile on [-2, 2): sin(pi x / 2) + 0.5 cos(pi x)."""
    return torch.sin(0.5 * math.pi * x) + 0.5 * torch.cos(math.pi * x)


def advect(scheme, num_points, courant, t1, profile=smooth):
    solver = Advection1D(VELOCITY, DOMAIN, num_points, scheme, dtype="float64")
    x = solver.coordinates()["x"]
    dt = courant * solver.grid_spacing / VELOCITY
    steps = round(t1 / dt)
    sol = integrate(
        solver,
        ConstantStep(t1 / steps),
        solver.encode(profile(x)[None, None]),
        0.0,
        t1,
        save_fn=solver.decode,
    )
    exact = profile(x - VELOCITY * t1)
    return float((sol.ys[0, -1, 0] - exact).norm() / exact.norm())


def test_exact_scheme_reproduces_the_shifted_pulse_of_insr():
    # INSR's setup: dt = 0.05, 240 steps, the pulse exp(-0.5 (x + 1.5)^2 / 0.1^2),
    # periodised (the pulse and its images one period either side; the bare pulse
    # jumps by 4e-6 at the boundary, which no periodic solver reproduces exactly).
    pulse = GaussianPulse(256, DOMAIN, center=-1.5, width=0.1)
    solver = Advection1D(VELOCITY, DOMAIN, 256, "exact", dtype="float64")
    x = solver.coordinates()["x"]

    def periodic(center):
        return sum(pulse.profile(x + shift, center) for shift in (-4.0, 0.0, 4.0))

    u0 = periodic(-1.5)[None, None]
    sol = integrate(
        solver, ConstantStep(0.05), solver.encode(u0), 0.0, 12.0, save_fn=solver.decode
    )
    assert sol.stats["n_accepted"] == 240
    exact = periodic(-1.5 + VELOCITY * 12.0)
    torch.testing.assert_close(sol.ys[0, -1, 0], exact, rtol=0, atol=1e-12)
    # The sampler gives the bare pulse.
    torch.testing.assert_close(
        pulse.sample(1, dtype=torch.float64)[0, 0], pulse.profile(x)
    )


@pytest.mark.parametrize(("scheme", "order"), [("upwind", 1), ("lax_wendroff", 2)])
def test_grid_schemes_show_their_textbook_order(scheme, order):
    # Fixed Courant number 0.5: the error is O(dx^p) = O(dt^p).
    sizes = [32, 64, 128, 256]
    errors = [advect(scheme, n, 0.5, 4.0) for n in sizes]
    observed = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert abs(observed - order) < 0.15, (errors, observed)
    assert errors[-1] < errors[0] / 2**order  # converging, not stagnating


def test_spectral_rk4_is_fourth_order_in_time():
    # Spectral in space (exact for these two modes): only RK4's time error is left.
    courants = [0.8, 0.4, 0.2]
    errors = [advect("spectral", 32, c, 4.0) for c in courants]
    observed = np.polyfit(np.log(courants), np.log(errors), 1)[0]
    assert observed == pytest.approx(4.0, abs=0.2), errors


@pytest.mark.parametrize(
    ("scheme", "limit"),
    [("upwind", 1.0), ("lax_wendroff", 1.0), ("spectral", 2 * math.sqrt(2) / math.pi)],
)
def test_courant_bound_is_enforced_before_any_work(scheme, limit):
    solver = Advection1D(VELOCITY, DOMAIN, 64, scheme)
    assert solver.max_stable_dt == pytest.approx(limit * solver.grid_spacing / 0.25)
    assert solver.courant_limit == pytest.approx(limit)
    with pytest.raises(ValueError, match="exceeds the scheme's stability bound"):
        solver.step(torch.zeros(1, 64), 0.0, 1.01 * solver.max_stable_dt)
    with pytest.raises(ValueError, match=r"courant_number=1\.5 .*bound"):
        solver.check_controller(CFLController(courant_number=1.5, dt_max=1.0))
    with pytest.raises(ValueError, match="dt="):
        solver.check_controller(ConstantStep(1.01 * solver.max_stable_dt))
    solver.check_controller(CFLController(courant_number=0.9 * limit, dt_max=1.0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheme": "leapfrog"}, "unknown scheme"),
        ({"domain": (2.0, -2.0)}, "domain"),
        ({"velocity": math.nan}, "velocity"),
        ({"num_points": 2}, "num_points"),
    ],
)
def test_bad_settings_are_rejected_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Advection1D(**kwargs)
