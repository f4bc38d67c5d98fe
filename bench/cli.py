"""How fast the shell answers: wall time and peak memory of the read-only `smash` commands.

Builds (once, kept in --workdir) a store holding one demo-config run with --archs scored
architectures (real archs sampled from the demo's space, with their sizes), then runs each
command --repeats times as a fresh process and prints the median wall time and the
largest peak RSS (the process's own high-water mark, from wait4). The commands: `smash
--help`, `runs`, `top --limit 50`, `show best` and `jobs`. Goal: each within 0.5 s and
150 MB on a quiet machine.

    python bench/cli.py --workdir /tmp/cli-bench --archs 100000
    python bench/cli.py --smash "python -m cli"    # another way to start the command
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.config import load_config  # noqa: E402
from core.ids import run_id_for  # noqa: E402
from core.size import count_flops, count_params  # noqa: E402
from core.space import sample_arch  # noqa: E402
from store import Store, store_path  # noqa: E402

COMMANDS = {
    "--help": ["--help"],
    "runs": ["runs"],
    "top --limit 50": ["top", "--limit", "50"],
    "show best": ["show", "best"],
    "jobs": ["jobs"],
}
IMAGE, CLASSES = (1, 28, 28), 10
TIME = "/usr/bin/time"


def build_store(workdir: Path, n: int, seed: int = 0) -> str:
    """A store with one run of the demo config and `n` scored archs; returns the run id.
    Kept: a second call with the same workdir finds it filled."""
    cfg = load_config(ROOT / "configs" / "demo.toml")
    run_id = run_id_for(cfg)
    st = Store(store_path(workdir))
    if st.get_run(run_id) is not None and st.score_count(run_id) >= n:
        return run_id
    st.create_run(run_id, name=cfg.name, config=cfg.to_dict(), seed=cfg.seed, code_version="bench",
                  dataset="fashion-mnist", num_classes=CLASSES, image_shape=list(IMAGE),
                  steps_total=cfg.train.steps, status="done")
    rng = np.random.default_rng(seed)
    archs = {}
    while len(archs) < n:
        arch = sample_arch(cfg.space, rng)
        archs[arch.id] = arch
    rows = [{"arch_id": a.id, "arch_json": a.to_json(), "params": count_params(a, IMAGE[0], CLASSES),
             "flops": count_flops(a, IMAGE, CLASSES), "depth": a.depth, "n_layers": a.n_layers}
            for a in archs.values()]
    frame = pd.DataFrame(rows).assign(checkpoint_step=cfg.train.steps, stage="random", draws=2, val_images=500,
                                      score_mean=rng.uniform(0.2, 2.3, n), score_std=rng.uniform(0, 0.1, n))
    st.bulk_add_scored(run_id, frame)
    for kind in ("train", "score", "retrain"):
        st.enqueue_job(kind, {"bench": kind}, run_id=run_id)
    return run_id


def measure(cmd: list[str], repeats: int) -> dict:
    """Median wall seconds and largest peak RSS (MB) of `cmd` run `repeats` times.

    The peak comes from GNU time, a small process: Linux carries a process's peak RSS
    across fork and exec, so a child forked from this (large) process would report ours."""
    walls, peaks = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{shlex.join(cmd)} failed: {proc.stderr[-400:]}")
        peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)  # KB
    return {"seconds": round(statistics.median(walls), 3), "peak_mb": round(max(peaks), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="/tmp/smash-cli-bench")
    p.add_argument("--archs", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--smash", default=str(Path(sys.executable).parent / "smash"),
                   help="how to start the command (default: the venv's smash)")
    args = p.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run_id = build_store(workdir, args.archs)
    print(f"store: {args.archs:,} scored archs in run {run_id} ({time.perf_counter() - t0:.0f} s to build)")
    out = {"archs": args.archs, "commands": {}}
    for name, sub in COMMANDS.items():
        extra = [] if name == "--help" else ["--workdir", str(workdir)]
        res = measure([*shlex.split(args.smash), *sub, *extra], args.repeats)
        out["commands"][name] = res
        print(f"smash {name:<16} {res['seconds']:6.3f} s  {res['peak_mb']:7.1f} MB", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
