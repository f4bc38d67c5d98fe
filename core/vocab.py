"""The one op vocabulary: path shapes and the convolution slots the encoding and the networks index by."""

from __future__ import annotations

PATH_SHAPES = ((1,), (1, 1), (2,), (2, 1), (2, 2))

SLOTS = 4


def slot_index(path: int, conv: int) -> int:
    return 2 * path + conv
