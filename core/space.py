"""The memory-bank search space: architectures as frozen data, sampled by a pure function.

A block holds banks of `bank_units * unit` channels; its input fills the first banks.
Each layer reads a sorted set of written banks, squeezes them through a 1x1 bottleneck,
applies its op (1-2 paths of 1-2 convs, summed) and adds its output into a set of banks,
new banks filling in order. Layers are drawn until the block's channel budget (the input
channels its 1x1s read) is spent, so depth varies.
"""

from __future__ import annotations

import math

import numpy as np

from core.arch import Arch, Block, Conv, Layer
from core.config import SpaceConfig
from core.vocab import PATH_SHAPES


def annealed(space: SpaceConfig, progress: float) -> tuple[tuple[int, ...], float]:
    """Kernel sizes and budget upper end allowed at `progress` (0..1) through training."""
    t = min(max(progress, 0.0) / space.anneal_fraction, 1.0)
    n_kernels = 1 + int(math.floor(t * (len(space.kernels) - 1) + 1e-9))
    hi = space.budget[1] + t * (space.final_max_budget - space.budget[1])
    return space.kernels[:n_kernels], hi


def sample_conv(space: SpaceConfig, rng: np.random.Generator, kernels: tuple[int, ...]) -> Conv:
    kh, kw = (int(rng.choice(kernels)) for _ in range(2))
    dh = int(rng.integers(1, space.dilation_cap(kh) + 1))
    dw = int(rng.integers(1, space.dilation_cap(kw) + 1))
    return Conv(kernel=(kh, kw), dilation=(dh, dw), groups=int(rng.choice(space.groups)))


def sample_paths(space: SpaceConfig, rng: np.random.Generator,
                 kernels: tuple[int, ...]) -> tuple[tuple[Conv, ...], ...]:
    p = np.asarray(space.op_probs, dtype=float)
    shape = PATH_SHAPES[int(rng.choice(len(PATH_SHAPES), p=p / p.sum()))]
    return tuple(tuple(sample_conv(space, rng, kernels) for _ in range(n)) for n in shape)


def width_weights(space: SpaceConfig, choices: list[int], target: int) -> np.ndarray:
    """Sampling weights of the widths `choices` (units) for a layer that reads `target` units."""
    d = np.abs(np.asarray(choices, dtype=float) - target)
    return 1.0 / (0.01 + 10.0 * d) if space.width_prior == "authors" else 1.0 / (1.0 + d)


def sample_block(space: SpaceConfig, rng: np.random.Generator, b: int,
                 progress: float = 1.0) -> Block:
    """Draw one block: bank size, budget, then layers until the budget is spent."""
    kernels, budget_hi = annealed(space, progress)
    in_ch = space.block_in_channels()[b]
    bank_units = int(rng.choice(space.bank_units))
    bank = bank_units * space.unit
    n_max = space.max_banks(b, bank_units)
    written = in_ch // bank
    budget = int(rng.uniform(space.budget[0], budget_hi) * space.depth * in_ch)
    budget = max(budget, bank)  # every block gets at least one layer
    layers: list[Layer] = []
    while budget >= bank:
        n_reads = int(rng.integers(1, min(written, budget // bank) + 1))
        reads = tuple(sorted(int(r) for r in rng.choice(written, n_reads, replace=False)))
        budget -= n_reads * bank
        # Width: multiples of the bank size, favouring widths close to what was read.
        free = n_max - written
        choices = [u for u in range(bank_units, space.max_units + 1, bank_units)
                   if u // bank_units <= written + free]
        target = n_reads * bank_units
        weights = width_weights(space, choices, target)
        units = int(rng.choice(choices, p=weights / weights.sum()))
        chunks = units // bank_units
        # Writes: at least one bank per output chunk, fewer writes more likely.
        candidates = list(range(written)) + list(range(written, written + min(free, chunks)))
        hi = max(chunks, min(len(candidates), written // 2))
        counts = np.arange(chunks, hi + 1)
        pw = np.exp(-(counts - chunks).astype(float))
        n_writes = int(rng.choice(counts, p=pw / pw.sum()))
        picked = sorted(int(w) for w in rng.choice(candidates, n_writes, replace=False))
        old = [w for w in picked if w < written]
        n_new = len(picked) - len(old)
        writes = tuple(old + list(range(written, written + n_new)))
        written += n_new
        layers.append(Layer(reads=reads, writes=writes, units=units,
                            paths=sample_paths(space, rng, kernels)))
    return Block(bank_units=bank_units, in_channels=in_ch, layers=tuple(layers))


def sample_arch(space: SpaceConfig, rng: np.random.Generator, progress: float = 1.0) -> Arch:
    """A random architecture; a pure function of (space, rng state, progress)."""
    blocks = tuple(sample_block(space, rng, b, progress) for b in range(space.blocks))
    return Arch(unit=space.unit, bottleneck=space.bottleneck,
                stem_channels=space.stem_channels, blocks=blocks, stem_stride=space.stem_stride)


# ---------------------------------------------------------------- perturbation

def mutate(arch: Arch, space: SpaceConfig, rng: np.random.Generator, rate: float = 0.05) -> Arch:
    """A neighbour of `arch`: every element changes with probability `rate`, at least one.

    Changes keep the arch valid by construction: reads and writes only touch banks already
    written before the layer, so the number of banks (and every later layer's reads) stays."""
    sites = [(b, i, kind) for b, block in enumerate(arch.blocks)
             for i in range(len(block.layers)) for kind in MUTATIONS]
    hits = [site for site in sites if rng.random() < rate]
    out = arch
    for site in hits:
        out = _mutate_site(out, space, rng, *site)
    for _ in range(64):  # nothing changed: force one element that can change
        if out != arch:
            break
        out = _mutate_site(arch, space, rng, *sites[int(rng.integers(len(sites)))])
    return out




def _mutate_site(arch: Arch, space: SpaceConfig, rng: np.random.Generator, b: int, i: int,
                 kind: str) -> Arch:
    block = arch.blocks[b]
    layer = block.layers[i]
    written = arch.initial_banks(b)
    for prev in block.layers[:i]:
        written += sum(w >= written for w in prev.writes)
    new = _LAYER_MUTATORS[kind](layer, block, written, space, rng)
    if new == layer:
        return arch
    layers = block.layers[:i] + (new,) + block.layers[i + 1:]
    blocks = arch.blocks[:b] + (Block(block.bank_units, block.in_channels, layers),) + arch.blocks[b + 1:]
    return Arch(arch.unit, arch.bottleneck, arch.stem_channels, blocks, arch.stem_stride)


def _toggle(banks: tuple[int, ...], pool: int, rng: np.random.Generator, keep: int) -> tuple[int, ...]:
    """Add or drop one bank below `pool`, keeping at least `keep` banks."""
    current = set(banks)
    options = [x for x in range(pool) if x not in current]
    options += [x for x in banks if x < pool] if len(banks) > keep else []
    if not options:
        return banks
    x = options[int(rng.integers(len(options)))]
    return tuple(sorted(current ^ {x}))


def _reads(layer: Layer, block: Block, written: int, space: SpaceConfig, rng) -> Layer:
    return Layer(_toggle(layer.reads, written, rng, 1), layer.writes, layer.units, layer.paths)


def _writes(layer: Layer, block: Block, written: int, space: SpaceConfig, rng) -> Layer:
    """Toggle one write into a bank written before the layer; the new banks stay as they are."""
    keep = layer.units // block.bank_units
    return Layer(layer.reads, _toggle(layer.writes, written, rng, keep), layer.units, layer.paths)


def _width(layer: Layer, block: Block, written: int, space: SpaceConfig, rng) -> Layer:
    cap = min(space.max_units, len(layer.writes) * block.bank_units)
    choices = [u for u in range(block.bank_units, cap + 1, block.bank_units) if u != layer.units]
    if not choices:
        return layer
    return Layer(layer.reads, layer.writes, int(rng.choice(choices)), layer.paths)


def _op_layout(layer: Layer, block: Block, written: int, space: SpaceConfig, rng) -> Layer:
    """A new op layout; convs at positions both layouts have are kept."""
    shapes = [s for s in PATH_SHAPES if s != tuple(len(p) for p in layer.paths)]
    p = np.asarray([space.op_probs[PATH_SHAPES.index(s)] for s in shapes], dtype=float)
    if p.sum() <= 0:
        return layer
    shape = shapes[int(rng.choice(len(shapes), p=p / p.sum()))]
    old = layer.paths
    paths = tuple(tuple(old[q][c] if q < len(old) and c < len(old[q])
                        else sample_conv(space, rng, space.kernels) for c in range(n))
                  for q, n in enumerate(shape))
    return Layer(layer.reads, layer.writes, layer.units, paths)


def _conv_mutator(change):
    """A layer mutator that applies `change` to one random conv of the layer."""
    def mutator(layer: Layer, block: Block, written: int, space: SpaceConfig, rng) -> Layer:
        convs = [(q, c) for q, path in enumerate(layer.paths) for c in range(len(path))]
        q, c = convs[int(rng.integers(len(convs)))]
        path = list(layer.paths[q])
        path[c] = change(path[c], space, rng)
        paths = layer.paths[:q] + (tuple(path),) + layer.paths[q + 1:]
        return Layer(layer.reads, layer.writes, layer.units, paths)
    return mutator


def _other(values, current, rng):
    options = [v for v in values if v != current]
    return current if not options else options[int(rng.integers(len(options)))]


def _kernel(conv: Conv, space: SpaceConfig, rng) -> Conv:
    """One axis's kernel changes; its dilation shrinks if the larger kernel allows less."""
    axis = int(rng.integers(2))
    kernel = list(conv.kernel)
    dilation = list(conv.dilation)
    kernel[axis] = _other(space.kernels, kernel[axis], rng)
    dilation[axis] = min(dilation[axis], space.dilation_cap(kernel[axis]))
    return Conv(tuple(kernel), tuple(dilation), conv.groups)


def _dilation(conv: Conv, space: SpaceConfig, rng) -> Conv:
    axis = int(rng.integers(2))
    dilation = list(conv.dilation)
    dilation[axis] = _other(range(1, space.dilation_cap(conv.kernel[axis]) + 1), dilation[axis], rng)
    return Conv(conv.kernel, tuple(dilation), conv.groups)


def _groups(conv: Conv, space: SpaceConfig, rng) -> Conv:
    return Conv(conv.kernel, conv.dilation, _other(space.groups, conv.groups, rng))


_LAYER_MUTATORS = {
    "reads": _reads, "writes": _writes, "width": _width, "op_layout": _op_layout,
    "kernel": _conv_mutator(_kernel), "dilation": _conv_mutator(_dilation),
    "groups": _conv_mutator(_groups),
}

MUTATIONS = tuple(_LAYER_MUTATORS)
"""What perturbation changes, one element at a time: per layer its reads, writes, width
and op layout; per conv its kernel, dilation and groups. The order fixes the random draws
of `mutate`, so a new kind goes at the end."""
