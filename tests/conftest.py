"""Shared fixtures. `smoke_book` executes every chapter once in the smoke profile through the real runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """Run ci/run_chapters.py --profile smoke once per session; return its output folder.

    Each chapter's test reads OUT/<chapter>/metrics.json. A failing chapter fails every test that uses this.
    """
    out = tmp_path_factory.mktemp("smoke_book")
    proc = subprocess.run([sys.executable, str(REPO / "ci" / "run_chapters.py"), "--profile", "smoke",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"chapter runner failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return out


def chapter_metrics(out: Path, chapter: str) -> dict:
    """The `metrics` dict a chapter wrote (its provenance is checked to name the smoke profile)."""
    import json

    record = json.loads((out / chapter / "metrics.json").read_text())
    assert record["provenance"]["profile"] == "smoke"
    assert record["provenance"]["wall_time_s"] is not None
    return record["metrics"]


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny convolutions run fastest on one thread, and far faster when other processes share the cores
    (OpenMP workers spin-waiting for a busy core cost seconds per step)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
