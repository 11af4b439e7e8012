"""NavierStokes2D against exact solutions, convergence order and controller contracts.

Numerical checks run in float64. The solver's transforms are tiny, so the module runs
torch single-threaded: with two threads on a 2-core machine shared with other jobs, a
32^2 step measured 72 ms instead of 0.44 ms (thread oversubscription).
"""

import math

import numpy as np
import pytest
import torch

from physim.solvers import (
    FNOForcing,
    GaussianRandomField,
    NavierStokes2D,
    dealias_mask,
    rfft_wavenumber_grid,
    taylor_green_vorticity,
)
from physim.solvers.schemes import ETDRK4, RK4
from physim.timestepping import CFLController, ConstantStep, StepResult, integrate

pytestmark = pytest.mark.usefixtures("single_thread")


def grf_state(num_points, count, seed=0, scale=1.0):
    grf = GaussianRandomField(num_points)
    return scale * grf.sample(count, generator=torch.Generator().manual_seed(seed))


def rel_l2(a, b):
    return float((a - b).flatten(1).norm(dim=1).max() / b.flatten(1).norm(dim=1).min())


# --------------------------------------------------------------------------- exact
@pytest.mark.parametrize(
    ("viscosity", "wavenumber", "dt"),
    # Crank-Nicolson's error on this mode is ~ (t / dt) (nu 2 k^2 dt)^3 / 12.
    [(1e-3, 1, 1e-2), (1e-3, 2, 1e-2), (1e-2, 1, 2.5e-3), (1e-2, 2, 5e-4)],
)
def test_taylor_green_decays_exactly(viscosity, wavenumber, dt):
    solver = NavierStokes2D(64, viscosity, forcing=None, dtype=torch.float64)
    w0 = taylor_green_vorticity(64, wavenumber)
    sol = integrate(
        solver, ConstantStep(dt), solver.encode(w0), 0.0, 1.0, save_fn=solver.decode
    )
    k2 = 2 * (2 * math.pi * wavenumber) ** 2
    exact = w0 * math.exp(-viscosity * k2 * 1.0)
    assert rel_l2(sol.ys[:, -1], exact) <= 1e-6
    # The advection term vanishes, so the step is Crank-Nicolson on one mode: matching
    # its amplification factor to round-off pins the nonlinear term to zero.
    a = viscosity * k2 * dt
    steps = round(1.0 / dt)
    discrete = w0 * ((1 - a / 2) / (1 + a / 2)) ** steps
    assert rel_l2(sol.ys[:, -1], discrete) <= 1e-12
    # And the decay is visible for the larger viscosity (the test is not vacuous).
    if viscosity >= 1e-2:
        assert float(sol.ys[:, -1].norm() / w0.norm()) < 0.5


def test_tendency_matches_the_analytic_right_hand_side():
    # w = A sin(2 pi x) + B cos(4 pi y):
    # psi = A sin(2 pi x) / (2 pi)^2 + B cos(4 pi y) / (4 pi)^2,
    # u = psi_y = -B sin(4 pi y)/(4 pi), v = -psi_x = -A cos(2 pi x)/(2 pi), and
    # u . grad(w) = 1.5 A B cos(2 pi x) sin(4 pi y).
    n, nu, amp, big_a, big_b = 32, 1e-2, 0.1, 1.0, 0.8
    x = torch.arange(n, dtype=torch.float64) / n
    xx, yy = x[:, None], x[None, :]
    w0 = big_a * torch.sin(2 * math.pi * xx) + big_b * torch.cos(4 * math.pi * yy)
    w0 = w0[None, None]
    rhs = (
        -1.5 * big_a * big_b * torch.cos(2 * math.pi * xx) * torch.sin(4 * math.pi * yy)
        - nu * (2 * math.pi) ** 2 * big_a * torch.sin(2 * math.pi * xx)
        - nu * (4 * math.pi) ** 2 * big_b * torch.cos(4 * math.pi * yy)
        + amp
        * (torch.sin(2 * math.pi * (xx + yy)) + torch.cos(2 * math.pi * (xx + yy)))
    )
    solver = NavierStokes2D(n, nu, FNOForcing(amp), dtype=torch.float64)
    dt = 1e-6
    w1 = solver.decode(solver.step(solver.encode(w0), 0.0, dt).y)
    torch.testing.assert_close((w1 - w0) / dt, rhs[None, None], rtol=0, atol=1e-4)


def masked_state(solver, seed=0):
    """A GRF state (scaled to max|u| ~ 1) with no energy outside the 2/3 band."""
    y = solver.encode(grf_state(solver.num_points, 2, seed=seed, scale=20.0))
    return y * dealias_mask(solver.num_points, 2)


def test_advection_creates_no_modes_outside_the_two_thirds_band():
    solver = NavierStokes2D(24, 1e-12, forcing=None, dtype=torch.float64)
    y0 = masked_state(solver)
    y1 = solver.step(y0, 0.0, 0.01).y
    outside = ~dealias_mask(24, 2)
    assert float(y1[:, outside].abs().max()) <= 1e-13 * float(y0.abs().max())
    assert float((y1 - y0).abs().max()) > 1e-3 * float(y0.abs().max())  # it did move


def test_modes_outside_the_band_do_not_feed_the_kept_modes():
    # Both factors are truncated before the product (Orszag's rule), so energy left
    # outside the band (e.g. from the initial field) decays passively and never aliases.
    solver = NavierStokes2D(24, 1e-3, dtype=torch.float64)
    y = solver.encode(grf_state(24, 2, seed=2, scale=20.0))
    mask = dealias_mask(24, 2)
    full = solver.step(y, 0.0, 0.01).y
    truncated = solver.step(y * mask, 0.0, 0.01).y
    assert float(y[:, ~mask].abs().max()) > 1e-3 * float(y.abs().max())
    torch.testing.assert_close(full[:, mask], truncated[:, mask], rtol=0, atol=1e-13)


def test_dealiased_advection_conserves_energy_and_enstrophy():
    # The 2/3-rule product is the exact Galerkin projection, so for a state inside the
    # band sum conj(w) A = 0 (enstrophy) and sum conj(psi) A = 0 (energy) to round-off.
    n = 32
    solver = NavierStokes2D(n, 1e-3, forcing=None, dtype=torch.float64)
    y = masked_state(solver, seed=1)
    advection = solver._advection(y) * dealias_mask(n, 2)
    kx, ky = rfft_wavenumber_grid(n, 2)
    k2 = (2 * math.pi) ** 2 * (kx**2 + ky**2)
    psi = y / torch.where(k2 > 0, k2, 1.0) * (k2 > 0)
    weights = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64)
    weights[0] = weights[-1] = 1.0  # rfft columns counted once / twice
    for field in (y, psi):
        production = (field.conj() * advection * weights).real.sum(dim=(-2, -1))
        size = (field.abs() * advection.abs() * weights).sum(dim=(-2, -1))
        assert float((production / size).abs().max()) <= 1e-13


def test_max_speed_of_taylor_green_is_one():
    solver = NavierStokes2D(64, 1e-3, forcing=None, dtype=torch.float64)
    speed = solver.max_speed(
        solver.encode(taylor_green_vorticity(64).repeat(3, 1, 1, 1))
    )
    assert speed.shape == (3,)
    torch.testing.assert_close(
        speed, torch.ones(3, dtype=torch.float64), rtol=1e-14, atol=0
    )


# --------------------------------------------------------------------------- order
def test_observed_temporal_order_is_two():
    solver = NavierStokes2D(32, 1e-3, dtype=torch.float64)
    y0 = solver.encode(grf_state(32, 2))
    ref = solver.decode(
        integrate(solver, ConstantStep(1 / 1280), y0, 0.0, 1.0).ys[:, -1]
    )
    dts = [1 / 10, 1 / 20, 1 / 40, 1 / 80]
    errors = []
    for dt in dts:
        y = integrate(solver, ConstantStep(dt), y0, 0.0, 1.0).ys[:, -1]
        errors.append(rel_l2(solver.decode(y), ref))
    order = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 1.9 <= order <= 2.2, (order, errors)


@pytest.mark.parametrize("scheme", [ETDRK4, RK4])
def test_other_schemes_converge_at_their_order(scheme):
    # Any scheme runs the vorticity term; measured slopes 4.01 (ETDRK4), 4.14 (RK4).
    solver = NavierStokes2D(32, 1e-3, scheme=scheme, dtype=torch.float64)
    assert solver.order == 4
    y0 = solver.encode(grf_state(32, 2))
    ref = integrate(solver, ConstantStep(1 / 1280), y0, 0.0, 1.0).ys[:, -1]
    dts = [1 / 10, 1 / 20, 1 / 40, 1 / 80]
    errors = []
    for dt in dts:
        y = integrate(solver, ConstantStep(dt), y0, 0.0, 1.0).ys[:, -1]
        errors.append(rel_l2(solver.decode(y), solver.decode(ref)))
    order = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert 3.8 <= order <= 4.3, (order, errors)
    assert errors[-1] > 1e-13  # in the asymptotic range, above round-off


def test_embedded_error_estimate_is_second_order_local():
    # error = w_{n+1} - w* with w* first order: locally O(dt^2).
    solver = NavierStokes2D(32, 1e-3, dtype=torch.float64)
    y0 = solver.encode(grf_state(32, 1, seed=3, scale=10.0))
    dts = [0.02, 0.01, 0.005]
    norms = [float(solver.step(y0, 0.0, dt).error.abs().max()) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(norms), 1)[0]
    assert 1.9 <= slope <= 2.1, norms
    result = solver.step(y0, 0.0, 0.01)
    assert isinstance(result, StepResult)
    assert result.error.shape == result.y.shape == y0.shape


# --------------------------------------------------------------------------- batching
def test_batched_trajectory_equals_single():
    solver = NavierStokes2D(32, 1e-3, dtype=torch.float64)
    u = grf_state(32, 4, seed=5, scale=5.0)
    batch = integrate(solver, ConstantStep(0.02), solver.encode(u), 0.0, 0.5).ys[:, -1]
    alone = integrate(solver, ConstantStep(0.02), solver.encode(u[2:3]), 0.0, 0.5).ys[
        :, -1
    ]
    scale = alone.abs().max()
    assert float((batch[2:3] - alone).abs().max() / scale) <= 1e-12


def test_chunked_advection_is_bit_identical_to_one_shot():
    # Large CPU batches run in chunks through kept buffers (page faults of fresh
    # temporaries cost more than the arithmetic); same calls per trajectory, same bits.
    for dtype in (torch.float32, torch.float64):
        solver = NavierStokes2D(64, 1e-3, dtype=dtype)
        y = solver.encode(grf_state(64, 7, seed=8, scale=10.0))
        advection = solver._advection
        one_shot = torch.view_as_real(advection._at_once(y))
        for chunk in (1, 3, 7):
            chunked = torch.view_as_real(advection._in_chunks(y, chunk))
            assert torch.equal(chunked, one_shot)
        # The step through chunks of 3 trajectories gives the one-shot step's bits.
        advection.small_bytes = 0
        advection.chunk_bytes = 3 * 2 * 64**2 * y.real.element_size()
        result = solver.step(y, 0.0, 0.01)
        assert advection._buffers is not None and advection._buffers[0] == 3
        assert torch.equal(solver.max_speed(y), solver._max_speed(y))  # chunked too
        advection.small_bytes = 2**62  # one shot
        again = solver.step(y, 0.0, 0.01)
        assert torch.equal(torch.view_as_real(result.y), torch.view_as_real(again.y))


# --------------------------------------------------------------------------- CFL
class RecordingController:
    """Delegates to a controller; records each accepted step (dt, y at its start)."""

    def __init__(self, inner):
        self.inner = inner
        self.accepted: list[tuple[float, torch.Tensor]] = []

    def init(self, stepper, t0, y0, dt0):
        return self.inner.init(stepper, t0, y0, dt0)

    def adapt(self, stepper, t, dt, y0, result, state):
        decision = self.inner.adapt(stepper, t, dt, y0, result, state)
        if decision.accept:
            self.accepted.append((dt, y0))
        return decision


def test_cfl_controller_respects_the_courant_bound_and_hits_save_times():
    courant = 0.5
    solver = NavierStokes2D(32, 1e-3, dtype=torch.float64)
    y0 = solver.encode(grf_state(32, 2, scale=10.0))  # max |u| ~ 0.45: CFL is active
    save_at = [0.5, 1.0, 1.5]
    controller = RecordingController(CFLController(courant, dt_max=1.0))
    sol = integrate(
        solver, controller, y0, 0.0, 1.5, save_at=save_at, save_fn=solver.decode
    )
    assert sol.ts.tolist() == save_at
    assert len(controller.accepted) > 30
    for dt, y_start in controller.accepted:
        speed = float(solver.max_speed(y_start).max())
        assert dt * speed / solver.grid_spacing <= courant * (1 + 1e-12)
    fine = integrate(
        solver,
        ConstantStep(1 / 1280),
        y0,
        0.0,
        1.5,
        save_at=save_at,
        save_fn=solver.decode,
    )
    errors = [rel_l2(sol.ys[:, i], fine.ys[:, i]) for i in range(3)]
    assert max(errors) <= 1e-2, errors  # measured ~4e-3 at courant 0.5
    # Second order: halving the Courant number cuts the error about fourfold.
    half = integrate(
        solver,
        CFLController(courant / 2, 1.0),
        y0,
        0.0,
        1.5,
        save_at=save_at,
        save_fn=solver.decode,
    )
    half_errors = [rel_l2(half.ys[:, i], fine.ys[:, i]) for i in range(3)]
    ratios = [e / h for e, h in zip(errors, half_errors, strict=True)]
    assert all(3.0 <= r <= 5.0 for r in ratios), ratios


# --------------------------------------------------------------------------- dtypes
def test_float32_solve_is_close_to_float64():
    u = grf_state(32, 2, seed=4, scale=10.0)
    results = {}
    for dtype in (torch.float32, torch.float64):
        solver = NavierStokes2D(32, 1e-3, dtype=dtype)
        y = integrate(solver, ConstantStep(0.01), solver.encode(u), 0.0, 1.0).ys[:, -1]
        assert y.dtype == solver.complex_dtype
        results[dtype] = solver.decode(y)
    assert results[torch.float32].dtype == torch.float32
    # float32 round-off (~1e-7 per step) over 100 steps; measured ~2e-6.
    assert rel_l2(results[torch.float32].double(), results[torch.float64]) <= 1e-4


def test_dtype_by_name_and_encode_casts():
    solver = NavierStokes2D(16, 1e-3, dtype="float32")
    assert solver.dtype == torch.float32
    y = solver.encode(torch.zeros(2, 1, 16, 16, dtype=torch.float64))
    assert y.dtype == torch.complex64 and y.shape == (2, 16, 9)


def test_encode_decode_round_trip():
    solver = NavierStokes2D(32, 1e-3, dtype=torch.float64)
    u = grf_state(32, 3)
    torch.testing.assert_close(solver.decode(solver.encode(u)), u, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- protocol
def test_protocol_attributes_and_parameters():
    solver = NavierStokes2D(16, 2e-3)
    assert solver.name == "navier_stokes_2d"
    assert solver.channel_names == ("vorticity",)
    assert solver.spatial_dims == ("x", "y")
    assert solver.order == 2
    assert solver.grid_spacing == 1 / 16
    coords = solver.coordinates()
    assert coords["x"].tolist() == [i / 16 for i in range(16)]
    assert solver.coordinates(8)["y"].tolist() == [i / 8 for i in range(8)]
    params = solver.parameters()
    assert params["viscosity"] == 2e-3 and params["num_points"] == 16
    assert "sin(2 pi (x + y))" in params["forcing"]
    assert all(isinstance(v, int | float | str) for v in params.values())
    assert NavierStokes2D(16, 1e-3, forcing=None).parameters()["forcing"] == "none"


def test_crank_nicolson_cache_is_bounded():
    solver = NavierStokes2D(16, 1e-3, dtype=torch.float64)
    y = solver.encode(grf_state(16, 1))
    for k in range(20):
        solver.step(y, 0.0, 0.01 + 1e-4 * k)
    assert len(solver.scheme._cache) <= solver.scheme.cache_size == 8


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"viscosity": 0.0}, "viscosity"),
        ({"viscosity": -1e-3}, "viscosity"),
        ({"num_points": 0}, "num_points"),
        ({"num_points": 2}, "num_points"),
        ({"num_points": 33}, "num_points"),
        ({"dtype": torch.float16}, "dtype"),
        ({"dtype": "float128"}, "dtype"),
        ({"forcing": 0.1}, "forcing"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NavierStokes2D(**kwargs)


def test_encode_rejects_wrong_shape():
    solver = NavierStokes2D(16, 1e-3)
    with pytest.raises(ValueError, match=r"\[B, 1, 16, 16\].*spectral_resample"):
        solver.encode(torch.zeros(1, 1, 32, 32))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_solve_matches_cpu():
    u = grf_state(64, 2, seed=6, scale=10.0)
    out = {}
    for device in ("cpu", "cuda"):
        solver = NavierStokes2D(64, 1e-3, dtype=torch.float64, device=device)
        y = solver.encode(u)
        assert y.device.type == device
        sol = integrate(
            solver, CFLController(0.5, 0.05), y, 0.0, 1.0, save_fn=solver.decode
        )
        out[device] = sol.ys.cpu()
    assert rel_l2(out["cuda"], out["cpu"]) <= 1e-10
