"""A training-free predictor to hold the SMASH score against: NASWOT.

Mellor, Turner, Storkey and Crowley, "Neural Architecture Search without Training"
(ICML 2021): at initialisation, feed a minibatch and record for each image the binary
code of which ReLUs fire. Images that many units tell apart give a kernel
K[i, j] = (units where codes i and j agree) with a large log-determinant, and that score
ranks architectures by their trained accuracy better than chance in the NAS benchmarks.
Every ReLU in our networks follows a batch norm (pre-activation), so the batch norms'
outputs' signs are the codes. Costs one forward pass per architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from core.arch import Arch
from engine.data.batches import normalize
from engine.data.splits import DataSplits
from engine.nets.archnet import ArchNet


@torch.no_grad()
def naswot(arch: Arch, data: DataSplits, batch: int = 64, seed: int = 0,
           device: torch.device | None = None) -> float:
    """log|K| of the ReLU codes of `batch` training images at a seeded initialisation.

    Higher predicts lower error."""
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    model = ArchNet(arch, data.image_shape[0], data.num_classes).to(device).train()
    pick = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))[:batch]
    x = normalize(data.train_x[pick].to(device), data.mean, data.std)
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1).double()))
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    c = torch.cat(codes, 1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k).logabsdet)
