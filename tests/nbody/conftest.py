"""Systems shared by the n-body tests."""

from __future__ import annotations

import numpy as np
import pytest

from physim.nbody import NBodySystem


@pytest.fixture
def colliding_system() -> NBodySystem:
    """Bodies 0 and 1 (nearly massless) meet head-on at the origin at t = 1."""
    masses = np.full(3, 1e-20)
    y = np.zeros((3, 6))
    y[0, [0, 3]] = (-1.0, 1.0)
    y[1, [0, 3]] = (1.0, -1.0)
    y[2, 1] = 10.0
    return NBodySystem(masses, y)
