"""Terms and time schemes: phi functions, exactness, observed orders (table-driven,
every scheme on one closed-form problem), error estimates and the scheme= plumbing.

float64, single-threaded (tiny tensors; see tests/solvers/test_ns2d.py).
"""

import functools
import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from physim.solvers import (
    Burgers1D,
    GaussianRandomField,
    KuramotoSivashinsky1D,
    NavierStokes2D,
    phi_functions,
)
from physim.solvers.schemes import (
    ETDRK4,
    RK4,
    ForwardEuler,
    IMEXCrankNicolsonHeun,
    SemiLinear,
    SemiLinearScheme,
    StepDoubling,
    with_error_estimate,
)
from physim.timestepping import ConstantStep, PIDController, integrate

pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------- phi functions
def phi_direct(z, k):
    """``(e^z - sum_{j<k} z^j / j!) / z^k``: exact maths, cancels for small |z|."""
    head = sum(z**j / math.factorial(j) for j in range(k))
    return (torch.exp(z) - head) / z**k


def phi_taylor(z, k, terms=25):
    return sum(z**j / float(math.factorial(j + k)) for j in range(terms))


@pytest.mark.parametrize(
    "values",
    [
        [-1e4, -700.0, -50.0, -5.0, -2.0, 2.0, 5.0],  # real, large |z|
        [-20 + 30j, 3 - 4j, -2 + 1e3j, 10j],  # complex, large |z|
    ],
)
def test_phi_functions_match_the_direct_formula_for_large_arguments(values):
    z = torch.tensor(values).to(
        torch.complex128
        if any(isinstance(v, complex) for v in values)
        else torch.float64
    )
    for k, phi in enumerate(phi_functions(z, 3), start=1):
        assert phi.dtype == z.dtype
        torch.testing.assert_close(phi, phi_direct(z, k), rtol=1e-12, atol=0)


def test_phi_functions_match_taylor_series_for_small_arguments():
    z = torch.tensor([0.0, 1e-12, -1e-8, 3e-5, -1e-3, 0.1, -1.0], dtype=torch.float64)
    zc = torch.tensor([1e-9j, -1e-4 + 1e-4j, 0.5j], dtype=torch.complex128)
    for values in (z, zc):
        for k, phi in enumerate(phi_functions(values, 3), start=1):
            torch.testing.assert_close(phi, phi_taylor(values, k), rtol=1e-13, atol=0)
    # Not vacuous: the direct formula has lost most digits at z = 1e-5 for phi_3.
    small = torch.tensor([1e-5], dtype=torch.float64)
    assert abs(float(phi_direct(small, 3)) - 1 / 6) > 1e-3


def phi_mpmath(z: float, k: int) -> float:
    """phi_k(z) in 50-digit arithmetic (mpmath): the reference of both methods."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        x = mpmath.mpf(z)
        if abs(x) < 50:
            value = mpmath.nsum(
                lambda j: x**j / mpmath.factorial(j + k), [0, mpmath.inf]
            )
        else:
            head = sum(x**j / mpmath.factorial(j) for j in range(k))
            value = (mpmath.exp(x) - head) / x**k
        return float(value)


@pytest.mark.parametrize("method", ["series", "contour"])
def test_real_phi_functions_match_high_precision_values(method):
    # Both sides of the series' switch at |z| = 1, tiny, huge and positive arguments
    # (KS has growing modes, L > 0).
    values = [0.0, 1e-300, -1e-8, 3e-5, -0.5, 0.999999, -0.999999, 1.0, -1.0]
    values += [1.000001, -1.000001, 2.5, -3.7, 10.0, -49.0, -100.0, -1e4, -1e7, 30.0]
    z = torch.tensor(values, dtype=torch.float64)
    bound = {"series": 1e-15, "contour": 3e-14}[method]
    for k, phi in enumerate(phi_functions(z, 3, method=method), start=1):
        assert phi.dtype == torch.float64
        expected = torch.tensor([phi_mpmath(v, k) for v in values], dtype=torch.float64)
        torch.testing.assert_close(phi, expected, rtol=bound, atol=0)
    # Not vacuous: the upward recurrence alone (the series' |z| >= 1 branch) has lost
    # six digits of phi_3 at z = 1e-3, where the series branch takes over.
    small = torch.tensor(1e-3, dtype=torch.float64)
    upward = ((torch.expm1(small) / small - 1.0) / small - 0.5) / small
    assert abs(float(upward) / phi_mpmath(1e-3, 3) - 1) > 1e-12


def test_phi_method_is_checked():
    with pytest.raises(ValueError, match="method must be"):
        phi_functions(torch.ones(3, dtype=torch.float64), 2, method="pade")
    with pytest.raises(ValueError, match="needs a real z"):
        phi_functions(torch.ones(3, dtype=torch.complex128), 2, method="series")


# --------------------------------------------------------------------- ETDRK4
def test_etdrk4_is_exact_for_a_linear_forced_problem():
    # dy/dt = L y + c (constant forcing): ETDRK4 integrates it exactly for any dt,
    # y(t) = e^{L t} y0 + (e^{L t} - 1) / L c, including the stiff and the L = 0 modes.
    linear = torch.tensor([-1e4, -3.0, 0.0, 0.2], dtype=torch.float64)
    forcing = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    scheme = ETDRK4(SemiLinear(linear, lambda y, t: forcing.expand_as(y)))
    y0 = torch.tensor([[1.0, 2.0, -1.0, 0.5]], dtype=torch.float64)
    y = y0
    for _ in range(4):
        y = scheme.advance(y, 0.0, 0.25)
    safe = torch.where(linear == 0, 1.0, linear)
    gain = torch.where(linear == 0, 1.0, torch.expm1(linear) / safe)  # t = 1
    exact = torch.exp(linear) * y0 + gain * forcing
    torch.testing.assert_close(y, exact, rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------- a closed-form problem
# Riccati, componentwise: y' = a y + f - y^2 = -(y - r1)(y - r2), r1,2 = (a +- d) / 2,
# d = sqrt(a^2 + 4 f). With z = (y - r1) / (y - r2): z' = -d z, so
# y(t) = (r1 - r2 z0 e^{-d t}) / (1 - z0 e^{-d t}). Every y0 > r2 tends to r1.
RATES = torch.tensor([-2.0, -0.5, 0.0, 0.4], dtype=torch.float64)
FORCE = 0.3
Y0 = torch.tensor([[0.5, 1.0, -0.2, 0.8], [0.1, -0.3, 0.6, 0.0]], dtype=torch.float64)


def riccati_exact(t: float) -> torch.Tensor:
    d = torch.sqrt(RATES**2 + 4 * FORCE)
    r1, r2 = (RATES + d) / 2, (RATES - d) / 2
    z = (Y0 - r1) / (Y0 - r2) * torch.exp(-d * t)
    return (r1 - r2 * z) / (1 - z)


def riccati_term(folded: bool) -> SemiLinear:
    """The problem as ``f + W B`` (``W = -1``, ``B = y^2``: the fold of the IMEX
    scheme is exercised) or as one nonlinear function."""
    if folded:
        return SemiLinear(
            RATES,
            lambda y, t: y.square(),
            weight=-torch.ones(4, dtype=torch.float64),
            forcing=torch.full((4,), FORCE, dtype=torch.float64),
        )
    return SemiLinear(RATES, lambda y, t: FORCE - y.square())


def solve(scheme, t1: float, dt: float) -> torch.Tensor:
    steps = round(t1 / dt)
    y = Y0
    for i in range(steps):
        y = scheme.advance(y, i * dt, dt)
    return y


# scheme factory, order, and the tolerance of the observed order
SCHEMES = [
    (ETDRK4, 4, 0.2),
    (IMEXCrankNicolsonHeun, 2, 0.1),
    (RK4, 4, 0.2),
    (ForwardEuler, 1, 0.1),
    (lambda term: StepDoubling(ETDRK4(term)), 4, 0.2),
    (lambda term: StepDoubling(IMEXCrankNicolsonHeun(term)), 2, 0.1),
]


@pytest.mark.parametrize(("factory", "order", "tolerance"), SCHEMES)
@pytest.mark.parametrize("folded", [True, False])
def test_every_scheme_converges_at_its_order(factory, order, tolerance, folded):
    scheme = factory(riccati_term(folded))
    assert scheme.order == order
    exact = riccati_exact(1.0)
    dts = [0.1, 0.05, 0.025, 0.0125]
    errors = [float((solve(scheme, 1.0, dt) - exact).abs().max()) for dt in dts]
    observed = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(observed - order) <= tolerance, (errors, observed)
    assert errors[-1] > 1e-14  # asymptotic range, not round-off


def test_folded_and_plain_terms_give_the_same_steps():
    for factory in (ETDRK4, IMEXCrankNicolsonHeun, RK4, ForwardEuler):
        folded = solve(factory(riccati_term(True)), 1.0, 0.1)
        plain = solve(factory(riccati_term(False)), 1.0, 0.1)
        torch.testing.assert_close(folded, plain, rtol=1e-14, atol=1e-15)


def test_vector_field_is_the_whole_right_hand_side():
    term = riccati_term(True)
    expected = RATES * Y0 + FORCE - Y0.square()
    torch.testing.assert_close(term.vector_field(Y0, 0.0), expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(
        term.nonlinear_part(Y0, 0.0), FORCE - Y0.square(), rtol=0, atol=1e-15
    )


def plain_etdrk4(scheme: ETDRK4, y: torch.Tensor, dt: float) -> torch.Tensor:
    """ETDRK4's docstring formulas, one plain torch expression each (no mask)."""
    c, nonlinear = scheme.coefficients(dt), scheme.term.nonlinear_part
    n_y = nonlinear(y, 0.0)
    a = c.q * n_y + c.e_half * y
    n_a = nonlinear(a, 0.5 * dt)
    b = c.q * n_a + c.e_half * y
    n_b = nonlinear(b, 0.5 * dt)
    n_c = nonlinear((2.0 * n_b - n_y) * c.q + c.e_half * a, dt)
    return c.e * y + c.f1 * n_y + c.f2_twice * (n_a + n_b) + c.f3 * n_c


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.complex64])
@pytest.mark.parametrize("rows", [1, 3, 64])
def test_etdrk4_is_its_plain_formulas_to_the_bit(dtype, rows):
    # In-place kernels and addcmul (real coefficients of a complex state only: a real
    # addcmul is a fused multiply-add) may not change a bit of the step (the
    # ks1d/burgers1d data); odd sizes run torch's scalar tails.
    gen = torch.Generator().manual_seed(0)
    rates = -torch.rand(13, generator=gen, dtype=torch.float64) * 50.0
    y = torch.randn(rows, 13, generator=gen, dtype=torch.float64).to(dtype)
    scheme = ETDRK4(SemiLinear(rates, lambda y, t: 1.0 - 0.5 * y.square(), dtype))
    expected = plain_etdrk4(scheme, y, 0.05)
    assert torch.equal(scheme.advance(y, 0.0, 0.05), expected)


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_etdrk4_folds_the_input_mask_into_its_stages_to_the_bit(dtype):
    # P y in the term (folded into ETDRK4's stage coefficients) and P y inside the
    # nonlinear function give the same bits when the function squares its input
    # (the 1-D PDEs): the fold changes at most the sign of a masked zero.
    gen = torch.Generator().manual_seed(1)
    k = torch.arange(17, dtype=torch.float64)
    kept = (k < 11).to(torch.float64)
    factor, kept_here = (-0.5j * k).to(dtype), kept.to(dtype)

    def core(y, t):
        return factor * torch.fft.rfft(torch.fft.irfft(y, n=32).square())

    masked = SemiLinear(-0.1 * k**2, core, dtype, mask=kept)
    inside = SemiLinear(-0.1 * k**2, lambda y, t: core(y * kept_here, t), dtype)
    y = torch.fft.rfft(torch.randn(3, 32, generator=gen, dtype=torch.float64)).to(dtype)
    assert torch.equal(masked.nonlinear_part(y, 0.0), inside.nonlinear(y, 0.0))
    folded, plain = ETDRK4(masked), ETDRK4(inside)
    for _ in range(20):
        y, expected = folded.advance(y, 0.0, 0.05), plain.advance(y, 0.0, 0.05)
        assert torch.equal(torch.view_as_real(y), torch.view_as_real(expected))
    assert torch.isfinite(torch.view_as_real(y)).all()
    assert float(y[:, 11:].abs().max()) > 0  # the masked modes are the state's own


# --------------------------------------------------------------------- error estimates
@pytest.mark.parametrize("factory", [ETDRK4, RK4, ForwardEuler, IMEXCrankNicolsonHeun])
def test_step_doubling_estimates_the_local_error_of_its_solution(factory):
    doubled = StepDoubling(factory(riccati_term(True)))
    assert doubled.embedded_order == doubled.order == factory.order
    for dt in (0.1, 0.05):
        result = doubled.step(Y0, 0.0, dt)
        torch.testing.assert_close(result.y, doubled.advance(Y0, 0.0, dt))
        true_error = result.y - riccati_exact(dt)
        ratio = float(result.error.norm() / true_error.norm())
        assert 0.7 <= ratio <= 1.4, ratio


def test_imex_embedded_estimate_is_the_predictor_difference_of_local_order_two():
    scheme = IMEXCrankNicolsonHeun(riccati_term(True))
    assert with_error_estimate(scheme) is scheme  # embedded: no doubling needed
    dts = [0.04, 0.02, 0.01]
    norms = [float(scheme.step(Y0, 0.0, dt).error.abs().max()) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(norms), 1)[0]
    assert 1.9 <= slope <= 2.1, norms
    assert isinstance(with_error_estimate(ETDRK4(riccati_term(True))), StepDoubling)
    assert ETDRK4(riccati_term(True)).step(Y0, 0.0, 0.1).error is None


def test_coefficient_cache_is_bounded_and_reused():
    scheme = ETDRK4(riccati_term(True), cache_size=3)
    for k in range(10):
        scheme.advance(Y0, 0.0, 0.01 + 1e-3 * k)
    assert len(scheme._cache) == 3
    first = scheme.coefficients(0.019)
    assert scheme.coefficients(0.019) is first


class ExplicitMidpoint(SemiLinearScheme):
    """A new scheme is one class (docs/architecture.md): RK2, the explicit midpoint
    rule ``y + dt F(y + dt/2 F(y, t), t + dt/2)``."""

    name = "explicit_midpoint"
    order = 2

    def advance(self, y, t, dt):
        field = self.term.vector_field
        return y + dt * field(y + 0.5 * dt * field(y, t), t + 0.5 * dt)


def test_a_scheme_written_outside_the_package_plugs_into_any_pde():
    scheme = ExplicitMidpoint(riccati_term(True))
    dts = [0.1, 0.05, 0.025]
    exact = riccati_exact(1.0)
    errors = [float((solve(scheme, 1.0, dt) - exact).abs().max()) for dt in dts]
    assert abs(np.polyfit(np.log(dts), np.log(errors), 1)[0] - 2) < 0.1, errors
    burgers = Burgers1D(64, 0.05, 2 * math.pi, scheme=ExplicitMidpoint, dtype="float64")
    assert burgers.order == 2 and burgers.parameters()["scheme"] == "explicit_midpoint"
    x = burgers.coordinates()["x"]
    u0 = torch.sin(x)[None, None]
    plain = integrate(burgers, ConstantStep(1e-3), burgers.encode(u0), 0.0, 0.5)
    doubled = Burgers1D(
        64, 0.05, 2 * math.pi, scheme=ExplicitMidpoint, error_estimate=True
    )
    assert isinstance(doubled.scheme, StepDoubling) and doubled.embedded_order == 2
    reference = Burgers1D(64, 0.05, 2 * math.pi, dtype="float64")
    exact_u = integrate(reference, ConstantStep(1e-3), reference.encode(u0), 0.0, 0.5)
    assert float((plain.ys - exact_u.ys).abs().max()) < 1e-6


# --------------------------------------------------------------------- PDE plumbing
def test_a_pde_runs_under_any_scheme_and_reports_it():
    ks = KuramotoSivashinsky1D(64, 22.0, scheme=IMEXCrankNicolsonHeun, dtype="float64")
    assert ks.order == 2 and ks.embedded_order == 1
    assert ks.parameters()["scheme"] == "imex_crank_nicolson_heun"
    result = ks.step(ks.encode(torch.ones(1, 1, 64, dtype=torch.float64)), 0.0, 0.1)
    assert result.error is not None  # the IMEX estimate is free
    ns = NavierStokes2D(16, 1e-3, scheme=ETDRK4, error_estimate=True)
    assert isinstance(ns.scheme, StepDoubling) and ns.order == 4
    assert ns.embedded_order == 4
    assert ns.parameters()["scheme"] == "etdrk4"
    assert ns.parameters()["error_estimate"] is True
    contour = functools.partial(ETDRK4, contour_points=16)
    assert Burgers1D(64, scheme=contour).scheme.contour_points == 16
    # A config's partial: what `scheme: {_target_: ..., _partial_: true}` gives.
    pde = instantiate(
        {
            "_target_": "physim.solvers.Burgers1D",
            "num_points": 64,
            "scheme": {"_target_": "physim.solvers.schemes.RK4", "_partial_": True},
        }
    )
    assert isinstance(pde.scheme, RK4) and pde.parameters()["scheme"] == "rk4"


def test_pid_controller_runs_on_every_error_estimate():
    # NS2D under ETDRK4 with step doubling, KS under IMEX with its embedded estimate.
    grf = GaussianRandomField(16)
    u = 10.0 * grf.sample(2, generator=torch.Generator().manual_seed(0))
    ns = NavierStokes2D(16, 1e-3, scheme=ETDRK4, error_estimate=True, dtype="float64")
    sol = integrate(ns, PIDController(1e-8, 1e-8), ns.encode(u), 0.0, 1.0)
    assert sol.stats["n_accepted"] > 3
    fine = integrate(ns, ConstantStep(1e-3), ns.encode(u), 0.0, 1.0)
    assert float((sol.ys - fine.ys).abs().max() / fine.ys.abs().max()) < 1e-6
    ks = KuramotoSivashinsky1D(64, 22.0, scheme=IMEXCrankNicolsonHeun, dtype="float64")
    x = ks.coordinates()["x"]
    u0 = torch.cos(2 * math.pi * x)[None, None] * 0.5
    sol = integrate(ks, PIDController(1e-6, 1e-6), ks.encode(u0), 0.0, 1.0)
    assert sol.stats["n_accepted"] > 3
    again = integrate(ks, ConstantStep(1e-3), ks.encode(u0), 0.0, 1.0)
    assert float((sol.ys - again.ys).abs().max()) < 1e-4


def test_bad_terms_and_schemes_name_the_fix():
    with pytest.raises(TypeError, match="SemiLinear"):
        ETDRK4(torch.ones(3))
    with pytest.raises(ValueError, match="weight must be real"):
        SemiLinear(RATES, lambda y, t: y, weight=torch.ones(4, dtype=torch.complex128))
    with pytest.raises(ValueError, match="dtype"):
        SemiLinear(RATES, lambda y, t: y, dtype=torch.float16)
    with pytest.raises(ValueError, match="mask must be real"):
        SemiLinear(RATES, lambda y, t: y, mask=torch.ones(4, dtype=torch.complex128))
    with pytest.raises(ValueError, match="cache_size"):
        ETDRK4(riccati_term(True), cache_size=0)
    with pytest.raises(TypeError, match="advance"):
        StepDoubling(object())


def test_default_schemes_keep_the_dataset_parameters():
    # The solvers' parameters() feed the dataset fingerprints (DatasetGenerator):
    # these are the values of the code before terms and schemes, for the data configs'
    # settings, so ns2d, ks1d and burgers1d keep their fingerprints.
    assert NavierStokes2D(64, 1e-3).parameters() == {
        "pde": "navier_stokes_2d",
        "viscosity": 1e-3,
        "num_points": 64,
        "domain_extent": 1.0,
        "forcing": "0.1 * (sin(2 pi (x + y)) + cos(2 pi (x + y)))",
        "scheme": "imex_crank_nicolson_heun",
        "dealiasing": "2/3 rule, |k_i| < N/3",
        "dtype": "float32",
    }
    assert KuramotoSivashinsky1D(256, 64.0, dealias=True).parameters() == {
        "pde": "kuramoto_sivashinsky_1d",
        "equation": "u_t + u u_x + u_xx + u_xxxx = 0",
        "num_points": 256,
        "domain_extent": 64.0,
        "time_scale": 1.0,
        "x_units": "fraction of the domain (x / domain_extent)",
        "scheme": "etdrk4",
        "contour_points": 32,
        "dealiasing": "2/3 rule, |m| < N/3",
        "dtype": "float32",
    }
    burgers = Burgers1D(256, 0.01, 1.0, error_estimate=True, dtype="float64")
    assert burgers.parameters() == {
        "pde": "burgers_1d",
        "equation": "u_t + u u_x = nu u_xx",
        "viscosity": 0.01,
        "num_points": 256,
        "domain_extent": 1.0,
        "scheme": "etdrk4",
        "error_estimate": True,
        "dealiasing": "2/3 rule, |m| < N/3",
        "dtype": "float64",
    }
