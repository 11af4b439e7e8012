"""Rotation-invariant features of a system for a step-size policy.

The paper's observation (positions / 10 and velocities, body by body) changes when the
system is rotated or its bodies relabelled, although the best step does not, so a
policy must learn every orientation separately. These features are invariant under
rotations, reflections and relabelling (pairs are sorted by separation):

- per pair: ``log10 r``, ``log10 |v|`` (relative speed) and ``cos`` of the angle
  between the relative position and velocity (-1 approaching head-on, +1 receding);
- ``log10(t_coll / interval)``: Hermite's collision time (its steps per interval);
- ``log10(forecast / interval)``: the shortest two-body time scale expected within the
  next ``horizon``: each pair's free-fall time now and, if its Kepler orbit (the third
  body ignored) reaches pericentre within ``horizon``, ``sqrt(r_p^3 / (G m))`` there.
  The current state alone says nothing of an encounter that starts inside the coming
  interval; an integrator switched on at the wrong moment keeps the error that Hermite
  would otherwise have given back after the pericentre (time-symmetric error), so this
  look-ahead is what makes per-interval integrator choice pay (BENCHMARKS.md).

Everything runs in numba on the float64 state; about 2 us per call.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float

from ._kernels import _jit

#: Logarithms are clipped to [-LOG_CLIP, LOG_CLIP] so that features stay finite.
LOG_CLIP = 6.0


@_jit
def _log10(x):  # pragma: no cover - compiled
    if not x > 0.0:
        return -LOG_CLIP
    return min(max(math.log10(x), -LOG_CLIP), LOG_CLIP)


@_jit
def pericentre(rx, ry, rz, vx, vy, vz, mu):  # pragma: no cover - compiled
    """Pericentre distance and time until it for the two-body orbit of ``r, v``.

    Returns ``(r_p, t_p)``; ``t_p = inf`` when the pair recedes on an unbound orbit
    (no pericentre ahead). Kepler's equation (elliptic or hyperbolic) gives the time
    from the mean anomaly.
    """
    r = math.sqrt(rx * rx + ry * ry + rz * rz)
    v2 = vx * vx + vy * vy + vz * vz
    rv = rx * vx + ry * vy + rz * vz
    hx, hy, hz = ry * vz - rz * vy, rz * vx - rx * vz, rx * vy - ry * vx
    h2 = hx * hx + hy * hy + hz * hz
    energy = 0.5 * v2 - mu / r
    e = math.sqrt(max(0.0, 1.0 + 2.0 * energy * h2 / (mu * mu)))
    r_p = h2 / mu / (1.0 + e)
    if e < 1e-10:  # circular: every point is a pericentre
        return r, 0.0
    if energy < 0.0:
        a = -mu / (2.0 * energy)
        n = math.sqrt(mu / (a * a * a))
        cos_e = min(max((1.0 - r / a) / e, -1.0), 1.0)
        ecc_anomaly = math.acos(cos_e)
        mean_anomaly = ecc_anomaly - e * math.sin(ecc_anomaly)
        if rv < 0.0:
            return r_p, mean_anomaly / n
        return r_p, (2.0 * math.pi - mean_anomaly) / n
    if rv >= 0.0:
        return r_p, math.inf
    a = mu / (2.0 * max(energy, 1e-300))
    n = math.sqrt(mu / (a * a * a))
    cosh_f = max((1.0 + r / a) / e, 1.0)
    f = math.acosh(cosh_f)
    return r_p, (e * math.sinh(f) - f) / n


@_jit
def system_features(y, masses, g, interval, horizon, out):  # pragma: no cover
    """Fill ``out`` (``3 * n_pairs + 2``) with the features of one system ``y``."""
    n = y.shape[0]
    n_pairs = n * (n - 1) // 2
    sep = np.empty(n_pairs)
    rows = np.empty((n_pairs, 3))
    t_coll2 = math.inf
    forecast = math.inf
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            rx, ry, rz = y[j, 0] - y[i, 0], y[j, 1] - y[i, 1], y[j, 2] - y[i, 2]
            vx, vy, vz = y[j, 3] - y[i, 3], y[j, 4] - y[i, 4], y[j, 5] - y[i, 5]
            r = math.sqrt(rx * rx + ry * ry + rz * rz)
            v = math.sqrt(vx * vx + vy * vy + vz * vz)
            mu = g * (masses[i] + masses[j])
            free_fall = math.sqrt(r * r * r / mu)
            crossing = r / v if v > 0.0 else math.inf
            t_coll2 = min(t_coll2, free_fall * free_fall, crossing * crossing)
            forecast = min(forecast, free_fall, crossing)
            r_p, t_p = pericentre(rx, ry, rz, vx, vy, vz, mu)
            if t_p <= horizon:
                forecast = min(forecast, math.sqrt(r_p * r_p * r_p / mu))
            sep[k] = r
            rows[k, 0] = _log10(r)
            rows[k, 1] = _log10(v)
            rows[k, 2] = (rx * vx + ry * vy + rz * vz) / (r * v) if v > 0.0 else 0.0
            k += 1
    order = np.argsort(sep)
    for p in range(n_pairs):
        for c in range(3):
            out[3 * p + c] = rows[order[p], c]
    out[3 * n_pairs] = _log10(math.sqrt(t_coll2) / interval)
    out[3 * n_pairs + 1] = _log10(forecast / interval)


def invariant_features(
    y: Float[np.ndarray, "N 6"],
    masses: np.ndarray,
    g: float,
    interval: float,
    horizon: float,
) -> Float[np.ndarray, " F"]:
    """The features of one system (see the module docstring), ``3 * pairs + 2``."""
    n = masses.shape[0]
    out = np.empty(3 * (n * (n - 1) // 2) + 2)
    system_features(np.ascontiguousarray(y, np.float64), masses, g, interval,
                    horizon, out)  # fmt: skip
    return out
