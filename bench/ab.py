"""One benchmark under several environment settings, alternated, so the ratios come from one run.

Runs COMMAND (any benchmark that ends its output with one JSON object) in a fresh
process per setting and round, and rotates the order of the settings each round, so a
machine that drifts (another tenant, thermal limits) weighs on every setting alike.
Prints each numeric figure's median per setting (nested ones by dotted names) and its
ratio to the first setting's, then one JSON line.

    python bench/ab.py --env "" --env "SMASH_ALLOCATOR=system" [--rounds 3] [--fields a,b]
                       -- python bench/step.py --archs 3 --reps 2 --precision bf16

A setting is space-separated NAME=VALUE pairs, laid over this process's environment;
"" leaves it as it is. Each setting's processes run one after another, never beside
one another: time only on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess


def parse_env(setting: str) -> dict[str, str]:
    """"A=1 B=2" -> {"A": "1", "B": "2"}; a one-line SystemExit for anything else."""
    pairs = [p.partition("=") for p in setting.split()]
    bad = [k for k, eq, _ in pairs if not eq or not k]
    if bad:
        raise SystemExit(f"--env {setting!r}: want space-separated NAME=VALUE pairs")
    return {k: v for k, _, v in pairs}


def last_json(stdout: str) -> dict:
    """The JSON object on the last line of a benchmark's output."""
    lines = stdout.strip().splitlines()
    if not lines:
        raise ValueError("printed nothing")
    out = json.loads(lines[-1])
    if not isinstance(out, dict):
        raise ValueError("its last line is not a JSON object")
    return out


def order(n: int, round_: int) -> list[int]:
    """Setting indices for one round, rotated by the round number."""
    return [(round_ + i) % n for i in range(n)]


def flatten(figures: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: a nested figure (a peak per process, say) by a dotted name."""
    out = {}
    for k, v in figures.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def numeric(figures: dict, fields: list[str] | None) -> dict[str, float]:
    """The figures to compare: the named ones, or every number (booleans are not numbers);
    nested figures by dotted names."""
    flat = {k: v for k, v in flatten(figures).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {k: float(flat[k]) for k in (fields or flat) if k in flat}


def summarise(rows: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per setting, the median of each figure over its rounds."""
    out = []
    for runs in rows:
        keys = sorted({k for r in runs for k in r})
        out.append({k: statistics.median(r[k] for r in runs if k in r) for k in keys})
    return out


def ratios(medians: list[dict[str, float]]) -> list[dict[str, float]]:
    """Each setting's medians over the first setting's (figures the first lacks, or has at 0, left out)."""
    base = medians[0]
    return [{k: round(v / base[k], 3) for k, v in m.items() if base.get(k)} for m in medians]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", action="append", required=True,
                   help='one setting: space-separated NAME=VALUE pairs ("" = as it is); repeat for each')
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--fields", default="", help="comma-separated figures to report (default: every number)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark's command line")
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("ab.py: give the benchmark's command after --")
    if args.rounds < 1:
        raise SystemExit("ab.py: --rounds must be at least 1")
    envs = [parse_env(s) for s in args.env]
    fields = [f for f in args.fields.split(",") if f] or None
    rows: list[list[dict[str, float]]] = [[] for _ in envs]
    for r in range(args.rounds):
        for i in order(len(envs), r):
            proc = subprocess.run(command, env={**os.environ, **envs[i]}, capture_output=True, text=True)
            label = args.env[i] or "(as it is)"
            try:
                if proc.returncode != 0:
                    raise ValueError(f"exit {proc.returncode}: "
                                     + " ".join(proc.stderr.strip().splitlines()[-1:]))
                figures = numeric(last_json(proc.stdout), fields)
            except ValueError as exc:
                raise SystemExit(f"ab.py: round {r + 1}, {label}: {exc}") from None
            rows[i].append(figures)
            print(f"round {r + 1}, {label}: " + ", ".join(f"{k} {v:g}" for k, v in figures.items()), flush=True)
    medians = summarise(rows)
    rel = ratios(medians)
    print()
    for label, m, q in zip(args.env, medians, rel, strict=True):
        print(f"{label or '(as it is)'}:")
        for k, v in m.items():
            print(f"    {k:28} {v:12.4g}" + (f"   x{q[k]:.3f}" if k in q else ""))
    print(json.dumps({"command": command, "rounds": args.rounds,
                      "settings": [{"env": s, "median": m, "ratio": q}
                                   for s, m, q in zip(args.env, medians, rel, strict=True)]}))


if __name__ == "__main__":
    main()
