import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.arch import Arch, Block, Conv, Layer
from core.size import count_flops, count_params
from core.space import sample_arch
from core.vocab import PATH_SHAPES, slot_index
from engine.hyper.hypernet import HyperNet
from engine.nets.archnet import ArchNet
from engine.nets.smashnet import SMASHNet
from tests.conftest import tiny_hyper, tiny_space

SPACE = tiny_space()


def one_layer_arch(paths, units=2) -> Arch:
    layer = Layer(reads=(0, 1), writes=(0, 4), units=units, paths=paths)
    block0 = Block(bank_units=1, in_channels=16, layers=(layer,))
    block1 = Block(bank_units=2, in_channels=32, layers=(Layer((0,), (0, 4), 2, ((Conv((3, 3), (1, 1), 1),),)),))
    return Arch(unit=4, bottleneck=4, stem_channels=16, blocks=(block0, block1))


CONVS = [Conv((kh, kw), (dh, dw), g) for (kh, kw), (dh, dw), g in itertools.product(
    [(3, 3), (5, 3), (7, 5)], [(1, 1), (2, 1), (1, 3)], SPACE.groups)]
OPS = [(shape, conv) for shape in PATH_SHAPES for conv in CONVS]


@pytest.mark.parametrize("shape, conv", OPS, ids=[f"{s}-{c.kernel}-{c.dilation}-g{c.groups}" for s, c in OPS])
def test_every_op_configuration_runs_forward_and_backward(shape, conv):
    arch = one_layer_arch(tuple(tuple(conv for _ in range(n)) for n in shape))
    hyper, net, free = HyperNet(SPACE, tiny_hyper()), SMASHNet(SPACE, 1, 10), ArchNet(arch, 1, 10)
    x = torch.randn(4, 1, 12, 12)
    enc, spans = hyper.layout.encode(arch)
    out = net(x, arch, hyper.generate(enc, spans, torch.randn(1, *enc.shape[1:])))
    out2 = free(x)
    assert out.shape == out2.shape == (4, 10)
    (out.sum() + out2.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(out2).all()
    for p in list(hyper.parameters()) + list(free.parameters()):
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("generate", ["bottleneck", "bottleneck+ops", "none"])
def test_generated_net_equals_free_net_with_same_weights(generate):
    hyper, net = HyperNet(SPACE, tiny_hyper(generate=generate)), SMASHNet(SPACE, 1, 10)
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = sample_arch(SPACE, rng)
        enc, spans = hyper.layout.encode(arch)
        gen = hyper.generate(enc, spans, torch.randn(1, *enc.shape[1:]))
        free = ArchNet(arch, 1, 10)
        free.load_smash(net, gen)
        free.train()  # both nets normalise with batch statistics
        x = torch.randn(6, 1, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(net(x, arch, gen), free(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("generate", ["bottleneck", "none"])
def test_gradients_reach_the_hypernet(generate):
    hyper, net = HyperNet(SPACE, tiny_hyper(generate=generate)), SMASHNet(SPACE, 1, 10)
    arch = sample_arch(SPACE, np.random.default_rng(1))
    enc, spans = hyper.layout.encode(arch)
    out = net(torch.randn(4, 1, 16, 16), arch, hyper.generate(enc, spans, torch.randn(1, *enc.shape[1:])))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    grads = {name: p.grad for name, p in hyper.named_parameters()}
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # Each layer's 1x1 is scaled to unit norm, so the head's single (whole-tensor) gain
    # cancels out of the network: its gradient is zero by design.
    grads.pop("head.g", None)
    # Shared 1x1s: only the rows and columns this Arch used receive gradient.
    assert all(g.abs().sum() > 0 for g in grads.values())


@pytest.mark.parametrize("stem_stride", [1, 2])
def test_params_and_flops_match_torch(stem_stride):
    """core.size counts without tensors; the network itself is the reference."""
    rng = np.random.default_rng(3)
    space = dataclasses.replace(SPACE, stem_stride=stem_stride)
    for _ in range(12):
        arch = sample_arch(space, rng)
        net = ArchNet(arch, 3, 7)
        assert count_params(arch, 3, 7) == sum(p.numel() for p in net.parameters())
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net.eval()(torch.randn(1, 3, 20, 20))
        assert count_flops(arch, (3, 20, 20), 7) == counter.get_total_flops()


def test_odd_image_sizes_and_channels():
    arch = sample_arch(SPACE, np.random.default_rng(4))
    for shape in [(1, 9, 13), (5, 17, 17)]:
        out = ArchNet(arch, shape[0], 3)(torch.randn(2, *shape))
        assert out.shape == (2, 3)


def test_recalibrated_batch_norm_matches_batch_statistics_on_the_same_batch():
    hyper, net = HyperNet(SPACE, tiny_hyper()), SMASHNet(SPACE, 1, 10)
    arch = sample_arch(SPACE, np.random.default_rng(5))
    enc, spans = hyper.layout.encode(arch)
    gen = hyper.generate(enc, spans, torch.randn(1, *enc.shape[1:]))
    x = torch.randn(16, 1, 16, 16)
    with torch.no_grad():
        batch = net(x, arch, gen)
        net.stats.collect()
        net(x, arch, gen)
        net.stats.fix()
        fixed = net(x, arch, gen)
        other = net(x[:4], arch, gen)  # fixed statistics: no longer depends on the batch
        net.stats.reset()
        torch.testing.assert_close(fixed, batch, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(other, batch[:4], rtol=1e-4, atol=1e-4)
        assert not torch.allclose(net(x[:4], arch, gen), batch[:4], atol=1e-4)


@pytest.mark.parametrize("channels_last", [False, True])
def test_shared_op_weight_gradients_equal_plain_slicing(channels_last):
    """The one-node-per-slot weight cuts give the gradients that slicing per use gives."""
    hyper, net = HyperNet(SPACE, tiny_hyper()), SMASHNet(SPACE, 1, 10)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    rng = np.random.default_rng(5)
    x = torch.randn(4, 1, 16, 16).contiguous(memory_format=fmt)
    for _ in range(3):
        arch = sample_arch(SPACE, rng, progress=1.0)
        enc, spans = hyper.layout.encode(arch)
        gen = hyper.generate(enc, spans, torch.randn(1, *enc.shape[1:]))

        def sliced(a, net=net):
            cuts, k = {}, 0
            for b, block in enumerate(a.blocks):
                for layer in block.layers:
                    c_out = a.layer_out(layer)
                    for p, path in enumerate(layer.paths):
                        for c, conv in enumerate(path):
                            c_in = a.layer_bottleneck(b, layer) if c == 0 else c_out
                            cuts[k, p, c] = net.op_weight(b, slot_index(p, c), conv, c_in, c_out)
                    k += 1
            return cuts

        grads = []
        for cut in (net.op_weights, sliced):
            net.op_weights = cut
            out = net(x, arch, gen)
            grads.append(torch.autograd.grad(out.square().sum(), list(net.op_w), allow_unused=True,
                                             retain_graph=True))
            del net.op_weights
        for fast, plain in zip(*grads, strict=True):
            assert (fast is None) == (plain is None)
            if fast is not None:
                torch.testing.assert_close(fast, plain)
        assert any(g is not None and g.abs().sum() > 0 for g in grads[0])
