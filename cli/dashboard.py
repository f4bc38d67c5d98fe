"""Start the dashboard: the `smash dashboard --workdir DIR [--port N] [--address A]` command.

Streamlit reads its settings from .streamlit/config.toml or from flags, never from a
file at the repository's top level, so every setting in streamlit_config.toml becomes
an explicit `--section.key value` flag; --port and --address given here win.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from core.errors import BadRequest

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


class LaunchError(BadRequest):
    """The dashboard would be exposed without a login."""


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def secrets_files() -> list[Path]:
    """Where Streamlit looks for secrets.toml (its defaults)."""
    return [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml"]


AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def auth_missing(auth: dict) -> list[str]:
    """What an [auth] section lacks for st.login to work: its redirect URI and cookie secret,
    and a provider (client_id, client_secret, server_metadata_url) in the section itself or
    in a named subsection such as [auth.google]. Empty when complete."""
    missing = [k for k in AUTH_KEYS if not auth.get(k)]
    providers = [auth, *(v for v in auth.values() if isinstance(v, dict))]
    if not any(all(p.get(k) for k in PROVIDER_KEYS) for p in providers):
        named = [p for p in providers[1:] if any(p.get(k) for k in PROVIDER_KEYS)] or [auth]
        missing += [k for k in PROVIDER_KEYS if not named[0].get(k)]
    return missing


def auth_configured() -> bool:
    """True if a secrets.toml Streamlit reads has a complete [auth] section (OIDC for
    st.login); LaunchError naming what an incomplete one lacks, so the login gate never
    points at a provider that cannot answer."""
    for path in secrets_files():
        try:
            with path.open("rb") as fh:
                auth = tomllib.load(fh).get("auth")
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if isinstance(auth, dict):
            missing = auth_missing(auth)
            if missing:
                raise LaunchError(f"{path}: [auth] lacks {', '.join(missing)}; the login cannot work without "
                                  "them (see Streamlit's st.login)")
            return True
    return False


def dashboard_command(workdir: str | Path, port: int | None = None, address: str | None = None,
                      no_auth: bool = False) -> list[str]:
    """The argv that serves the dashboard for `workdir`.

    On any address but loopback the dashboard asks for a login (Streamlit's OIDC,
    configured in secrets.toml) unless `no_auth` says the operator takes that on."""
    flags = config_flags()
    if port is not None:
        flags["server.port"] = str(int(port))
    if address is not None:
        flags["server.address"] = address
    login = not no_auth and not is_loopback(flags.get("server.address", "127.0.0.1"))
    if login and not auth_configured():
        raise LaunchError(f"address {flags['server.address']} is reachable from other machines: configure "
                          "an [auth] section (OIDC) in .streamlit/secrets.toml so users log in, or pass --no-auth")
    argv = [sys.executable, "-m", "streamlit", "run", str(MAIN)]
    for name, value in flags.items():
        argv += [f"--{name}", value]
    return [*argv, "--", "--workdir", str(Path(workdir).expanduser().resolve()),
            *(["--login"] if login else [])]


def _env() -> dict[str, str]:
    # PYTHONPATH lets Streamlit's script runner import app/engine/store from a plain checkout.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None,
                 poll_s: float = 0.5) -> bool:
    """True once `url` answers 200; False if `proc` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(poll_s)
    return False


def serve_in_background(workdir: str | Path, log: Path, port: int | None = None,
                        timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start the dashboard in its own process group and wait until it answers; for tests
    and benchmarks. Returns the process and its URL; stop it with `stop_server`."""
    port = port or free_port()
    with Path(log).open("w") as out:
        proc = subprocess.Popen(dashboard_command(workdir, port=port, address="127.0.0.1"), cwd=ROOT,
                                env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if wait_healthy(url + "/_stcore/health", timeout, proc, poll_s=0.3):
            return proc, url
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log}")
        raise TimeoutError(f"streamlit did not answer at {url} within {timeout:.0f} s; see {log}")
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
    p.add_argument("--no-auth", action="store_true",
                   help="serve a non-loopback address without a login (you protect it otherwise)")
    args = p.parse_args(argv)
    os.umask(0o077)  # a store the dashboard creates is the user's alone
    try:
        cmd = dashboard_command(args.workdir, port=args.port, address=args.address, no_auth=args.no_auth)
    except LaunchError as exc:
        print(f"smash dashboard: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server: a signal sent to `smash dashboard` reaches Streamlit itself, and no
    # orphaned server is left listening when the launcher is stopped.
    os.execve(cmd[0], cmd, _env())
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
