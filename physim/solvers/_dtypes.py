"""The two precisions of the spectral solvers, by dtype or by name."""

from __future__ import annotations

import torch

__all__ = ["COMPLEX_DTYPES", "resolve_dtype"]

#: The complex dtype of a Fourier state of each real precision.
COMPLEX_DTYPES = {torch.float32: torch.complex64, torch.float64: torch.complex128}

_NAMES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "torch.float32": torch.float32,
    "torch.float64": torch.float64,
}


def resolve_dtype(owner: str, dtype: torch.dtype | str) -> torch.dtype:
    """``dtype`` (a torch dtype or its name) as ``torch.float32`` or ``torch.float64``.

    Raises:
        ValueError: for any other dtype; the message starts with ``owner``.
    """
    resolved = _NAMES.get(dtype) if isinstance(dtype, str) else dtype
    if resolved not in COMPLEX_DTYPES:
        raise ValueError(
            f"{owner}: dtype must be float32 or float64 (a torch.dtype or its name), "
            f"got {dtype!r}."
        )
    return resolved
