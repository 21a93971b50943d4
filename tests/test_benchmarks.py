"""benchmarks/bench_loop.py runs on this tree (tiny sizes) and refuses settings that cannot measure anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_loop.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_bench_loop_prints_positive_rates():
    proc = _run("--preset", "digits8", "--threads", "1", "--batch", "8", "--short", "1", "--long", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["preset"] == "digits8" and len(row["images_per_s"]) == 2 and all(r > 0 for r in row["images_per_s"])


def test_bench_loop_refuses_a_long_run_no_longer_than_the_short_one():
    proc = _run("--short", "4", "--long", "4")
    assert proc.returncode == 2 and "--long (4) must be more steps than --short (4)" in proc.stderr


def test_bench_iteration_measures_the_overhead_of_each_penalty_interval(tmp_path):
    out = tmp_path / "intervals.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_iteration.py"), "--configs", "E",
                           "--presets", "digits8", "--batch", "8", "--iters", "4", "--warmup", "1", "--threads", "1",
                           "--intervals", "1", "4", "--json", str(out)], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"][0]["intervals"]
    assert [r["penalty_interval"] for r in rows] == [1, 4]
    assert all(r["overhead"] > 0 and r["images_per_s"] > 0 for r in rows) and "k=4" in proc.stdout
