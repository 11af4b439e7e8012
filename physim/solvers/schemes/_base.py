"""What every time scheme shares: the protocol, and per-``dt`` coefficients in a cache.

A scheme is bound to one :class:`~physim.solvers.schemes.SemiLinear` term and
advances its state (``advance``), or takes a step with an error estimate where it has
one (``step``, the :class:`~physim.timestepping.Stepper` protocol). The coefficients of
a step depend on ``dt`` (``e^{dt L}``, ``1 / (1 - dt/2 L)``), so they are built in
float64 per ``float(dt)``, cast to the state's precision and kept in a small LRU cache,
as the schemes of exponax precompute theirs in ``__init__`` for their one fixed ``dt``:
a constant-step run builds them once, an adaptive controller once per new ``dt``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from physim.timestepping import StepResult

from ._term import SemiLinear, State

__all__ = ["Scheme", "SchemeFactory", "SchemeOrders", "SemiLinearScheme"]


@runtime_checkable
class Scheme(Protocol):
    """Advances a :class:`SemiLinear` term; a :class:`~physim.timestepping.Stepper`.

    Attributes:
        name: a short identifier, stored in dataset attributes (``"etdrk4"``).
        order: global order of accuracy.
        term: the term it advances.

    Schemes with an embedded error estimate also have ``embedded_order`` (the order of
    the solution the estimate compares with), and their :meth:`step` returns the
    estimate; the others return ``error=None`` (wrap them in
    :class:`~physim.solvers.schemes.StepDoubling` for one).
    """

    name: str
    order: int
    term: SemiLinear

    def advance(self, y: State, t: float, dt: float) -> State:
        """The state at ``t + dt``."""
        ...

    def step(self, y: State, t: float, dt: float) -> StepResult:
        """One step, with the error estimate where the scheme has one."""
        ...


#: What a PDE's ``scheme=`` argument takes: a scheme class, or a
#: ``functools.partial`` of one (``_partial_: true`` in a config).
SchemeFactory = Callable[[SemiLinear], Scheme]


class SchemeOrders:
    """``order`` and ``embedded_order`` of a PDE solver, read from its ``scheme``
    (a mixin of the PDE classes, so a controller sees the scheme's orders)."""

    scheme: Scheme

    @property
    def order(self) -> int:
        """The scheme's global order."""
        return self.scheme.order

    @property
    def embedded_order(self) -> int:
        """The order of the solution the error estimate compares with (``order - 1``
        for schemes without an estimate, as :class:`PIDController` assumes)."""
        return getattr(self.scheme, "embedded_order", self.scheme.order - 1)


class SemiLinearScheme:
    """Base of the schemes: the bound term and an LRU cache of per-``dt`` coefficients.

    Subclasses set :attr:`name` and :attr:`order` and implement :meth:`advance`;
    those with ``dt``-dependent coefficients build them in :meth:`build` and fetch
    them with :meth:`coefficients`.

    Args:
        term: the term to advance.
        cache_size: how many ``dt``'s coefficients are kept (>= 1).
    """

    name: ClassVar[str]
    order: ClassVar[int]

    def __init__(self, term: SemiLinear, *, cache_size: int = 8) -> None:
        if not isinstance(term, SemiLinear):
            raise TypeError(
                f"{type(self).__name__}: term must be a SemiLinear (the PDE's "
                f"right-hand side, e.g. pde.term), got {type(term).__name__}."
            )
        if (
            isinstance(cache_size, bool)
            or int(cache_size) != cache_size
            or (cache_size < 1)
        ):
            raise ValueError(
                f"{type(self).__name__}: cache_size must be an integer >= 1, got "
                f"{cache_size!r}."
            )
        self.term = term
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[float, Any] = OrderedDict()

    def coefficients(self, dt: float) -> Any:
        """The coefficients of a step of ``dt`` (cached per ``float(dt)``)."""
        key = float(dt)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        found = self.build(key)
        self._cache[key] = found
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return found

    def build(self, dt: float) -> Any:
        """The coefficients of a step of ``dt`` (the subclass's hook)."""
        raise NotImplementedError

    def advance(self, y: State, t: float, dt: float) -> State:
        """The state at ``t + dt`` (the subclass's hook)."""
        raise NotImplementedError

    def step(self, y: State, t: float, dt: float) -> StepResult:
        """:meth:`advance` as a :class:`~physim.timestepping.StepResult`, no error."""
        return StepResult(self.advance(y, t, dt))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cache_size={self.cache_size})"
