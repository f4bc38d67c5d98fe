"""Fingerprints of what the engine computes, to show a refactor changed none of it.

Runs the smoke config end to end in one thread (SMASH training with its probe set,
a score pass with successive halving and racing, an evolution pass, refining a few
scores, a study-style retrain with a step cap and one without), then prints one
SHA-256 per product: the training trajectory (every logged loss and error), every
checkpoint's tensors, the scores and raced rows, the refined tallies and the retrains'
per-epoch errors and weights. Equal digests before and after a change mean the numbers
are bit-identical; run it on both commits on one machine.

    python bench/fingerprint.py --workdir /tmp/fp-before
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))
os.environ["SMASH_THREADS"] = "1"  # float sums depend on the thread count

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from core.arch import Arch  # noqa: E402
from core.config import load_config  # noqa: E402
from core.jobs import RetrainJob, ScoreJob  # noqa: E402
from engine.runtime import checkpoint as ckpt  # noqa: E402
from engine.runtime.workdir import checkpoint_dir  # noqa: E402
from engine.scoring.refine import refine_scores  # noqa: E402
from engine.search import score_run  # noqa: E402
from engine.train.final import retrain_arch  # noqa: E402
from engine.train.hypernet import train_hypernet  # noqa: E402
from store import Store, store_path  # noqa: E402


def digest_frame(frame: pd.DataFrame, columns: list[str], order: list[str]) -> str:
    """SHA-256 of the exact float bits of `columns`, rows sorted by `order`."""
    frame = frame.sort_values(order).reset_index(drop=True)
    h = hashlib.sha256()
    for col in columns:
        values = frame[col].to_numpy()
        if values.dtype.kind in "fiub":
            h.update(np.ascontiguousarray(values.astype(np.float64)).tobytes())
        else:
            h.update("|".join(map(str, values)).encode())
    return h.hexdigest()[:16]


def digest_tensors(state: dict) -> str:
    """SHA-256 over every tensor of a (nested) state dict, in key order."""
    h = hashlib.sha256()

    def walk(prefix: str, obj: object) -> None:
        if isinstance(obj, dict):
            for k in sorted(obj, key=str):
                walk(f"{prefix}.{k}", obj[k])
        elif isinstance(obj, torch.Tensor):
            t = obj.detach().cpu()
            h.update(prefix.encode())
            h.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())

    walk("", state)
    return h.hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--config", default=str(ROOT / "configs" / "smoke.toml"))
    args = p.parse_args()
    torch.set_num_threads(1)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store = Store(store_path(workdir))
    cfg = load_config(args.config).replace(score={"halving_min": 50, "race_top": 3, "race_max_draws": 6})
    run_id, best = run_pipeline(cfg, workdir, store)
    out = {}
    out["trajectory"] = digest_frame(store.train_metrics(run_id), ["step", "loss", "error", "lr"], ["step"])
    out["checkpoints"] = {str(s): digest_tensors({k: v for k, v in ckpt.load(path).items()
                                                  if k in ("hyper", "net", "optim")})
                          for s, path in ckpt.step_checkpoints(checkpoint_dir(workdir, run_id))}
    board = store.leaderboard(run_id, limit=10**6)
    out["scores"] = digest_frame(board, ["arch_id", "stage", "score_mean", "score_std", "draws",
                                         "val_images", "partial", "race_rounds", "score_lo", "score_hi",
                                         "params", "flops", "tied"], ["arch_id", "stage"])
    probes = store.probe_scores(run_id)
    out["probe"] = digest_frame(probes, list(probes.columns), list(probes.columns[:2]))
    out["n_scored"] = len(board)
    ids = sorted(board["arch_id"])[:4]
    out["refined"] = refine_digest(workdir, store, run_id, ids)
    out["retrains"] = retrain_digest(cfg, workdir, store, run_id, Arch.from_dict(store.arch(run_id, best)["arch"]))
    print(json.dumps(out, indent=1))


def run_pipeline(cfg, workdir: Path, store) -> tuple[str, str]:
    """Train, score (smash with halving and racing, then evolution); the run id and best arch."""
    run_id = train_hypernet(cfg, workdir, store=store)["run_id"]
    best = score_run(workdir, store, run_id)["best_arch"]
    score_run(workdir, store, run_id, ScoreJob(strategy="evolution", budget=6))
    return run_id, best


def refine_digest(workdir: Path, store, run_id: str, ids: list[str]) -> str:
    tallies = refine_scores(workdir, store, run_id, ids, 5, device=torch.device("cpu"))
    return hashlib.sha256(json.dumps({a: [t.n, t.mean, t.std] for a, t in sorted(tallies.items())}).encode()
                          ).hexdigest()[:16]


def retrain_digest(cfg, workdir: Path, store, run_id: str, arch) -> dict[str, str]:
    out = {}
    for cap in (5, 0):
        rec = retrain_one(cfg, workdir, store, run_id, arch, cap)
        rows = store.retrain_metrics(rec["retrain_id"])
        out[f"cap{cap}"] = digest_frame(rows, ["epoch", "train_loss", "val_error", "test_error"], ["epoch"])
        out[f"cap{cap}_weights"] = digest_tensors(ckpt.load(Path(rec["checkpoint"]))["state_dict"])
    return out


def retrain_one(cfg, workdir: Path, store, run_id: str, arch, cap: int) -> dict:
    return retrain_arch(cfg, arch, workdir, store, RetrainJob(epochs=2, seed=1, max_steps_per_epoch=cap),
                        run_id=run_id)


if __name__ == "__main__":
    main()
