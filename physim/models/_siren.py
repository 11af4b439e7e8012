"""SIREN: a multilayer perceptron with sine activations (Sitzmann et al. 2020)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["SIREN", "SineLayer"]


class SineLayer(nn.Linear):
    """``sin(omega_0 (W x + b))`` with the SIREN initialisation of ``W``.

    The first layer draws ``W ~ U(-1/in, 1/in)``; later layers draw
    ``W ~ U(-sqrt(6/in)/omega_0, sqrt(6/in)/omega_0)``, so that the pre-activations
    ``omega_0 W x`` of every layer are approximately ``U(-sqrt(6), sqrt(6))``-like and
    the activations keep an arcsine distribution through depth (Sitzmann et al. 2020,
    Sec. 3.2). The bias keeps ``nn.Linear``'s default ``U(-1/sqrt(in), 1/sqrt(in))``,
    as in the reference implementation.

    Args:
        in_features: input size.
        out_features: output size.
        omega_0: frequency factor (30 in the paper).
        is_first: use the first-layer initialisation.
    """

    def __init__(
        self, in_features: int, out_features: int, omega_0: float, *, is_first: bool
    ) -> None:
        super().__init__(in_features, out_features)
        self.omega_0 = float(omega_0)
        self.is_first = is_first
        with torch.no_grad():
            self.weight.uniform_(-self.weight_bound, self.weight_bound)

    @property
    def weight_bound(self) -> float:
        """The half-width of the uniform initialisation of ``weight``."""
        if self.is_first:
            return 1.0 / self.in_features
        return math.sqrt(6.0 / self.in_features) / self.omega_0

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega_0 * super().forward(x))


class SIREN(nn.Module):
    """A neural field ``R^in -> R^out``: sine layers, then a linear output layer.

    ``hidden_layers`` counts the hidden-to-hidden layers, as in the reference code:
    ``SIREN(1, 1, hidden_features=20, hidden_layers=2)`` is
    ``1 -> 20 -> 20 -> 20 -> 1`` with 901 parameters, the INSR advection network
    (Chen et al. 2023). The output layer is linear and initialised like a hidden layer
    (``U(+-sqrt(6/in)/omega_0)``), so outputs start at O(1/omega_0) scale; networks
    are fitted to the initial state before use.

    Good values: ``omega_0 = 30``; width 20-64, 2-3 hidden layers for smooth fields.
    Inputs should be O(1) coordinates (the first layer's ``U(-1/in, 1/in)`` weights
    then span about ``omega_0 / 2 pi`` periods over a unit interval).

    Args:
        in_features: input dimension (spatial dimension of the field).
        out_features: output dimension (field components).
        hidden_features: width of every sine layer.
        hidden_layers: number of hidden-to-hidden sine layers (>= 0).
        omega_0: frequency factor of every sine layer.

    Raises:
        ValueError: for a non-positive size or ``omega_0``, or negative depth.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 64,
        hidden_layers: int = 3,
        omega_0: float = 30.0,
    ) -> None:
        super().__init__()
        for name, value, minimum in [
            ("in_features", in_features, 1),
            ("out_features", out_features, 1),
            ("hidden_features", hidden_features, 1),
            ("hidden_layers", hidden_layers, 0),
        ]:
            if isinstance(value, bool) or int(value) != value or value < minimum:
                raise ValueError(
                    f"SIREN: {name} must be an integer >= {minimum}, got {value!r}."
                )
        if not (math.isfinite(omega_0) and omega_0 > 0):
            raise ValueError(
                f"SIREN: omega_0 must be a positive number, got {omega_0!r}."
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        layers: list[nn.Module] = [
            SineLayer(in_features, hidden_features, omega_0, is_first=True)
        ]
        layers += [
            SineLayer(hidden_features, hidden_features, omega_0, is_first=False)
            for _ in range(hidden_layers)
        ]
        output = nn.Linear(hidden_features, out_features)
        bound = math.sqrt(6.0 / hidden_features) / omega_0
        with torch.no_grad():
            output.weight.uniform_(-bound, bound)
        layers.append(output)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Float[Tensor, "*P in"]) -> Float[Tensor, "*P out"]:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"SIREN: expected points with {self.in_features} coordinate(s) in the "
                f"last dim, got shape {tuple(x.shape)}."
            )
        return self.net(x)
