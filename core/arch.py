"""An architecture as plain data: frozen dataclasses, JSON round trip, stable id and validation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.config import SpaceConfig
from core.errors import BadRequest
from core.ids import arch_id_for
from core.vocab import PATH_SHAPES

ARCH_FORMAT = 1


class ArchError(BadRequest):
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
        return arch_id_for(self.to_json())

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
                                tuple(Conv(kernel=int_pair(c["kernel"]), dilation=int_pair(c["dilation"]),
                                           groups=int(c["groups"])) for c in path)
                                for path in la["paths"]),
                        ) for la in b["layers"]),
                ) for b in raw["blocks"])
            arch = cls(unit=int(raw["unit"]), bottleneck=int(raw["bottleneck"]),
                       stem_channels=int(raw["stem_channels"]), blocks=blocks,
                       stem_stride=int(raw.get("stem_stride", 1)))
        except ArchError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ArchError(f"malformed arch JSON: {type(exc).__name__}: {exc}") from exc
        check_arch(arch)
        return arch

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            raw = json.loads(text, parse_float=finite_float, parse_constant=no_constant)
        except ArchError:
            raise
        except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
            raise ArchError(f"arch is not valid JSON: {str(exc).splitlines()[0]}") from exc
        except RecursionError:
            raise ArchError("arch JSON is nested too deeply") from None
        return cls.from_dict(raw)


ARCH_FILE_MAX = 1 << 20


def read_arch_file(path: Path) -> str:
    """The text of an arch JSON file, refused when larger than 1 MiB or not UTF-8."""
    try:
        if path.stat().st_size > ARCH_FILE_MAX:
            raise ArchError(f"{path}: {path.stat().st_size} bytes; an arch JSON file is at most {ARCH_FILE_MAX}")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ArchError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ArchError(f"{path}: cannot read ({exc.strerror})") from None


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ArchError(f"arch JSON holds the number {text[:40]}, which is not finite")
    return value


def no_constant(name: str) -> float:
    raise ArchError(f"arch JSON holds {name}; only finite numbers are allowed")


def int_pair(v: Any) -> tuple[int, int]:
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
        check_in_space(arch, space)


def check_in_space(arch: Arch, space: SpaceConfig) -> None:
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
                        or any(d > space.dilation_cap(k) for d, k in zip(conv.dilation, conv.kernel, strict=True))):
                    raise ArchError(f"block {b}: conv {conv} outside the search space")
