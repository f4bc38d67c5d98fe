"""`smash up`: the engine and the dashboard together, with a run queued on a config.

Both run as child processes. On a machine with 2 or more cores the engine gets 2 job
slots and the run is pipelined: training runs in one slot while the other scores each
finished checkpoint's probe set, so scoring never holds training up; then two score jobs
share the architectures of the last checkpoint. Ctrl-C (or SIGTERM) stops the dashboard
and asks the engine to stop, which checkpoints its jobs and re-queues them: nothing is lost, and the
next `smash up` continues where this one stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli.dashboard import dashboard_command, wait_healthy
from core.config import Config, load_config
from core.errors import make_dir
from core.jobs import TrainJob
from engine.runtime import procid
from engine.runtime.gpus import check_device_named
from store import Store, store_path


def _flag(cmd: list[str], name: str, default: str) -> str:
    """The value of `name` in a streamlit argv (`--name value` or `--name=value`)."""
    for i, arg in enumerate(cmd):
        if arg == name and i + 1 < len(cmd):
            return cmd[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def default_slots() -> int:
    """Job slots for `smash up`: 2 when there are 2 cores or more (training beside scoring),
    else 1 (pipelining on one core only adds process start-ups)."""
    return 2 if len(os.sched_getaffinity(0)) >= 2 else 1


def queue_run(store: Store, config: Path, cfg: Config, score_archs: int, slots: int) -> str:
    """The train job `smash up` queues: pipelined (scoring handed to other slots) when the
    engine has more than one slot."""
    params = TrainJob(config=str(config.resolve()), config_data=cfg.to_dict(), score_archs=score_archs,
                      pipeline=True if slots >= 2 else None)
    return store.enqueue_job(TrainJob.kind, params.to_params())


def up(workdir: Path, config: Path, *, port: int | None = None, address: str | None = None,
       score_archs: int = 200, jobs: int | None = None, no_auth: bool = False) -> dict[str, Any]:
    cfg = load_config(config)  # a bad config fails here, before anything starts
    check_device_named(cfg.device)
    dash_cmd = dashboard_command(str(workdir), port=port, address=address, no_auth=no_auth)
    make_dir(workdir)
    store = Store(store_path(workdir))
    jobs = jobs or default_slots()
    job_id = queue_run(store, config, cfg, score_archs, jobs)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Both die with this process: a `smash up` killed outright leaves no engine or dashboard
    # behind (the engine then stops its jobs, which resume on the next start).
    engine = subprocess.Popen([sys.executable, "-m", "cli", "engine", "--workdir", str(workdir),
                               "--jobs", str(jobs)], env=env, preexec_fn=procid.die_with_parent)
    # The dashboard writes to a log file: a pipe nobody reads fills up and hangs it.
    (workdir / "logs").mkdir(exist_ok=True)
    dash_log = workdir / "logs" / "dashboard.log"
    with open(dash_log, "a") as out:
        dashboard = subprocess.Popen(dash_cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=procid.die_with_parent)
    host = _flag(dash_cmd, "--server.address", "127.0.0.1")
    port_used = _flag(dash_cmd, "--server.port", "8501")
    url = f"http://{host}:{port_used}"
    stopping = {"flag": False}

    def stop(*_: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    healthy = wait_healthy(f"{url}/_stcore/health", proc=dashboard)
    if healthy:
        print(f"\nSMASH Explorer is up: {url}  (queued job {job_id}; Ctrl-C stops both)\n", flush=True)
    else:
        print(f"dashboard did not start: {_last_line(dash_log) or 'no answer'} (log: {dash_log})",
              file=sys.stderr, flush=True)
        stopping["flag"] = True
    try:
        while not stopping["flag"]:
            if engine.poll() is not None or dashboard.poll() is not None:
                print("a service exited; stopping the other", file=sys.stderr, flush=True)
                break
            time.sleep(0.5)
    finally:
        for proc in (dashboard, engine):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (dashboard, engine):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"url": url, "job_id": job_id, "engine_exit": engine.returncode,
            "dashboard_exit": dashboard.returncode}
