"""Chaos: `smash up` killed at random while it trains and scores, against a run that saw none.

Runs `smash up` on a small config with fixed seeds (one thread everywhere, so float sums
are bit-equal) twice. The undisturbed run goes to its end. In the chaos run, every
--min-gap..--max-gap seconds (a seeded schedule) one process of a kind chosen at random
gets SIGKILL: the engine, a job's process, the dashboard, or `smash up` itself; then what
a user would restart is restarted (`smash up` again, once it and its children are gone).
When the work is done both are compared:
- the same architectures scored at the same checkpoints, with bit-equal scores (mean,
  spread, draws, racing rounds), and the same rows in every other kind of result;
- the final HyperNet checkpoint bit-equal;
- no duplicate rows in any table, every job in a final state with a reason, no process
  of ours left running, and `smash top --json` answering alike.
The last line is a JSON object: kills by kind, kills survived, rows compared, differences.

    python bench/chaos.py --workdir /tmp/chaos                 # every 10-40 s
    python bench/chaos.py --workdir /tmp/chaos --min-gap 3 --max-gap 8 --steps 200 --archs 24
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from cli.dashboard import free_port  # noqa: E402
from core.config import load_config  # noqa: E402
from core.status import ACTIVE, FINISHED  # noqa: E402
from engine.runtime import checkpoint as ckpt  # noqa: E402
from engine.runtime.workdir import checkpoint_dir  # noqa: E402
from store import Store, store_path  # noqa: E402

KINDS = ("engine", "job", "dashboard", "up")
KEYS = {"runs": ["run_id"], "train_metrics": ["run_id", "step"], "checkpoints": ["run_id", "step"],
        "archs": ["run_id", "arch_id"], "scores": ["run_id", "arch_id", "checkpoint_step"],
        "board": ["run_id", "arch_id"], "jobs": ["job_id"]}
COMPARED = {"scores": ["arch_id", "checkpoint_step", "stage", "score_mean", "score_std", "draws", "val_images",
                       "partial", "race_rounds", "first_draw"],
            "train_metrics": ["step", "loss", "error", "lr"], "archs": ["arch_id", "params", "flops", "arch_json"],
            "checkpoints": ["step"]}


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SMASH_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start_up(workdir: Path, config: Path, archs: int, port: int) -> subprocess.Popen:
    log = open(workdir.parent / f"{workdir.name}-up.log", "a")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen([sys.executable, "-m", "cli", "up", "--workdir", str(workdir), "--config", str(config),
                             "--archs", str(archs), "--jobs", "2", "--port", str(port)], cwd=ROOT, env=env(),
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def ours(workdir: Path) -> list[psutil.Process]:
    """Every live process working on `workdir` (its path on the command line)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(workdir) in cmd and proc.pid != os.getpid() and proc.status() != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def kind_of(proc: psutil.Process) -> str | None:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return None
    if "engine.jobs.runner" in cmd:
        return "job"
    if "streamlit" in cmd:
        return "dashboard"
    if " cli engine " in f" {cmd} ":
        return "engine"
    if " cli up " in f" {cmd} ":
        return "up"
    return None


def finished(store: Store) -> bool:
    """The work is done: a run trained to its end, a scoring pass done, no job left to run."""
    runs = store.runs()
    jobs = store.jobs(limit=10_000)
    if runs.empty or not (runs["status"] == "done").all() or jobs.empty:
        return False
    scored = jobs[(jobs["kind"] == "score") & (jobs["status"] == "done")]
    return not jobs["status"].isin(ACTIVE).any() and any(
        "scored" in json.loads(r or "{}") for r in scored["result"])


def settle(workdir: Path, timeout: float = 90.0) -> None:
    """Wait until no process of ours is left (after `smash up` went), killing stragglers."""
    deadline = time.monotonic() + timeout
    while ours(workdir) and time.monotonic() < deadline:
        time.sleep(0.5)
    for proc in ours(workdir):
        proc.kill()


def run(workdir: Path, config: Path, archs: int, gaps: tuple[float, float], kills: int,
        seed: int, deadline_s: float) -> collections.Counter:
    """Drive `smash up` to the end of the work, killing a random process every so often and
    restarting `smash up` whenever it is gone; returns the kills made by kind."""
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    made: collections.Counter = collections.Counter()
    port = free_port()
    up = start_up(workdir, config, archs, port)
    next_kill = time.monotonic() + rng.uniform(*gaps)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if Path(store_path(workdir)).exists() and finished(Store(store_path(workdir))):
            break
        if up.poll() is not None:  # a service went (or up itself): what a user does, run it again
            settle(workdir)
            up = start_up(workdir, config, archs, port)
        elif sum(made.values()) < kills and time.monotonic() >= next_kill:
            live = collections.defaultdict(list)
            for proc in ours(workdir):
                if (k := kind_of(proc)) is not None:
                    live[k].append(proc)
            kind = rng.choice([k for k in KINDS if live[k]] or ["none"])
            if kind != "none":
                rng.choice(live[kind]).send_signal(signal.SIGKILL)
                made[kind] += 1
            next_kill = time.monotonic() + rng.uniform(*gaps)
        time.sleep(0.25)
    else:
        raise SystemExit(f"{workdir}: the work did not finish within {deadline_s:.0f} s")
    up.send_signal(signal.SIGINT)
    up.wait(timeout=120)
    settle(workdir)
    return made


def table(workdir: Path, name: str, columns: list[str]) -> list[tuple]:
    con = duckdb.connect(str(store_path(workdir)), read_only=True)
    try:
        return con.execute(f"SELECT {', '.join(columns)} FROM {name} ORDER BY {', '.join(columns)}").fetchall()
    finally:
        con.close()


def duplicates(workdir: Path) -> dict[str, int]:
    out = {}
    for name, key in KEYS.items():
        rows = table(workdir, name, key)
        out[name] = len(rows) - len(set(rows))
    return out


def compare(calm: Path, chaos: Path, every: int) -> dict:
    """Rows compared, rows the chaos run lost (in the calm run only) and rows it has besides.
    A run stopped mid-way checkpoints where it stopped, and that checkpoint's probe set is
    scored: such extra rows, at steps off the checkpoint schedule (`every`), are explained;
    any other difference is not."""
    rows, lost, extra, unexplained = {}, {}, {}, {}
    for name, columns in COMPARED.items():
        a, b = set(table(calm, name, columns)), set(table(chaos, name, columns))
        rows[name], lost[name], extra[name] = len(a), len(a - b), len(b - a)
        step = columns.index("checkpoint_step") if "checkpoint_step" in columns else (
            columns.index("step") if name == "checkpoints" else None)
        # Off the schedule: any step not a positive multiple of `every` (a stop before the
        # first step checkpoints step 0, which the schedule never does).
        unexplained[name] = sum(1 for r in b - a if step is None or (r[step] % every == 0 and r[step] > 0))
    run_id = Store(store_path(calm)).latest_run_id()
    last = {w: ckpt.step_checkpoints(checkpoint_dir(w, run_id))[-1] for w in (calm, chaos)}
    sa, sb = (ckpt.load(last[w][1]) for w in (calm, chaos))
    same = last[calm][0] == last[chaos][0] and all(
        torch.equal(sa[p][k], sb[p][k]) for p in ("hyper", "net") for k in sa[p])
    tops = [subprocess.run([sys.executable, "-m", "cli", "top", "--workdir", str(w), "--json", "--limit", "1000"],
                           cwd=ROOT, env=env(), capture_output=True, text=True) for w in (calm, chaos)]
    top_rows = [[{k: r[k] for k in ("arch_id", "score_mean", "draws", "verdict")} for r in json.loads(t.stdout)["rows"]]
                if t.returncode == 0 else None for t in tops]
    return {"rows_compared": rows, "rows_lost": lost, "extra_rows": extra, "differences": unexplained,
            "final_checkpoint_equal": bool(same),
            "smash_top_equal": top_rows[0] is not None and top_rows[0] == top_rows[1]}


def job_states(workdir: Path) -> dict:
    jobs = Store(store_path(workdir)).jobs(limit=10_000)
    unfinished = int((~jobs["status"].isin(FINISHED)).sum())
    no_reason = int(((jobs["status"] != "done") & jobs["error"].isna()).sum())
    return {"jobs": len(jobs), "not_final": unfinished, "ended_without_reason": no_reason,
            "statuses": jobs["status"].value_counts().to_dict()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True, help="a folder for the two runs (calm/ and chaos/)")
    p.add_argument("--config", default=str(ROOT / "configs" / "smoke.toml"))
    p.add_argument("--steps", type=int, default=600, help="HyperNet training steps (time to be killed in)")
    p.add_argument("--archs", type=int, default=40)
    p.add_argument("--min-gap", type=float, default=10.0)
    p.add_argument("--max-gap", type=float, default=40.0)
    p.add_argument("--kills", type=int, default=12, help="kills at most (the work may end first)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deadline", type=float, default=3600.0, help="seconds each run may take at most")
    args = p.parse_args()
    base = Path(args.workdir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    cfg = load_config(args.config).replace(name="chaos", train={"steps": args.steps, "checkpoint_every": 50},
                                           score={"race_top": 5, "race_max_draws": 6})
    config = base / "chaos.toml"
    config.write_text(cfg.to_toml())
    t0 = time.perf_counter()
    run(base / "calm", config, args.archs, (1e9, 1e9), 0, args.seed, args.deadline)
    calm_s = time.perf_counter() - t0
    kills = run(base / "chaos", config, args.archs, (args.min_gap, args.max_gap), args.kills, args.seed, args.deadline)
    result = {"kills": dict(kills), "kills_made": sum(kills.values()), "calm_s": round(calm_s),
              "chaos_s": round(time.perf_counter() - t0 - calm_s),
              **compare(base / "calm", base / "chaos", cfg.train.checkpoint_every),
              "duplicates": duplicates(base / "chaos"), "chaos_jobs": job_states(base / "chaos"),
              "left_running": len(ours(base / "calm")) + len(ours(base / "chaos"))}
    result["kills_survived"] = result["kills_made"] if not any(result["differences"].values()) and not any(
        result["rows_lost"].values()) and result["final_checkpoint_equal"] and result["smash_top_equal"] else None
    print(f"kills {result['kills']}; rows compared {result['rows_compared']}; lost {result['rows_lost']}; extra "
          f"(checkpoints where a stop found the run, and their probe sets) {result['extra_rows']}; "
          f"unexplained differences {result['differences']}; "
          f"final checkpoint equal {result['final_checkpoint_equal']}; duplicates {result['duplicates']}; "
          f"jobs {result['chaos_jobs']}; left running {result['left_running']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
