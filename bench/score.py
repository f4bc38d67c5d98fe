"""Scoring throughput: archs/min, and how it grows with the number of archs and the validation size.

Builds a SMASH model for a config (untrained weights cost the same to run), then scores
batches of random architectures with generated weights at several validation sizes.

With --workdir (a trained run), it also measures successive halving for real: the run's
random sample scored twice by `score_run` into scratch copies of the run, once with every
arch on all validation images and once with halving, reporting both throughputs and
whether the top of the ranking stayed the same.

The last line is a JSON object of the figures.

    python bench/score.py [--config configs/cifar10.toml] [--archs 4,8] [--val 250,1000] [--draws 1]
                          [--precision bf16] [--halving-min 100]
    python bench/score.py --workdir runs [--run ID] --halving 50 --sample 120 --skip-throughput
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # measure what the engine runs: tcmalloc where installed (SMASH_ALLOCATOR=system to compare)
    allocator.reexec()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.config import load_config  # noqa: E402
from core.jobs import ScoreJob  # noqa: E402
from core.space import sample_arch  # noqa: E402
from engine.data.splits import DataSplits  # noqa: E402
from engine.model import SmashModel, find_checkpoint  # noqa: E402
from engine.runtime.device import check_device, resolve_precision  # noqa: E402
from engine.runtime.workdir import checkpoint_dir  # noqa: E402
from engine.scoring.scorer import Scorer, halving_rungs  # noqa: E402
from engine.search import score_run  # noqa: E402
from store import Store, store_path  # noqa: E402


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
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (the throughput table only)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--halving-min", type=int, default=0,
                   help="throughput with successive halving from this many images (eta 3; 0: off)")
    p.add_argument("--workdir", default=None, help="a trained run's workdir: measure successive halving")
    p.add_argument("--run", default=None)
    p.add_argument("--halving", type=int, default=50, help="first rung's images per draw")
    p.add_argument("--sample", type=int, default=120, help="random archs in the halving comparison")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["SMASH_THREADS"] = str(args.threads)
    figures: dict = {"threads": args.threads}
    if not args.skip_throughput:
        figures.update(throughput(args))
    if args.workdir:
        figures["halving"] = halving(args)
    print(json.dumps(figures))


def halving(args: argparse.Namespace) -> dict:
    """The same random sample scored with and without successive halving."""

    src = Store(store_path(Path(args.workdir)))
    run_id = args.run or src.latest_run_id()
    run = src.get_run(run_id)
    ck = find_checkpoint(Path(args.workdir), run_id)
    step, path, cfg = ck.step, ck.path, ck.state["config"]
    out = {"run_id": run_id, "checkpoint_step": step, "sample": args.sample,
           "val_images": cfg["score"]["val_images"], "draws": cfg["score"]["draws"]}
    boards = {}
    for mode, first in (("full", 0), ("halving", args.halving)):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            folder = checkpoint_dir(work, run_id)
            folder.mkdir(parents=True)
            shutil.copy(path, folder / path.name)
            store = Store(store_path(work))
            store.create_run(run_id, **{k: run[k] for k in ("name", "config", "seed", "code_version",
                                                              "dataset", "num_classes", "image_shape",
                                                              "steps_total")}, status="done")
            res = score_run(work, store, run_id, ScoreJob(archs=args.sample, perturb=0, chain=0, halving_min=first))
            boards[mode] = store.leaderboard(run_id, limit=args.sample)
        out[f"{mode}_seconds"] = res["seconds"]
        out[f"{mode}_archs_per_min"] = res["archs_per_min"]
        print(f"{mode:>8}: {args.sample} archs in {res['seconds']:.1f} s = {res['archs_per_min']:.1f} archs/min, "
              f"best {res['best_arch']} {res['best_score']:.4f}", flush=True)
    full, half = boards["full"], boards["halving"]
    out["speedup"] = round(out["full_seconds"] / out["halving_seconds"], 2)
    out["same_best"] = bool(full["arch_id"].iloc[0] == half["arch_id"].iloc[0])
    for k in (1, 5, 10):
        out[f"top{k}_overlap"] = len(set(full["arch_id"][:k]) & set(half["arch_id"][:k])) / k
    print(f"halving is {out['speedup']:.2f}x faster; same best: {out['same_best']}; top-5 overlap "
          f"{out['top5_overlap']:.2f}, top-10 overlap {out['top10_overlap']:.2f}", flush=True)
    return out


def throughput(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config)
    if args.precision:
        cfg = cfg.replace(precision=args.precision)
    shape = tuple(int(v) for v in args.image.split(","))
    device = check_device(args.device)
    model = SmashModel(cfg, shape, 10).place(device)
    rows = []
    for n_val in (int(v) for v in args.val.split(",")):
        scorer = Scorer(model, fake_data(shape, n_val), device, args.draws, n_val, args.batch)
        for n_archs in (int(v) for v in args.archs.split(",")):
            rng = np.random.default_rng(0)
            archs = [sample_arch(cfg.space, rng, progress=1.0) for _ in range(n_archs)]
            rungs = halving_rungs(args.halving_min, 3, n_val)
            t0 = time.perf_counter()
            alive, images = archs, 0
            for r, n_img in enumerate(rungs):
                # What score_run does: everyone on this rung's images, the best third go on.
                scored = sorted(((scorer.score(a, n_img)[0], a.id, a) for a in alive), key=lambda t: t[:2])
                images += len(alive) * n_img * args.draws
                alive = [a for *_, a in scored[: math.ceil(len(archs) / 3 ** (r + 1))]]
            seconds = time.perf_counter() - t0
            row = {"val_images": n_val, "archs": n_archs, "draws": args.draws, "rungs": rungs,
                   "seconds": round(seconds, 2), "archs_per_min": round(60 * n_archs / seconds, 2),
                   "images_per_s": round(images / seconds, 1)}
            rows.append(row)
            print(f"val {n_val:>5}  archs {n_archs:>4}  rungs {rungs}  {row['seconds']:>8.1f} s  "
                  f"{row['archs_per_min']:>8.2f} archs/min  {row['images_per_s']:>8.1f} images/s", flush=True)
    return {"config": args.config, "precision": resolve_precision(device, cfg.precision),
            "batch": args.batch, "rows": rows}


if __name__ == "__main__":
    main()
