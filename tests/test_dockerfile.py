"""The Dockerfile can't be built here (no engine), so check it against the project itself:
its entry points and options must be ones the real parser accepts."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

from cli.main import build_parser
from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list), f"use the exec form: {arg}"
    return value


def test_cmd_is_a_real_smash_command():
    ins = instructions()
    cmd = exec_form(next(a for w, a in ins if w == "CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert cmd[0] in scripts
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "up"
    assert (ROOT / args.config).is_file()
    volumes = exec_form(next(a for w, a in ins if w == "VOLUME"))
    assert any(Path(args.workdir).is_relative_to(v) for v in volumes), "the store must live on the volume"
    exposed = {int(a.split("/")[0]) for w, a in ins if w == "EXPOSE"}
    assert args.port in exposed


def test_runs_as_non_root_under_an_init_with_a_healthcheck():
    ins = instructions()
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    entry = exec_form(next(a for w, a in ins if w == "ENTRYPOINT"))
    assert Path(entry[0]).name in ("tini", "dumb-init") and entry[1:] == ["--"]
    apt = " ".join(a for w, a in ins if w == "RUN" and "apt-get install" in a)
    assert "tini" in apt and "dataset-fashion-mnist" in apt
    health = next(a for w, a in ins if w == "HEALTHCHECK")
    assert "/_stcore/health" in health
    cmd = exec_form(next(a for w, a in ins if w == "CMD"))
    port = cmd[cmd.index("--port") + 1]
    assert f":{port}/_stcore/health" in health


def test_copies_what_exists_and_installs_the_pinned_torch():
    ins = instructions()
    for word, arg in ins:
        if word == "COPY":
            *sources, _dest = shlex.split(arg)
            for src in sources:
                assert (ROOT / src).exists(), f"COPY of missing {src}"
    runs = " ".join(a for w, a in ins if w == "RUN")
    assert "torch==2.14.1" in runs and "torchvision==0.29.1" in runs
