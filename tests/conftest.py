"""Shared fixtures. `smoke_book` executes every chapter once in the smoke profile through the real runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SMOKE_FIXTURES = {"smoke_book", "smoke_html"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (--dist loadgroup, as ci/test.sh runs it) every test that reads the smoke book runs in one
    worker, so the book is executed once per session, not once per worker; the other tests spread over the rest.

    Tests that start kernels of their own (tests/test_runner.py) no longer join that worker: the kernel "stalls" that
    once seemed to come from two kernels started at once were nbclient's lost wake-up in Output widgets (issue 33,
    ci/execute_notebook.py), and 540 harness executions, two streams side by side, showed no start-up stall
    (benchmarks/measured/cpu-2026-12-07/kernel_stalls/)."""
    for item in items:
        if SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("smoke_book"))


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """Run ci/run_chapters.py --profile smoke once per session; return its output folder.

    Each chapter's test reads OUT/<chapter>/metrics.json. A failing chapter fails every test that uses this.
    """
    out = tmp_path_factory.mktemp("smoke_book")
    proc = subprocess.run([sys.executable, str(REPO / "ci" / "run_chapters.py"), "--profile", "smoke",
                           "--out", str(out), "--jobs", "2"], cwd=REPO, capture_output=True, text=True)
    log = os.environ.get("R3GAN_SMOKE_LOG")  # benchmarks/fresh_clone_runs.py reads the runner's retry count here
    if log:
        Path(log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        pytest.fail(f"chapter runner failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return out


@pytest.fixture(scope="session")
def smoke_html(smoke_book, tmp_path_factory) -> Path:
    """Jupyter Book renders the smoke chapters as ci/build_book.sh does (the generated reproduce page included,
    nothing executed by Jupyter Book); returns the _build/html folder."""
    import shutil

    root = tmp_path_factory.mktemp("book_root")
    (root / "book").mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    shutil.copy(REPO / "book" / "intro.md", root / "book" / "intro.md")
    shutil.copytree(REPO / "book" / "_static", root / "book" / "_static")
    for page in smoke_book.glob("*/*.ipynb"):
        (root / "book" / "executed" / page.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(page, root / "book" / "executed" / page.parent.name / page.name)
    proc = subprocess.run([sys.executable, str(REPO / "ci" / "reproduce_page.py"), "--executed", str(smoke_book),
                           "--out", str(root / "book" / "reproduce.md")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
                           str(root), "--builder", "html"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"Jupyter Book failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return root / "_build" / "html"


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
