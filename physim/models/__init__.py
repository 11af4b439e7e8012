"""Backbones as plain ``nn.Module``s (no Lightning).

Each maps ``(B, C_in, *space) -> (B, C_out, *space)``.
"""

from ._fno import FNO

__all__ = ["FNO"]
