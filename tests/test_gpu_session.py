"""ci/gpu_session.sh --dry-run: the GPU session's script runs end to end on a CPU with tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.full  # 35 s: it executes config_e's smoke chapter again (the smoke book already did) and benchmarks A-E
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
    assert "trainer R1 + R2 overhead" in proc.stdout
    for row in bench["rows"]:
        assert row["trainer"]["without_penalty"]["penalty"] == "none"
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert [c["chapter"] for c in cost["chapters"]] == ["config_e", "biggan"]
    for chapter in cost["chapters"]:
        assert chapter["projected_s"] > 0 and all(v["images_per_s"] > 0 for v in chapter["variants"])
    assert cost["chapters"][1]["runs"] == 7  # the smoke profile's biggan: 7 variants x 1 seed
    assert json.loads((tmp_path / "chapters" / "config_e" / "metrics.json").read_text())["provenance"]["profile"] == "smoke"


def test_gpu_session_refuses_unknown_options(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "ci" / "gpu_session.sh"), "--dryrun"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--dry-run" in proc.stderr and "--no-chapters" in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing written
