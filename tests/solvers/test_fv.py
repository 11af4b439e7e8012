"""The staggered finite-volume solver and Kolmogorov-flow helpers against exact maths.

Float64 throughout; single-threaded like the other solver tests (tiny transforms).
"""

import math

import pytest
import torch

from physim.data import DatasetError
from physim.solvers import (
    DatasetGenerator,
    FilteredVelocityField,
    FiniteVolumeNS2D,
    KolmogorovFlow,
    KolmogorovForcing,
    LinearInterpolation,
    LinearVanLeerInterpolation,
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
from physim.timestepping import CFLController

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
    "interpolation",
    [LinearInterpolation(), VanLeerInterpolation(), LinearVanLeerInterpolation()],
)
@pytest.mark.parametrize("time_scheme", ["implicit_diffusion", "explicit_diffusion"])
def test_step_keeps_divergence_zero_and_conserves_momentum(interpolation, time_scheme):
    solver = FiniteVolumeNS2D(
        32,
        viscosity=0.0,
        forcing=None,
        interpolation=interpolation,
        time_scheme=time_scheme,
        dtype="float64",
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


@pytest.mark.parametrize("time_scheme", ["implicit_diffusion", "explicit_diffusion"])
def test_laminar_kolmogorov_flow_is_an_exact_steady_state(time_scheme):
    # u = A sin(k y) / (drag - nu lambda_k), v = 0: convection vanishes identically and
    # forcing, drag and the discrete diffusion balance, so a step changes nothing.
    n, viscosity = 32, 0.05
    forcing = KolmogorovForcing(amplitude=1.0, wavenumber=4, drag=0.1)
    solver = FiniteVolumeNS2D(
        n,
        viscosity=viscosity,
        forcing=forcing,
        time_scheme=time_scheme,
        dtype="float64",
    )
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


def advected_step(num_points, interpolation, courant, profile):
    """``v(x)`` advected by a constant ``u = 1``: exact 1-D linear advection.

    With ``u`` constant and ``v`` independent of ``y`` the flow is divergence-free,
    the projection changes nothing and ``v`` obeys ``v_t + v_x = 0`` discretised by the
    interpolation's advected face values along x (no viscosity, no forcing).
    """
    solver = FiniteVolumeNS2D(
        num_points, viscosity=0.0, interpolation=interpolation, dtype="float64"
    )
    velocity = torch.zeros(1, 2, num_points, num_points, dtype=torch.float64)
    velocity[0, 0] = 1.0
    velocity[0, 1] = profile[:, None]
    return solver, velocity, courant * solver.grid_spacing


def total_variation(profile):
    return float((profile - profile.roll(1)).abs().sum())


@pytest.mark.parametrize("courant", [0.3, 0.8, 1.0])
def test_van_leer_is_tvd_on_an_advected_step(courant):
    # Fails for LinearVanLeerInterpolation (van Leer on linear face values): at
    # Courant 0.8 its total variation grows by ~1e3 within 100 steps.
    n = 64
    x = torch.arange(n, dtype=torch.float64)
    step = ((x >= n // 4) & (x < n // 2)).double()
    solver, velocity, dt = advected_step(n, VanLeerInterpolation(), courant, step)
    variation = total_variation(step)
    for _ in range(100):
        velocity = solver.advance(velocity, dt)
        profile = velocity[0, 1, :, 0]
        assert total_variation(profile) <= variation + 1e-12
        variation = total_variation(profile)
        assert profile.min() >= -1e-15 and profile.max() <= 1 + 1e-15
    torch.testing.assert_close(
        velocity[0, 1], velocity[0, 1, :, :1].expand(n, n), rtol=0, atol=0
    )
    assert (velocity[0, 1, :, 0] - step).abs().max() > 0.5  # the step moved


def test_van_leer_is_lax_wendroff_on_smooth_ramps():
    # A triangle wave: on its ramps the ratio of successive differences is 1, so
    # phi = 1 and van Leer gives exactly the Lax-Wendroff face value
    # c + (1 - C)(c_right - c) / 2; the linear-based variant gives the linear value.
    n, courant = 32, 0.4
    x = torch.arange(n, dtype=torch.float64)
    tent = torch.minimum(x, n - x) / n
    solver, velocity, dt = advected_step(n, VanLeerInterpolation(), courant, tent)
    faces = solver.face_values(velocity, dt).advected[0, 1, 0, :, 0]
    ramp = torch.cat([torch.arange(2, n // 2 - 2), torch.arange(n // 2 + 2, n - 2)])
    lax_wendroff = tent + 0.5 * (1 - courant) * (tent.roll(-1) - tent)
    torch.testing.assert_close(faces[ramp], lax_wendroff[ramp], rtol=0, atol=1e-15)
    old = LinearVanLeerInterpolation()(velocity).advected[0, 1, 0, :, 0]
    assert (old[ramp] - lax_wendroff[ramp]).abs().min() > 1e-3
    # One step is then Lax-Wendroff's: second order in space and time.
    stepped = solver.advance(velocity, dt)[0, 1, :, 0]
    expected = tent - courant * (lax_wendroff - lax_wendroff.roll(1))
    inner = torch.cat([torch.arange(3, n // 2 - 2), torch.arange(n // 2 + 3, n - 2)])
    torch.testing.assert_close(stepped[inner], expected[inner], rtol=0, atol=1e-15)


def test_explicit_and_implicit_diffusion_differ_at_second_order_in_dt():
    # Both schemes are first order in time: one step from the same state differs by
    # O(dt^2 nu^2 lambda^2), shrinking 4x when dt halves.
    n = 32
    velocity = random_velocity(n, count=1)
    gaps = []
    for dt in (0.02, 0.01):
        steps = [
            FiniteVolumeNS2D(
                n, viscosity=0.05, time_scheme=scheme, dtype="float64"
            ).advance(velocity, dt)
            for scheme in ("implicit_diffusion", "explicit_diffusion")
        ]
        gaps.append(float((steps[0] - steps[1]).norm()))
    assert gaps[0] > 0
    assert 3.5 < gaps[0] / gaps[1] < 4.5, gaps


def test_compiled_step_matches_the_eager_step():
    # compile=True fuses the elementwise work with torch.compile (a smoke test of
    # the switch: a few seconds of compilation on first use).
    n = 16
    velocity = random_velocity(n, count=2)
    dt = 0.5 * (2 * math.pi / n) / 7
    for time_scheme in ("implicit_diffusion", "explicit_diffusion"):
        solvers = [
            FiniteVolumeNS2D(
                n,
                forcing=KolmogorovForcing(),
                time_scheme=time_scheme,
                dtype="float64",
                compile=compile,
            )
            for compile in (False, True)
        ]
        eager, compiled = velocity, velocity
        for k in range(3):
            eager = solvers[0].advance(eager, dt * (1 - 0.1 * k))
            compiled = solvers[1].advance(compiled, dt * (1 - 0.1 * k))
        torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-12)


def kolmogorov_generator(**pde_options):
    flow = KolmogorovFlow(16, 8, dtype="float64", **pde_options)
    dt = 0.5 * (2 * math.pi / 8) / 7
    return DatasetGenerator(
        "kolmogorov",
        flow,
        FilteredVelocityField(16),
        CFLController(0.5, dt),
        num_trajectories={"train": 1, "valid": 1},
        num_frames=2,
        output_interval=dt,
        store_points=8,
        shard_size=1,
    )


def test_dataset_fingerprint_follows_the_scheme(tmp_path):
    base = kolmogorov_generator()
    assert base.spec["pde_parameters"]["time_scheme"] == "implicit_diffusion"
    others = [
        kolmogorov_generator(interpolation=LinearVanLeerInterpolation()),
        kolmogorov_generator(time_scheme="explicit_diffusion"),
    ]
    fingerprints = {g.fingerprint for g in [base, *others]}
    assert len(fingerprints) == 3
    # Files of another scheme are refused, never silently reused.
    others[0](tmp_path, splits=["valid"], progress=False)
    assert not base.is_complete(tmp_path)
    with pytest.raises(DatasetError, match="physim_dataset_fingerprint"):
        base(tmp_path, splits=["valid"], progress=False)


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
    with pytest.raises(ValueError, match="time_scheme 'crank_nicolson'.*implicit_"):
        FiniteVolumeNS2D(16, time_scheme="crank_nicolson")
    with pytest.raises(ValueError, match="time_scheme"):
        KolmogorovFlow(16, 8, time_scheme="implicit")


class CountingInterpolation(VanLeerInterpolation):
    calls = 0

    def faces(self, velocity, courant_factor):
        CountingInterpolation.calls += 1
        return super().faces(velocity, courant_factor)


def test_steps_the_scheme_cannot_take_are_rejected_before_any_work():
    n = 16
    interpolation = CountingInterpolation()
    solver = FiniteVolumeNS2D(n, interpolation=interpolation, dtype="float64")
    velocity = 7.0 * random_velocity(n, count=1) / random_velocity(n, 1).abs().max()
    dx = solver.grid_spacing
    with pytest.raises(ValueError, match=r"Courant number 1\.2 .*dt <= "):
        solver.advance(velocity, 1.2 * dx / 7.0)
    for dt in (0.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="dt must be a finite step > 0"):
            solver.advance(velocity, dt)
    assert CountingInterpolation.calls == 0
    solver.advance(velocity, 0.5 * dx / 7.0)  # the limit is the interpolation's
    assert CountingInterpolation.calls == 1
    FiniteVolumeNS2D(n, interpolation=LinearInterpolation()).advance(
        velocity.float(), 1.2 * dx / 7.0
    )
    # Explicit diffusion: dt <= dx^2 / (4 nu).
    viscous = FiniteVolumeNS2D(n, viscosity=1.0, time_scheme="explicit_diffusion")
    with pytest.raises(ValueError, match="explicit-diffusion bound.*implicit_diff"):
        viscous.advance(velocity.float(), 0.3 * dx**2)
    viscous.advance(velocity.float(), 0.25 * dx**2)


def test_a_missing_step_size_is_named():
    velocity = random_velocity(8, count=1)
    with pytest.raises(ValueError, match="VanLeerInterpolation needs the step size"):
        VanLeerInterpolation()(velocity)
    with pytest.raises(ValueError, match="grid_spacing=None"):
        VanLeerInterpolation()(velocity, dt=0.1)
    with pytest.raises(ValueError, match="dt must be a finite step > 0"):
        VanLeerInterpolation()(velocity, dt=-0.1, grid_spacing=0.5)
    # Schemes that do not depend on dt need none.
    LinearInterpolation()(velocity)
    LinearVanLeerInterpolation()(velocity)
