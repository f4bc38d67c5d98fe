"""SMASH training step against the same Arch as a static free-weight network.

Prints the time per phase (sample, encode, HyperNet, forward, backward + update) of a
SMASH step and of a plain ArchNet step on the same batch, early in training (3x3
kernels, low budgets) and annealed, and their ratio. The last line is a JSON object;
`step_ratio` is the SMASH step over the static step, averaged over both regimes, each
architecture's steps after its first; `fresh_ratio` takes the first step of each new
architecture instead, which is what training pays (every step samples a new one).

Beside the times: the work of a step in FLOPs, the rate achieved, and that rate as a
fraction of this machine's plain-convolution rate at the same precision (bench/peak.py;
`*_fraction_of_peak`), which is what travels between machines. `forward_gflop`
is the forward pass of the sampled architectures at the batch size (engine/nets/size.py
count_flops: convolutions and classifier, 2 FLOPs per multiply-add, averaged over the
regime's architectures); `train_gflop` takes a training step as 3x its forward (the
backward pass computes the gradients of both activations and weights, each about one
forward's work); BN, pooling and the optimizer are not counted. The HyperNet's own work
(`hyper_gflop`, 3x its forward, engine/hyper/hypernet.py `flops`) is reported apart:
`floor_ratio` = 1 + hyper_gflop / train_gflop is the SMASH / static ratio a step would
have if the HyperNet ran at the network's rate and SMASH added nothing else, and the
`*_with_hyper_*` rates count it as work done.
The script runs on the engine's allocator (tcmalloc where installed; engine/runtime/
allocator.py); `SMASH_ALLOCATOR=system` runs it on glibc's, to compare (bench/ab.py
alternates the two). `peak_rss_mb` is this process's peak resident memory (ru_maxrss); on CUDA,
`peak_cuda_mb` the peak memory allocated on the device.

    python bench/step.py [--config configs/cifar10.toml] [--archs 4] [--reps 3] [--threads 2]
                         [--precision auto|fp32|bf16] [--op-probs 1,0,0,0,0] [--device cpu|cuda|auto]

`--config configs/cifar10-paper.toml` has the paper's exact settings; `--op-probs
1,0,0,0,0` samples one conv per op, the authors' code's default op space.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # measure what the engine runs: tcmalloc where installed (SMASH_ALLOCATOR=system to compare)
    allocator.reexec()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.peak import peak  # noqa: E402
from core.config import load_config  # noqa: E402
from core.size import count_flops  # noqa: E402
from core.space import sample_arch  # noqa: E402
from engine.model import SmashModel  # noqa: E402
from engine.nets.archnet import ArchNet  # noqa: E402
from engine.runtime.device import autocast, check_device, memory_format, resolve_precision  # noqa: E402

TRAIN_PER_FORWARD = 3
"""A training step's FLOPs as a multiple of its forward pass (forward + backward for
activations + backward for weights)."""


def hyper_train_flop(model, archs) -> float:
    """The HyperNet's mean work per training step over `archs` (TRAIN_PER_FORWARD x its forward)."""
    return TRAIN_PER_FORWARD * float(np.mean([model.hyper.flops(*model.hyper.layout.grid_shape(a)) for a in archs]))


def timed(fn):
    """fn's result and its seconds, waiting for a CUDA device to finish the work queued."""
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def smash_step(model, opt, space, rng, progress, x, y) -> dict[str, float]:
    """One SMASH step as SmashModel.forward runs it, each phase timed: sampling, the
    encoding, the HyperNet generating the weights (the encoding again, and noise), the
    network's forward, backward and optimizer step."""
    arch, t_sample = timed(lambda: sample_arch(space, rng, progress))
    _, t_encode = timed(lambda: model.hyper.layout.encode(arch))
    noise = model.noise(arch, torch.Generator().manual_seed(0))  # leaves the global rng alone
    weights, t_hyper = timed(lambda: model.generate(arch, noise))
    logits, t_fwd = timed(lambda: model(x, arch, weights=weights))

    def backward():
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    _, t_bwd = timed(backward)
    return {"arch": arch, "sample": t_sample, "encode": t_encode, "hypernet": t_hyper,
            "forward": t_fwd, "backward": t_bwd}


def static_trainer(arch, image_channels, classes, x, y, precision) -> Callable[[], None]:
    """One training step of `arch` as a plain network with its own weights, on (x, y)."""
    net = ArchNet(arch, image_channels, classes).to(x.device, memory_format=x_format(x))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)  # trained as SMASH trains

    def step() -> None:
        with autocast(x.device, precision):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def static_step(arch, image_channels, classes, x, y, reps, precision) -> float:
    step = static_trainer(arch, image_channels, classes, x, y, precision)
    times = [timed(step)[1] for _ in range(reps + 1)]
    return float(np.median(times[1:]))


def x_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def gflops(flop: float, seconds: float) -> float:
    return round(flop / seconds / 1e9, 2)


def measure_regime(model, opt, cfg, args, shape, x, y, progress) -> dict[str, float]:
    """Figures of one regime: the same `args.archs` architectures, SMASH and static steps."""
    rng = np.random.default_rng(0)
    smash_rows, static_times, fresh_times, forward_flop, measured = [], [], [], [], []
    for _ in range(args.archs):
        # The same Arch, SMASH step and static step, `reps` times each (first run warms up).
        state = rng.bit_generator.state
        rows = []
        for _ in range(args.reps + 1):
            rng.bit_generator.state = state
            rows.append(smash_step(model, opt, cfg.space, rng, progress, x, y))
        arch = rows[0]["arch"]
        forward_flop.append(count_flops(arch, shape, 10) * args.batch)
        measured.append(arch)
        # In training every step is a new arch: its first run is the step training pays,
        # including oneDNN building kernels for conv shapes it has not seen yet.
        fresh_times.append(sum(v for k, v in rows[0].items() if k != "arch"))
        smash_rows.append({k: float(np.median([r[k] for r in rows[1:]])) for k in rows[0] if k != "arch"})
        static_times.append(static_step(arch, shape[0], 10, x, y, args.reps, cfg.precision))
    phases = {k: float(np.mean([r[k] for r in smash_rows])) for k in smash_rows[0]}
    smash, static, fresh = sum(phases.values()), float(np.mean(static_times)), float(np.mean(fresh_times))
    fwd = float(np.mean(forward_flop))
    train = TRAIN_PER_FORWARD * fwd
    hyper = hyper_train_flop(model, measured)
    return {"smash_step_s": round(smash, 4), "static_step_s": round(static, 4),
            "ratio": round(smash / static, 4), "fresh_step_s": round(fresh, 4),
            "fresh_ratio": round(fresh / static, 4),
            "forward_gflop": round(fwd / 1e9, 3), "train_gflop": round(train / 1e9, 3),
            "smash_gflops": gflops(train, smash), "static_gflops": gflops(train, static),
            "fresh_gflops": gflops(train, fresh),
            # The HyperNet's own work (a batch-1 conv net over the encoding, run once a step):
            # SMASH's step does it on top of the network's, so at the static step's rate the
            # ratio cannot go below floor_ratio; *_with_hyper_gflops count it as work done.
            "hyper_gflop": round(hyper / 1e9, 3), "hyper_share": round(hyper / train, 4),
            "floor_ratio": round(1 + hyper / train, 4),
            "smash_with_hyper_gflops": gflops(train + hyper, smash),
            "fresh_with_hyper_gflops": gflops(train + hyper, fresh),
            **{f"{k}_ms": round(v * 1e3, 2) for k, v in phases.items()}}


def report_regime(regime: str, f: dict[str, float]) -> None:
    phases = ", ".join(f"{k[:-3]} {v:.1f}" for k, v in f.items() if k.endswith("_ms"))
    print(f"{regime:>9}: SMASH step {f['smash_step_s'] * 1e3:8.1f} ms  static {f['static_step_s'] * 1e3:8.1f} ms  "
          f"ratio {f['ratio']:.3f}   ({phases} ms)   first step of a new arch "
          f"{f['fresh_step_s'] * 1e3:.1f} ms, ratio {f['fresh_ratio']:.3f}")
    print(f"{'':>9}  work: forward {f['forward_gflop']:.2f} GFLOP, training step ~{TRAIN_PER_FORWARD}x = "
          f"{f['train_gflop']:.2f} GFLOP;  achieved GFLOP/s: SMASH {f['smash_gflops']}, "
          f"static {f['static_gflops']}, first step of a new arch {f['fresh_gflops']}")
    print(f"{'':>9}  HyperNet: {f['hyper_gflop']:.2f} GFLOP a step ({f['hyper_share']:.1%} of the network's), so "
          f"SMASH / static is at least {f['floor_ratio']:.3f} at the static step's rate; counted as work, "
          f"SMASH {f['smash_with_hyper_gflops']} GFLOP/s, first step {f['fresh_with_hyper_gflops']}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/cifar10.toml",
                   help="configs/cifar10-paper.toml holds the paper's exact settings")
    p.add_argument("--archs", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--image", default="3,32,32")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="override the config's precision (auto: bf16 where the device does it natively, "
                        "CUDA from Ampere on and CPUs with AMX or avx512_bf16; fp32 elsewhere)")
    p.add_argument("--warmup", type=int, default=20,
                   help="SMASH steps on other random archs first, as a running training has done")
    p.add_argument("--no-peak", action="store_true", help="skip measuring the plain-convolution rate")
    p.add_argument("--op-probs", default=None,
                   help="override [space].op_probs, e.g. 1,0,0,0,0 for one conv per op (the authors' "
                        "code's default op space)")
    args = p.parse_args()
    if min(args.archs, args.reps, args.threads, args.batch) < 1 or args.warmup < 0:
        raise SystemExit("--archs, --reps, --threads and --batch must be at least 1, --warmup at least 0")
    return args


def configured(args: argparse.Namespace):
    """The config with the command line's --precision and --op-probs overrides."""
    cfg = load_config(args.config)
    if args.precision:
        cfg = cfg.replace(precision=args.precision)
    if args.op_probs:
        cfg = cfg.replace(space={"op_probs": [float(v) for v in args.op_probs.split(",")]})
    return cfg


def setup(args: argparse.Namespace):
    """The config (with the overrides), image shape, device, model, optimizer and one batch."""
    cfg = configured(args)
    shape = tuple(int(v) for v in args.image.split(","))
    device = check_device(args.device)
    model = SmashModel(cfg, shape, 10).place(device)  # the engine's memory format (SMASH_MEMORY_FORMAT)
    opt = model.configure_optimizer()
    x = torch.randn(args.batch, *shape, device=device).contiguous(memory_format=memory_format(device))
    y = torch.randint(0, 10, (args.batch,), device=device)
    return cfg, shape, device, model, opt, x, y


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cfg, shape, device, model, opt, x, y = setup(args)
    warm_rng = np.random.default_rng(99)
    for _ in range(args.warmup):
        smash_step(model, opt, cfg.space, warm_rng, float(warm_rng.uniform()), x, y)
    figures: dict = {}
    for regime, progress in (("early", 0.0), ("annealed", 1.0)):
        f = measure_regime(model, opt, cfg, args, shape, x, y, progress)
        report_regime(regime, f)
        figures.update({f"{regime}_{k}": v for k, v in f.items()})
    if not args.no_peak and device.type == "cpu":
        # The same machine's plain-convolution rate (bench/peak.py): figures that travel between
        # machines as fractions of what each can do.
        limit = peak(args.threads, reps=10)
        rate = limit["peak_gflops"][resolve_precision(device, cfg.precision)]
        figures.update(peak_gflops=rate, cpu=limit["cpu"])
        for regime in ("early", "annealed"):
            for kind in ("smash", "static", "fresh", "smash_with_hyper", "fresh_with_hyper"):
                figures[f"{regime}_{kind}_fraction_of_peak"] = round(figures[f"{regime}_{kind}_gflops"] / rate, 3)
        print(f"limit: plain 3x3 conv {rate} GFLOP/s ({limit['cpu']}); fresh SMASH step at "
              f"{figures['early_fresh_fraction_of_peak']:.0%} early, {figures['annealed_fresh_fraction_of_peak']:.0%} "
              f"annealed; static at {figures['early_static_fraction_of_peak']:.0%} / "
              f"{figures['annealed_static_fraction_of_peak']:.0%}; with the HyperNet's work counted, the fresh step at "
              f"{figures['early_fresh_with_hyper_fraction_of_peak']:.0%} / "
              f"{figures['annealed_fresh_with_hyper_fraction_of_peak']:.0%}")
    figures["step_ratio"] = round((figures["early_ratio"] + figures["annealed_ratio"]) / 2, 4)
    figures["fresh_ratio"] = round((figures["early_fresh_ratio"] + figures["annealed_fresh_ratio"]) / 2, 4)
    # ru_maxrss is in kB on Linux.
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if device.type == "cuda":
        figures["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    print(f"peak resident memory {figures['peak_rss_mb']} MB"
          + (f", peak CUDA memory {figures['peak_cuda_mb']} MB" if "peak_cuda_mb" in figures else ""))
    figures["onednn_cache"] = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024 (oneDNN default)")
    figures.update(allocator=allocator.loaded(), threads=args.threads, batch=args.batch, config=args.config,
                   device=str(device),
                   memory_format="nhwc" if x_format(x) == torch.channels_last else "nchw",
                   precision=cfg.precision, op_probs=list(cfg.space.op_probs),
                   flop_note=f"train_gflop = {TRAIN_PER_FORWARD} x forward (convs + classifier); "
                             "BN and optimizer not counted; the HyperNet's work apart (hyper_gflop, also 3 x its "
                             "forward), and in *_with_hyper_* rates")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
