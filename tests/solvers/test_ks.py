"""KuramotoSivashinsky1D under ETDRK4 (and the IMEX scheme) against maths and scipy.
The phi functions and ETDRK4's exactness are tested in tests/solvers/test_schemes.py.

Numerical checks run in float64 and single-threaded (tiny transforms: threads only add
overhead on a shared 2-core machine; see tests/solvers/test_ns2d.py).
"""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from physim.solvers import KuramotoSivashinsky1D, RandomSines
from physim.solvers.schemes import IMEXCrankNicolsonHeun
from physim.timestepping import ConstantStep, integrate

N, L = 256, 64.0


pytestmark = pytest.mark.usefixtures("single_thread")


def sines(count, seed=0, num_points=N):
    generator = torch.Generator().manual_seed(seed)
    return RandomSines(num_points).sample(
        count, generator=generator, dtype=torch.float64
    )


def solve(solver, u0, t1, dt):
    sol = integrate(
        solver, ConstantStep(dt), solver.encode(u0), 0.0, t1, save_fn=solver.decode
    )
    return sol.ys[:, -1]


def rel_l2(a, b):
    return float((a - b).norm() / b.norm())


# --------------------------------------------------------------------- ETDRK4
def test_etdrk4_converges_at_fourth_order_on_ks_before_chaos():
    u0 = sines(1, seed=1)
    solver = KuramotoSivashinsky1D(N, L, dtype=torch.float64)
    t1 = 5.0
    reference = solve(solver, u0, t1, 0.00625 / 5)
    steps = [0.025, 0.0125, 0.00625]
    errors = [rel_l2(solve(solver, u0, t1, dt), reference) for dt in steps]
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert order >= 3.8, (errors, order)
    assert errors[-1] < 1e-9  # in the asymptotic range, far above round-off


def test_imex_scheme_converges_at_second_order_on_ks():
    # Any scheme runs the KS term: IMEX Crank-Nicolson/Heun against an ETDRK4
    # reference of the same semi-discretisation (measured slope 2.000).
    u0 = sines(1, seed=1)
    reference = solve(KuramotoSivashinsky1D(N, L, dtype=torch.float64), u0, 2.0, 1e-3)
    imex = KuramotoSivashinsky1D(
        N, L, scheme=IMEXCrankNicolsonHeun, dtype=torch.float64
    )
    assert imex.order == 2
    steps = [0.02, 0.01, 0.005, 0.0025]
    errors = [rel_l2(solve(imex, u0, 2.0, dt), reference) for dt in steps]
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 1.9 <= order <= 2.1, (errors, order)
    assert errors[-1] < 1e-7


def numpy_rhs(extent: float = L, time_scale: float = 1.0):
    """An independent numpy right-hand side: the same Fourier modes, the same 2/3
    rule (factor and product), the Nyquist derivative cut."""
    m = np.fft.rfftfreq(N, 1.0 / N)
    k = 2 * np.pi * m / extent
    mask = (3 * m < N).astype(float)
    linear, derivative = k**2 - k**4, -0.5j * k * mask

    def rhs(t, u):
        v = np.fft.rfft(u)
        w = np.fft.irfft(v * mask, n=N)
        du = np.fft.irfft(linear * v + derivative * np.fft.rfft(w * w), n=N)
        return time_scale * du

    return rhs


def test_time_derivative_is_the_right_hand_side_of_each_bound_trajectory():
    extents, scales = [58.0, 70.0], [0.18, 0.22]
    bound = KuramotoSivashinsky1D(N, 64.0, dtype=torch.float64).bind(
        {
            "domain_extent": torch.tensor(extents, dtype=torch.float64),
            "frame_interval": torch.tensor(scales, dtype=torch.float64),
        }
    )
    u = sines(2, seed=7)
    ours = bound.time_derivative(bound.encode(u)).numpy()
    for i in range(2):
        expected = numpy_rhs(extents[i], scales[i])(0.0, u[i, 0].numpy())
        # Round-off of terms that largely cancel: ~1e-13 against a maximum of 0.015.
        assert np.abs(ours[i] - expected).max() <= 1e-9 * np.abs(expected).max()


def test_ks_agrees_with_scipy_radau_on_the_same_semi_discretisation():
    # scipy's Radau IIA (order 5) on the independent numpy right-hand side.
    u0 = sines(1, seed=3)
    rhs = numpy_rhs()
    t1 = 5.0
    scipy_sol = solve_ivp(
        rhs, (0.0, t1), u0[0, 0].numpy(), method="Radau", rtol=1e-10, atol=1e-10
    )
    assert scipy_sol.success
    solver = KuramotoSivashinsky1D(N, L, dtype=torch.float64)
    ours = solve(solver, u0, t1, 0.0125)[0, 0].numpy()
    expected = scipy_sol.y[:, -1]
    assert np.linalg.norm(ours - expected) / np.linalg.norm(expected) <= 1e-6
    # Not vacuous: the state moved far from the initial condition by t = 5.
    assert np.linalg.norm(expected - u0[0, 0].numpy()) > 0.3 * np.linalg.norm(expected)


def test_step_doubling_estimates_the_error_of_the_returned_solution():
    u0 = sines(2, seed=4)
    solver = KuramotoSivashinsky1D(N, L, dtype=torch.float64, error_estimate=True)
    plain = KuramotoSivashinsky1D(N, L, dtype=torch.float64)
    y0 = solver.encode(solve(plain, u0, 2.0, 0.02))  # a developed state
    for dt in (0.2, 0.1):
        result = solver.step(y0, 0.0, dt)
        one = plain.step(y0, 0.0, dt).y
        half = plain.step(plain.step(y0, 0.0, dt / 2).y, dt / 2, dt / 2).y
        # Equal up to the round-off of the plain steps' transforms in between.
        torch.testing.assert_close(result.y, half, rtol=0, atol=1e-13)
        # Richardson: (two halves - one step) / (2^4 - 1).
        torch.testing.assert_close(result.error, (half - one) / 15, rtol=0, atol=1e-13)
        exact = solve(plain, solver.decode(y0), dt, dt / 64)[:, 0]
        ratio = float(result.error.norm() / (half - exact).norm())
        assert 0.8 <= ratio <= 1.25, ratio
    assert plain.step(y0, 0.0, 0.1).error is None


# --------------------------------------------------------------------- the PDE
def test_mean_is_conserved_and_dealiasing_barely_matters_at_256_points():
    u0 = sines(3, seed=5) + 0.3
    dealiased = solve(KuramotoSivashinsky1D(N, L, dtype=torch.float64), u0, 20.0, 0.05)
    aliased = solve(
        KuramotoSivashinsky1D(N, L, dealias=False, dtype=torch.float64), u0, 20.0, 0.05
    )
    torch.testing.assert_close(dealiased.mean(-1), u0.mean(-1), rtol=0, atol=1e-13)
    assert rel_l2(aliased, dealiased) < 1e-8
    # The dynamics did something: the state is far from the initial sines.
    assert rel_l2(dealiased, u0) > 0.5


def test_bound_solver_runs_each_trajectory_in_its_own_frame_units():
    extents = torch.tensor([58.0, 64.0, 70.0], dtype=torch.float64)
    intervals = torch.tensor([0.18, 0.2, 0.22], dtype=torch.float64)
    u0 = sines(3, seed=6)
    base = KuramotoSivashinsky1D(N, 64.0, dtype=torch.float64)
    bound = base.bind({"domain_extent": extents, "frame_interval": intervals})
    frames, frame_dt = 10.0, 0.25
    batch = solve(bound, u0, frames, frame_dt)
    for i in range(3):
        alone = KuramotoSivashinsky1D(N, float(extents[i]), dtype=torch.float64)
        # Same discretisation in physical time: steps of frame_dt * interval.
        physical = solve(
            alone, u0[i : i + 1], frames * float(intervals[i]), frame_dt * intervals[i]
        )
        torch.testing.assert_close(batch[i : i + 1], physical, rtol=0, atol=1e-11)
    assert rel_l2(batch[0], batch[2]) > 0.1  # the parameters made a difference
    assert base.parameters()["domain_extent"] == 64.0
    assert bound.parameters()["domain_extent"] == "per-trajectory"


# --------------------------------------------------------------------- samplers
def test_random_sines_match_the_reference_distribution():
    sampler = RandomSines(
        N,
        parameter_ranges={
            "domain_extent": [57.6, 70.4],
            "frame_interval": [0.18, 0.22],
        },
    )
    u0, params = sampler.sample(200, generator=torch.Generator().manual_seed(0))
    again, _ = sampler.sample(200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(u0, again) and u0.shape == (200, 1, N)
    spectrum = torch.fft.rfft(u0[:, 0].double(), norm="forward").abs()
    # Only the wavenumbers 1 and 2 (cycles per domain) are present.
    assert float(spectrum[:, [0, *range(3, N // 2 + 1)]].max()) < 1e-6
    assert float(spectrum[:, 1:3].sum(1).min()) > 0
    # |u0| <= sum of |A_j| <= 10 * 0.5.
    assert float(u0.abs().max()) <= 5.0
    for key, (low, high) in sampler.parameter_ranges.items():
        assert params[key].shape == (200,)
        assert low <= float(params[key].min()) and float(params[key].max()) <= high
        assert float(params[key].max() - params[key].min()) > 0.8 * (high - low)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_points": 7}, "num_points"),
        ({"num_points": 255}, "num_points"),
        ({"num_points": 32}, "num_points >= "),  # keeps no damped mode at L = 64
        ({"domain_extent": 0.0}, "domain_extent"),
        ({"domain_extent": -64.0}, "domain_extent"),
        ({"domain_extent": float("nan")}, "domain_extent"),
        ({"time_scale": 0.0}, "time_scale"),
        ({"time_scale": torch.tensor([0.2, -0.1])}, "time_scale"),
        (
            {"domain_extent": torch.tensor([60.0, 64.0]), "time_scale": torch.ones(3)},
            "same length",
        ),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_settings_are_rejected_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KuramotoSivashinsky1D(**{"num_points": N, **kwargs})


def test_bad_calls_name_the_problem():
    solver = KuramotoSivashinsky1D(N, L)
    with pytest.raises(ValueError, match="unknown per-trajectory parameter"):
        solver.bind({"viscosity": torch.ones(2)})
    with pytest.raises(ValueError, match=r"\[B, 1, 256\]"):
        solver.encode(torch.zeros(2, 1, 128))
    bound = solver.bind({"domain_extent": torch.full((2,), 64.0)})
    with pytest.raises(ValueError, match="2 trajectories"):
        bound.encode(torch.zeros(3, 1, N))
    for kwargs, match in [
        ({"parameter_ranges": {"domain_extent": [70.0, 60.0]}}, "domain_extent"),
        ({"wavenumbers": [0, 1]}, "wavenumbers"),
        ({"amplitude": -1.0}, "amplitude"),
    ]:
        with pytest.raises(ValueError, match=match):
            RandomSines(N, **kwargs)
