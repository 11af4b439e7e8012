"""The classical fourth-order Runge-Kutta scheme on the whole right-hand side."""

from __future__ import annotations

from ._base import SemiLinearScheme
from ._term import State

__all__ = ["RK4"]


class RK4(SemiLinearScheme):
    """Classical RK4 on ``F(y, t) = L y + N(y, t)`` (method of lines; explicit).

    ::

        k1 = F(y, t)              k2 = F(y + dt/2 k1, t + dt/2)
        k3 = F(y + dt/2 k2, ...)  k4 = F(y + dt k3, t + dt)
        y_next = y + dt/6 (k1 + 2 k2 + 2 k3 + k4)

    Order 4, four evaluations per step, no embedded estimate (wrap it in
    :class:`StepDoubling`). Treats ``L`` explicitly, so stability needs ``dt L``
    inside RK4's region for every mode: ``|dt L| <= 2.78`` on the negative real axis
    (diffusion: ``dt <= 2.78 / (nu k_max^2)``), ``<= 2.83`` on the imaginary axis
    (advection). For stiff PDEs (KS, fine-grid diffusion) use :class:`ETDRK4`.

    Good values: non-stiff problems and reference checks; the Fourier-space
    advection of :class:`~physim.solvers.Advection1D` is RK4 on a linear term.

    Args:
        term: the term to advance.

    References:
        Hairer, Norsett & Wanner, "Solving Ordinary Differential Equations I", II.1
        (1993).
    """

    name = "rk4"
    order = 4

    def advance(self, y: State, t: float, dt: float) -> State:
        """One RK4 step of size ``dt`` from ``(t, y)``."""
        field = self.term.vector_field
        half = 0.5 * dt
        k1 = field(y, t)
        k2 = field(y + half * k1, t + half)
        k3 = field(y + half * k2, t + half)
        k4 = field(y + dt * k3, t + dt)
        return y + (dt / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)

    def __repr__(self) -> str:
        return "RK4()"
