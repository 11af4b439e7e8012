"""The Korteweg-de Vries equation: a new 1-D spectral PDE is its symbol and a line or
two (the recipe of ``docs/architecture.md``), and its soliton solution."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._spectral1d import Convection1D

__all__ = ["KortewegDeVries1D", "kdv_soliton"]


class KortewegDeVries1D(Convection1D):
    """``u_t + 6 u u_x + u_xxx = 0`` on ``[0, L)``, periodic, pseudo-spectral.

    Channels: one, ``"u"``, at ``x_i = i L / N``; the state is the field ``[B, N]``.
    Space: Fourier, ``k = 2 pi m / L``; the dispersion ``-u_xxx`` has the imaginary
    symbol ``i k^3`` (integrated exactly by the default ETDRK4, so the step is
    limited by the nonlinearity, not by ``k_max^3``), the nonlinearity is
    ``-3 (u^2)_x`` in conservative form with the 2/3 rule (:class:`Convection1D`,
    ``a = 6``). Mass ``int u`` is conserved exactly.

    Good values: solitons of speed ``c ~ 1-2`` (:func:`kdv_soliton`, width ``~2 /
    sqrt(c)``) on ``L = 50`` with ``N = 256`` and ETDRK4 at ``dt = 0.01``: relative
    error 2e-6 after a ``c = 2`` soliton has moved 10 units (1e-7 at ``dt = 0.005``;
    the spatial error is 2e-9; ``tests/solvers/test_kdv.py``). The IMEX scheme needs
    ``dt <= 0.002`` for 1e-4 (Crank-Nicolson's phase error on ``i k^3``).

    Args: those of :class:`SpectralPDE1D` (``num_points``, ``domain_extent``,
        ``time_scale``, ``dealias``, ``error_estimate``, ``scheme``, ``dtype``,
        ``device``).

    References:
        Korteweg & de Vries, Phil. Mag. 39 (1895). Kassam & Trefethen, SIAM J. Sci.
        Comput. 26 (2005), section 6 (KdV with ETDRK4).
    """

    name = "korteweg_de_vries_1d"
    equation = "u_t + 6 u u_x + u_xxx = 0"
    convection = 6.0

    def symbol(self, k: Tensor) -> Tensor:
        """``-(i k)^3 = i k^3``: dispersion."""
        return 1j * k**3


def kdv_soliton(
    x: Tensor, t: float, speed: float, center: float, domain_extent: float
) -> Tensor:
    """The soliton ``u = c/2 sech^2(sqrt(c)/2 (x - x0 - c t))``, centred in the
    periodic domain (nearest image; exact on the line, so periodically up to its
    tails, ``2 c e^{-sqrt(c) d}`` at a distance ``d``)."""
    shift = torch.remainder(x - center - speed * t + 0.5 * domain_extent, domain_extent)
    xi = 0.5 * math.sqrt(speed) * (shift - 0.5 * domain_extent)
    return 0.5 * speed / torch.cosh(xi) ** 2
