"""`smash completion`: the generated bash script completes subcommands and their options."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cli.main import main


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_subcommands_and_options(capsys, tmp_path):
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "smash.bash"
    script.write_text(capsys.readouterr().out)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        code = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
                f"COMP_LINE='{line}'; COMP_POINT={len(line)}; _shtab_smash; echo ${{COMPREPLY[@]}}")
        return subprocess.run(["bash", "-c", code], capture_output=True, text=True, check=True).stdout.split()

    assert complete("smash", "to") == ["top"]
    assert complete("smash", "graph", "--fo") == ["--format", "--force"]
    assert complete("smash", "graph", "--form") == ["--format"]
    assert {"runs", "show", "jobs", "cancel", "train"} <= set(complete("smash", ""))
