"""neuraloperator's Fourier neural operator, with a checkpoint-safe state dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import neuralop.models
import torch
from torch import Tensor, nn


class FNO(neuralop.models.FNO, name="physim_fno"):
    """neuraloperator's FNO (1-D, 2-D or 3-D by ``len(n_modes)``), unchanged in maths.

    ``(B, in_channels, *space) -> (B, out_channels, *space)``; works at any resolution
    with at least ``n_modes`` points per dimension.

    The one change: neuraloperator's ``state_dict()`` adds a top-level ``_metadata``
    entry holding python objects (e.g. ``F.gelu``), which breaks Lightning checkpoints
    loaded with ``weights_only=True`` and lands at the root of any parent's state dict.
    Here ``state_dict``/``load_state_dict`` are the plain ``nn.Module`` ones.

    Conditioning (``cond_dim > 0``): ``forward(x, cond)`` appends the ``cond [B, P]``
    scalars to the input as constant channels, the usual way to give an FNO global
    parameters (FNO has no embedding path of its own).

    Args:
        in_channels: input channels (history frames x field channels).
        out_channels: output channels (future frames x field channels).
        n_modes: Fourier modes kept per dimension, counting positive *and* negative
            frequencies: ``(24, 24)`` is the FNO paper's "12 modes".
        hidden_channels: width of the Fourier layers (the paper's 20 for NS-2D).
        n_layers: number of Fourier layers.
        cond_dim: number of conditioning scalars per sample (0: unconditioned).
        **kwargs: any other ``neuralop.models.FNO`` option (plain values only).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        hidden_channels: int = 32,
        n_layers: int = 4,
        cond_dim: int = 0,
        **kwargs: Any,
    ) -> None:
        if cond_dim < 0:
            raise ValueError(f"FNO: cond_dim must be >= 0, got {cond_dim}.")
        super().__init__(
            n_modes=tuple(int(m) for m in n_modes),
            in_channels=in_channels + cond_dim,
            out_channels=out_channels,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            **kwargs,
        )
        self.cond_dim = cond_dim
        self.input_channels = in_channels  # neuralop's in_channels adds cond_dim

    def forward(self, x: Tensor, cond: Tensor | None = None, **kwargs: Any) -> Tensor:
        """``(B, in_channels, *space)`` [and ``cond (B, cond_dim)``] -> output."""
        if self.cond_dim:
            if cond is None or cond.shape != (x.shape[0], self.cond_dim):
                raise ValueError(
                    f"FNO with cond_dim={self.cond_dim} needs cond of shape "
                    f"{(x.shape[0], self.cond_dim)}, got "
                    f"{None if cond is None else tuple(cond.shape)}."
                )
            planes = cond.to(x.dtype)[(..., *([None] * (x.ndim - 2)))]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], dim=1)
        elif cond is not None:
            raise ValueError("FNO: got cond, but the model has cond_dim=0.")
        return super().forward(x, **kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return nn.Module.state_dict(self, *args, **kwargs)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        return nn.Module.load_state_dict(self, state_dict, strict=strict, assign=assign)
