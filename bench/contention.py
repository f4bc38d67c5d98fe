"""The contention table: how many SMASH training steps each thread setting does in a fixed
wall time, on a quiet machine and with another load competing for the cores.

For each setting (2 threads; 2 threads with OMP_WAIT_POLICY=PASSIVE; 1 thread; the
engine's own choice, SMASH_THREADS unset) it trains the config's network (configs/demo.toml
by default) for `--seconds` of wall time in a fresh process (bench/contention_worker.py:
the training loop's own steps, a new architecture every step, on the config's data), once
quiet and once with the competing load running, and prints the steps done and the
busy/quiet ratio. OpenMP threads that spin while they wait for each other are what a
competing process hurts most; a ratio near 1 means the setting shares the machine well.

The load (`--load`): `busy` is one process spinning a pure-Python loop (the default),
`busy:N` is N of them, anything else is a shell command, started before and killed
after each busy measurement. The last line is a JSON object.

    python bench/contention.py [--config configs/demo.toml] [--seconds 75]
                               [--load busy | busy:N | "CMD"] [--settings 2,2passive,1,auto]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "contention_worker.py"

# Each setting's name, label and environment; the inherited thread settings are dropped
# first (THREAD_VARS), so "auto" is what the engine picks with nothing set.
SETTINGS: dict[str, tuple[str, dict[str, str]]] = {
    "2": ("2 threads, OMP_WAIT_POLICY=ACTIVE (the old default)", {"SMASH_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}),
    "2passive": ("2 threads, OMP_WAIT_POLICY=PASSIVE", {"SMASH_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}),
    "1": ("1 thread", {"SMASH_THREADS": "1"}),
    "auto": ("engine's choice (SMASH_THREADS unset)", {}),
}
THREAD_VARS = ("SMASH_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
SPIN = "while True: pass"


@dataclass(frozen=True)
class Load:
    """A competing load: `spinners` pure-Python busy loops, or a shell `command`."""

    spinners: int = 0
    command: str | None = None

    def describe(self) -> str:
        if self.command is not None:
            return f"command {self.command!r}"
        return f"{self.spinners} busy process{'es' if self.spinners != 1 else ''}"


def parse_load(text: str) -> Load:
    """`busy`, `busy:N` (N >= 1) or a shell command; ValueError (one line) if it is none of them."""
    text = text.strip()
    if not text:
        raise ValueError("--load: empty; give busy, busy:N or a shell command")
    if text == "busy":
        return Load(spinners=1)
    if text.startswith("busy:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--load {text!r}: busy:N needs a whole number N >= 1")
        return Load(spinners=int(count))
    return Load(command=text)


def parse_settings(text: str) -> list[str]:
    """The setting names of a comma list, in order; ValueError naming an unknown one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown or not names:
        raise ValueError(f"--settings {text!r}: choose from {', '.join(SETTINGS)}")
    return names


def start_load(load: Load) -> list[subprocess.Popen]:
    """Start the load, each process in its own session so that stop_load ends all it started."""
    if load.command is not None:
        return [subprocess.Popen(load.command, shell=True, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    return [subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True)
            for _ in range(load.spinners)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    """End every process group start_load started: SIGTERM, then SIGKILL after 5 s."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # already gone


def worker_env(setting: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(ROOT)
    env.update(SETTINGS[setting][1])
    return env


def measure(setting: str, config: str, seconds: float) -> dict:
    """One worker run's figures (its last line)."""
    done = subprocess.run([sys.executable, str(WORKER), "--config", config, "--seconds", str(seconds)],
                          env=worker_env(setting), cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        err = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"contention: the {setting!r} measurement failed: {err}")
    return json.loads(lines[-1])


def measure_setting(setting: str, args: argparse.Namespace, load: Load) -> dict:
    """Quiet, then busy: one table row."""
    quiet = measure(setting, args.config, args.seconds)
    procs = start_load(load)
    try:
        time.sleep(0.5)  # let the load get going before the clock can start
        busy = measure(setting, args.config, args.seconds)
    finally:
        stop_load(procs)
    return {"setting": setting, "label": SETTINGS[setting][0], "threads": quiet["threads"],
            "device": quiet["device"], "quiet_steps": quiet["steps"], "busy_steps": busy["steps"],
            "quiet_steps_per_s": quiet["steps_per_s"], "busy_steps_per_s": busy["steps_per_s"],
            "busy_over_quiet": round(busy["steps_per_s"] / quiet["steps_per_s"], 3)
            if quiet["steps_per_s"] else None,
            "peak_rss_mb": max(quiet["peak_rss_mb"], busy["peak_rss_mb"])}


def table(rows: list[dict]) -> str:
    """The rows as aligned text."""
    head = f"{'setting':<40} {'threads':>7} {'quiet steps':>11} {'busy steps':>10} {'busy/quiet':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = "-" if r["busy_over_quiet"] is None else f"{r['busy_over_quiet']:.0%}"
        lines.append(f"{r['label']:<40} {r['threads'] or '-':>7} {r['quiet_steps']:>11} "
                     f"{r['busy_steps']:>10} {ratio:>10}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/demo.toml")
    p.add_argument("--seconds", type=float, default=75.0, help="wall time of each measurement")
    p.add_argument("--load", default="busy", help="busy, busy:N or a shell command")
    p.add_argument("--settings", default=",".join(SETTINGS), help="a comma list of " + ", ".join(SETTINGS))
    args = p.parse_args()
    try:
        load, settings = parse_load(args.load), parse_settings(args.settings)
    except ValueError as exc:
        raise SystemExit(f"contention: {exc}") from None
    if args.seconds <= 0:
        raise SystemExit(f"contention: --seconds {args.seconds}: must be positive")
    print(f"{args.config}, {args.seconds:g} s per measurement, load: {load.describe()}, "
          f"{len(os.sched_getaffinity(0))} CPU(s)", flush=True)
    rows = []
    for setting in settings:
        rows.append(measure_setting(setting, args, load))
        r = rows[-1]
        print(f"  {r['label']}: quiet {r['quiet_steps']} steps, busy {r['busy_steps']}", flush=True)
    print(table(rows))
    print(json.dumps({"config": args.config, "seconds": args.seconds, "load": args.load,
                      "cpus": len(os.sched_getaffinity(0)), "rows": rows}))


if __name__ == "__main__":
    main()
