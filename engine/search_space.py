"""The memory-bank search space: architectures as frozen data, sampled by a pure function.

A block holds banks of `bank_units * unit` channels; its input fills the first banks.
Each layer reads a sorted set of written banks, squeezes them through a 1x1 bottleneck,
applies its op (1-2 paths of 1-2 convs, summed) and adds its output into a set of banks,
new banks filling in order. Layers are drawn until the block's channel budget (the input
channels its 1x1s read) is spent, so depth varies.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.config import PATH_SHAPES, SpaceConfig

ARCH_FORMAT = 1


class ArchError(ValueError):
    """An architecture description is malformed or outside its search space."""


@dataclass(frozen=True)
class Conv:
    kernel: tuple[int, int]
    dilation: tuple[int, int]
    groups: int


@dataclass(frozen=True)
class Layer:
    reads: tuple[int, ...]
    writes: tuple[int, ...]
    units: int
    """Op width in units; the op emits units x unit channels."""
    paths: tuple[tuple[Conv, ...], ...]


@dataclass(frozen=True)
class Block:
    bank_units: int
    in_channels: int
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Arch:
    unit: int
    bottleneck: int
    stem_channels: int
    blocks: tuple[Block, ...]
    stem_stride: int = 1

    # ---- derived sizes, shared by every network built from an Arch ----
    def bank_channels(self, b: int) -> int:
        return self.blocks[b].bank_units * self.unit

    def initial_banks(self, b: int) -> int:
        return self.blocks[b].in_channels // self.bank_channels(b)

    def n_banks(self, b: int) -> int:
        """Banks a block ends with: its input banks plus every bank a layer wrote."""
        block = self.blocks[b]
        top = max((max(layer.writes) for layer in block.layers), default=-1)
        return max(top + 1, self.initial_banks(b))

    def out_channels(self, b: int) -> int:
        return self.n_banks(b) * self.bank_channels(b)

    def layer_in(self, b: int, layer: Layer) -> int:
        return len(layer.reads) * self.bank_channels(b)

    def layer_out(self, layer: Layer) -> int:
        return layer.units * self.unit

    def layer_bottleneck(self, b: int, layer: Layer) -> int:
        return min(self.bottleneck * self.layer_out(layer), self.layer_in(b, layer))

    @property
    def depth(self) -> int:
        """Layers along the deepest path: stem, per layer its longest conv chain plus the 1x1."""
        return 1 + sum(1 + max(len(p) for p in layer.paths)
                       for block in self.blocks for layer in block.layers) + len(self.blocks)

    @property
    def n_layers(self) -> int:
        return sum(len(block.layers) for block in self.blocks)

    # ---- identity and serialisation ----
    def to_dict(self) -> dict[str, Any]:
        return {"format": ARCH_FORMAT, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def id(self) -> str:
        """Stable content hash: equal architectures share it across runs and machines."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, raw: Any) -> Arch:
        try:
            if not isinstance(raw, dict):
                raise ArchError("arch JSON must be an object")
            if raw.get("format", ARCH_FORMAT) != ARCH_FORMAT:
                raise ArchError(f"arch format {raw.get('format')!r} is not supported (expected {ARCH_FORMAT})")
            blocks = tuple(
                Block(
                    bank_units=int(b["bank_units"]),
                    in_channels=int(b["in_channels"]),
                    layers=tuple(
                        Layer(
                            reads=tuple(int(r) for r in la["reads"]),
                            writes=tuple(int(w) for w in la["writes"]),
                            units=int(la["units"]),
                            paths=tuple(
                                tuple(Conv(kernel=_pair(c["kernel"]), dilation=_pair(c["dilation"]),
                                           groups=int(c["groups"])) for c in path)
                                for path in la["paths"]),
                        ) for la in b["layers"]),
                ) for b in raw["blocks"])
            arch = cls(unit=int(raw["unit"]), bottleneck=int(raw["bottleneck"]),
                       stem_channels=int(raw["stem_channels"]), blocks=blocks,
                       stem_stride=int(raw.get("stem_stride", 1)))
        except ArchError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchError(f"malformed arch JSON: {type(exc).__name__}: {exc}") from exc
        check_arch(arch)
        return arch

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchError(f"arch is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)


def _pair(v: Any) -> tuple[int, int]:
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ArchError(f"expected a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


def check_arch(arch: Arch, space: SpaceConfig | None = None) -> None:
    """Raise ArchError unless `arch` is a well-formed network (and inside `space` if given)."""
    def fail(msg: str) -> None:
        raise ArchError(msg)

    if arch.unit < 1 or arch.bottleneck < 1 or arch.stem_channels < 1 or not arch.blocks:
        fail("arch needs unit, bottleneck, stem_channels >= 1 and at least one block")
    if arch.stem_stride not in (1, 2):
        fail(f"stem_stride {arch.stem_stride} must be 1 or 2")
    if arch.blocks[0].in_channels != arch.stem_channels:
        fail("block 0 in_channels must equal stem_channels")
    for b, block in enumerate(arch.blocks):
        where = f"block {b}"
        bank = block.bank_units * arch.unit
        if block.bank_units < 1 or block.in_channels % bank:
            fail(f"{where}: in_channels {block.in_channels} is not a multiple of its bank size {bank}")
        if not block.layers:
            fail(f"{where}: has no layers")
        written = arch.initial_banks(b)
        for i, layer in enumerate(block.layers):
            lw = f"{where} layer {i}"
            if not layer.reads or list(layer.reads) != sorted(set(layer.reads)):
                fail(f"{lw}: reads must be a non-empty sorted set")
            if layer.reads[0] < 0 or layer.reads[-1] >= written:
                fail(f"{lw}: reads bank {layer.reads[-1]} before it is written")
            if not layer.writes or list(layer.writes) != sorted(set(layer.writes)) or layer.writes[0] < 0:
                fail(f"{lw}: writes must be a non-empty sorted set of bank indices")
            new = [w for w in layer.writes if w >= written]
            if new != list(range(written, written + len(new))):
                fail(f"{lw}: new banks must be written in order without gaps")
            if layer.units < block.bank_units or layer.units % block.bank_units:
                fail(f"{lw}: units {layer.units} must be a multiple of bank_units {block.bank_units}")
            if len(layer.writes) < layer.units // block.bank_units:
                fail(f"{lw}: {len(layer.writes)} writes cannot hold {layer.units // block.bank_units} bank-wide chunks")
            shapes = tuple(len(p) for p in layer.paths)
            if shapes not in PATH_SHAPES:
                fail(f"{lw}: op layout {shapes} not one of {PATH_SHAPES}")
            for conv in (c for p in layer.paths for c in p):
                if any(k < 1 or k % 2 == 0 for k in conv.kernel) or any(d < 1 for d in conv.dilation):
                    fail(f"{lw}: conv {conv} needs odd kernels and dilations >= 1")
                if conv.groups < 1 or arch.unit % conv.groups:
                    fail(f"{lw}: groups {conv.groups} must divide unit {arch.unit}")
            written += len(new)
        if b + 1 < len(arch.blocks) and arch.blocks[b + 1].in_channels < 1:
            fail(f"block {b + 1}: in_channels must be >= 1")
    if space is not None:
        _check_in_space(arch, space)


def _check_in_space(arch: Arch, space: SpaceConfig) -> None:
    if (arch.unit, arch.bottleneck, arch.stem_channels, arch.stem_stride, len(arch.blocks)) != (
            space.unit, space.bottleneck, space.stem_channels, space.stem_stride, space.blocks):
        raise ArchError("arch does not match the search space (unit, bottleneck, stem or block count)")
    for b, block in enumerate(arch.blocks):
        if block.bank_units not in space.bank_units or block.in_channels != space.block_in_channels()[b]:
            raise ArchError(f"block {b}: bank size or input channels outside the search space")
        if arch.n_banks(b) > space.max_banks(b, block.bank_units):
            raise ArchError(f"block {b}: uses {arch.n_banks(b)} banks, the space allows {space.max_banks(b, block.bank_units)}")
        for layer in block.layers:
            if layer.units > space.max_units:
                raise ArchError(f"block {b}: layer width {layer.units} > max_units {space.max_units}")
            for conv in (c for p in layer.paths for c in p):
                if (any(k not in space.kernels for k in conv.kernel) or conv.groups not in space.groups
                        or any(d > max_dilation(space, k) for d, k in zip(conv.dilation, conv.kernel, strict=True))):
                    raise ArchError(f"block {b}: conv {conv} outside the search space")


# ---------------------------------------------------------------- sampling

def max_dilation(space: SpaceConfig, kernel: int) -> int:
    """Dilation shrinks as kernels grow: the smallest kernel gets max_dilation, each step one less."""
    return max(1, space.max_dilation - space.kernels.index(kernel))


def annealed(space: SpaceConfig, progress: float) -> tuple[tuple[int, ...], float]:
    """Kernel sizes and budget upper end allowed at `progress` (0..1) through training."""
    t = min(max(progress, 0.0) / space.anneal_fraction, 1.0)
    n_kernels = 1 + int(math.floor(t * (len(space.kernels) - 1) + 1e-9))
    hi = space.budget[1] + t * (space.final_max_budget - space.budget[1])
    return space.kernels[:n_kernels], hi


def sample_conv(space: SpaceConfig, rng: np.random.Generator, kernels: tuple[int, ...]) -> Conv:
    kh, kw = (int(rng.choice(kernels)) for _ in range(2))
    dh = int(rng.integers(1, max_dilation(space, kh) + 1))
    dw = int(rng.integers(1, max_dilation(space, kw) + 1))
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

MUTATIONS = ("reads", "writes", "width", "op_layout", "kernel", "dilation", "groups")
"""What perturbation changes, one element at a time: per layer its reads, writes, width
and op layout; per conv its kernel, dilation and groups."""


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


def mutate_kind(arch: Arch, space: SpaceConfig, rng: np.random.Generator, kind: str) -> Arch:
    """Change one element of `kind` somewhere in `arch` (the arch itself if none can change)."""
    if kind not in MUTATIONS:
        raise ValueError(f"mutation kind {kind!r}; allowed: {', '.join(MUTATIONS)}")
    sites = [(b, i) for b, block in enumerate(arch.blocks) for i in range(len(block.layers))]
    for j in rng.permutation(len(sites)):
        out = _mutate_site(arch, space, rng, *sites[j], kind)
        if out != arch:
            return out
    return arch


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
    dilation[axis] = min(dilation[axis], max_dilation(space, kernel[axis]))
    return Conv(tuple(kernel), tuple(dilation), conv.groups)


def _dilation(conv: Conv, space: SpaceConfig, rng) -> Conv:
    axis = int(rng.integers(2))
    dilation = list(conv.dilation)
    dilation[axis] = _other(range(1, max_dilation(space, conv.kernel[axis]) + 1), dilation[axis], rng)
    return Conv(conv.kernel, tuple(dilation), conv.groups)


def _groups(conv: Conv, space: SpaceConfig, rng) -> Conv:
    return Conv(conv.kernel, conv.dilation, _other(space.groups, conv.groups, rng))


_LAYER_MUTATORS = {
    "reads": _reads, "writes": _writes, "width": _width, "op_layout": _op_layout,
    "kernel": _conv_mutator(_kernel), "dilation": _conv_mutator(_dilation),
    "groups": _conv_mutator(_groups),
}
