"""One measurement of bench/contention.py: SMASH training steps done in a fixed wall time.

Started by bench/contention.py in a fresh process whose environment already holds the
thread settings (SMASH_THREADS, OMP_WAIT_POLICY), so they are in place before torch is
imported. The steps are the training loop's own (engine/train/hypernet.py's
HyperNetTrainer: schedule, sample a new Arch and an augmented batch of the config's
data, hypernet_step), on the device and with the threads the engine picks
(pick_device); the store writes and checkpoints are left out. The clock starts at the
first step, after the data is loaded and the model built. The last line is a JSON object.

    python bench/contention_worker.py --config configs/demo.toml --seconds 75
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # measure what the engine runs: tcmalloc where installed (SMASH_ALLOCATOR=system to compare)
    allocator.reexec()

# engine's environment defaults (OMP_WAIT_POLICY among them) must be set before torch loads.
import engine  # noqa: E402,F401

# isort: split
import torch  # noqa: E402

from core.config import load_config  # noqa: E402
from core.ids import run_id_for  # noqa: E402
from engine.data.splits import load_data  # noqa: E402
from engine.runtime.device import pick_device  # noqa: E402
from engine.train.hypernet import HyperNetTrainer, Ranks  # noqa: E402
from engine.train.tuning import tune_threads  # noqa: E402


def trainer_for(config: str, workdir: Path) -> HyperNetTrainer:
    """The training loop's state for `config`, as a process that writes no store (not the
    master rank), on the device and threads the engine picks."""
    cfg = load_config(config)
    data = load_data(cfg.data, cfg.seed)
    device = pick_device(cfg.device)
    tune_threads(cfg, workdir, data.image_shape, data.num_classes, device)  # as train_hypernet does
    trainer = HyperNetTrainer(cfg, workdir, None, device, run_id_for(cfg), data,
                              Ranks(ddp=False, master=False, rows=slice(None)))
    trainer.model.train()
    return trainer


def steps_in(trainer: HyperNetTrainer, seconds: float) -> tuple[int, float]:
    """Training steps finished within `seconds` of wall time, and the seconds they took."""
    log_every = trainer.cfg.train.log_every
    t0 = time.perf_counter()
    deadline = t0 + seconds
    done = 0
    while True:
        step = done % trainer.total  # a long measurement of a short run goes round again
        trainer.schedule(step)
        arch, x, y = trainer.sample(step)
        trainer.train_step(step, arch, x, y)
        if (done + 1) % log_every == 0:
            trainer.settle()  # training reads its metrics back at every log (waits for a GPU)
        now = time.perf_counter()
        if now > deadline:
            return done, now - t0
        done += 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--seconds", type=float, default=75.0)
    args = p.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smash-contention-") as tmp:
        trainer = trainer_for(args.config, Path(tmp))
        setup_s = time.perf_counter() - t0
        steps, seconds = steps_in(trainer, args.seconds)
    print(json.dumps({
        "steps": steps, "seconds": round(seconds, 2), "steps_per_s": round(steps / seconds, 2),
        "setup_s": round(setup_s, 1), "device": str(trainer.device),
        "threads": torch.get_num_threads() if trainer.device.type == "cpu" else None,
        "smash_threads": os.environ.get("SMASH_THREADS"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        # ru_maxrss is in kB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
