"""bench/readers.py at a small size: browser tabs and a shell loop read while a score job streams."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_many_readers_see_no_error_while_a_score_job_streams():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "readers.py"), "--archs", "500", "--tabs", "2",
                           "--seconds", "25", "--score-archs", "200"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loads"] >= 2 and out["shell_reads"] >= 1, out
    assert out["errors_shown"] == 0 and out["failed_reads"] == 0, out["examples"]
