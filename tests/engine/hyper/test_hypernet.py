"""The HyperNet alone: its input reaches the dense stack, both weight-norm forms, shapes."""

import numpy as np
import pytest
import torch

from core.space import sample_arch
from engine.hyper.hypernet import HyperNet, WNConv2d
from tests.conftest import tiny_hyper, tiny_space

SPACE = tiny_space()


def grid_for(hyper: HyperNet, seed: int = 0) -> torch.Tensor:
    enc, _ = hyper.layout.encode(sample_arch(SPACE, np.random.default_rng(seed)))
    noise = torch.randn((hyper.cfg.noise_channels, *enc.shape[1:]), generator=torch.Generator().manual_seed(0))
    return torch.cat([noise, enc], 0).unsqueeze(0)


@pytest.mark.parametrize("dense_input", [True, False])
def test_gradients_reach_the_first_layer_through_the_concatenated_encoding(dense_input):
    """With the first conv silenced, only the concatenated encoding carries the input: its
    gradient must reach both the input and the first conv (through the dense stack)."""
    torch.manual_seed(0)
    hyper = HyperNet(SPACE, tiny_hyper(dense_input=dense_input))
    with torch.no_grad():
        hyper.body[0].g.zero_()
    grid = grid_for(hyper).requires_grad_(True)
    hyper(grid).square().sum().backward()
    reached = float(grid.grad.abs().sum())
    if dense_input:
        assert reached > 0
        assert float(hyper.body[1].v.grad.abs().sum()) > 0
    else:
        assert reached == 0  # the squeeze: nothing of the encoding gets past a silent first conv


def test_dense_input_widens_the_first_stage_by_the_encoding():
    on, off = (HyperNet(SPACE, tiny_hyper(dense_input=d)) for d in (True, False))
    extra = on.cfg.noise_channels + on.layout.channels
    assert on.body[1].v.shape[1] == off.body[1].v.shape[1] + extra


@pytest.mark.parametrize("norm", ["tensor", "channel"])
def test_weight_norm_forms_start_from_the_same_weights_and_scale_with_the_gain(norm):
    torch.manual_seed(0)
    conv = WNConv2d(6, 4, 3, norm)
    ref = conv.v.detach().clone()
    x = torch.randn(1, 6, 5, 5)
    y = conv(x)
    expected = torch.nn.functional.conv2d(x, ref, padding=1)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)
    assert conv.g.numel() == (4 if norm == "channel" else 1)
    with torch.no_grad():
        conv.v.mul_(3.0)  # the direction's length never matters
    torch.testing.assert_close(conv(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cfg", [tiny_hyper(), tiny_hyper(dense_input=False, weight_norm="channel")])
def test_generated_bottlenecks_have_every_layer_shape(cfg):
    hyper = HyperNet(SPACE, cfg)
    arch = sample_arch(SPACE, np.random.default_rng(3))
    enc, spans = hyper.layout.encode(arch)
    gen = hyper.generate(enc, spans, torch.randn(cfg.noise_channels, *enc.shape[1:]))
    for s, w in zip(spans, gen.bottlenecks, strict=True):
        assert w.shape == (s.n_out, s.n_in, 1, 1)
        assert torch.isfinite(w).all()


@pytest.mark.parametrize("cfg", [tiny_hyper(), tiny_hyper(dense_input=False)])
def test_flops_count_every_conv_as_torch_counts_them(cfg):
    """HyperNet.flops (the HyperNet's share of a SMASH step in bench/step.py) against
    torch's own FLOP counter over the same forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    hyper = HyperNet(SPACE, cfg)
    for seed in range(3):
        grid = grid_for(hyper, seed)
        with FlopCounterMode(display=False) as counter:
            hyper(grid)
        assert hyper.flops(*grid.shape[2:]) == counter.get_total_flops() > 0
