"""The op vocabulary: every op layout a layer may use, and the conv slots that index them.

An op is one or more parallel paths of chained convs whose outputs are summed. OPS lists
the layouts; a layout's position in OPS is its index everywhere (its sampling weight in
`space.op_probs`, its draw in the sampler), so adding a layout is one entry here. The
conv slots (path, position in path) follow from the layouts: the shared op weights of
SMASHNet, the HyperNet's per-slot scales and the encoding's per-slot fields are laid
out by `slot_index`, and a conv at position 0 of its path is the one reading the 1x1.
"""

from __future__ import annotations

from typing import NamedTuple


class OpLayout(NamedTuple):
    shape: tuple[int, ...]
    """Convs per path."""
    weight: float
    """Default sampling weight (the `space.op_probs` entry)."""
    name: str


OPS = (
    OpLayout((1,), 0.05, "one conv"),
    OpLayout((1, 1), 0.1, "two parallel convs"),
    OpLayout((2,), 0.15, "a chain of two"),
    OpLayout((2, 1), 0.25, "a chain of two beside one conv"),
    OpLayout((2, 2), 0.45, "two chains of two"),
)

PATH_SHAPES = tuple(op.shape for op in OPS)
DEFAULT_OP_PROBS = tuple(op.weight for op in OPS)

MAX_PATHS = max(len(shape) for shape in PATH_SHAPES)
MAX_CHAIN = max(n for shape in PATH_SHAPES for n in shape)
SLOTS = MAX_PATHS * MAX_CHAIN
"""Conv slots of an op: (path 0, conv 0), (path 0, conv 1), (path 1, conv 0), ..."""

def slot_index(path: int, conv: int) -> int:
    """The slot of the `conv`-th conv of path `path`."""
    return MAX_CHAIN * path + conv


def slot_position(slot: int) -> tuple[int, int]:
    """(path, conv in path) of `slot`; the inverse of `slot_index`."""
    return divmod(slot, MAX_CHAIN)
