"""Forward (explicit) Euler on the whole right-hand side."""

from __future__ import annotations

from ._base import SemiLinearScheme
from ._term import State

__all__ = ["ForwardEuler"]


class ForwardEuler(SemiLinearScheme):
    """``y_next = y + dt (L y + N(y, t))``: order 1, one evaluation, explicit.

    No embedded estimate (wrap it in :class:`StepDoubling`). Stable only for ``dt L``
    in the disc ``|1 + z| <= 1``: diffusion needs ``dt <= 2 / (nu k_max^2)``, and pure
    advection (imaginary ``z``) is never stable without damping. A baseline and a
    building block (the finite-volume solvers are forward Euler plus a projection),
    not a production scheme for the spectral PDEs.

    Args:
        term: the term to advance.
    """

    name = "forward_euler"
    order = 1

    def advance(self, y: State, t: float, dt: float) -> State:
        """One Euler step of size ``dt`` from ``(t, y)``."""
        return y + dt * self.term.vector_field(y, t)

    def __repr__(self) -> str:
        return "ForwardEuler()"
