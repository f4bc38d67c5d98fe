"""The engine service: claims queued jobs from the store and runs each in its own process group.

One engine per workdir (a lock file says so). On start it re-queues jobs a previous
engine left running, so they resume from their checkpoints, killing a leftover process
only if host, boot id and start time show it is the very one that engine started. While
serving it watches its children: a job whose process was killed by a signal is re-queued
to resume (up to `max_attempts` tries), one whose process exited without finishing is
marked failed with its exit code, a cancel is enforced if the job does not stop by
itself within a grace period, and a job whose heartbeat went stale is killed and
re-queued, up to `max_attempts` tries (never judged right after the engine itself was
suspended, when every heartbeat looks old).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import BadRequest, make_dir
from core.executor import ExecutorSpec
from core.status import FINISHED
from engine.exec.raystart import ensure_ray
from engine.runtime import allocator, procid
from engine.train.ending import mark_ended
from store import Store, StoreBusy, store_path


class EngineError(BadRequest):
    """The engine cannot start (another engine holds the workdir)."""




@dataclass
class Child:
    job_id: str
    proc: subprocess.Popen
    log: Path
    cancel_seen_at: float | None = None


@dataclass
class Engine:
    workdir: Path
    concurrency: int = 1
    poll_s: float = 1.0
    stale_after_s: float = 60.0
    cancel_grace_s: float = 10.0
    max_attempts: int = 3
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    children: dict[str, Child] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        make_dir(self.workdir)
        self.store = Store(store_path(self.workdir))
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self._lock_file = None
        self._own_ray = None
        self._stopping = False
        self._last_tick: float | None = None
        self._awake_since = 0.0

    # ------------------------------------------------------------ lifecycle
    def acquire(self) -> None:
        """Lock the workdir; only then write our PID (opening with "w" would wipe the holder's)."""
        f = open(self.workdir / "engine.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise EngineError(f"another engine (pid {holder}) is already serving {self.workdir}") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock_file = f

    def recover(self) -> list[str]:
        """Re-queue jobs left running by an engine that is gone; kill any leftover process."""
        running = self.store.jobs(status="running")
        ids = []
        for _, job in running.iterrows():
            proc = procid.from_row(job.to_dict())
            # Only the very process the job started: a PID after a reboot, or on another
            # host sharing the workdir, belongs to someone else.
            if proc is not None and proc.matches_live_process():
                _kill_group(proc.pid, signal.SIGKILL)
            ids.append(str(job["job_id"]))
        if ids:
            self.store.requeue_jobs(ids, count_attempt=False)
        return ids

    def start_executor(self) -> None:
        """With Ray and no cluster address, start one local Ray that every job joins."""
        if self.executor.is_local or self.executor.address:
            return
        ray = ensure_ray(self.executor)
        address = ray.get_runtime_context().gcs_address
        self._own_ray = ray
        self.executor = replace(self.executor, address=address)
        print(f"engine: started a local Ray at {address}", flush=True)

    def stop(self, *_: object) -> None:
        self._stopping = True

    def serve(self, max_seconds: float | None = None) -> None:
        """Run until stopped (SIGINT/SIGTERM); children are stopped and re-queued on exit."""
        try:  # every job starts on the allocator SMASH_ALLOCATOR names
            allocator.choose()
        except allocator.AllocatorError as exc:
            raise EngineError(str(exc)) from None
        self.acquire()
        self.start_executor()
        resumed = self.recover()
        if resumed:
            print(f"engine: re-queued {len(resumed)} interrupted job(s): {', '.join(resumed)}", flush=True)
        print(f"engine: serving {self.workdir} with {self.concurrency} slot(s)", flush=True)
        start = time.monotonic()
        try:
            while not self._stopping and (max_seconds is None or time.monotonic() - start < max_seconds):
                try:
                    self.tick()
                except StoreBusy as exc:
                    print(f"engine: store busy, retrying: {exc}", flush=True)
                time.sleep(self.poll_s)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop children (they checkpoint on SIGTERM's default exit path) and re-queue their jobs."""
        ids = list(self.children)
        for child in self.children.values():
            _kill_group(child.proc.pid, signal.SIGTERM)
        for child in self.children.values():
            try:
                child.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        self.children.clear()
        if ids:
            self.store.requeue_jobs(ids, count_attempt=False)
            print(f"engine: stopped; re-queued {len(ids)} job(s) to resume next start", flush=True)
        if self._own_ray is not None:
            self._own_ray.shutdown()
            self._own_ray = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------ one round
    def tick(self) -> None:
        self.reap()
        self.enforce()
        while len(self.children) < self.concurrency and not self._stopping:
            job = self.store.claim_job(self.worker_id)
            if job is None:
                break
            self.launch(job)

    def launch(self, job: dict) -> None:
        log = self.logs / f"{job['job_id']}.log"
        out = open(log, "a")
        cmd = [sys.executable, "-m", "engine.jobs.runner", "--workdir", str(self.workdir), "--job", job["job_id"],
               *self.executor.cli_args()]
        # The job's share of the cores caps its threads (SMASH_THREADS, if the user set it, wins).
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SMASH_MAX_THREADS": str(self.thread_share())}
        env = allocator.preload_env(env)  # tcmalloc where installed (checked in `serve`)
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=procid.die_with_parent, env=env)
        out.close()
        self.children[job["job_id"]] = Child(job["job_id"], proc, log)
        self.store.heartbeat(job["job_id"], log_path=str(log), message="started")
        me = procid.identify(proc.pid)
        self.store.record_process(job["job_id"], pid=proc.pid, host=me.host, boot_id=me.boot_id,
                                  proc_start=me.start)
        print(f"engine: started {job['kind']} job {job['job_id']} (pid {proc.pid})", flush=True)

    def thread_share(self) -> int:
        """Threads a job launched now may use: the cores split between the jobs that will run
        beside it (ours still running, and those queued for a free slot), at most `concurrency`.

        Oversubscribed math threads spin and crawl, so jobs that run together split the
        cores; a job that runs alone gets them all. The job itself may use fewer, when measuring shows more do not pay
        (engine/runtime/threads.py)."""
        cores = max(1, len(os.sched_getaffinity(0)))
        if self.concurrency == 1:
            return cores
        active = self.store.jobs(status=["running", "queued"])
        busy = int(((active["status"] == "running") & active["job_id"].isin(list(self.children))).sum())
        waiting = int((active["status"] == "queued").sum())
        return max(1, cores // min(self.concurrency, 1 + busy + waiting))

    def reap(self) -> None:
        """Jobs whose process exited without recording its end. One killed by a signal (the
        out-of-memory killer, a kill -9) is re-queued, to resume from its checkpoints, until
        it has had `max_attempts` tries; one that exited on its own failed."""
        for job_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            del self.children[job_id]
            job = self.store.get_job(job_id)
            if job is not None and job["status"] == "running":
                if child.cancel_seen_at is not None:
                    self.end_job(job, "cancelled", "cancelled: process stopped")
                elif code < 0:
                    why = f"job process killed by signal {-code} ({signal.Signals(-code).name}); log: {child.log}"
                    requeued, failed = self.store.requeue_interrupted_jobs([job_id], self.max_attempts, why)
                    if failed:  # out of tries: its retrains and run end with it
                        self.store.end_job_retrains(job_id, "failed")
                        if job["kind"] == "train" and job.get("run_id"):
                            mark_ended(self.store, job["run_id"], "failed")
                else:
                    self.end_job(job, "failed", f"job process exited with code {code}; log: {child.log}")
            print(f"engine: job {job_id} ended (exit {code})", flush=True)

    def end_job(self, job: dict, status: str, error: str) -> None:
        """A job whose process died: the job, its retrains and (for training) its run end too,
        so no row says "running" for work nobody does."""
        self.store.finish_job(job["job_id"], status, error=error)
        self.store.end_job_retrains(job["job_id"], status)
        if job["kind"] == "train" and job.get("run_id"):
            mark_ended(self.store, job["run_id"], status)

    def enforce(self) -> None:
        """Cancels the job did not honour in time, and stale heartbeats."""
        now = time.monotonic()
        for job_id, child in self.children.items():
            if child.cancel_seen_at is None and self.store.cancel_requested(job_id):
                child.cancel_seen_at = now
            if child.cancel_seen_at is not None and now - child.cancel_seen_at > self.cancel_grace_s:
                _kill_group(child.proc.pid, signal.SIGKILL)
        if not self.awake_long_enough():
            return
        stale = self.store.stale_jobs(self.stale_after_s)
        for job_id in stale:
            child = self.children.pop(job_id, None)
            if child is not None:
                _kill_group(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        if stale:
            requeued, failed = self.store.requeue_interrupted_jobs(stale, self.max_attempts)
            for job_id in requeued:
                print(f"engine: job {job_id} re-queued: heartbeat stale", flush=True)
            for job_id in failed:
                print(f"engine: job {job_id} failed: heartbeat stale after {self.max_attempts} attempts",
                      flush=True)

    def awake_long_enough(self) -> bool:
        """False until the engine has run a full stale period since it was last suspended.

        Heartbeats are wall-clock stamps; while the machine sleeps (or the engine is
        stopped) none are written, so on waking every job would look stale. A gap between
        two rounds far longer than the poll interval means this process was not running."""
        now = time.time()
        if self._last_tick is not None and now - self._last_tick > max(5.0, 5 * self.poll_s):
            self._awake_since = now
        self._last_tick = now
        return now - self._awake_since >= self.stale_after_s


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def serve(workdir: Path, concurrency: int = 1, poll_s: float = 1.0, stale_after_s: float = 60.0,
          executor: ExecutorSpec | None = None) -> None:
    engine = Engine(workdir, concurrency=concurrency, poll_s=poll_s, stale_after_s=stale_after_s,
                    executor=executor or ExecutorSpec())
    signal.signal(signal.SIGTERM, engine.stop)
    signal.signal(signal.SIGINT, engine.stop)
    engine.serve()


WAIT_POLL_S = 2.0


def _embedded_engine(workdir: Path, slots: int) -> Engine | None:
    """An engine of our own for the workdir, or None when another engine already serves it."""
    engine = Engine(workdir, concurrency=slots, poll_s=WAIT_POLL_S)
    try:
        engine.acquire()
        engine.recover()
    except EngineError:
        return None
    return engine


def _finished(store: Store, job_ids: list[str]) -> int:
    jobs = store.jobs(limit=max(1000, 2 * len(job_ids)))
    return int(jobs[jobs["job_id"].isin(job_ids)]["status"].isin(FINISHED).sum())


def run_until_done(workdir: Path, store: Store, job_ids: list[str], *, slots: int = 1,
                   timeout_s: float | None = None,
                   on_progress: Callable[[float, str], None] | None = None) -> None:
    """Serve `job_ids` with an embedded engine of `slots` slots, or wait for the engine
    already serving the workdir, until every one of them has finished."""
    engine = _embedded_engine(workdir, slots)
    start, reported = time.monotonic(), -1
    try:
        while True:
            finished = _finished(store, job_ids)
            if on_progress is not None and finished != reported:
                reported = finished
                on_progress(finished / max(len(job_ids), 1), f"{finished}/{len(job_ids)} retrains finished")
            if finished == len(job_ids):
                return
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise TimeoutError(f"study retrains not finished after {timeout_s:.0f} s")
            if engine is not None:
                engine.tick()
            time.sleep(WAIT_POLL_S)
    finally:
        if engine is not None:
            engine.shutdown()
