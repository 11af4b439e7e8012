"""Checks shared by the U-shaped backbone tests (UNet, SineNet)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from physim.cli.evaluate import load_task
from physim.models._blocks import phase_of, polyphase_choice
from tests.cli.conftest import compose_train

# (spatial_dims, grid, shift): odd and even shifts, along one axis and both.
SHIFT_CASES = [
    (1, (48,), (1,)),
    (1, (48,), (7,)),
    (2, (16, 24), (1, 0)),
    (2, (16, 24), (3, 5)),
    (2, (16, 24), (8, 4)),
]
# (spatial_dims, cond_mode) for the conditioning checks.
CONDITIONING_CASES = [(1, "add"), (2, "scale_shift"), (2, "add")]


def shift_error(
    model: nn.Module, x: torch.Tensor, shift: tuple[int, ...]
) -> tuple[float, float]:
    """Max |model(roll(x)) - roll(model(x))| and max |model(x)|."""
    dims = tuple(range(2, x.ndim))
    with torch.no_grad():
        y = model(x)
        y_shifted = model(x.roll(shift, dims))
    return (y_shifted - y.roll(shift, dims)).abs().max().item(), y.abs().max().item()


def check_commutes_with_shift(
    build: Callable[[], nn.Module], shape: tuple[int, ...], shift: tuple[int, ...]
) -> None:
    """A seeded ``build()`` (3 channels in) commutes with ``shift`` on a ``shape``
    grid, to round-off, and its output is not trivially small."""
    torch.manual_seed(0)
    model = build().double()
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    error, size = shift_error(model, x, shift)
    assert size > 0.1
    assert error < 1e-12 * max(size, 1.0)


def check_commutes_only_with_coarse_shifts(build: Callable[[], nn.Module]) -> None:
    """A seeded 2-D ``build()`` with two down-samplings at the fixed phase commutes
    with shifts by multiples of 4 but not with shifts by 1 or 2."""
    torch.manual_seed(0)
    model = build().double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    assert shift_error(model, x, (4, 8))[0] < 1e-12
    for shift in [(1, 0), (2, 2)]:
        error, size = shift_error(model, x, shift)
        assert error > 1e-3 * size


def bisect_phase_flip(
    monkeypatch, module: ModuleType, model: nn.Module, x0, x1, width: float, *args
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``a, b`` on the segment ``x0 -> x1``, ``max|b - a| <= width``, between
    which ``model``'s adaptive polyphase choices differ (``module``: the model's
    module, whose ``phase_of`` is recorded)."""
    phases = []

    def recording_phase_of(x, adaptive):
        phases.append(None if not adaptive else polyphase_choice(x).tolist())
        return phase_of(x, adaptive)

    monkeypatch.setattr(module, "phase_of", recording_phase_of)

    def choice(t: float):
        phases.clear()
        with torch.no_grad():
            model((1 - t) * x0 + t * x1, *args)
        return list(phases)

    low, high = 0.0, 1.0
    assert choice(low) != choice(high)
    step = (x1 - x0).abs().max().item()
    while (high - low) * step > width:
        middle = 0.5 * (low + high)
        low, high = (middle, high) if choice(middle) == choice(low) else (low, middle)
    monkeypatch.undo()
    return (1 - low) * x0 + low * x1, (1 - high) * x0 + high * x1


def check_zero_init_conditioning(build: Callable[..., nn.Module], spatial_dims: int):
    """A fresh conditioned net equals the same weights without conditioning, for any
    ``cond``; once its conditioning projections are perturbed, ``cond`` matters
    (``build``: 3 channels in, an 8-point grid per axis)."""
    x = torch.randn(2, 3, *([8] * spatial_dims), dtype=torch.float64)
    torch.manual_seed(0)
    conditioned = build(cond_dim=2).double()
    plain = build(cond_dim=0).double()
    missing, unexpected = plain.load_state_dict(conditioned.state_dict(), strict=False)
    assert not missing
    assert unexpected and all(
        k.startswith("cond_embedding.")
        or k.endswith(".proj.weight")
        or k.endswith(".proj.bias")
        for k in unexpected
    )
    cond_a = torch.tensor([[0.3, 5.0], [1.0, 20.0]], dtype=torch.float64)
    cond_b = torch.tensor([[2.0, 50.0], [0.1, 7.0]], dtype=torch.float64)
    with torch.no_grad():
        reference = plain(x)
        torch.testing.assert_close(
            conditioned(x, cond_a), reference, rtol=0, atol=1e-12
        )
        torch.testing.assert_close(
            conditioned(x, cond_b), reference, rtol=0, atol=1e-12
        )
        for name, parameter in conditioned.named_parameters():
            if ".proj." in name:
                parameter.normal_(std=0.1)
        out_a, out_b = conditioned(x, cond_a), conditioned(x, cond_b)
    scale = reference.abs().max()
    assert (out_a - reference).abs().max() > 1e-3 * scale
    assert (out_a - out_b).abs().max() > 1e-3 * scale


def check_backward_and_state_dict(model: nn.Module, x: torch.Tensor, *args) -> None:
    """Every parameter gets a gradient; the state dict survives ``weights_only``."""
    model(x, *args).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state.keys() == model.state_dict().keys()


def check_experiment_checkpoint_round_trip(experiment: str, tmp_path: Path) -> None:
    """An experiment's task, saved as `python train.py` saves it, is rebuilt from the
    checkpoint alone (`physim.cli.evaluate.load_task`, ``weights_only=True``) with
    identical weights, statistics and backbone output."""
    cfg = compose_train([f"+experiment={experiment}"], tmp_path / "out")
    GlobalHydra.instance().clear()
    torch.manual_seed(0)
    task = instantiate(cfg.model)
    task.run_config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    for buffer in task.buffers():  # statistics must travel with the checkpoint
        buffer.uniform_(0.5, 2.0)
    checkpoint = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "last.ckpt")
    loaded = load_task(tmp_path / "last.ckpt")
    reference = task.state_dict()
    assert loaded.state_dict().keys() == reference.keys()
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)
    net = task.net
    # The smallest grid every one of these backbones takes (3 halvings): cheap.
    x = torch.randn(2, net.lift.in_channels, *[16] * len(cfg.model.net.spatial_size))
    args = (torch.randn(2, net.cond_dim),) if net.cond_dim else ()
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(x, *args), net(x, *args), rtol=0, atol=0)
