"""Compiled (numba) kernels for direct-summation N-body integration.

Three bodies make tiny arrays, where the per-call overhead of torch or NumPy dwarfs the
arithmetic (a torch Hermite step on [1, 3, 12] costs ~100 us, the arithmetic ~100 ns).
So the force loop, the steps and the step loops with their step-size rule are compiled
with numba over plain float64 arrays; the torch-facing classes in ``_hermite.py`` and
``_leapfrog.py`` call the same step kernels, so the generic driver and the fast path
take identical steps. The compile cost (~seconds) is paid on the first run on a machine
(``cache=True``).

State layouts (one system, N bodies; batched kernels take a leading B):

- Hermite ``[N, 12]``: position (3), velocity (3), acceleration (3), jerk (3).
- Leapfrog ``[N, 9]``: position (3), velocity (3), acceleration (3).

The force derivatives ride along in the state so that each step costs one force
evaluation, as in the reference codes (they are evaluated at the *predicted*
positions for Hermite, the PEC scheme of Makino & Aarseth 1992).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: ``error_model="numpy"``: a division by zero (two bodies on one point) gives inf/NaN
#: that the step loops report as NONFINITE; numba's default ("python") would raise
#: ZeroDivisionError from inside the kernel. ``cache=True``: compile once per machine.
_jit = njit(cache=True, error_model="numpy")

#: Status codes of the step loops.
OK, NONFINITE, MAX_STEPS = 0, 1, 2


@_jit
def acc_jerk(y, masses, g, out):  # pragma: no cover - compiled
    """Accelerations and jerks of the positions ``y[:, 0:3]`` and velocities
    ``y[:, 3:6]`` into ``out[:, 6:9]`` and ``out[:, 9:12]`` (``out`` may be ``y``).

    Columns are indexed directly rather than sliced: array views cost as much as the
    arithmetic of a three-body evaluation.
    """
    n = y.shape[0]
    for i in range(n):
        for k in range(6, 12):
            out[i, k] = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = y[j, 0] - y[i, 0]
            dy = y[j, 1] - y[i, 1]
            dz = y[j, 2] - y[i, 2]
            dvx = y[j, 3] - y[i, 3]
            dvy = y[j, 4] - y[i, 4]
            dvz = y[j, 5] - y[i, 5]
            r2 = dx * dx + dy * dy + dz * dz
            rv = (dx * dvx + dy * dvy + dz * dvz) / r2
            inv_r3 = g / (r2 * math.sqrt(r2))
            # Pair terms of a and da/dt = G m [dv / r^3 - 3 (r.dv) r / r^5].
            ax, ay, az = dx * inv_r3, dy * inv_r3, dz * inv_r3
            jx = (dvx - 3.0 * rv * dx) * inv_r3
            jy = (dvy - 3.0 * rv * dy) * inv_r3
            jz = (dvz - 3.0 * rv * dz) * inv_r3
            mi, mj = masses[i], masses[j]
            out[i, 6] += mj * ax
            out[i, 7] += mj * ay
            out[i, 8] += mj * az
            out[j, 6] -= mi * ax
            out[j, 7] -= mi * ay
            out[j, 8] -= mi * az
            out[i, 9] += mj * jx
            out[i, 10] += mj * jy
            out[i, 11] += mj * jz
            out[j, 9] -= mi * jx
            out[j, 10] -= mi * jy
            out[j, 11] -= mi * jz


@_jit
def accelerations(y, masses, g, out):  # pragma: no cover - compiled
    """Accelerations of the positions ``y[:, 0:3]`` into ``out[:, 6:9]``."""
    n = y.shape[0]
    for i in range(n):
        for k in range(6, 9):
            out[i, k] = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = y[j, 0] - y[i, 0]
            dy = y[j, 1] - y[i, 1]
            dz = y[j, 2] - y[i, 2]
            r2 = dx * dx + dy * dy + dz * dz
            inv_r3 = g / (r2 * math.sqrt(r2))
            out[i, 6] += masses[j] * dx * inv_r3
            out[i, 7] += masses[j] * dy * inv_r3
            out[i, 8] += masses[j] * dz * inv_r3
            out[j, 6] -= masses[i] * dx * inv_r3
            out[j, 7] -= masses[i] * dy * inv_r3
            out[j, 8] -= masses[i] * dz * inv_r3


@_jit
def energy(y, masses, g):  # pragma: no cover - compiled
    """Total energy (kinetic + potential) of one system ``y`` ([N, >=6])."""
    n = y.shape[0]
    kinetic = 0.0
    potential = 0.0
    for i in range(n):
        kinetic += 0.5 * masses[i] * (y[i, 3] ** 2 + y[i, 4] ** 2 + y[i, 5] ** 2)
        for j in range(i + 1, n):
            r = math.sqrt(
                (y[j, 0] - y[i, 0]) ** 2
                + (y[j, 1] - y[i, 1]) ** 2
                + (y[j, 2] - y[i, 2]) ** 2
            )
            potential -= g * masses[i] * masses[j] / r
    return kinetic + potential


@_jit
def collision_time(y, masses, g):  # pragma: no cover - compiled
    """``min`` over pairs of ``min(r / v, sqrt(r / a))`` for one system ([N, >=6]).

    ``r`` and ``v`` are the pair's separation and relative speed and
    ``a = G (m_i + m_j) / r^2`` its relative acceleration, so ``sqrt(r / a)`` is the
    pair's free-fall time; this is the estimate of the Hermite code the reference
    paper used (AMUSE ``hermite0``, after Hut & Makino's ACS).
    """
    n = y.shape[0]
    best2 = math.inf  # squared times: one sqrt at the end
    for i in range(n):
        for j in range(i + 1, n):
            r2 = (
                (y[j, 0] - y[i, 0]) ** 2
                + (y[j, 1] - y[i, 1]) ** 2
                + (y[j, 2] - y[i, 2]) ** 2
            )
            v2 = (
                (y[j, 3] - y[i, 3]) ** 2
                + (y[j, 4] - y[i, 4]) ** 2
                + (y[j, 5] - y[i, 5]) ** 2
            )
            if v2 > 0.0 and r2 / v2 < best2:
                best2 = r2 / v2
            free_fall2 = r2 * math.sqrt(r2) / (g * (masses[i] + masses[j]))
            if free_fall2 < best2:
                best2 = free_fall2
    return math.sqrt(best2)


@_jit
def batch_collision_time(y, masses, g):  # pragma: no cover - compiled
    """``collision_time`` of each system of ``y`` ([B, N, >=6]) -> [B]."""
    out = np.empty(y.shape[0])
    for b in range(y.shape[0]):
        out[b] = collision_time(y[b], masses, g)
    return out


@_jit
def _min_collision_time(y, masses, g):  # pragma: no cover - compiled
    """The smallest ``collision_time`` over the systems of ``y`` ([B, N, >=6])."""
    best = math.inf
    for b in range(y.shape[0]):
        best = min(best, collision_time(y[b], masses, g))
    return best


@_jit
def _hermite_step(y, masses, g, dt, pred, out):  # pragma: no cover - compiled
    """One Hermite PEC step of one system from ``y`` into ``out`` ([N, 12])."""
    n = y.shape[0]
    for i in range(n):
        for k in range(3):
            x, v, a, j = y[i, k], y[i, 3 + k], y[i, 6 + k], y[i, 9 + k]
            pred[i, k] = x + dt * (v + dt * (0.5 * a + dt * j / 6.0))
            pred[i, 3 + k] = v + dt * (a + 0.5 * dt * j)
    acc_jerk(pred, masses, g, out)
    for i in range(n):
        for k in range(3):
            x0, v0, a0, j0 = y[i, k], y[i, 3 + k], y[i, 6 + k], y[i, 9 + k]
            a1, j1 = out[i, 6 + k], out[i, 9 + k]
            v1 = v0 + 0.5 * dt * (a0 + a1) + dt * dt * (j0 - j1) / 12.0
            out[i, 3 + k] = v1
            out[i, k] = x0 + 0.5 * dt * (v0 + v1) + dt * dt * (a0 - a1) / 12.0


@_jit
def _leapfrog_step(y, masses, g, dt, out):  # pragma: no cover - compiled
    """One kick-drift-kick step of one system from ``y`` into ``out`` ([N, 9])."""
    n = y.shape[0]
    for i in range(n):
        for k in range(3):
            v_half = y[i, 3 + k] + 0.5 * dt * y[i, 6 + k]
            out[i, 3 + k] = v_half
            out[i, k] = y[i, k] + dt * v_half
    accelerations(out, masses, g, out)
    for i in range(n):
        for k in range(3):
            out[i, 3 + k] += 0.5 * dt * out[i, 6 + k]


@_jit
def hermite_steps(y, masses, g, dt):  # pragma: no cover - compiled
    """One Hermite step of size ``dt`` for each system of ``y`` ([B, N, 12])."""
    out = np.empty_like(y)
    pred = np.empty((y.shape[1], 6))
    for b in range(y.shape[0]):
        _hermite_step(y[b], masses, g, dt, pred, out[b])
    return out


@_jit
def leapfrog_steps(y, masses, g, dt):  # pragma: no cover - compiled
    """One leapfrog step of size ``dt`` for each system of ``y`` ([B, N, 9])."""
    out = np.empty_like(y)
    for b in range(y.shape[0]):
        _leapfrog_step(y[b], masses, g, dt, out[b])
    return out


@_jit
def prepare_hermite(y6, masses, g):  # pragma: no cover - compiled
    """Append acceleration and jerk to the phase-space states ``y6`` ([B, N, 6])."""
    out = np.zeros((y6.shape[0], y6.shape[1], 12))
    for b in range(y6.shape[0]):
        out[b, :, :6] = y6[b]
        acc_jerk(out[b], masses, g, out[b])
    return out


@_jit
def prepare_leapfrog(y6, masses, g):  # pragma: no cover - compiled
    """Append the acceleration to the phase-space states ``y6`` ([B, N, 6])."""
    out = np.zeros((y6.shape[0], y6.shape[1], 9))
    for b in range(y6.shape[0]):
        out[b, :, :6] = y6[b]
        accelerations(out[b], masses, g, out[b])
    return out


@_jit
def _clipped(t, t1, dt):  # pragma: no cover - compiled
    """The driver's landing rule (see physim.timestepping.integrate)."""
    remaining = t1 - t
    lands = dt >= remaining - 1e-12 * max(1.0, abs(t1))
    return (remaining if lands else dt), lands


@_jit
def _all_finite(y):  # pragma: no cover - compiled
    return np.isfinite(y).all()


@_jit
def hermite_run(y, masses, g, t0, t1, eta, max_steps):  # pragma: no cover - compiled
    """Hermite from ``t0`` to ``t1`` with the shared step ``eta * t_coll``.

    The step rule and the landing on ``t1`` are those of
    :class:`physim.nbody.CollisionTimeController` under
    :func:`physim.timestepping.integrate`, so both paths take the same steps.

    Args:
        y: states [B, N, 12] (not modified).
        masses, g: the system.
        t0, t1: the interval.
        eta: the step parameter.
        max_steps: cap on the number of steps.

    Returns:
        ``(y1, n_steps, status)``; each step is one force-and-jerk evaluation.
    """
    cur = y.copy()
    nxt = np.empty_like(y)
    pred = np.empty((y.shape[1], 6))
    t = t0
    n_steps = 0
    dt = eta * _min_collision_time(cur, masses, g)
    while t < t1:
        if n_steps >= max_steps:
            return cur, n_steps, MAX_STEPS
        if not (math.isfinite(dt) and dt > 0.0):
            return cur, n_steps, NONFINITE
        dt_try, lands = _clipped(t, t1, dt)
        for b in range(cur.shape[0]):
            _hermite_step(cur[b], masses, g, dt_try, pred, nxt[b])
        cur, nxt = nxt, cur
        n_steps += 1
        t = t1 if lands else t + dt_try
        dt = eta * _min_collision_time(cur, masses, g)
    status = OK if _all_finite(cur) else NONFINITE
    return cur, n_steps, status


@_jit
def leapfrog_run(y, masses, g, t0, t1, dt, max_steps):  # pragma: no cover - compiled
    """Leapfrog from ``t0`` to ``t1`` with constant ``dt`` (last step clipped).

    The same steps as :class:`physim.timestepping.ConstantStep` under
    :func:`physim.timestepping.integrate`. Returns ``(y1, n_steps, status)``.
    """
    cur = y.copy()
    nxt = np.empty_like(y)
    t = t0
    n_steps = 0
    while t < t1:
        if n_steps >= max_steps:
            return cur, n_steps, MAX_STEPS
        dt_try, lands = _clipped(t, t1, dt)
        for b in range(cur.shape[0]):
            _leapfrog_step(cur[b], masses, g, dt_try, nxt[b])
        cur, nxt = nxt, cur
        n_steps += 1
        t = t1 if lands else t + dt_try
    status = OK if _all_finite(cur) else NONFINITE
    return cur, n_steps, status
