"""Where a SMASH step loses the hardware: torch.profiler over fresh SMASH steps and static
steps, the time grouped by kind of op, beside the plain-convolution rate of this machine.

Each measured step trains a new architecture (as SMASH training does); the static step
trains the same architecture as a plain network with its own weights. Every operator's
own time (children excluded) is put in one group: convolutions by shape class (1x1,
k x k, grouped k x k; forward and backward), concatenation and bank reads and writes,
batch norm, elementwise, copies and layout changes, the optimizer, the HyperNet's forward
(under its own profiler scope), and the rest; what no operator accounts for is Python
and dispatch overhead between ops. The table gives ms per step and the share of the
step; the `limit` row is the convolutions' achieved rate against bench/peak.py's.

    python bench/profile.py --config configs/cifar10.toml --op-probs 1,0,0,0,0 --precision bf16
    python bench/profile.py --steps 12 --regime annealed --threads 2
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path and the standard
# library's `profile` (which torch imports) would be this very file; the root goes there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from engine.runtime import allocator  # noqa: E402  (torch-free)

if __name__ == "__main__":  # the engine's allocator, as bench/step.py
    allocator.reexec()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from bench.peak import peak  # noqa: E402
from bench.step import TRAIN_PER_FORWARD, configured, hyper_train_flop, static_trainer  # noqa: E402
from core.size import count_flops  # noqa: E402
from core.space import sample_arch  # noqa: E402
from engine.model import SmashModel  # noqa: E402
from engine.runtime.device import memory_format  # noqa: E402
from engine.runtime.rng import torch_gen  # noqa: E402

GROUPS = {
    "batch norm": ("batch_norm",),
    "concatenation and bank reads/writes": ("aten::cat", "aten::split", "aten::slice", "aten::narrow",
                                            "aten::stack", "aten::select", "aten::chunk", "aten::index"),
    "copies and layout changes": ("copy_", "_to_copy", "aten::to", "contiguous", "clone", "permute",
                                  "as_strided", "reshape", "aten::view", "transpose"),
    "optimizer": ("adam", "optimizer", "_foreach", "zero_grad"),
    "elementwise": ("relu", "threshold", "aten::add", "aten::mul", "aten::div", "aten::sub", "leaky",
                    "tanh", "aten::sum", "aten::mean", "norm", "fill_", "zero_", "clamp", "aten::where",
                    "softmax", "nll_loss", "cross_entropy", "argmax", "aten::ne", "aten::pow", "rsqrt",
                    "avg_pool", "aten::exp", "aten::log"),
}


def conv_class(name: str, shapes: list) -> str:
    """'conv 1x1', 'conv kxk' or 'conv grouped kxk', forward or backward, from the weight's shape."""
    side = "backward" if "backward" in name else "forward"
    at = 1 if side == "backward" else 0  # convolution_backward(grad_output, input, weight, ...)
    shapes = [s if isinstance(s, list) else [] for s in shapes]
    weight = shapes[at + 1] if len(shapes) > at + 1 and len(shapes[at + 1]) == 4 else None
    if weight is None:
        return f"conv ({side})"
    c_in = shapes[at][1] if len(shapes[at]) == 4 else weight[1]
    kind = "1x1" if weight[2] == weight[3] == 1 else ("grouped kxk" if weight[1] < c_in else "kxk")
    return f"conv {kind} ({side})"


def group_of(name: str, shapes: list, in_hyper: bool, batch: int = 0) -> str:
    if in_hyper:
        return "HyperNet (forward)"
    low = name.lower()
    if "conv" in low and ("convolution" in low or "conv2d" in low):
        # The HyperNet runs over one encoding grid (batch 1); its backward convolutions run
        # outside its forward's scope, so they are told apart by that batch of 1.
        at = 1 if "backward" in low else 0
        if batch > 1 and len(shapes) > at and isinstance(shapes[at], list) and shapes[at][:1] == [1]:
            return "HyperNet (backward convolutions)"
        return conv_class(name, shapes)
    for group, keys in GROUPS.items():
        if any(k in low for k in keys):
            return group
    return "other ops"


def leaf_times(prof, batch: int = 0) -> dict[str, float]:
    """Seconds of every op's own time (children excluded), by group."""
    out: dict[str, float] = collections.defaultdict(float)
    for ev in prof.events():
        if ev.device_type.name != "CPU" or ev.name in ("hypernet", "step") or ev.name.startswith("ProfilerStep"):
            continue
        parent, in_hyper = ev.cpu_parent, False
        while parent is not None:
            in_hyper = in_hyper or parent.name == "hypernet"
            parent = parent.cpu_parent
        out[group_of(ev.name, ev.input_shapes or [], in_hyper, batch)] += ev.self_cpu_time_total / 1e6
    return out


def smash_step(model, opt, arch, x, y, seed: int) -> None:
    noise = model.noise(arch, torch_gen(0, seed, 3))
    with record_function("hypernet"):
        weights = model.generate(arch, noise)
    loss = F.cross_entropy(model(x, arch, weights=weights).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def static_step(arch, x, y, precision: str) -> None:
    step = static_trainer(arch, x.shape[1], 10, x, y, precision)
    for _ in range(2):  # the first builds kernels; profile the second
        step()


def profiled(fn, steps: int, batch: int) -> tuple[dict[str, float], float]:
    """Per step: seconds by group (with the overhead no op accounts for), and the step's wall time."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        for i in range(steps):
            with record_function("step"):
                fn(i)
        wall = (time.perf_counter() - t0) / steps
    groups = {k: v / steps for k, v in leaf_times(prof, batch).items()}
    groups["Python and dispatch overhead"] = max(0.0, wall - sum(groups.values()))
    return groups, wall


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cfg = configured(args)
    shape = tuple(int(v) for v in args.image.split(","))
    model = SmashModel(cfg, shape, 10).place(torch.device("cpu"))
    opt = model.configure_optimizer()
    x = torch.randn(args.batch, *shape).contiguous(memory_format=memory_format(torch.device("cpu")))
    y = torch.randint(0, 10, (args.batch,))
    rng = np.random.default_rng(0)
    progress = {"early": 0.0, "annealed": 1.0}[args.regime]
    archs = [sample_arch(cfg.space, rng, progress) for _ in range(args.warmup + args.steps)]
    for i, arch in enumerate(archs[:args.warmup]):  # a running training has met many shapes already
        smash_step(model, opt, arch, x, y, i)
    fresh = archs[args.warmup:]
    flop = TRAIN_PER_FORWARD * float(np.mean([count_flops(a, shape, 10) for a in fresh])) * args.batch
    precision = "bf16" if cfg.precision == "bf16" or (cfg.precision == "auto" and _bf16()) else "fp32"
    hyper_flop = hyper_train_flop(model, fresh)
    smash, smash_wall = profiled(lambda i: smash_step(model, opt, fresh[i], x, y, 1000 + i), args.steps, args.batch)
    static, static_wall = profiled(lambda i: static_step(fresh[i], x, y, cfg.precision), args.steps, args.batch)
    static_wall /= 2  # two steps each, the first warming kernels up
    static = {k: v / 2 for k, v in static.items()}
    limit = peak(args.threads, reps=10)["peak_gflops"][precision]
    conv_s = sum(v for k, v in smash.items() if k.startswith("conv"))
    return {"config": args.config, "regime": args.regime, "precision": precision, "threads": args.threads,
            "batch": args.batch, "train_gflop": round(flop / 1e9, 3), "smash_step_s": round(smash_wall, 4),
            "static_step_s": round(static_wall, 4), "ratio": round(smash_wall / static_wall, 3),
            "smash_gflops": round(flop / smash_wall / 1e9, 1), "peak_gflops": limit,
            "fraction_of_peak": round(flop / smash_wall / 1e9 / limit, 3),
            "conv_gflops": round(flop / conv_s / 1e9, 1) if conv_s else None,
            "conv_fraction_of_peak": round(flop / conv_s / 1e9 / limit, 3) if conv_s else None,
            "hyper_gflop": round(hyper_flop / 1e9, 3), "floor_ratio": round(1 + hyper_flop / flop, 3),
            "hyper_ms": round(1e3 * sum(v for k, v in smash.items() if k.startswith("HyperNet")), 2),
            "smash_ms": {k: round(v * 1e3, 2) for k, v in sorted(smash.items(), key=lambda kv: -kv[1])},
            "static_ms": {k: round(v * 1e3, 2) for k, v in sorted(static.items(), key=lambda kv: -kv[1])}}


def _bf16() -> bool:
    from engine.runtime.device import resolve_precision

    return resolve_precision(torch.device("cpu"), "auto") == "bf16"


def report(out: dict) -> None:
    print(f"{out['config']} {out['regime']}, {out['precision']}, {out['threads']} thread(s), batch {out['batch']}: "
          f"SMASH step {out['smash_step_s'] * 1e3:.1f} ms, static {out['static_step_s'] * 1e3:.1f} ms "
          f"(ratio {out['ratio']}), {out['train_gflop']} GFLOP a step")
    print(f"{'group':<40} {'SMASH ms':>9} {'share':>6} {'static ms':>10} {'share':>6}")
    for name in out["smash_ms"]:
        s, t = out["smash_ms"][name], out["static_ms"].get(name, 0.0)
        print(f"{name:<40} {s:9.2f} {s / out['smash_step_s'] / 10:5.1f}% {t:10.2f} "
              f"{t / out['static_step_s'] / 10:5.1f}%")
    print(f"{'limit: plain 3x3 conv (bench/peak.py)':<40} {out['peak_gflops']:9.1f} GFLOP/s; the step reaches "
          f"{out['smash_gflops']} ({out['fraction_of_peak']:.0%}), its convolutions alone {out['conv_gflops']} "
          f"({out['conv_fraction_of_peak']:.0%})")
    print(f"HyperNet: {out['hyper_gflop']} GFLOP a step, {out['hyper_ms']:.1f} ms in its convolutions and forward; "
          f"SMASH / static at least {out['floor_ratio']} if it ran at the network's rate")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/cifar10.toml")
    p.add_argument("--image", default="3,32,32")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--regime", choices=["early", "annealed"], default="early")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    p.add_argument("--op-probs", default=None, help="e.g. 1,0,0,0,0: the authors' op space")
    args = p.parse_args()
    out = run(args)
    report(out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
