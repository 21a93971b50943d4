"""ci/gpu_session.sh --dry-run: the GPU session's script runs end to end on a CPU with tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_session_dry_run(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "ci" / "gpu_session.sh"), "--dry-run"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert [r["config"] for r in bench["rows"]] == list("ABCDE")
    for row in bench["rows"]:
        assert row["without_penalty"]["penalty"] == "none" and row["trainer"]["images_per_s"] > 0
    assert "R1 + R2 overhead" in proc.stdout and "trainer / bare" in proc.stdout
    assert json.loads((tmp_path / "chapters" / "config_e" / "metrics.json").read_text())["provenance"]["profile"] == "smoke"
