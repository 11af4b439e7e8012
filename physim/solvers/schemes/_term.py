"""The term every scheme advances: ``dy/dt = L y + N(y, t)`` with a diagonal ``L``.

This is the contract between a PDE and a time scheme, as diffrax's ``ODETerm`` and
exponax's pair of a linear symbol and a nonlinear function: the PDE says *what* is
integrated, the scheme (``physim.solvers.schemes``) says *how one step is taken*.
A pseudo-spectral PDE gives its Fourier symbol as ``L`` (the stiff, implicit part)
and the rest as ``N`` (the explicit part); a scheme may integrate ``L`` exactly
(ETDRK4), implicitly (Crank-Nicolson) or explicitly (RK4, forward Euler).

The nonlinear part may be given as ``N(y, t) = f + W * B(P y, t)``: a constant forcing
``f``, a diagonal output weight ``W`` (a de-aliasing mask, a sign) and a 0/1 input mask
``P`` (the de-aliasing truncation of the state) around the core ``B``. Schemes that can
fold ``f``, ``W`` or ``P`` into their per-``dt`` coefficients do so (the IMEX scheme
folds ``f`` and ``W``, saving two element-wise passes per evaluation; ETDRK4 folds
``P`` into the coefficients of its stages, which only ``N`` reads); the others call
:meth:`SemiLinear.nonlinear_part`. Why not one callable ``N``: the folds are what make
the Navier-Stokes and KS steps a handful of kernels, and they need ``f``, ``W`` and
``P`` apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from jaxtyping import Shaped
from torch import Tensor

from .._dtypes import COMPLEX_DTYPES

__all__ = ["Nonlinear", "SemiLinear", "State", "cast_to_state"]

#: A batched state: a Fourier spectrum ``[B, *K]`` (complex) or a real field.
State = Shaped[Tensor, "B *K"]

#: The dtypes a state may have: real fields and their Fourier spectra.
STATE_DTYPES = (*COMPLEX_DTYPES, *COMPLEX_DTYPES.values())

#: ``B(y, t)``: a state in, a tensor of the state's shape out.
Nonlinear = Callable[[State, float], State]


def cast_to_state(coefficient: Tensor, dtype: torch.dtype) -> Tensor:
    """A float64/complex128 coefficient in the state's dtype ``dtype``.

    A real coefficient of a complex (Fourier) state is stored as complex with a zero
    imaginary part: torch would otherwise convert it to complex in every product
    (a copy per multiplication), and the product is the same either way.

    Raises:
        ValueError: a complex coefficient for a real state.
    """
    if dtype.is_complex:
        return coefficient.to(dtype)
    if coefficient.is_complex():
        raise ValueError(
            f"a complex coefficient cannot scale a real state ({dtype}); give the "
            "term a complex dtype (a Fourier state) or a real symbol."
        )
    return coefficient.to(dtype)


@dataclass(frozen=True, eq=False)
class SemiLinear:
    """``dy/dt = L y + N(y, t)``, ``N(y, t) = f + W * B(P y, t)``, ``L`` diagonal.

    Example (the KdV right-hand side in Fourier space, without de-aliasing)::

        k = 2 pi m / extent                                    # m = 0..N/2
        term = SemiLinear(
            1j * k**3,
            lambda u_hat, t: -3j * k * rfft(irfft(u_hat, n=N) ** 2),
            dtype=torch.complex128,
        )

    Good values: ``dtype`` the state's own (a Fourier state's complex dtype); ``L``
    and ``W``, ``f``, ``P`` in float64/complex128 (schemes cast once per ``dt``).

    Attributes:
        linear: the symbol of ``L``, float64 or complex128, broadcastable against the
            state (``[K]``, per trajectory ``[B, K]``, 2-D ``[N, K]``).
        nonlinear: ``B(y, t)``, returning a tensor of ``y``'s shape and dtype.
        dtype: the state's dtype: complex64/complex128 for a Fourier state,
            float32/float64 for a real one. Schemes build their coefficients in
            float64/complex128 and cast them to it once per ``dt``.
        weight: ``W``, a real diagonal (float64) broadcastable against the state, or
            ``None`` (``W = 1``).
        forcing: ``f``, a constant (float64 or complex128) broadcastable against the
            state, or ``None``.
        mask: ``P``, a real 0/1 diagonal (float64 or bool) broadcastable against the
            state, applied to the state before ``B`` (the 2/3 rule of a
            pseudo-spectral PDE: ``B`` then sees only the kept modes), or ``None``
            (``P = 1``).
    """

    linear: Shaped[Tensor, "*K"]
    nonlinear: Nonlinear
    dtype: torch.dtype = torch.float64
    weight: Shaped[Tensor, "*K"] | None = None
    forcing: Shaped[Tensor, "*K"] | None = None
    mask: Shaped[Tensor, "*K"] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in STATE_DTYPES:
            raise ValueError(
                "SemiLinear: dtype (the state's) must be float32, float64, complex64 "
                f"or complex128, got {self.dtype!r}."
            )
        if self.weight is not None and self.weight.is_complex():
            raise ValueError(
                "SemiLinear: weight must be real (a mask or a sign); put complex "
                "factors into the nonlinear function or the linear symbol."
            )
        if self.mask is not None and self.mask.is_complex():
            raise ValueError(
                "SemiLinear: mask must be real (0 or 1 per mode), got "
                f"{self.mask.dtype}."
            )

    @cached_property
    def _cast(self) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``L``, ``W`` and ``f`` in the state's dtype (built once)."""
        weight = None if self.weight is None else self.weight.to(self.dtype)
        forcing = (
            None if self.forcing is None else cast_to_state(self.forcing, self.dtype)
        )
        return cast_to_state(self.linear, self.dtype), weight, forcing

    @cached_property
    def mask_cast(self) -> Tensor | None:
        """``P`` in the state's dtype (complex for a Fourier state), or ``None``."""
        return None if self.mask is None else self.mask.to(self.dtype)

    def project(self, y: State) -> State:
        """``P y`` (``y`` itself without a mask)."""
        return y if self.mask is None else y * self.mask_cast

    def nonlinear_part(self, y: State, t: float, *, projected: bool = False) -> State:
        """``N(y, t) = f + W * B(P y, t)`` (``B`` alone without ``f``, ``W``, ``P``).

        Args:
            projected: ``y`` is masked already (its modes outside ``P`` are zero, up
                to the sign of the zeros): ``P`` is not applied again.
        """
        _, weight, forcing = self._cast
        n = self.nonlinear(y if projected else self.project(y), t)
        if weight is not None:
            n = weight * n
        if forcing is not None:
            n = n + forcing
        return n

    def vector_field(self, y: State, t: float) -> State:
        """The whole right-hand side ``(L y + W B(P y, t)) + f``."""
        linear, weight, forcing = self._cast
        n = self.nonlinear(self.project(y), t)
        rhs = linear * y + (n if weight is None else weight * n)
        return rhs if forcing is None else rhs + forcing
