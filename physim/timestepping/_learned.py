"""Learned step-size control: a bounded, zero-initialised residual on PI control.

The PI controller's step factor is linear in the log-error history (Soderlind 2003),
so a learned controller is most safely a *correction* to it in log space::

    log10 factor = log10 factor_PI + c * clip(net(features), -1, 1)

clipped again to PI's own bounds (``[factor_min, factor_max]``, ``[factor_min,
safety]`` after a rejection). The accept rule is PI's (scaled error at most 1), so a
network can only change how big the next step is, never let a step through. The
network's output layer starts at zero, and ``10 ** 0.0 * factor`` is ``factor`` in
floating point, so an untrained controller takes PI's steps bit for bit and training
can only move where it measures a gain.

Alternatives: a policy that picks the step outright (Dellnitz et al. 2023) has to
learn PI before it can improve on it and has no accept rule of its own; tuning PI's
coefficients per problem (the strong baseline) is the linear special case of this
correction with features ``log_error`` and ``log_error_prev``.

References:
    Soderlind, "Digital filters in adaptive time-stepping", ACM TOMS 29 (2003).
    Dellnitz et al., "Efficient time stepping for numerical integration using
    reinforcement learning", SIAM J. Sci. Comput. 45 (2023).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ._base import Decision, Stepper, StepResult, require_attribute
from ._pid import PIDController, PIDState

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "CorrectionNetwork",
    "LearnedController",
    "LearnedState",
    "Observation",
]

#: Every feature a learned controller can observe, with what it is (normalised to
#: about [-2, 2] by :data:`_SCALES`, clipped to +-:data:`_LIMIT`).
FEATURES: dict[str, str] = {
    "log_error": "log10 of the scaled error of the step just tried (> 0: rejected)",
    "log_error_prev": "log10 of the scaled error of the last accepted step",
    "log_dt_ratio": "log10 of this step over the last accepted one",
    "rejections": "rejections of this step so far (0 for a first try), at most 3",
    "log_tolerance": "log10 of rtol",
    "courant": "log10 of the Courant number dt max|u| / dx (CFL-capable steppers)",
}
#: The features of a stepper without a wave speed.
DEFAULT_FEATURES = (
    "log_error",
    "log_error_prev",
    "log_dt_ratio",
    "rejections",
    "log_tolerance",
)
#: ``(centre, scale)`` of each raw feature: the network sees ``(raw - c) / s``.
_SCALES: dict[str, tuple[float, float]] = {
    "log_error": (-1.0, 1.0),
    "log_error_prev": (-1.0, 1.0),
    "log_dt_ratio": (0.0, 0.3),
    "rejections": (0.0, 1.0),
    "log_tolerance": (-6.0, 2.0),
    "courant": (0.0, 1.0),
}
_LIMIT = 5.0
_TINY_ERROR = 1e-10
#: The ``format`` entry of a saved network.
CHECKPOINT_FORMAT = "physim.timestepping.CorrectionNetwork"


def check_features(features: Sequence[str], owner: str) -> tuple[str, ...]:
    """``features`` as a tuple of known, distinct names.

    Raises:
        ValueError: naming the unknown or repeated names and the known ones.
    """
    names = tuple(str(f) for f in features)
    unknown = [f for f in names if f not in FEATURES]
    if unknown or len(set(names)) != len(names) or not names:
        raise ValueError(
            f"{owner}: features {list(names)} must be distinct names from "
            f"{list(FEATURES)} (unknown: {unknown})."
        )
    return names


class CorrectionNetwork:
    """A small MLP from features to a correction in ``[-1, 1]`` (NumPy, float64).

    ``tanh`` hidden layers and a linear output, clipped to ``[-1, 1]``. The output
    layer starts at zero, so a fresh network outputs exactly 0. Parameters are
    float64 NumPy arrays, not torch modules: one evaluation per step of a tiny network
    costs a few microseconds this way (a torch module costs tens), and training is
    derivative-free or done by stable-baselines3, whose PPO actor converts with
    :meth:`from_sb3`.

    Args:
        features: the names of the inputs, in order (:data:`FEATURES`).
        hidden: widths of the hidden layers (``()``: a linear correction).
        seed: seeds the hidden layers' Glorot-uniform initialisation.
        layers: ``[(weight [out, in], bias [out]), ...]`` to use instead.

    Raises:
        ValueError: for unknown features, bad widths or layer shapes.
    """

    def __init__(
        self,
        features: Sequence[str] = DEFAULT_FEATURES,
        hidden: Sequence[int] = (8,),
        *,
        seed: int = 0,
        layers: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.features = check_features(features, "CorrectionNetwork")
        self.hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in self.hidden):
            raise ValueError(
                f"CorrectionNetwork: hidden widths must be >= 1, got {list(hidden)}."
            )
        widths = [len(self.features), *self.hidden, 1]
        shapes = list(zip(widths[1:], widths[:-1], strict=True))
        if layers is None:
            rng = np.random.default_rng(seed)
            layers = []
            for i, (n_out, n_in) in enumerate(shapes):
                if i == len(shapes) - 1:  # the output layer: zero, so net(x) == 0
                    layers.append((np.zeros((n_out, n_in)), np.zeros(n_out)))
                else:
                    bound = math.sqrt(6.0 / (n_in + n_out))
                    weight = rng.uniform(-bound, bound, (n_out, n_in))
                    layers.append((weight, np.zeros(n_out)))
        checked = []
        for i, ((weight, bias), (n_out, n_in)) in enumerate(
            zip(layers, shapes, strict=False)
        ):
            weight = np.asarray(weight, dtype=np.float64)
            bias = np.asarray(bias, dtype=np.float64).reshape(-1)
            if weight.shape != (n_out, n_in) or bias.shape != (n_out,):
                raise ValueError(
                    f"CorrectionNetwork: layer {i} has weight {weight.shape} and bias "
                    f"{bias.shape}; features {len(self.features)} and hidden "
                    f"{list(self.hidden)} need ({n_out}, {n_in}) and ({n_out},)."
                )
            checked.append((weight, bias))
        if len(checked) != len(shapes):
            raise ValueError(
                f"CorrectionNetwork: {len(checked)} layers given, {len(shapes)} needed "
                f"for hidden {list(self.hidden)}."
            )
        self.layers = checked

    # ------------------------------------------------------------------ evaluation
    def __call__(self, x: Float[np.ndarray, " F"]) -> float:
        """The correction for features ``x``, in ``[-1, 1]``."""
        h = np.asarray(x, dtype=np.float64)
        for weight, bias in self.layers[:-1]:
            h = np.tanh(weight @ h + bias)
        weight, bias = self.layers[-1]
        out = float((weight @ h + bias)[0])
        if not math.isfinite(out):
            return 0.0
        return min(max(out, -1.0), 1.0)

    # ------------------------------------------------------------------ parameters
    @property
    def num_parameters(self) -> int:
        """The number of weights and biases."""
        return sum(w.size + b.size for w, b in self.layers)

    def to_vector(self) -> np.ndarray:
        """All parameters, layer by layer (weight then bias), as one vector."""
        return np.concatenate([np.r_[w.ravel(), b] for w, b in self.layers])

    def with_vector(self, vector: np.ndarray) -> CorrectionNetwork:
        """A network of the same shape with the parameters ``vector``."""
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vector.size != self.num_parameters:
            raise ValueError(
                f"CorrectionNetwork.with_vector: got {vector.size} values for "
                f"{self.num_parameters} parameters."
            )
        layers, offset = [], 0
        for weight, bias in self.layers:
            w = vector[offset : offset + weight.size].reshape(weight.shape)
            offset += weight.size
            b = vector[offset : offset + bias.size]
            offset += bias.size
            layers.append((w.copy(), b.copy()))
        return CorrectionNetwork(self.features, self.hidden, layers=layers)

    @classmethod
    def from_sb3(cls, model: Any, features: Sequence[str]) -> CorrectionNetwork:
        """The deterministic actor of a stable-baselines3 PPO model with ``tanh``
        hidden layers (``policy_kwargs: net_arch: {pi: [...]}, activation_fn: Tanh``):
        its action mean, which SB3 clips to the ``[-1, 1]`` box as this network does.

        Raises:
            ValueError: for another activation or a shape that does not fit.
        """
        policy = model.policy
        if policy.activation_fn is not torch.nn.Tanh:
            raise ValueError(
                "CorrectionNetwork.from_sb3: the policy must use tanh activations "
                f"(activation_fn=Tanh), got {policy.activation_fn.__name__}."
            )
        linears = [
            m
            for m in policy.mlp_extractor.policy_net.modules()
            if isinstance(m, torch.nn.Linear)
        ] + [policy.action_net]
        layers = [
            (
                m.weight.detach().double().cpu().numpy(),
                m.bias.detach().double().cpu().numpy(),
            )
            for m in linears
        ]
        hidden = [w.shape[0] for w, _ in layers[:-1]]
        return cls(features, hidden, layers=layers)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write the network as JSON (plain numbers; float64 round-trips exactly).

        ``metadata`` (JSON-able: the clip, the base controller, the training
        problems) is stored beside the weights and returned by :meth:`read`.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "features": list(self.features),
            "hidden": list(self.hidden),
            "activation": "tanh",
            "layers": [
                {"weight": w.tolist(), "bias": b.tolist()} for w, b in self.layers
            ],
            "metadata": metadata,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def read(
        cls, path: str | Path, features: Sequence[str] | None = None
    ) -> tuple[CorrectionNetwork, dict[str, Any]]:
        """A saved network and its metadata.

        Args:
            path: a file written by :meth:`save`.
            features: the features the caller will feed it; a network trained on
                others is refused (its inputs would mean something else).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a network file, or trained for other features (names the
                file, both feature lists and the fix).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such controller checkpoint; pass the controller.json a "
                "training run wrote (outputs/<task>/<run>/controller.json)."
            )
        try:
            payload = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            message = f"{path}: not a controller checkpoint ({error})."
            raise ValueError(message) from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{path}: not a controller checkpoint (its 'format' is not "
                f"{CHECKPOINT_FORMAT!r}); pass a file written by "
                "CorrectionNetwork.save."
            )
        trained = list(payload.get("features", []))
        if features is not None and list(features) != trained:
            raise ValueError(
                f"{path}: this controller was trained on features {trained}, but it "
                f"would be fed {list(features)}; retrain it for these features, or "
                f"set features={trained} (a stepper without a wave speed has no "
                "'courant')."
            )
        layers = [(layer["weight"], layer["bias"]) for layer in payload["layers"]]
        network = cls(trained, payload["hidden"], layers=layers)
        return network, dict(payload.get("metadata", {}))

    def __repr__(self) -> str:
        return (
            f"CorrectionNetwork(features={list(self.features)}, "
            f"hidden={list(self.hidden)})"
        )


class LearnedState(NamedTuple):
    """The PI state plus the last accepted step (``nan`` before the first)."""

    pid: PIDState = PIDState()
    dt_prev: float = math.nan


class Observation(NamedTuple):
    """What the controller sees of a step: its scaled error and the features."""

    err: float
    features: Float[np.ndarray, " F"]


class LearnedController:
    """PI control with a learned, bounded correction of its log step factor.

    For the step just tried, with scaled error ``err`` (``base``'s norm) and
    features ``x`` (:data:`FEATURES`, from the error history, the step sizes, the
    rejections, the tolerance and, where the stepper has a wave speed, the Courant
    number)::

        accept = err <= 1                                  (PI's rule, unchanged)
        factor = clip(factor_PI * 10 ** (c * a), low, high),  a = net(x) in [-1, 1]

    with ``[low, high]`` PI's own bounds for that verdict (:meth:`PIDController.
    propose`) and ``c = max_log10_correction``. Every factor is therefore within
    ``10 ** +-c`` of PI's and within PI's bounds; a rejected step always shrinks; a
    non-finite error gets PI's smallest factor. With ``network=None`` (or a fresh
    network, whose output layer is zero) the controller *is* ``base``: the same steps,
    bit for bit.

    Args:
        base: the PI controller corrected (its tolerances, coefficients, bounds).
        network: the correction (``None``: none); its ``features`` are observed.
        features: what to observe when ``network`` is ``None`` (e.g. for an agent
            that supplies the correction through :meth:`decide`).
        max_log10_correction: ``c``, the largest change of a factor in decades.

    Raises:
        ValueError: for ``c <= 0`` or unknown features.
    """

    def __init__(
        self,
        base: PIDController,
        network: CorrectionNetwork | None = None,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        max_log10_correction: float = 0.2,
    ) -> None:
        if not isinstance(base, PIDController):
            raise TypeError(
                f"LearnedController: base must be a PIDController, got "
                f"{type(base).__name__}."
            )
        if not (math.isfinite(max_log10_correction) and max_log10_correction > 0):
            raise ValueError(
                "LearnedController: max_log10_correction must be > 0 (decades), got "
                f"{max_log10_correction!r}."
            )
        self.base = base
        self.network = network
        self.features = (
            network.features
            if network is not None
            else check_features(features, "LearnedController")
        )
        self.max_log10_correction = float(max_log10_correction)
        self._needs_speed = "courant" in self.features

    @classmethod
    def load(
        cls,
        path: str | Path,
        base: PIDController,
        features: Sequence[str] | None = None,
    ) -> LearnedController:
        """The controller saved at ``path`` (:meth:`CorrectionNetwork.save` with
        ``max_log10_correction`` in its metadata) on top of ``base``.

        Raises:
            FileNotFoundError, ValueError: see :meth:`CorrectionNetwork.read`.
        """
        network, metadata = CorrectionNetwork.read(path, features)
        clip = float(metadata.get("max_log10_correction", 0.2))
        return cls(base, network, max_log10_correction=clip)

    # ------------------------------------------------------------------ checks
    def check_stepper(self, stepper: Stepper) -> None:
        """Refuse a stepper this controller cannot drive, before any step.

        Raises:
            TypeError: a solver built without an error estimate, or the feature
                ``courant`` for a stepper without ``max_speed``/``grid_spacing``.
        """
        if getattr(stepper, "error_estimate", None) is False:
            raise TypeError(
                f"LearnedController needs a stepper with an error estimate; "
                f"{type(stepper).__name__} was built with error_estimate=False. Build "
                "it with error_estimate=True (step doubling or the scheme's embedded "
                "pair), or use ConstantStep / CFLController."
            )
        self.base.error_exponent(stepper)
        if self._needs_speed:
            for name in ("max_speed", "grid_spacing"):
                require_attribute(stepper, name, "LearnedController (feature courant)")

    # ------------------------------------------------------------------ protocol
    def init(
        self, stepper: Stepper, t0: float, y0: Tensor, dt0: float | None
    ) -> tuple[float, LearnedState]:
        self.check_stepper(stepper)
        dt, pid = self.base.init(stepper, t0, y0, dt0)
        return dt, LearnedState(pid, math.nan)

    def observe(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: LearnedState,
    ) -> Observation:
        """The scaled error of the step and the (normalised) features."""
        err = self.base.error_norm(y0, result, stepper)
        ratio = dt / state.dt_prev if math.isfinite(state.dt_prev) else 1.0
        raw = {
            "log_error": math.log10(max(err, _TINY_ERROR)) if err < math.inf else 99.0,
            "log_error_prev": math.log10(state.pid.errors[0]),
            "log_dt_ratio": math.log10(ratio),
            "rejections": float(min(state.pid.rejections, 3)),
            "log_tolerance": math.log10(self.base.rtol),
        }
        if self._needs_speed:
            speed = float(torch.as_tensor(stepper.max_speed(y0)).max())
            courant = dt * speed / float(stepper.grid_spacing)
            raw["courant"] = math.log10(max(courant, 1e-6))
        x = np.empty(len(self.features))
        for i, name in enumerate(self.features):
            centre, scale = _SCALES[name]
            x[i] = min(max((raw[name] - centre) / scale, -_LIMIT), _LIMIT)
        return Observation(err, x)

    def decide(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        observation: Observation,
        correction: float,
        state: LearnedState,
    ) -> Decision[LearnedState]:
        """PI's verdict with the factor moved by ``correction`` (clipped to [-1, 1]).

        Raises:
            StepRejectedError: after the base's ``max_rejections`` in a row.
        """
        err = observation.err
        k = self.base.error_exponent(stepper)
        proposal = self.base.propose(t, dt, err, k, state.pid)
        factor = proposal.factor
        a = float(correction)
        if math.isfinite(err) and math.isfinite(a):
            a = min(max(a, -1.0), 1.0)
            factor = factor * 10.0 ** (self.max_log10_correction * a)
            factor = min(max(factor, proposal.low), proposal.high)
        dt_prev = dt if proposal.accept else state.dt_prev
        return Decision(
            accept=proposal.accept,
            dt_next=self.base.next_step(dt, proposal, factor),
            state=LearnedState(proposal.state, dt_prev),
        )

    def adapt(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: LearnedState,
    ) -> Decision[LearnedState]:
        observation = self.observe(stepper, t, dt, y0, result, state)
        correction = 0.0 if self.network is None else self.network(observation.features)
        return self.decide(stepper, t, dt, observation, correction, state)

    def describe(self) -> Mapping[str, Any]:
        """Plain values for a checkpoint's metadata."""
        return {
            "max_log10_correction": self.max_log10_correction,
            "features": list(self.features),
        }

    def __repr__(self) -> str:
        return (
            f"LearnedController(base={self.base!r}, network={self.network!r}, "
            f"max_log10_correction={self.max_log10_correction})"
        )
