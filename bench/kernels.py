"""How much of SMASH training goes to oneDNN building kernels for new shapes, in a real schedule.

Every step samples a new architecture, and on the CPU oneDNN builds (JIT-compiles) kernels
for each convolution shape it has not met, keeping them in its cache. bench/step.py's
first step of a new architecture comes 20 steps into a run, when most shapes are new;
this measures the cost where training spends its time: the steps of the schedule as the
trainer samples them (`sample_arch` with the step's own seed and progress), with a
synthetic batch of the config's size. A child process runs them with
ONEDNN_VERBOSE=profile_create, which logs each kernel creation and its time; per window
of steps the script prints the step time, the kernels built per step (cache misses) and
the share of the step they took.

`--warm-next` also answers whether building the next step's kernels on a spare core pays:
it times the same steps plainly and with a background thread that runs the next
architecture's forward and backward on a throwaway copy of the model (its own thread, one
math thread each), alternating the two for `--rounds`.

    python bench/kernels.py [--config configs/demo.toml] [--image 1,28,28] [--steps 300]
                            [--start 0] [--of 1500] [--windows 3] [--threads 1]
                            [--precision auto|fp32|bf16] [--op-probs 1,0,0,0,0] [--warm-next] [--rounds 2]

CIFAR size: `--config configs/cifar10.toml --image 3,32,32 --of 3000`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # measure what the engine runs: tcmalloc where installed (SMASH_ALLOCATOR=system to compare)
    allocator.reexec()

MARK = "SMASHSTEP"


def child(args: argparse.Namespace) -> None:
    """The measured process: the schedule's steps; a marker line after each, with its seconds."""
    import copy
    from concurrent.futures import ThreadPoolExecutor

    import torch
    import torch.nn.functional as F

    from bench.step import configured
    from core.space import sample_arch
    from engine.model import SmashModel
    from engine.runtime.device import memory_format
    from engine.runtime.rng import step_rng, torch_gen

    # oneDNN prints through C's stdout; line-buffer it so its lines and ours keep their order.
    libc = ctypes.CDLL(None)
    libc.setvbuf(ctypes.c_void_p.in_dll(libc, "stdout"), None, 1, 0)  # _IOLBF
    torch.set_num_threads(args.threads)
    cfg = configured(args)
    shape = tuple(int(v) for v in args.image.split(","))
    device = torch.device("cpu")
    model = SmashModel(cfg, shape, 10)
    opt = model.configure_optimizer()
    x = torch.randn(cfg.train.batch_size, *shape).contiguous(memory_format=memory_format(device))
    y = torch.randint(0, 10, (cfg.train.batch_size,))

    def arch_of(s: int):
        return sample_arch(cfg.space, step_rng(cfg.seed, s, 1), progress=s / args.of)

    pool, pending = None, {}
    if args.mode == "warm":
        shadow = copy.deepcopy(model)  # shapes decide the kernels, not values: never updated

        def warm(s: int) -> None:
            arch = arch_of(s)
            logits = shadow(x, arch, shadow.noise(arch, torch_gen(cfg.seed, s, 3)))
            F.cross_entropy(logits.float(), y).backward()
            for p in shadow.parameters():
                p.grad = None

        pool = ThreadPoolExecutor(1, initializer=lambda: torch.set_num_threads(1))
    t_all = time.perf_counter()
    for s in range(args.start, args.start + args.steps):
        if pool is not None and s + 1 not in pending:
            pending[s + 1] = pool.submit(warm, s + 1)
        t0 = time.perf_counter()
        arch = arch_of(s)
        logits = model(x, arch, model.noise(arch, torch_gen(cfg.seed, s, 3)))
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        pending.pop(s, None)
        os.write(1, f"{MARK},{s},{time.perf_counter() - t0:.6f}\n".encode())
    if pool is not None:
        pool.shutdown(cancel_futures=True)
    os.write(1, f"{MARK},total,{time.perf_counter() - t_all:.6f}\n".encode())


def parse(stdout: str) -> tuple[list[dict], float]:
    """Per step: its seconds, and the kernels built during it (count, ms); and the total seconds."""
    steps, built, ms, total = [], 0, 0.0, float("nan")
    for line in stdout.splitlines():
        if line.startswith(MARK):
            _, s, sec = line.split(",")
            if s == "total":
                total = float(sec)
                continue
            steps.append({"step": int(s), "s": float(sec), "built": built, "create_ms": ms})
            built, ms = 0, 0.0
        elif line.startswith("onednn_verbose") and "create:cache_miss" in line:
            built += 1
            ms += float(line.rsplit(",", 1)[1])
    return steps, total


def windows(steps: list[dict], n: int) -> list[dict]:
    """The steps in n consecutive windows: mean step ms, kernels built and their ms per step, and share."""
    out = []
    size = max(1, len(steps) // n)
    for i in range(0, len(steps), size):
        w = steps[i:i + size]
        step_ms = 1e3 * statistics.fmean(r["s"] for r in w)
        create_ms = statistics.fmean(r["create_ms"] for r in w)
        out.append({"steps": f"{w[0]['step']}-{w[-1]['step']}", "step_ms": round(step_ms, 2),
                    "built_per_step": round(statistics.fmean(r["built"] for r in w), 2),
                    "create_ms_per_step": round(create_ms, 3),
                    "create_share": round(create_ms / step_ms, 4) if step_ms else 0.0})
    return out


def run_child(args: argparse.Namespace, mode: str, verbose: bool) -> str:
    cmd = [sys.executable, __file__, "--child", mode, "--config", args.config, "--image", args.image,
           "--steps", str(args.steps), "--start", str(args.start), "--of", str(args.of),
           "--threads", str(args.threads)]
    if args.precision:
        cmd += ["--precision", args.precision]
    if args.op_probs:
        cmd += ["--op-probs", args.op_probs]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMASH_THREADS": str(args.threads)}
    env.pop("ONEDNN_VERBOSE", None)
    if verbose:
        env["ONEDNN_VERBOSE"] = "profile_create"
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"kernels.py: the {mode} run failed: " + " ".join(proc.stderr.strip().splitlines()[-1:]))
    return proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--image", default="1,28,28", help="C,H,W of the synthetic batch (3,32,32 for CIFAR)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--start", type=int, default=0, help="first step of the schedule to run")
    p.add_argument("--of", type=int, default=1500, help="steps in the whole schedule (sets each step's progress)")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    p.add_argument("--op-probs", default=None, help="override [space].op_probs (1,0,0,0,0: the authors' op space)")
    p.add_argument("--warm-next", action="store_true", help="also time a background thread warming the next step")
    p.add_argument("--rounds", type=int, default=2, help="alternations of plain and warm-next timing")
    p.add_argument("--child", choices=["plain", "warm"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if min(args.steps, args.of, args.windows, args.threads, args.rounds) < 1 or args.start < 0:
        raise SystemExit("kernels.py: --steps, --of, --windows, --threads and --rounds must be at least 1")
    if args.child:
        args.mode = args.child
        child(args)
        return
    steps, total = parse(run_child(args, "plain", verbose=True))
    figures = {"config": args.config, "image": args.image, "threads": args.threads, "of": args.of,
               "op_probs": args.op_probs,
               "windows": windows(steps, args.windows),
               "create_share": round(sum(r["create_ms"] for r in steps) / 1e3 / sum(r["s"] for r in steps), 4),
               "built": sum(r["built"] for r in steps)}
    print(f"{args.config}, steps {args.start}-{args.start + args.steps - 1} of {args.of}, "
          f"{args.threads} thread(s), kernels logged:")
    for w in figures["windows"]:
        print(f"  steps {w['steps']:>11}: step {w['step_ms']:8.1f} ms, {w['built_per_step']:6.2f} kernels built "
              f"taking {w['create_ms_per_step']:7.2f} ms ({100 * w['create_share']:.1f}% of the step)")
    if args.warm_next:
        rates: dict[str, list[float]] = {"plain": [], "warm": []}
        for r in range(args.rounds):
            for mode in (("plain", "warm") if r % 2 == 0 else ("warm", "plain")):
                _, total = parse(run_child(args, mode, verbose=False))
                rates[mode].append(args.steps / total)
                print(f"  round {r + 1}, {mode}: {rates[mode][-1]:.2f} steps/s", flush=True)
        figures["steps_per_s"] = {m: round(statistics.median(v), 2) for m, v in rates.items()}
        figures["warm_next_speedup"] = round(figures["steps_per_s"]["warm"] / figures["steps_per_s"]["plain"], 3)
        print(f"  warming the next step on a spare core: {figures['warm_next_speedup']:.3f}x "
              f"({figures['steps_per_s']['warm']} against {figures['steps_per_s']['plain']} steps/s)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
