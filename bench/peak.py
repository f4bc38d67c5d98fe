"""What this machine's convolutions can do: the plain-convolution rate every step is held to.

One 3x3 convolution, 64 to 64 channels at 32x32, batch 50 (the SMASH networks' commonest
shape class at CIFAR size), trained: forward, the gradients of input and weights, as a
training step runs it (3x the forward's FLOPs). Timed in NCHW and channels-last, fp32 and
bf16, on --threads threads, median of --reps after a warm-up. `peak_gflops[precision]` is
the faster memory format's rate: the "limit" a step's own rate is a fraction of
(bench/step.py, bench/profile.py), so figures from different machines compare as fractions.

    python bench/peak.py [--threads 2] [--reps 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SHAPE = {"batch": 50, "channels": 64, "size": 32, "kernel": 3}
TRAIN_PER_FORWARD = 3


def conv_flop(batch: int, channels: int, size: int, kernel: int) -> float:
    """Forward FLOPs of the convolution (2 per multiply-add), stride 1, 'same' padding."""
    return 2.0 * batch * channels * channels * kernel * kernel * size * size


def rate(precision: str, memory_format: torch.memory_format, reps: int, dilation: int = 1) -> float:
    """GFLOP/s of a training pass of the plain convolution."""
    s = SHAPE
    x = torch.randn(s["batch"], s["channels"], s["size"], s["size"]).contiguous(memory_format=memory_format)
    w = torch.randn(s["channels"], s["channels"], s["kernel"], s["kernel"]) * 0.05
    w = w.contiguous(memory_format=memory_format).requires_grad_()
    x.requires_grad_()
    pad = dilation * (s["kernel"] - 1) // 2

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = F.conv2d(x, w, padding=pad, dilation=dilation)
        out.float().sum().backward()
        x.grad = w.grad = None

    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return TRAIN_PER_FORWARD * conv_flop(**s) / float(np.median(times)) / 1e9


def peak(threads: int, reps: int = 20) -> dict:
    """The rates of every precision and memory format, and the peak per precision."""
    torch.set_num_threads(threads)
    formats = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
    rates = {f"{p}_{name}": round(rate(p, fmt, reps), 1) for p in ("fp32", "bf16") for name, fmt in formats.items()}
    return {"threads": threads, "shape": SHAPE, "gflops": rates,
            "peak_gflops": {p: max(v for k, v in rates.items() if k.startswith(p)) for p in ("fp32", "bf16")},
            "cpu": cpu_name()}


def cpu_name() -> str:
    """The CPU's model name, and whether it has AMX and avx512_bf16 (what bf16 speed turns on)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    extra = [f for f in ("amx_bf16", "avx512_bf16") if f in flags.split()]
    return f"{name} ({', '.join(extra) or 'no bf16 instructions'})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    out = peak(args.threads, args.reps)
    print(f"{out['cpu']}, {args.threads} thread(s): plain 3x3 conv 64->64 at 32x32, batch 50, trained")
    for name, value in out["gflops"].items():
        print(f"  {name:<20} {value:8.1f} GFLOP/s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
