"""Start the dashboard: the `smash dashboard --workdir DIR [--port N] [--address A]` command.

Streamlit reads its settings from .streamlit/config.toml or from flags, never from a
file at the repository's top level, so every setting in streamlit_config.toml becomes
an explicit `--section.key value` flag; --port and --address given here win.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "streamlit_config.toml"
MAIN = ROOT / "app" / "main.py"


def _flag_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def config_flags(path: Path = CONFIG_FILE) -> dict[str, str]:
    """streamlit_config.toml flattened to {"server.port": "8501", ...}; missing file: {}."""
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return {f"{section}.{key}": _flag_value(value)
            for section, values in raw.items() if isinstance(values, dict)
            for key, value in values.items()}


def dashboard_command(workdir: str | Path, port: int | None = None, address: str | None = None) -> list[str]:
    """The argv that serves the dashboard for `workdir`."""
    flags = config_flags()
    if port is not None:
        flags["server.port"] = str(int(port))
    if address is not None:
        flags["server.address"] = address
    argv = [sys.executable, "-m", "streamlit", "run", str(MAIN)]
    for name, value in flags.items():
        argv += [f"--{name}", value]
    return [*argv, "--", "--workdir", str(Path(workdir).expanduser().resolve())]


def _env() -> dict[str, str]:
    # PYTHONPATH lets Streamlit's script runner import app/engine/store from a plain checkout.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_background(workdir: str | Path, log: Path, port: int | None = None,
                        timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start the dashboard in its own process group and wait until it answers; for tests
    and benchmarks. Returns the process and its URL; stop it with `stop_server`."""
    port = port or free_port()
    with Path(log).open("w") as out:
        proc = subprocess.Popen(dashboard_command(workdir, port=port, address="127.0.0.1"), cwd=ROOT,
                                env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return proc, url
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"streamlit did not answer at {url} within {timeout:.0f} s; see {log}") from None
                time.sleep(0.3)
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group, killing it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="smash dashboard", description="Serve the SMASH Explorer dashboard.")
    p.add_argument("--workdir", default=os.environ.get("SMASH_WORKDIR", "./runs"),
                   help="workdir holding the store (default ./runs)")
    p.add_argument("--port", type=int, default=None, help="port (default from streamlit_config.toml)")
    p.add_argument("--address", default=None, help="address to bind (default 127.0.0.1)")
    args = p.parse_args(argv)
    cmd = dashboard_command(args.workdir, port=args.port, address=args.address)
    try:
        return subprocess.call(cmd, env=_env())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
