"""What the HyperNet hands a network: the weights it generated for one architecture.

SMASHNet and ArchNet.load_smash read it; the HyperNet (or a shared weight in its place)
makes it. It lives with the networks so that they never import the HyperNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Generated:
    """Weights for one architecture: its 1x1s, and per-layer op channel scales if generated."""

    bottlenecks: list[torch.Tensor]
    op_scales: list[torch.Tensor] | None
