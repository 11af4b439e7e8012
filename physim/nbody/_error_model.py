"""The supervised error-model controller: the non-RL baseline any eta agent must beat.

Two linear models in log space, fitted by least squares on fixed-eta runs on
training seeds, predict an interval's energy-error increment and its force
evaluations from the observation and eta: ``log10 |dE increment| ~ w . [obs, 1] +
4 log10 eta`` and ``log10 evaluations ~ v . [obs, 1] - log10 eta`` (Hermite's order
and ``steps ~ 1/eta`` imposed; fitted freely, the state features confound them and
give 2.5 and -0.77). An interval's increment is the drift over the ``window``
intervals from it (5): Hermite gives most of an encounter's error back afterwards,
so single-interval increments overstate what encounters cost. Per interval the
controller picks the eta (on a fine grid of the action's range) minimising
``predicted increment + price * predicted evaluations``, i.e. it buys the same
marginal error per evaluation in every interval; sweeping ``price`` traces its own
front. Measured variants (BENCHMARKS.md, issue 20): equidistributing the increment,
as an error-per-step controller does, +1.7 to +2.6 decades off the fixed-eta front;
the free fit on one-interval increments +1.2; imposed exponents on one interval +0.6;
on five, about +0.1. Alternatives: a per-eta classifier or a neural regressor; a
linear model is fast, transparent and already captures the scalings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._actions import ResidualParameter
from ._evaluate import EnvFactory
from ._simulation import ENERGY_ERROR_FLOOR

#: Increments at or below this are round-off; they are left out of the fit.
MIN_LOG10_INCREMENT = -15.0


def _design(obs: np.ndarray, log10_parameter: np.ndarray | float) -> np.ndarray:
    obs = np.atleast_2d(np.asarray(obs, np.float64))
    log_p = np.broadcast_to(np.asarray(log10_parameter, np.float64), obs.shape[:1])
    return np.column_stack([obs, log_p, np.ones(obs.shape[0])])


@dataclass(frozen=True)
class ErrorModel:
    """``log10`` error increment and ``log10`` evaluations of one interval, each
    ``coef[:-2] . obs + coef[-2] log10 p + coef[-1]``.

    Attributes:
        error_coef, cost_coef: the fitted coefficients.
        error_r2, cost_r2: coefficients of determination on the training intervals.
    """

    error_coef: np.ndarray
    cost_coef: np.ndarray
    error_r2: float = math.nan
    cost_r2: float = math.nan

    def predict(
        self, obs: np.ndarray, log10_parameter: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ``log10`` increments and ``log10`` evaluations (one per row)."""
        x = _design(obs, log10_parameter)
        return x @ self.error_coef, x @ self.cost_coef

    def save(self, path: str | Path) -> None:
        data = {k: np.asarray(v).tolist() for k, v in self.__dict__.items()}
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> ErrorModel:
        data = json.loads(Path(path).read_text())
        return cls(
            np.asarray(data["error_coef"]),
            np.asarray(data["cost_coef"]),
            float(data["error_r2"]),
            float(data["cost_r2"]),
        )


def collect_intervals(
    make_env: EnvFactory,
    seeds: Sequence[int],
    parameters: Sequence[float],
    n_steps: int = 300,
    window: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intervals of fixed-parameter runs: ``(obs [R, F], log10 p [R], log10 |ddE|
    [R], log10 evaluations [R])``.

    ``make_env`` must build a :class:`ResidualParameter` environment; each parameter
    is run as its fixed action on every seed, and each interval records the
    observation before it, the ``log10`` of its energy-error increment (the change
    of the signed drift ``E / E0 - 1``, floored at 1e-16) and of its evaluations.

    Raises:
        ValueError: for another action map, or a parameter the action cannot reach.
    """
    env = make_env(max_steps=n_steps)
    action = env.unwrapped.action
    if not isinstance(action, ResidualParameter):
        raise ValueError(
            "collect_intervals: the environment's action must be ResidualParameter "
            f"(got {action!r}); use the aligned eta environment."
        )
    rows, log_p, target, cost = [], [], [], []
    for parameter in parameters:
        a = action.encode(parameter)
        if not math.isclose(action.decode(a)[1], parameter, rel_tol=1e-9):
            raise ValueError(
                f"parameters: {parameter:g} is outside the grid the action reaches "
                f"({action!r}); pass values within max_log10_factor of the baseline."
            )
        for seed in seeds:
            obs, _ = env.reset(seed=int(seed))
            sim = env.unwrapped.simulation
            run_obs, drift, spent = [obs], [0.0], []
            for _ in range(n_steps):
                obs, _, terminated, truncated, info = env.step(a)
                if info["failed"]:
                    break
                run_obs.append(obs)
                drift.append(sim.energy_drift)
                spent.append(info["force_evaluations"])
                if terminated or truncated:
                    break
            # Interval t's error: the drift change over `window` intervals from it
            # (an encounter's transient error comes back within them).
            for t in range(len(spent) - window + 1):
                increment = abs(drift[t + window] - drift[t])
                rows.append(run_obs[t])
                log_p.append(math.log10(parameter))
                target.append(math.log10(max(increment, ENERGY_ERROR_FLOOR)))
                cost.append(math.log10(max(spent[t], 1)))
    return (
        np.asarray(rows, np.float64),
        np.asarray(log_p),
        np.asarray(target),
        np.asarray(cost),
    )


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    ridge = 1e-6 * np.eye(x.shape[1])
    coef = np.linalg.solve(x.T @ x + ridge, x.T @ y)
    residual = y - x @ coef
    r2 = 1.0 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())
    return coef, r2


def fit_error_model(
    obs: np.ndarray,
    log10_parameter: np.ndarray,
    log10_increment: np.ndarray,
    log10_cost: np.ndarray,
    exponents: tuple[float, float] | None = None,
) -> ErrorModel:
    """Least-squares fits (small ridge): the error on the intervals above round-off,
    the cost on all. ``exponents``: fix the ``log10 p`` coefficients of the error and
    the cost (Hermite: ``(4, -1)``, its order and ``steps ~ 1/eta``) and fit only the
    state's part; ``None`` fits them too.

    Raises:
        ValueError: with too few intervals, or when the fitted error does not grow
            with the parameter (there would be nothing to trade).
    """
    x = _design(obs, log10_parameter)
    keep = log10_increment > MIN_LOG10_INCREMENT
    if keep.sum() <= x.shape[1]:
        raise ValueError(
            f"fit_error_model: {int(keep.sum())} intervals above round-off for "
            f"{x.shape[1]} coefficients; use more seeds or larger parameters."
        )
    if exponents is None:
        error_coef, error_r2 = _least_squares(x[keep], log10_increment[keep])
        cost_coef, cost_r2 = _least_squares(x, log10_cost)
    else:
        state = np.delete(x, -2, axis=1)
        fits = []
        for y, rows, exponent in (
            (log10_increment, keep, exponents[0]),
            (log10_cost, slice(None), exponents[1]),
        ):
            coef, r2 = _least_squares(state[rows], (y - exponent * x[:, -2])[rows])
            fits.append((np.insert(coef, -1, exponent), r2))
        (error_coef, error_r2), (cost_coef, cost_r2) = fits
    if not error_coef[-2] > 0:
        raise ValueError(
            f"fit_error_model: the fitted error does not grow with the parameter "
            f"(slope {error_coef[-2]:.3g}); use a wider range of parameters."
        )
    return ErrorModel(error_coef, cost_coef, error_r2, cost_r2)


class ErrorModelController:
    """Per interval, the parameter minimising predicted increment + price x cost.

    A :data:`~physim.nbody.Policy` for the environment the model was fitted on.

    Args:
        model: the fitted :class:`ErrorModel`.
        action: that environment's :class:`ResidualParameter`.
        price: the error one force evaluation is worth, > 0.
        grid_points: candidate parameters, log-spaced over the action's range.
    """

    def __init__(
        self,
        model: ErrorModel,
        action: ResidualParameter,
        price: float,
        grid_points: int = 81,
    ) -> None:
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"price={price!r}: must be > 0 (error per evaluation).")
        self.model = model
        self.action = action
        self.price = float(price)
        low = max(action.low, action.baseline / 10**action.max_log10_factor)
        high = min(action.high, action.baseline * 10**action.max_log10_factor)
        self.log_grid = np.linspace(math.log10(low), math.log10(high), grid_points)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        rows = np.repeat(np.asarray(obs, np.float64)[None], self.log_grid.size, 0)
        log_error, log_cost = self.model.predict(rows, self.log_grid)
        objective = 10.0**log_error + self.price * 10.0**log_cost
        return self.action.encode(10.0 ** self.log_grid[int(np.argmin(objective))])
