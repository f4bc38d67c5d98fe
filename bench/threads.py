"""Thread scaling of a config's workloads, as the engine measures it before it trains or scores.

Times the SMASH training step (a throwaway model of the config's size, its batch size) and
scoring (forward passes at the score batch) at 1, 2, 4, ... threads, the way
engine/runtime/threads.py does on first use, and prints the seconds and the count the
engine would choose (a doubling must be MIN_SPEEDUP times faster). `--busy N` starts N
processes that keep a core busy beside the measurement, as on a shared machine. The last
line is a JSON object.

    python bench/threads.py [--config configs/demo.toml] [--busy 1]

OMP_WAIT_POLICY is PASSIVE unless set (engine/__init__.py); `OMP_WAIT_POLICY=ACTIVE
python bench/threads.py --busy 1` shows what spinning threads cost beside a busy process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # measure what the engine runs: tcmalloc where installed (SMASH_ALLOCATOR=system to compare)
    allocator.reexec()

import engine  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads OpenMP)

# isort: split
import torch  # noqa: E402

from core.config import load_config  # noqa: E402
from engine.data.splits import load_data  # noqa: E402
from engine.model import SmashModel  # noqa: E402
from engine.runtime.threads import MIN_SPEEDUP, read_cache  # noqa: E402
from engine.scoring.tuning import tune_score_threads  # noqa: E402
from engine.train.tuning import tune_threads  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--busy", type=int, default=0, help="busy processes to run beside")
    args = p.parse_args()
    for name in ("SMASH_THREADS", "SMASH_MAX_THREADS"):  # measure what the engine would
        os.environ.pop(name, None)
    cfg = load_config(args.config)
    data = load_data(cfg.data, cfg.seed)
    cpu = torch.device("cpu")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train = tune_threads(cfg, Path(tmp), data.image_shape, data.num_classes, cpu)
            score = tune_score_threads(SmashModel(cfg, data.image_shape, data.num_classes), Path(tmp), cpu)
            entries = read_cache(Path(tmp)).values()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    figures = {"config": args.config, "busy": args.busy, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
               "min_speedup": MIN_SPEEDUP, "train_threads": train, "score_threads": score}
    for entry in entries:
        kind = entry["workload"]["kind"]
        figures[f"{kind}_seconds"] = entry["seconds"]
        print(f"{kind}: seconds by threads {entry['seconds']} -> {entry['threads']}", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
