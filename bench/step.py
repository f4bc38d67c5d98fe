"""SMASH training step against the same Arch as a static free-weight network.

Prints the time per phase (sample, encode, HyperNet, forward, backward + update) of a
SMASH step and of a plain ArchNet step on the same batch, early in training (3x3
kernels, low budgets) and annealed, and their ratio. The last line is a JSON object;
`step_ratio` is the SMASH step over the static step, averaged over both regimes, each
architecture's steps after its first; `fresh_ratio` takes the first step of each new
architecture instead, which is what training pays (every step samples a new one).

    python bench/step.py [--config configs/cifar10.toml] [--archs 4] [--reps 3] [--threads 2]
                         [--precision fp32|bf16] [--op-probs 1,0,0,0,0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import load_config  # noqa: E402
from core.space import sample_arch  # noqa: E402
from engine.model import build_model, make_optimizer  # noqa: E402
from engine.nets.archnet import ArchNet  # noqa: E402
from engine.runtime.device import autocast, memory_format  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def smash_step(model, opt, space, rng, progress, x, y) -> dict[str, float]:
    arch, t_sample = timed(lambda: sample_arch(space, rng, progress))
    (enc, spans), t_encode = timed(lambda: model.hyper.layout.encode(arch))
    noise = torch.randn(1, *enc.shape[1:])
    with autocast(x.device, model.cfg.precision):
        gen, t_hyper = timed(lambda: model.hyper.generate(enc, spans, noise))
        logits, t_fwd = timed(lambda: model.net(x, arch, gen))

    def backward():
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    _, t_bwd = timed(backward)
    return {"arch": arch, "sample": t_sample, "encode": t_encode, "hypernet": t_hyper,
            "forward": t_fwd, "backward": t_bwd}


def static_step(arch, image_channels, classes, x, y, reps, precision) -> float:
    net = ArchNet(arch, image_channels, classes).to(memory_format=x_format(x))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)  # trained as SMASH trains
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        with autocast(x.device, precision):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def x_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/cifar10.toml")
    p.add_argument("--archs", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--image", default="3,32,32")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="override the config's precision")
    p.add_argument("--warmup", type=int, default=20,
                   help="SMASH steps on other random archs first, as a running training has done")
    p.add_argument("--op-probs", default=None,
                   help="override [space].op_probs, e.g. 1,0,0,0,0 for one conv per op (the authors' "
                        "code's default op space)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    if args.precision:
        cfg = cfg.replace(precision=args.precision)
    if args.op_probs:
        cfg = cfg.replace(space={"op_probs": [float(v) for v in args.op_probs.split(",")]})
    shape = tuple(int(v) for v in args.image.split(","))
    device = torch.device("cpu")
    model = build_model(cfg, shape, 10).to(device)  # the engine's memory format (SMASH_MEMORY_FORMAT)
    opt = make_optimizer(model)
    x = torch.randn(args.batch, *shape).contiguous(memory_format=memory_format(device))
    y = torch.randint(0, 10, (args.batch,))
    figures: dict[str, float] = {}
    ratios, fresh_ratios = [], []
    warm_rng = np.random.default_rng(99)
    for _ in range(args.warmup):
        smash_step(model, opt, cfg.space, warm_rng, float(warm_rng.uniform()), x, y)
    for regime, progress in (("early", 0.0), ("annealed", 1.0)):
        rng = np.random.default_rng(0)
        smash_rows, static_times, fresh_times = [], [], []
        for _ in range(args.archs):
            # The same Arch, SMASH step and static step, `reps` times each (first run warms up).
            state = rng.bit_generator.state
            rows = []
            for _ in range(args.reps + 1):
                rng.bit_generator.state = state
                rows.append(smash_step(model, opt, cfg.space, rng, progress, x, y))
            arch = rows[0]["arch"]
            # In training every step is a new arch: its first run is the step training pays,
            # including oneDNN building kernels for conv shapes it has not seen yet.
            fresh_times.append(sum(v for k, v in rows[0].items() if k != "arch"))
            smash_rows.append({k: float(np.median([r[k] for r in rows[1:]])) for k in rows[0] if k != "arch"})
            static_times.append(static_step(arch, shape[0], 10, x, y, args.reps, cfg.precision))
        phases = {k: float(np.mean([r[k] for r in smash_rows])) for k in smash_rows[0]}
        smash_total = sum(phases.values())
        static_total = float(np.mean(static_times))
        ratio = smash_total / static_total
        ratios.append(ratio)
        fresh = float(np.mean(fresh_times))
        fresh_ratios.append(fresh / static_total)
        print(f"{regime:>9}: SMASH step {smash_total * 1e3:8.1f} ms  static {static_total * 1e3:8.1f} ms  "
              f"ratio {ratio:.3f}   (" + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in phases.items()) + " ms)"
              f"   first step of a new arch {fresh * 1e3:.1f} ms, ratio {fresh / static_total:.3f}")
        figures.update({f"{regime}_smash_step_s": round(smash_total, 4),
                        f"{regime}_static_step_s": round(static_total, 4),
                        f"{regime}_ratio": round(ratio, 4),
                        f"{regime}_fresh_step_s": round(fresh, 4),
                        f"{regime}_fresh_ratio": round(fresh / static_total, 4),
                        **{f"{regime}_{k}_ms": round(v * 1e3, 2) for k, v in phases.items()}})
    figures["step_ratio"] = round(float(np.mean(ratios)), 4)
    figures["fresh_ratio"] = round(float(np.mean(fresh_ratios)), 4)
    figures["onednn_cache"] = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024 (oneDNN default)")
    figures.update(threads=args.threads, batch=args.batch, config=args.config,
                   memory_format="nhwc" if x_format(x) == torch.channels_last else "nchw",
                   precision=cfg.precision, op_probs=list(cfg.space.op_probs))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
