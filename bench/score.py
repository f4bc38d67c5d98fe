"""Scoring throughput: archs/min, and how it grows with the number of archs and the validation size.

Builds a SMASH model for a config (untrained weights cost the same to run), then scores
batches of random architectures with generated weights at several validation sizes.
The last line is a JSON object of the figures.

    python bench/score.py [--config configs/cifar10.toml] [--archs 4,8] [--val 250,1000] [--draws 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import load_config  # noqa: E402
from engine.data import DataSplits  # noqa: E402
from engine.score import Scorer  # noqa: E402
from engine.search_space import sample_arch  # noqa: E402
from engine.train_hypernet import build_model  # noqa: E402


def fake_data(shape: tuple[int, int, int], n_val: int, classes: int = 10) -> DataSplits:
    """Random images of the right shape: throughput does not depend on pixel values."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_val, *shape), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n_val,), generator=g)
    c = shape[0]
    return DataSplits(name="bench", train_x=x, train_y=y, val_x=x, val_y=y, test_x=x, test_y=y,
                      num_classes=classes, mean=(0.5,) * c, std=(0.25,) * c)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/cifar10.toml")
    p.add_argument("--image", default="3,32,32")
    p.add_argument("--archs", default="4,8")
    p.add_argument("--val", default="250,1000")
    p.add_argument("--draws", type=int, default=1)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    shape = tuple(int(v) for v in args.image.split(","))
    model = build_model(cfg, shape, 10)
    device = torch.device("cpu")
    rows = []
    for n_val in (int(v) for v in args.val.split(",")):
        scorer = Scorer(model, fake_data(shape, n_val), device, args.draws, n_val, args.batch)
        for n_archs in (int(v) for v in args.archs.split(",")):
            rng = np.random.default_rng(0)
            archs = [sample_arch(cfg.space, rng) for _ in range(n_archs)]
            t0 = time.perf_counter()
            for arch in archs:
                scorer.score(arch)
            seconds = time.perf_counter() - t0
            row = {"val_images": n_val, "archs": n_archs, "draws": args.draws, "seconds": round(seconds, 2),
                   "archs_per_min": round(60 * n_archs / seconds, 2),
                   "images_per_s": round(n_archs * n_val * args.draws / seconds, 1)}
            rows.append(row)
            print(f"val {n_val:>5}  archs {n_archs:>4}  {row['seconds']:>8.1f} s  "
                  f"{row['archs_per_min']:>8.2f} archs/min  {row['images_per_s']:>8.1f} images/s", flush=True)
    print(json.dumps({"config": args.config, "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
