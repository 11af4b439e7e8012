"""Learned-interpolation stencils: constraint, base scheme, offsets, CNN symmetry."""

import pytest
import torch

from physim.models import (
    LearnedInterpolation,
    StencilInterpolation,
    apply_stencils,
    linear_stencils,
    stencil_nullspace,
)
from physim.solvers import (
    FiniteVolumeNS2D,
    LinearVanLeerInterpolation,
    VanLeerInterpolation,
    face_shift,
    linear_face_values,
    staggered_divergence,
)


def velocity(n=8, count=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 2, n, n, generator=generator, dtype=torch.float64)


def test_nullspace_spans_the_zero_sum_stencils():
    nullspace = stencil_nullspace()
    assert nullspace.shape == (15, 16)
    torch.testing.assert_close(nullspace @ nullspace.T, torch.eye(15).double())
    torch.testing.assert_close(nullspace.sum(1), torch.zeros(15).double())


def test_zero_logits_reproduce_linear_interpolation_exactly():
    net = LearnedInterpolation(2, hidden_channels=8, num_layers=2).double()
    logits = torch.zeros(2, 120, 8, 8, dtype=torch.float64)
    coefficients = net.stencils(logits)[:, 0]
    v = velocity()
    faces = apply_stencils(v, coefficients)
    linear = linear_face_values(v)
    assert torch.equal(faces.advecting, linear.advecting)
    assert torch.equal(faces.advected, linear.advected)
    # With the van Leer blend the advected values are van Leer's limiter on linear
    # face values, and an untrained model (zero output layer) is exactly that
    # scheme: jax-cfd's learned stencils also start from linear interpolation (the
    # PolynomialConstraint bias) and are limited the same way. It is not jax-cfd's
    # van Leer scheme, which limits Lax-Wendroff face values.
    limited = LinearVanLeerInterpolation()(v)
    (untrained,) = net(v)
    for a, b in zip(untrained(v, dt=0.1, grid_spacing=1.0), limited, strict=True):
        assert torch.equal(a, b)
    lax_wendroff = VanLeerInterpolation()(v, dt=0.1, grid_spacing=1.0)
    assert not torch.equal(untrained(v).advected, lax_wendroff.advected)


def test_learned_coefficients_always_sum_to_one():
    torch.manual_seed(0)
    net = LearnedInterpolation(4, hidden_channels=8, num_layers=2, bundle=3).double()
    logits = 10 * torch.randn(2, 3 * 120, 6, 6, dtype=torch.float64)
    coefficients = net.stencils(logits)
    assert coefficients.shape == (2, 3, 8, 16, 6, 6)
    torch.testing.assert_close(
        coefficients.sum(3), torch.ones(2, 3, 8, 6, 6).double(), rtol=0, atol=1e-12
    )
    assert coefficients.std() > 1  # far from the base stencils


def test_stencil_offsets_and_sources():
    v = velocity()
    base = linear_stencils()
    # Stencil point 4 (dx + 1) + (dy + 1) with (dx, dy) = (2, -1): u[i + 2, j - 1].
    one_hot = torch.zeros(2, 8, 16, 8, 8, dtype=torch.float64)
    one_hot[:, :, 4 * 3 + 0] = 1.0
    faces = apply_stencils(v, one_hot)
    shifted = face_shift(face_shift(v, 0, 2), 1, -1)
    # Interpolation 4 tag + 2 c + j: tag 0 reads u_j, tag 1 reads u_c.
    torch.testing.assert_close(faces.advecting[:, 0, 1], shifted[:, 1])
    torch.testing.assert_close(faces.advecting[:, 1, 0], shifted[:, 0])
    torch.testing.assert_close(faces.advected[:, 0, 1], shifted[:, 0])
    torch.testing.assert_close(faces.advected[:, 1, 0], shifted[:, 1])
    # Base weights: 1/2 on offsets 0 and 1 of the shifted axis (tag 0: axis c,
    # tag 1: axis j), 1 on offset 0 of the other; indexed [dx + 1, dy + 1].
    for k, axis in [(1, 0), (2, 1), (5, 1), (6, 0)]:
        stencil = base[k].reshape(4, 4)
        half = stencil[1:3, 1] if axis == 0 else stencil[1, 1:3]
        assert half.tolist() == [0.5, 0.5] and stencil.sum() == 1


def test_cnn_is_translation_equivariant_on_the_torus():
    torch.manual_seed(0)
    net = LearnedInterpolation(2, hidden_channels=8, num_layers=3).double()
    torch.nn.init.normal_(net.cnn[-1].weight)
    v = velocity(n=12)
    shifted = torch.roll(v, (3, -5), dims=(-2, -1))
    coefficients = net.coefficients(v)
    torch.testing.assert_close(
        net.coefficients(shifted), torch.roll(coefficients, (3, -5), dims=(-2, -1))
    )
    loss = StencilInterpolation(coefficients[:, 0])(v).advected.square().mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="bundle"):
        LearnedInterpolation(2, bundle=0)
    with pytest.raises(ValueError, match="kernel_size"):
        LearnedInterpolation(2, kernel_size=4)


def test_learned_stencils_keep_momentum_and_divergence():
    # Flux form: any face values telescope, so learned stencils conserve momentum too.
    torch.manual_seed(0)
    net = LearnedInterpolation(2, hidden_channels=8, num_layers=2).double()
    coefficients = net.stencils(torch.randn(2, 120, 8, 8, dtype=torch.float64))[:, 0]
    solver = FiniteVolumeNS2D(8, viscosity=0.0, dtype="float64")
    v = solver.project(velocity())
    momentum = v.sum((-2, -1))
    for _ in range(5):
        v = solver.advance(v, 0.02, StencilInterpolation(coefficients))
    torch.testing.assert_close(v.sum((-2, -1)), momentum, rtol=0, atol=1e-10)
    assert staggered_divergence(v, solver.grid_spacing).abs().max() <= 1e-10
