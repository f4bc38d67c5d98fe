"""SMASH scores: validation error (or loss, core/metric.py) of an Arch with HyperNet-generated weights.

Each Arch is scored over several draws (fresh HyperNet noise, and a fresh validation
shard when `val_images` is below the split size); the score is the mean error, the
spread its standard deviation. Results stream into the store as they come, and a
rerun skips what is already stored, so a killed scoring pass resumes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.arch import Arch
from core.errors import BadRequest
from core.metric import BOUNDS
from core.racing import Tally
from core.rankstats import mean_interval
from core.size import count_flops, count_params
from engine.data.batches import normalize
from engine.data.splits import DataSplits
from engine.model import SmashModel, evaluating
from engine.nets.generated import Generated
from engine.runtime.device import memory_format
from engine.runtime.rng import torch_gen


class ScoreError(BadRequest):
    """Nothing to score: no run, or a run without checkpoints."""


class Scorer:
    """Scores Archs with one trained SmashModel on a fixed validation split."""

    def __init__(self, model: SmashModel, data: DataSplits, device: torch.device,
                 draws: int, val_images: int = 0, batch_size: int = 250, bn: str = "batch",
                 calib_images: int = 500, metric: str = "error"):
        if metric not in BOUNDS:
            raise ScoreError(f"score metric {metric!r}; allowed: {', '.join(BOUNDS)}")
        self.model, self.device, self.bn, self.metric = model, device, bn, metric
        self.draws, self.batch_size = draws, batch_size
        fmt = memory_format(device)
        self.val_x = normalize(data.val_x.to(device), data.mean, data.std).contiguous(memory_format=fmt)
        self.val_y = data.val_y.to(device)
        n = len(self.val_y)
        self.shard = n if val_images <= 0 else min(val_images, n)
        self.image_shape, self.num_classes = data.image_shape, data.num_classes
        self.calib_x = None
        if bn == "recalibrated":
            n_cal = min(calib_images, len(data.train_y))
            self.calib_x = normalize(data.train_x[:n_cal].to(device), data.mean, data.std)
            self.calib_x = self.calib_x.contiguous(memory_format=fmt)

    @classmethod
    def for_model(cls, model: SmashModel, data: DataSplits, device: torch.device,
                  bn: str | None = None, metric: str | None = None) -> Scorer:
        """A Scorer with the model's own [score] settings (batch norm and metric overridable)."""
        sc = model.cfg.score
        return cls(model, data, device, sc.draws, sc.val_images, sc.batch_size, bn or sc.bn,
                   sc.calib_images, metric or sc.metric)

    @torch.no_grad()
    def errors(self, arch: Arch, images: int | None = None, first_draw: int = 0,
               draws: int | None = None) -> list[float]:
        """The metric (error or mean loss) of `draws` draws (default: the scorer's) from
        first_draw on, on `images` images per draw (default: the shard), with the model in
        eval mode (and back in its own mode after).

        Draw d has its own noise and reads its images from offset d x shard, so draws with
        other indices (a later halving rung, a racing round) see fresh noise and fresh images."""
        model = self.model
        seed = int(arch.id[:8], 16)
        n = len(self.val_y)
        count = self.shard if images is None else max(1, min(images, self.shard))
        out = []
        with evaluating(model):
            for d in range(first_draw, first_draw + (self.draws if draws is None else draws)):
                noise = model.noise(arch, torch_gen(model.cfg.seed, seed, 100 + d))
                start = (d * self.shard) % n
                idx = (torch.arange(count, device=self.device) + start) % n
                out.append(self._draw(arch, model.generate(arch, noise), idx) / count)
        return out

    def _draw(self, arch: Arch, weights: Generated, idx: torch.Tensor) -> float:
        """The summed metric over the images `idx` with one draw's weights (batch norm
        first recalibrated on training images when the scorer says so)."""
        model, stats = self.model, self.model.net.stats
        if self.calib_x is not None:
            stats.collect()
            for i in range(0, len(self.calib_x), self.batch_size):
                model(self.calib_x[i: i + self.batch_size], arch, weights=weights)
            stats.fix()
        total = 0.0
        try:
            for i in range(0, len(idx), self.batch_size):
                j = idx[i: i + self.batch_size]
                total += self._sum(model(self.val_x[j], arch, weights=weights), self.val_y[j])
        finally:
            stats.reset()
        return total

    def _sum(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        """The batch's misclassified count, or its summed cross-entropy."""
        if self.metric == "loss":
            return float(F.cross_entropy(logits.float(), y, reduction="sum"))
        return float((logits.argmax(1) != y).sum())

    def score(self, arch: Arch, images: int | None = None, first_draw: int = 0,
              draws: int | None = None) -> tuple[float, float]:
        """(mean, spread) of the metric over the draws, as `errors` takes them."""
        errs = np.asarray(self.errors(arch, images, first_draw, draws))
        return float(errs.mean()), float(errs.std(ddof=1)) if len(errs) > 1 else 0.0


def arch_row(run_id: str, arch: Arch, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    return {"run_id": run_id, "arch_id": arch.id, "arch_json": arch.to_json(),
            "params": count_params(arch, image_shape[0], num_classes),
            "flops": count_flops(arch, image_shape, num_classes),
            "depth": arch.depth, "n_layers": arch.n_layers}


def halving_rungs(first: int, eta: int, full: int) -> list[int]:
    """Validation images per draw at each successive-halving rung, ending at `full`.

    Each rung has eta times the images of the one before; a last step that would add
    less than the current rung goes straight to `full`."""
    if first <= 0 or first >= full:
        return [full]
    rungs = [first]
    while rungs[-1] < full:
        nxt = min(rungs[-1] * eta, full)
        rungs.append(full if full - nxt < rungs[-1] else nxt)
    return rungs


def score_row(run_id: str, arch_id: str, step: int, stage: str, mean: float, std: float, draws: int,
              images: int, *, partial: bool = False, first_draw: int = 0, metric: str = "error") -> dict:
    """A scores row, with the 95% interval of its mean over the draws (clipped to where the
    metric can lie: an error rate to [0, 1])."""
    lo, hi = mean_interval(mean, std, draws, bounds=BOUNDS[metric])
    return {"run_id": run_id, "arch_id": arch_id, "checkpoint_step": step, "stage": stage,
            "score_mean": mean, "score_std": std, "draws": draws, "val_images": images,
            "score_lo": lo, "score_hi": hi, "partial": bool(partial), "first_draw": first_draw}


def raced_row(run_id: str, arch_id: str, step: int, t: Tally, metric: str = "error") -> dict:
    lo, hi = mean_interval(t.mean, t.std, t.n, bounds=BOUNDS[metric])
    return {"run_id": run_id, "arch_id": arch_id, "checkpoint_step": step, "score_mean": t.mean,
            "score_std": t.std, "draws": t.n, "score_lo": lo, "score_hi": hi, "race_rounds": t.rounds}
