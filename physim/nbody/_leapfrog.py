"""Fixed-step kick-drift-kick leapfrog."""

from __future__ import annotations

import numpy as np

from physim.timestepping import ConstantStep

from . import _kernels as K
from ._driver import KernelIntegrator

#: Leapfrog's action grid: dt = 1e-4 ... 1e-1 N-body time units, log-spaced.
LEAPFROG_DT_GRID = tuple(float(x) for x in np.logspace(-4, -1, 10))


class Leapfrog(KernelIntegrator):
    """Kick-drift-kick leapfrog (velocity Verlet): order 2, symplectic at fixed ``dt``.

    With a constant step the energy error stays bounded (no secular drift) for
    orbits the step resolves; changing ``dt`` between steps (adaptive or RL-chosen)
    breaks the exact symplecticity, and close encounters need a step far below
    their time scale (the reference paper's fixed-step Symple could not be driven
    by a policy trained on variable-step codes). One force evaluation per step; no
    error estimate.

    The state is ``[B, N, 9]``: positions, velocities, accelerations (see
    :meth:`prepare`).

    Args:
        masses: ``N`` masses > 0.
        g: the gravitational constant.
        max_steps: cap on the steps of one :meth:`integrate` call.
    """

    order = 2
    parameter_name = "dt"
    default_grid = LEAPFROG_DT_GRID
    step_rule = ConstantStep
    prepare_kernel = staticmethod(K.prepare_leapfrog)
    steps_kernel = staticmethod(K.leapfrog_steps)
    run_kernel = staticmethod(K.leapfrog_run)
