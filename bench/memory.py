"""Peak resident memory and speed of a short demo-size train job, under given environment settings.

Each setting runs in a fresh process, because glibc's malloc and oneDNN read their
variables when a process starts. The process does what the engine's train job does, in
miniature: SMASH training of the config for --steps steps (by default the whole schedule
compressed into them, so nearly every step meets new shapes, the kernel cache's worst
case; with --of N the first --steps steps of an N-step schedule), then scoring --score random
architectures with the last checkpoint. Printed per setting: the peak resident memory
(ru_maxrss), training steps/s (step time as logged, and wall time) and scoring archs/min.
An empty setting means the engine's defaults (engine/__init__.py); a variable set here
overrides the engine's default for it. The last line is a JSON list of the rows.

    python bench/memory.py [--config configs/demo.toml] [--steps 150] [--of 1500] [--score 20] [--threads 2]
                           [--precision auto|fp32|bf16]
                           [--env ""] [--env "ONEDNN_PRIMITIVE_CACHE_CAPACITY=8192 MALLOC_ARENA_MAX=2"] ...
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # measure what the engine runs: tcmalloc where installed (SMASH_ALLOCATOR=system to compare)
    allocator.reexec()

from bench.ab import parse_env  # noqa: E402
from core.config import load_config  # noqa: E402
from core.control import Control  # noqa: E402
from core.errors import Cancelled  # noqa: E402
from core.ids import run_id_for  # noqa: E402
from core.jobs import ScoreJob  # noqa: E402
from engine.runtime.device import pick_device, resolve_precision  # noqa: E402
from engine.search import score_run  # noqa: E402
from engine.train.hypernet import train_hypernet  # noqa: E402
from store import Store, store_path  # noqa: E402


def child(args: argparse.Namespace) -> dict:
    """The measured process: train, then score, in this process; its figures."""
    cfg = load_config(args.config).replace(train={"steps": args.of or args.steps})
    if args.precision:
        cfg = cfg.replace(precision=args.precision)
    workdir = Path(args.workdir)
    store = Store(store_path(workdir))
    run_id = run_id_for(cfg)
    calls = itertools.count()
    t0 = time.perf_counter()
    try:  # the first --steps steps of the schedule (the check runs before each step)
        train_hypernet(cfg, workdir, store=store, run_id=run_id, control=Control(should_stop=lambda: next(calls) >= args.steps))
    except Cancelled:
        pass
    train_s = time.perf_counter() - t0
    m = store.train_metrics(run_id)
    out = {"steps": args.steps, "of": cfg.train.steps, "allocator": allocator.loaded(),
           "precision": resolve_precision(pick_device(cfg.device), cfg.precision),
           "steps_per_s": round(float(m["step"].max()) / float(m["elapsed_s"].sum()), 2),
           "wall_steps_per_s": round(args.steps / train_s, 2),
           "train_peak_mb": peak_mb()}
    if args.score:
        res = score_run(workdir, store, run_id, ScoreJob(archs=args.score, perturb=0, chain=0))
        out["archs_per_min"] = res["archs_per_min"]
    out["peak_mb"] = peak_mb()
    return out


def peak_mb() -> float:
    """This process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(args: argparse.Namespace, setting: str) -> dict:
    """One fresh process under `setting`; its figures, or its error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMASH_THREADS": str(args.threads),
           "OMP_NUM_THREADS": str(args.threads), **parse_env(setting)}
    with tempfile.TemporaryDirectory(prefix="smash-mem-") as tmp:
        cmd = [sys.executable, __file__, "--child", "--workdir", tmp, "--config", args.config,
               "--steps", str(args.steps), "--of", str(args.of), "--score", str(args.score)]
        if args.precision:
            cmd += ["--precision", args.precision]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"env": setting, "error": proc.stderr.strip().splitlines()[-1:]}
    return {"env": setting, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--steps", type=int, default=150, help="training steps to run")
    p.add_argument("--of", type=int, default=0,
                   help="steps of the schedule they are the first of (default: --steps, the "
                        "whole schedule compressed into them, where nearly every step meets new shapes)")
    p.add_argument("--score", type=int, default=20, help="architectures scored after training (0: none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    p.add_argument("--env", action="append", default=None,
                   help='one setting: space-separated NAME=VALUE pairs ("" = engine defaults); repeatable')
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    rows = []
    for setting in args.env or [""]:
        row = measure(args, setting)
        rows.append(row)
        if "error" in row:
            print(f"{setting or '(defaults)'}: failed: {row['error']}", flush=True)
            continue
        print(f"{setting or '(defaults)'}: peak {row['peak_mb']:.0f} MB (training {row['train_peak_mb']:.0f} MB), "
              f"{row['steps_per_s']:.2f} steps/s ({row['wall_steps_per_s']:.2f} wall), "
              f"{row.get('archs_per_min', float('nan')):.1f} archs/min, {row['precision']}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
