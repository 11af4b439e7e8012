"""The staggered finite-volume solver and Kolmogorov-flow helpers against exact maths.

Float64 throughout; single-threaded like the other solver tests (tiny transforms).
"""

import math

import pytest
import torch

from physim.solvers import (
    FilteredVelocityField,
    FiniteVolumeNS2D,
    KolmogorovFlow,
    KolmogorovForcing,
    LinearInterpolation,
    VanLeerInterpolation,
    check_time_step,
    downsample_staggered,
    laplacian_eigenvalues,
    linear_face_values,
    pressure_projection,
    spectral_resample,
    staggered_divergence,
    taylor_green_velocity,
    van_leer_limit,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def random_velocity(n, count=2, seed=0):
    field = FilteredVelocityField(n, peak_wavenumber=3)
    generator = torch.Generator().manual_seed(seed)
    return field.sample(count, generator=generator, dtype=torch.float64)


def test_projection_makes_the_discrete_divergence_vanish():
    n = 32
    dx = 2 * math.pi / n
    velocity = torch.randn(3, 2, n, n, dtype=torch.float64)
    assert staggered_divergence(velocity, dx).abs().max() > 1.0
    projected = pressure_projection(velocity, laplacian_eigenvalues(n, dx), dx)
    assert staggered_divergence(projected, dx).abs().max() <= 1e-10
    # A projection: applying it again changes nothing, and the mean flow is kept.
    again = pressure_projection(projected, laplacian_eigenvalues(n, dx), dx)
    torch.testing.assert_close(again, projected, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        projected.mean((-2, -1)), velocity.mean((-2, -1)), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize(
    "interpolation", [LinearInterpolation(), VanLeerInterpolation()]
)
def test_step_keeps_divergence_zero_and_conserves_momentum(interpolation):
    solver = FiniteVolumeNS2D(
        32, viscosity=0.0, forcing=None, interpolation=interpolation, dtype="float64"
    )
    velocity = random_velocity(32) + torch.tensor([0.3, -0.2]).view(1, 2, 1, 1)
    momentum = velocity.sum((-2, -1))
    dt = 0.5 * solver.grid_spacing / float(velocity.abs().max())
    for _ in range(20):
        velocity = solver.advance(velocity, dt)
        assert staggered_divergence(velocity, solver.grid_spacing).abs().max() <= 1e-10
    # Flux form: the fluxes telescope, so total momentum is exact to round-off.
    torch.testing.assert_close(velocity.sum((-2, -1)), momentum, rtol=0, atol=1e-10)
    assert (velocity - random_velocity(32)).abs().max() > 0.1  # the flow did move


def test_taylor_green_converges_at_second_order_in_space():
    viscosity, dt, t1 = 0.05, 2e-3, 0.5
    errors = []
    sizes = (8, 16, 32)
    for n in sizes:
        solver = FiniteVolumeNS2D(
            n, viscosity=viscosity, interpolation=LinearInterpolation(), dtype="float64"
        )
        velocity = taylor_green_velocity(n)
        for _ in range(round(t1 / dt)):
            velocity = solver.advance(velocity, dt)
        exact = taylor_green_velocity(n, t1, viscosity)
        errors.append(float((velocity - exact).norm() / exact.norm()))
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:], strict=False)]
    assert all(abs(order - 2.0) < 0.15 for order in orders), (errors, orders)


def test_laminar_kolmogorov_flow_is_an_exact_steady_state():
    # u = A sin(k y) / (drag - nu lambda_k), v = 0: convection vanishes identically and
    # forcing, drag and the discrete diffusion balance, so a step changes nothing.
    n, viscosity = 32, 0.05
    forcing = KolmogorovForcing(amplitude=1.0, wavenumber=4, drag=0.1)
    solver = FiniteVolumeNS2D(n, viscosity=viscosity, forcing=forcing, dtype="float64")
    dx = solver.grid_spacing
    y = (torch.arange(n, dtype=torch.float64) + 0.5) * dx
    eigenvalue = (2 * math.cos(4 * dx) - 2) / dx**2
    profile = torch.sin(4 * y) / (forcing.drag - viscosity * eigenvalue)
    steady = torch.zeros(1, 2, n, n, dtype=torch.float64)
    steady[0, 0] = profile[None, :]
    stepped = solver.advance(steady, 0.01)
    torch.testing.assert_close(stepped, steady, rtol=0, atol=1e-13)
    # With the continuous eigenvalue -16 instead, it would drift measurably.
    wrong = (
        steady
        * (forcing.drag - viscosity * eigenvalue)
        / (forcing.drag + 16 * viscosity)
    )
    assert (solver.advance(wrong, 0.01) - wrong).abs().max() > 1e-6


def test_van_leer_limit_is_upwind_at_extrema_and_linear_on_smooth_ramps():
    c = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0]], dtype=torch.float64)
    c = c[:, :, None].expand(1, 8, 4)
    linear = linear_face_values(torch.stack([c, c], 1)).advected[:, 0, 0]
    positive = torch.ones_like(c)
    limited = van_leer_limit(c, 0, positive, linear)
    # On the ramp (faces 1.5 .. 3.5 between cells 1-4) r = 1, phi = 1: linear.
    torch.testing.assert_close(limited[0, 1:4], linear[0, 1:4])
    # At the peak (face between cells 5 and 6, r < 0): first-order upwind, c_5.
    torch.testing.assert_close(limited[0, 5], c[0, 5])
    # Negative velocity takes the value downstream in index order.
    limited_neg = van_leer_limit(c, 0, -positive, linear)
    torch.testing.assert_close(limited_neg[0, 4], c[0, 5])


def test_face_averaging_keeps_a_divergence_free_field_divergence_free():
    fine = random_velocity(64)
    assert staggered_divergence(fine, 2 * math.pi / 64).abs().max() <= 1e-10
    for m in (32, 16, 8):
        coarse = downsample_staggered(fine, m)
        assert coarse.shape == (2, 2, m, m)
        div = staggered_divergence(coarse, 2 * math.pi / m)
        assert div.abs().max() <= 1e-10
    # Spectral truncation of the same field does not keep it (the test can fail).
    truncated = spectral_resample(fine, 16)
    assert staggered_divergence(truncated, 2 * math.pi / 16).abs().max() > 1e-3


def test_face_averages_are_block_means_of_the_right_faces():
    fine = torch.arange(2 * 8 * 8, dtype=torch.float64).reshape(1, 2, 8, 8)
    coarse = downsample_staggered(fine, 4)
    # u: fine x-faces 1, 3, 5, 7 lie on coarse faces; average pairs along y.
    torch.testing.assert_close(coarse[0, 0, 1, 2], fine[0, 0, 3, 4:6].mean())
    # v: fine y-faces 1, 3, 5, 7; average pairs along x.
    torch.testing.assert_close(coarse[0, 1, 2, 1], fine[0, 1, 4:6, 3].mean())


def test_filtered_velocity_field_is_divergence_free_with_max_speed():
    field = FilteredVelocityField(64, peak_wavenumber=4, max_velocity=7.0)
    velocity = field.sample(3, generator=torch.Generator().manual_seed(1))
    peak = velocity.abs().flatten(1).amax(1)
    torch.testing.assert_close(peak, torch.full((3,), 7.0), rtol=1e-5, atol=0)
    assert staggered_divergence(velocity.double(), 2 * math.pi / 64).abs().max() < 1e-3
    again = field.sample(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(velocity, again)


def test_kolmogorov_flow_decodes_to_coarse_face_averages():
    flow = KolmogorovFlow(32, 8, dtype="float64")
    velocity = random_velocity(32)
    torch.testing.assert_close(
        flow.decode(flow.encode(velocity)), downsample_staggered(velocity, 8)
    )
    assert len(flow.coordinates()["x"]) == 32
    assert len(flow.coordinates(8)["x"]) == 8


# ------------------------------------------------------------------ bad input
def test_bad_input_is_rejected_before_any_work():
    with pytest.raises(ValueError, match="does not divide"):
        KolmogorovFlow(100, 32)
    with pytest.raises(ValueError, match="store_points"):
        KolmogorovFlow(64, 32).coordinates(16)
    with pytest.raises(ValueError, match="Courant number"):
        check_time_step(0.2, 7.0, 2 * math.pi / 32)
    check_time_step(0.5 * (2 * math.pi / 32) / 7.0, 7.0, 2 * math.pi / 32)
    with pytest.raises(ValueError, match="num_points"):
        FiniteVolumeNS2D(3)
    with pytest.raises(ValueError, match="viscosity"):
        FiniteVolumeNS2D(16, viscosity=-1.0)
    with pytest.raises(ValueError, match=r"\[B, 2, 16, 16\]"):
        FiniteVolumeNS2D(16).encode(torch.zeros(1, 1, 16, 16))
