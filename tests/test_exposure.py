"""Nothing is exposed by default: a local Ray on loopback, a dashboard that asks for a login
on any other address, reads configs only from configs/ or the workdir, and shows no tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from cli import dashboard as launch
from tests.conftest import ROOT


def _flags(cmd: list[str]) -> dict[str, str]:
    end = cmd.index("--")
    return dict(zip(cmd[5:end:2], cmd[6:end:2], strict=True))


def test_settings_are_explicit_and_hide_error_details(tmp_path):
    flags = _flags(launch.dashboard_command(tmp_path))
    assert flags["--client.showErrorDetails"] == "none"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--server.enableCORS"] == "true"
    assert flags["--server.address"] == "127.0.0.1"


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_login(tmp_path, address):
    cmd = launch.dashboard_command(tmp_path, address=address)
    assert "--login" not in cmd


def test_other_addresses_need_a_login_or_an_explicit_no_auth(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "secrets_files", lambda: [tmp_path / "none.toml"])
    with pytest.raises(launch.LaunchError, match="--no-auth"):
        launch.dashboard_command(tmp_path, address="0.0.0.0")
    assert "--login" not in launch.dashboard_command(tmp_path, address="0.0.0.0", no_auth=True)
    secrets = tmp_path / "secrets.toml"
    base = '[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "s"\n'
    provider = 'client_id = "id"\nclient_secret = "secret"\nserver_metadata_url = "https://idp/.well-known"\n'
    monkeypatch.setattr(launch, "secrets_files", lambda: [secrets])
    secrets.write_text(base + provider)
    assert launch.dashboard_command(tmp_path, address="0.0.0.0")[-1] == "--login"
    secrets.write_text(base + "[auth.google]\n" + provider)  # a named provider does as well
    assert launch.dashboard_command(tmp_path, address="0.0.0.0")[-1] == "--login"
    for incomplete, lacks in ((base, "client_id, client_secret, server_metadata_url"),
                              (base + provider.replace('client_secret = "secret"\n', ""), "client_secret"),
                              (base + "[auth.google]\nclient_id = \"id\"\n", "client_secret, server_metadata_url"),
                              ('[auth]\ncookie_secret = "s"\n' + provider, "redirect_uri")):
        secrets.write_text(incomplete)
        with pytest.raises(launch.LaunchError, match=f"lacks {lacks}"):
            launch.dashboard_command(tmp_path, address="0.0.0.0")


def test_login_gate_shows_only_a_login_button(tmp_path, monkeypatch):
    monkeypatch.setenv("SMASH_WORKDIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["main.py", "--login"])
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60).run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.dataframe and at.title[0].value == "SMASH Explorer"


def test_runs_page_reads_configs_only_from_configs_or_the_workdir(tmp_path, monkeypatch):
    from app.views import runs

    monkeypatch.setenv("SMASH_WORKDIR", str(tmp_path / "w"))
    (tmp_path / "w").mkdir()
    inside = tmp_path / "w" / "mine.toml"
    inside.write_text('name = "x"\n')
    outside = tmp_path / "elsewhere.toml"
    outside.write_text('name = "x"\n')
    assert runs._allowed_config(ROOT / "configs" / "demo.toml")
    assert runs._allowed_config(inside)
    assert not runs._allowed_config(outside)
    assert not runs._allowed_config(tmp_path / "w" / ".." / "elsewhere.toml")
    assert not runs._allowed_config(ROOT / "pyproject.toml")


def _listening(pids: set[int]) -> set[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket the processes `pids` listen on, read from the
    system (psutil over /proc), not from our own configuration."""
    import psutil

    out = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out |= {(c.laddr.ip, c.laddr.port, pid) for c in conns if c.status == psutil.CONN_LISTEN}
    return out


def _tree(pid: int) -> set[int]:
    import psutil

    proc = psutil.Process(pid)
    return {pid, *(p.pid for p in proc.children(recursive=True))}


LOOPBACK = {"127.0.0.1", "::1"}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="Ray 2.60 binds its GCS, raylet and worker gRPC servers to every interface "
                   "(::) whatever node_ip_address says, and its runtime-env agent to the machine's address; its "
                   "token authentication, on by default, is what guards them. Strict: when Ray binds loopback "
                   "only, this passes and the marker must go.")
def test_a_local_ray_listens_on_loopback_only():
    """A Ray the engine starts for itself: every socket its processes listen on should be
    bound to loopback (its servers run code for whoever connects)."""
    pytest.importorskip("ray")
    code = ("import os, sys, time; from core.executor import ExecutorSpec; from engine.exec.raystart import "
            "ensure_ray; ray = ensure_ray(ExecutorSpec(kind='ray', local_cpus=1)); print('up', flush=True); "
            "sys.stdin.readline(); ray.shutdown()")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "up"
        time.sleep(2)  # let every Ray process open its servers
        sockets = _listening(_tree(proc.pid))
        assert sockets, "a running Ray listens somewhere"
        exposed = {s for s in sockets if s[0] not in LOOPBACK}
        assert not exposed, f"Ray listens beyond loopback: {sorted(exposed)}"
    finally:
        proc.communicate("\n", timeout=120)


@pytest.mark.slow
def test_the_running_dashboard_listens_on_loopback_only(tmp_path):
    """`smash dashboard` as a user starts it: the socket it listens on, read from the system."""
    port = launch.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "dashboard", "--workdir", str(tmp_path), "--port",
                             str(port)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import psutil

    tree: set[int] = set()
    try:
        assert launch.wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc=proc)
        tree = _tree(proc.pid)
        sockets = _listening(tree)
        assert any(s[1] == port for s in sockets)
        assert {s[0] for s in sockets} <= LOOPBACK, sorted(sockets)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    # stopping `smash dashboard` stops the server: nothing it started is left listening
    time.sleep(1)
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running after SIGTERM: {alive}"
