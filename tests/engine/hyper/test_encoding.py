import numpy as np
import torch

from core.space import sample_arch
from core.vocab import SLOTS
from engine.hyper.encoding import EncodingLayout
from tests.conftest import tiny_hyper, tiny_space


def test_encoding_is_injective_over_many_archs():
    space, layout = tiny_space(), EncodingLayout(tiny_space(), tiny_hyper())
    rng = np.random.default_rng(0)
    by_code: dict[bytes, str] = {}
    ids = set()
    for _ in range(3000):
        arch = sample_arch(space, rng, progress=float(rng.uniform()))
        enc, _ = layout.encode(arch)
        key = bytes(str(tuple(enc.shape)), "ascii") + enc.numpy().tobytes()
        assert by_code.setdefault(key, arch.id) == arch.id, "two archs share one encoding"
        ids.add(arch.id)
    assert len(ids) > 2500


def test_offsets_do_not_move_while_kernels_anneal():
    space, hyper = tiny_space(), tiny_hyper()
    layout = EncodingLayout(space, hyper)
    rng = np.random.default_rng(1)
    early = sample_arch(space, rng, progress=0.0)   # only 3x3 kernels allowed yet
    late = sample_arch(space, rng, progress=1.0)
    for arch in (early, late):
        enc, spans = layout.encode(arch)
        for span in spans:
            layer = arch.blocks[span.block].layers[span.index]
            col = enc[:, 0, span.col0]
            for s in range(SLOTS):
                p, c = divmod(s, 2)
                if p < len(layer.paths) and c < len(layer.paths[p]):
                    conv = layer.paths[p][c]
                    kh = int(torch.argmax(col[layout.offset[f"s{s}_kh"]:][: len(space.kernels)]))
                    assert space.kernels[kh] == conv.kernel[0]
                    assert col[layout.offset[f"s{s}_active"]] == 1
                else:
                    # An inactive slot carries its own flag, never just the background value.
                    assert col[layout.offset[f"s{s}_inactive"]] == 1
    # The layout is a function of the space alone.
    assert EncodingLayout(space, hyper).offset == layout.offset


def test_unused_cells_are_background():
    space, layout = tiny_space(), EncodingLayout(tiny_space(), tiny_hyper())
    arch = sample_arch(space, np.random.default_rng(2))
    enc, spans = layout.encode(arch)
    for span in spans:
        block = enc[:, :, span.col0: span.col0 + span.cols]
        assert block[:, : span.rows].abs().sum() > 0
        assert block[:, span.rows:].abs().sum() == 0
