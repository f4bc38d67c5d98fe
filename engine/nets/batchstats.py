"""Batch normalisation for a network whose architecture changes every step."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class BatchStats:
    """How SMASHNet normalises. Architectures change every step, so there are no running
    statistics: by default each batch normalises itself. For scoring, `collect` records
    per-call-site statistics over calibration batches of one Arch, and `fixed` then uses
    them (batch-norm recalibration), so a score no longer depends on the eval batch."""

    def __init__(self) -> None:
        self.mode = "batch"
        self.sums: list[list[torch.Tensor | int]] = []
        self.site = 0

    def collect(self) -> None:
        self.mode, self.sums = "collect", []

    def fix(self) -> None:
        self.mode = "fixed"

    def reset(self) -> None:
        self.mode, self.sums = "batch", []

    def norm(self, x: torch.Tensor, weight: torch.Tensor | None = None,
             bias: torch.Tensor | None = None) -> torch.Tensor:
        c = x.shape[1]
        w = None if weight is None else weight[:c]
        b = None if bias is None else bias[:c]
        i, self.site = self.site, self.site + 1
        if self.mode == "fixed":
            total_mean, total_sq, n = self.sums[i]
            mean = total_mean / n
            var = (total_sq / n - mean * mean).clamp_min(0)
            return F.batch_norm(x, mean, var, w, b, training=False)
        if self.mode == "collect":
            xf = x.detach().float()
            mean, sq = xf.mean(dim=(0, 2, 3)), (xf * xf).mean(dim=(0, 2, 3))
            if i == len(self.sums):
                self.sums.append([mean, sq, 1])
            else:
                self.sums[i][0] += mean
                self.sums[i][1] += sq
                self.sums[i][2] += 1
        return F.batch_norm(x, None, None, w, b, training=True)
