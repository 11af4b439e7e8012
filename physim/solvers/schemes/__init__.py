"""Time schemes for semi-linear terms ``dy/dt = L y + N(y, t)`` (``L`` diagonal).

A PDE supplies its right-hand side as a :class:`SemiLinear` term (the Fourier symbol
``L`` and the nonlinear part ``N``); a scheme advances any such term, and error
estimation wraps a scheme. ``pde = KuramotoSivashinsky1D(scheme=IMEXCrankNicolsonHeun)``
runs KS with the IMEX scheme, ``NavierStokes2D(scheme=ETDRK4)`` the vorticity
equation with ETDRK4; a config passes ``scheme: {_target_:
physim.solvers.schemes.ETDRK4, _partial_: true}``.

- :class:`ETDRK4`: order 4, ``L`` exactly (phi functions); error by step doubling.
- :class:`IMEXCrankNicolsonHeun`: order 2, ``L`` implicitly (Crank-Nicolson); free
  embedded error estimate (order 1).
- :class:`RK4`: order 4, ``L`` explicitly; error by step doubling.
- :class:`ForwardEuler`: order 1, ``L`` explicitly; error by step doubling.
- :class:`StepDoubling`: wraps any of them (``error_estimate=True`` of a PDE).
"""

from ._base import Scheme, SchemeFactory, SchemeOrders, SemiLinearScheme
from ._etdrk4 import ETDRK4
from ._euler import ForwardEuler
from ._imex_cn_heun import IMEXCrankNicolsonHeun
from ._phi import phi_functions
from ._rk4 import RK4
from ._step_doubling import (
    StepDoubling,
    build_scheme,
    step_doubling,
    with_error_estimate,
)
from ._term import Nonlinear, SemiLinear, State, cast_to_state

__all__ = [
    "ETDRK4",
    "ForwardEuler",
    "IMEXCrankNicolsonHeun",
    "Nonlinear",
    "RK4",
    "Scheme",
    "SchemeFactory",
    "SchemeOrders",
    "SemiLinear",
    "SemiLinearScheme",
    "State",
    "StepDoubling",
    "build_scheme",
    "cast_to_state",
    "phi_functions",
    "step_doubling",
    "with_error_estimate",
]
