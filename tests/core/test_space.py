import json
from collections import Counter

import numpy as np
import pytest

from core.arch import Arch, ArchError, check_arch
from core.space import MUTATIONS, _mutate_site, annealed, mutate, sample_arch
from core.vocab import PATH_SHAPES, SLOTS, slot_index, slot_position
from tests.conftest import tiny_space


def sample_many(space, n, seed=0, progress=1.0):
    rng = np.random.default_rng(seed)
    return [sample_arch(space, rng, progress) for _ in range(n)]


def test_op_vocabulary_slots_cover_every_layout_once():
    """Every conv of every op layout has its own slot, and a slot maps back to its conv."""
    for shape in PATH_SHAPES:
        slots = [slot_index(p, c) for p, n in enumerate(shape) for c in range(n)]
        assert len(set(slots)) == len(slots) and all(0 <= s < SLOTS for s in slots)
        assert [slot_position(s) for s in slots] == [(p, c) for p, n in enumerate(shape) for c in range(n)]
    assert SLOTS == 4  # the shared op weights and checkpoints are laid out by it


def test_sampling_is_deterministic_per_seed():
    space = tiny_space()
    a = sample_many(space, 20, seed=3)
    b = sample_many(space, 20, seed=3)
    c = sample_many(space, 20, seed=4)
    assert [x.id for x in a] == [x.id for x in b]
    assert [x.id for x in a] != [x.id for x in c]


def test_sampled_archs_are_valid_and_round_trip():
    space = tiny_space()
    for arch in sample_many(space, 300, seed=1):
        check_arch(arch, space)
        again = Arch.from_json(arch.to_json())
        assert again == arch and again.id == arch.id


def test_sampling_reaches_every_value_of_every_choice():
    space = tiny_space()
    seen = Counter()
    for arch in sample_many(space, 1500, seed=2):
        for block in arch.blocks:
            seen["bank", block.bank_units] += 1
            for layer in block.layers:
                seen["units", layer.units] += 1
                seen["shape", tuple(len(p) for p in layer.paths)] += 1
                seen["n_reads", min(len(layer.reads), 2)] += 1
                for conv in (c for p in layer.paths for c in p):
                    for k in conv.kernel:
                        seen["kernel", k] += 1
                    seen["kh,dh", conv.kernel[0], conv.dilation[0]] += 1
                    seen["groups", conv.groups] += 1
    for b in space.bank_units:
        assert seen["bank", b]
    for u in range(1, space.max_units + 1):
        assert seen["units", u], u
    for shape in PATH_SHAPES:
        assert seen["shape", shape], shape
    for k in space.kernels:
        assert seen["kernel", k]
        for d in range(1, space.dilation_cap(k) + 1):
            assert seen["kh,dh", k, d], (k, d)
    for g in space.groups:
        assert seen["groups", g]
    assert seen["n_reads", 1] and seen["n_reads", 2]


def test_depth_varies_and_budget_anneals():
    space = tiny_space()
    early = [a.n_layers for a in sample_many(space, 200, seed=5, progress=0.0)]
    late = [a.n_layers for a in sample_many(space, 200, seed=5, progress=1.0)]
    assert len(set(late)) > 2
    assert np.mean(late) > np.mean(early)
    kernels0, _ = annealed(space, 0.0)
    assert kernels0 == (3,)
    for arch in sample_many(space, 50, seed=6, progress=0.0):
        assert all(k == 3 for b in arch.blocks for la in b.layers for p in la.paths for c in p for k in c.kernel)


def test_mutate_gives_valid_neighbours():
    space = tiny_space()
    rng = np.random.default_rng(0)
    arch = sample_arch(space, rng)
    for _ in range(100):
        nb = mutate(arch, space, rng)
        check_arch(nb, space)
        assert nb.id != arch.id


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d["blocks"][0]["layers"][0].update(reads=[99]), "reads bank 99"),
    (lambda d: d["blocks"][0]["layers"][0].update(paths=[]), "op layout"),
    (lambda d: d["blocks"][0]["layers"][0]["paths"][0][0].update(kernel=[4, 3]), "odd kernels"),
    (lambda d: d["blocks"][0]["layers"][0]["paths"][0][0].update(groups=3), "groups 3"),
    (lambda d: d.pop("unit"), "malformed arch JSON"),
    (lambda d: d.update(format=99), "format"),
])
def test_bad_arch_json_gives_one_line_error(edit, needle):
    arch = sample_arch(tiny_space(), np.random.default_rng(0))
    d = json.loads(arch.to_json())
    edit(d)
    with pytest.raises(ArchError) as info:
        Arch.from_json(json.dumps(d))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_not_json():
    with pytest.raises(ArchError, match="not valid JSON"):
        Arch.from_json("{nope")


@pytest.mark.parametrize("kind", MUTATIONS)
def test_each_mutation_kind_is_reachable_and_valid(kind):
    """Every kind changes exactly the element it names, and the result is in the space."""
    space = tiny_space()
    rng = np.random.default_rng(1)
    changed = 0
    for seed in range(20):
        arch = sample_arch(space, np.random.default_rng(seed))
        b = int(rng.integers(len(arch.blocks)))
        nb = _mutate_site(arch, space, rng, b, int(rng.integers(len(arch.blocks[b].layers))), kind)
        check_arch(nb, space)
        if nb != arch:
            changed += 1
            assert _diff_kinds(arch, nb) == {kind}
    assert changed >= 10


def _diff_kinds(a, b) -> set[str]:
    kinds = set()
    for ba, bb in zip(a.blocks, b.blocks, strict=True):
        for la, lb in zip(ba.layers, bb.layers, strict=True):
            for field in ("reads", "writes"):
                if getattr(la, field) != getattr(lb, field):
                    kinds.add(field)
            if la.units != lb.units:
                kinds.add("width")
            if tuple(map(len, la.paths)) != tuple(map(len, lb.paths)):
                kinds.add("op_layout")
                continue
            for ca, cb in zip((c for p in la.paths for c in p), (c for p in lb.paths for c in p), strict=True):
                if ca.kernel != cb.kernel:
                    kinds.add("kernel")
                elif ca.dilation != cb.dilation:
                    kinds.add("dilation")
                if ca.groups != cb.groups:
                    kinds.add("groups")
    return kinds


def test_mutation_rate_sets_how_many_elements_change():
    space = tiny_space()
    arch = sample_arch(space, np.random.default_rng(0))
    rng = np.random.default_rng(0)

    def changes(rate):
        return np.mean([len(_diff_kinds(arch, mutate(arch, space, rng, rate))) for _ in range(200)])
    assert changes(0.01) < 1.2  # at least one, rarely more
    assert changes(0.3) > 2 * changes(0.01)


@pytest.mark.parametrize("prior, low, high", [("authors", 0.95, 1.0), ("soft", 0.15, 0.5)])
def test_width_prior_sets_how_often_width_equals_reads(prior, low, high):
    space = tiny_space(width_prior=prior, max_units=8, bank_units=(1,), stem_channels=16)
    same = total = 0
    for arch in sample_many(space, 60, seed=2):
        for block in arch.blocks:
            for la in block.layers:
                total += 1
                same += la.units == min(len(la.reads) * block.bank_units, space.max_units)
    assert low <= same / total <= high
