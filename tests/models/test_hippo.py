"""HiPPO memory: reconstruction, window map = recurrence, matrices, stem, errors."""

import pytest
import torch
from scipy.special import eval_legendre

from physim.models import HiPPO, HiPPOStem, hippo_matrices


def legt_reconstruction_error(state_size, num_frames=256):
    t = torch.arange(num_frames, dtype=torch.float64)
    signal = torch.sin(3 * torch.pi * t / num_frames) + 0.5 * torch.cos(
        1.4 * torch.pi * t / num_frames
    )
    hippo = HiPPO(state_size, "legt", window=num_frames).double()
    state = torch.zeros(1, 1, state_size, dtype=torch.float64)
    for index in range(num_frames):
        state = hippo.update(state, signal[index].view(1, 1), index + 1)
    # u(t - theta + s theta) ~ sum_n x_n sqrt(2n + 1) P_n(2s - 1), s = 1 the newest.
    s = (t + 1) / num_frames
    n = torch.arange(state_size, dtype=torch.float64)
    basis = torch.from_numpy(
        eval_legendre(n[None, :].numpy(), (2 * s - 1)[:, None].numpy())
    )
    reconstruction = (basis * torch.sqrt(2 * n + 1)) @ state[0, 0]
    return float((reconstruction - signal).square().mean().sqrt())


def test_legt_reconstruction_improves_with_state_size():
    errors = [legt_reconstruction_error(n) for n in (2, 4, 6, 8)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[0] > 0.5
    assert errors[-1] < 0.05


@pytest.mark.parametrize(
    ("measure", "window"), [("lagt", None), ("legt", 16.0), ("legs", None)]
)
def test_window_features_equal_the_recurrence(measure, window):
    torch.manual_seed(0)
    hippo = HiPPO(12, measure, window).double()
    frames = torch.randn(2, 16, 3, 5, 4, dtype=torch.float64)
    state = torch.zeros(2, 3, 12, 5, 4, dtype=torch.float64)
    for index in range(frames.shape[1]):
        state = hippo.update(state, frames[:, index], index + 1)
    torch.testing.assert_close(hippo(frames), state, rtol=1e-10, atol=1e-10)
    assert hippo.window_matrix(16).shape == (16, 12)
    assert hippo.features(state).shape == (2, 36, 5, 4)


def test_matrices_follow_the_definitions():
    a, b = hippo_matrices("lagt", 3)
    expected = torch.tensor([[-0.5, 0, 0], [-1, -0.5, 0], [-1, -1, -0.5]])
    torch.testing.assert_close(a, expected.double())
    torch.testing.assert_close(b, torch.ones(3, dtype=torch.float64))
    a, b = hippo_matrices("legs", 3)
    root = torch.sqrt(torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64))
    assert a[2, 0] == pytest.approx(-float(root[2] * root[0]))
    assert a[1, 1] == -2.0 and a[0, 2] == 0.0
    torch.testing.assert_close(b, root)
    a, b = hippo_matrices("legt", 3, window=2.0)
    assert a[0, 1] == pytest.approx(float(root[0] * root[1]) / 2)  # (-1)^(0-1) sign
    assert a[1, 0] == pytest.approx(-float(root[1] * root[0]) / 2)
    # LTI measures are stable after the bilinear map: spectral radius below 1.
    for measure, window in [("lagt", None), ("legt", 32.0)]:
        radius = torch.linalg.eigvals(HiPPO(64, measure, window).double().a_bar).abs()
        assert radius.max() < 1


def test_stem_feeds_hippo_features_to_a_backbone():
    backbone = torch.nn.Conv2d(2 * 8, 2, 3, padding=1)
    stem = HiPPOStem(backbone, num_channels=2, state_size=8)
    history = torch.randn(3, 5 * 2, 16, 16)
    out = stem(history)
    assert out.shape == (3, 2, 16, 16)
    # Frames are stacked as channels, time-major: the stem unstacks them first.
    frames = history.reshape(3, 5, 2, 16, 16)
    expected = backbone(stem.hippo.features(stem.hippo(frames)))
    torch.testing.assert_close(out, expected)
    out.square().mean().backward()
    assert all(p.grad is not None for p in stem.parameters())
    with pytest.raises(ValueError, match="num_channels=2"):
        stem(torch.randn(1, 7, 16, 16))


def test_bad_measure_and_window_are_rejected():
    with pytest.raises(ValueError, match="unknown measure 'legx'"):
        HiPPO(8, "legx")
    with pytest.raises(ValueError, match="needs a window"):
        HiPPO(8, "legt")
    with pytest.raises(ValueError, match="state_size"):
        HiPPO(0)
