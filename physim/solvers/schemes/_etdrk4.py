"""Cox & Matthews' fourth-order exponential time differencing Runge-Kutta scheme."""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from ._base import SemiLinearScheme
from ._phi import phi_functions
from ._term import SemiLinear, State, cast_to_state

__all__ = ["ETDRK4"]


class _Coefficients(NamedTuple):
    """ETDRK4 coefficients for one ``dt`` (Kassam & Trefethen's notation)."""

    e: Tensor  # e^{dt L}
    e_half: Tensor  # P e^{dt L / 2} (P: the term's input mask, or 1)
    q: Tensor  # P dt/2 phi_1(dt L / 2)
    minus_q: Tensor  # -P dt/2 phi_1(dt L / 2)
    f1: Tensor  # dt (phi_1 - 3 phi_2 + 4 phi_3)(dt L)
    f2_twice: Tensor  # 2 dt (phi_2 - 2 phi_3)(dt L)
    f3: Tensor  # dt (4 phi_3 - phi_2)(dt L)
    # addcmul's x + (1 t1) t2 is x + t1 t2 to the bit: real-valued coefficients of a
    # complex state (torch's real addcmul is a fused multiply-add, its complex one
    # with a complex coefficient differs in float32's scalar tail).
    fused: bool


class ETDRK4(SemiLinearScheme):
    """ETDRK4 (Cox & Matthews 2002): order 4, the linear part integrated exactly.

    Advances ``dy/dt = L y + N(y, t)`` (:class:`SemiLinear`, ``L`` diagonal)::

        a = E/2 y + Q N(y, t)
        b = E/2 y + Q N(a, t + dt/2)
        c = E/2 a + Q (2 N(b, t + dt/2) - N(y, t))
        y_next = E y + f1 N(y, t) + 2 f2 (N(a, ...) + N(b, ...)) + f3 N(c, t + dt)

    with ``E = e^{dt L}``, ``E/2 = e^{dt L / 2}``, ``Q = dt/2 phi_1(dt L / 2)`` and
    ``f1, f2, f3`` combinations of ``phi_1..phi_3(dt L)`` (:func:`phi_functions`).
    Fourth order for non-stiff and (in practice) stiff problems, four nonlinear
    evaluations per step, exact for ``N`` constant. No embedded error estimate: wrap
    it in :class:`StepDoubling` for one.

    Coefficients are built in float64/complex128 per ``float(dt)`` (the phi functions
    of a real ``L`` by series and recurrences, of a complex one by the contour
    integral: :func:`phi_functions`, ``phi_method``) and cast to the
    state's dtype once (:class:`SemiLinearScheme`, :func:`cast_to_state`). The stages
    ``a, b, c`` are only read by ``N``, so a term's input mask ``P`` (the 2/3 rule) is
    folded into their coefficients ``E/2`` and ``Q``: ``N`` gets them masked already.

    Good values: the default scheme of the 1-D spectral PDEs; at the Courant number
    ``max|u| dt / dx`` ~ 0.5-1 of the advection its error is far below a 2nd-order
    scheme's (KS at N = 256: relative error ~1e-7 at t = 5 with dt = 0.05).

    Args:
        term: the term to advance.
        contour_points: points of the phi-function contour integral (>= 8).
        cache_size: how many ``dt``'s coefficients are kept.
        phi_method: :func:`phi_functions`' ``method``; ``"auto"`` (series for a real
            ``L``, ~3x faster coefficients, which an adaptive step size rebuilds for
            every new ``dt``) or ``"contour"`` (Kassam & Trefethen's for any ``L``).

    References:
        Cox & Matthews, "Exponential time differencing for stiff systems", J. Comput.
        Phys. 176 (2002). Kassam & Trefethen, "Fourth-order time-stepping for stiff
        PDEs", SIAM J. Sci. Comput. 26 (2005).
    """

    name = "etdrk4"
    order = 4

    def __init__(
        self,
        term: SemiLinear,
        *,
        contour_points: int = 32,
        cache_size: int = 8,
        phi_method: str = "auto",
    ) -> None:
        super().__init__(term, cache_size=cache_size)
        self.contour_points = int(contour_points)
        self.phi_method = phi_method
        phi_functions(torch.zeros(1), 1, method=phi_method)  # checks the name

    def build(self, dt: float) -> _Coefficients:
        linear = self.term.linear
        z = dt * linear.to(torch.complex128 if linear.is_complex() else torch.float64)
        options = {"contour_points": self.contour_points, "method": self.phi_method}
        phi1, phi2, phi3 = phi_functions(z, 3, **options)
        (phi1_half,) = phi_functions(0.5 * z, 1, **options)
        e, e_half, q, f1, f2, f3 = (
            cast_to_state(c, self.term.dtype)
            for c in (
                torch.exp(z),
                torch.exp(0.5 * z),
                0.5 * dt * phi1_half,
                dt * (phi1 - 3.0 * phi2 + 4.0 * phi3),
                dt * (phi2 - 2.0 * phi3),
                dt * (4.0 * phi3 - phi2),
            )
        )
        mask = self.term.mask_cast
        if mask is not None:
            # Exact on the kept modes (a product with 1), zero on the others.
            e_half, q = e_half * mask, q * mask
        fused = self.term.dtype.is_complex and not linear.is_complex()
        # Doubling after the cast is exact, as 2.0 * f2 in the step would be; so is
        # the negation.
        return _Coefficients(e, e_half, q, -q, f1, 2.0 * f2, f3, fused)

    def advance(self, y: State, t: float, dt: float) -> State:
        """One ETDRK4 step of size ``dt`` from ``(t, y)``."""
        c = self.coefficients(dt)
        nonlinear = functools.partial(self.term.nonlinear_part, projected=True)
        t_half = t + 0.5 * dt
        # The formulas of the docstring, evaluated in place where the scheme owns
        # the tensor (the term's outputs are left alone): x + y == y + x and x y ==
        # y x bit for bit, and so is addcmul where c.fused, so the result is the
        # plain expressions' to the last bit. The stages (masked by their
        # coefficients) and 2 N(b) - N(y) (computed as -(N(y) - 2 N(b)) times -Q:
        # negation and doubling are exact) may differ from the plain expressions'
        # only in the sign of a zero, which only N reads, and the 1-D PDEs' N cannot
        # see through its transform and square (the ks1d/burgers1d data are the
        # same to the byte).
        n_y = self.term.nonlinear_part(y, t)
        e_half_y = c.e_half * y
        a = _product_plus(c.q, n_y, e_half_y, c.fused)
        n_a = nonlinear(a, t_half)
        b = _product_plus(c.q, n_a, e_half_y, c.fused)
        n_b = nonlinear(b, t_half)
        c_stage = torch.sub(n_y, n_b, alpha=2.0).mul_(c.minus_q)
        n_c = nonlinear(_add_product(c_stage, c.e_half, a, c.fused), t + dt)
        out = _add_product(torch.mul(c.e, y), c.f1, n_y, c.fused)
        out = _add_product(out, torch.add(n_a, n_b), c.f2_twice, c.fused)
        return _add_product(out, c.f3, n_c, c.fused)

    def __repr__(self) -> str:
        return (
            f"ETDRK4(contour_points={self.contour_points}, "
            f"cache_size={self.cache_size}, phi_method={self.phi_method!r})"
        )


def _product_plus(x: Tensor, y: Tensor, acc: Tensor, fused: bool) -> Tensor:
    """``x y + acc``, a new tensor (one kernel where ``fused``)."""
    return torch.addcmul(acc, x, y) if fused else torch.mul(x, y).add_(acc)


def _add_product(acc: Tensor, x: Tensor, y: Tensor, fused: bool) -> Tensor:
    """``acc + x y`` into ``acc`` (one kernel where ``fused``)."""
    return acc.addcmul_(x, y) if fused else acc.add_(x * y)
