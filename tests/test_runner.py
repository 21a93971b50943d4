"""ci/run_chapters.py: bad input, a failing chapter named with its cell, publishing only cpu / gpu results."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _runner():
    spec = importlib.util.spec_from_file_location("run_chapters", REPO / "ci" / "run_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BROKEN = '''# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% tags=["parameters"]
profile = "smoke"
metrics_path = None
artifacts_dir = None

# %%
x = 1

# %%
raise ZeroDivisionError("the chapter broke here")
'''


def test_failing_chapter_is_named_with_its_cell(tmp_path, monkeypatch):
    runner = _runner()
    source = tmp_path / "01_dirac_gan.py"
    source.write_text(BROKEN)
    monkeypatch.setattr(runner, "chapter_source", lambda name: source)
    with pytest.raises(RuntimeError) as err:
        runner.run_chapter("dirac_gan", "smoke", tmp_path / "out", cell_timeout=120)
    text = str(err.value)
    assert "dirac_gan" in text and "cell 2" in text and "ZeroDivisionError" in text and "the chapter broke here" in text


def test_main_exits_nonzero_on_a_failing_chapter(tmp_path, monkeypatch, capsys):
    runner = _runner()
    source = tmp_path / "01_dirac_gan.py"
    source.write_text(BROKEN)
    monkeypatch.setattr(runner, "chapter_source", lambda name: source)
    monkeypatch.setattr(runner, "available_chapters", lambda: ["dirac_gan"])
    assert runner.main(["--profile", "smoke", "--out", str(tmp_path / "out")]) == 1
    assert "FAILED: chapter 'dirac_gan'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--profile", "fast", "--out", "x"], "invalid choice: 'fast'"),
    (["--profile", "smoke", "--out", "x", "--only", "nope"], "unknown chapter(s) ['nope']; valid choices: dirac_gan"),
    (["--profile", "paper", "--out", "x"], "invalid choice: 'paper'"),
    (["--profile", "smoke", "--out", "x", "--publish"], "--publish stores cpu or gpu results"),
])
def test_bad_arguments_name_the_valid_choices(argv, message):
    proc = subprocess.run([sys.executable, str(REPO / "ci" / "run_chapters.py"), *argv], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.parametrize("under", [False, True])
def test_an_out_that_is_a_file_or_under_one_is_refused(tmp_path, under):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    out = afile / "book" if under else afile
    proc = subprocess.run([sys.executable, str(REPO / "ci" / "run_chapters.py"), "--profile", "smoke", "--out",
                           str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{afile} is a file, not a folder" in proc.stderr and afile.read_text() == "mine"


def test_publish_refuses_smoke_results(tmp_path, monkeypatch):
    runner = _runner()
    (tmp_path / "toy_2d").mkdir()
    (tmp_path / "toy_2d" / "metrics.json").write_text(json.dumps({"provenance": {"profile": "smoke"}, "metrics": {}}))
    monkeypatch.setattr(runner, "RESULTS", tmp_path / "results")
    with pytest.raises(ValueError, match=r"only \('cpu', 'gpu'\) results are published"):
        runner.publish("toy_2d", tmp_path)
    assert not (tmp_path / "results").exists()


def test_publish_stores_metrics_grids_and_generators_per_profile(tmp_path, monkeypatch):
    runner = _runner()
    out = tmp_path / "out" / "mode_coverage"
    (out / "generators").mkdir(parents=True)
    (out / "runs").mkdir()
    (out / "metrics.json").write_text(json.dumps({"provenance": {"profile": "cpu"}, "metrics": {}}))
    (out / "samples_a.png").write_bytes(b"png")
    (out / "generators" / "a_s0.pt").write_bytes(b"weights")
    (out / "runs" / "checkpoint.pt").write_bytes(b"not published")
    results = tmp_path / "results"
    (results / "mode_coverage" / "cpu" / "generators").mkdir(parents=True)
    (results / "mode_coverage" / "cpu" / "generators" / "gone_s0.pt").write_bytes(b"stale")
    monkeypatch.setattr(runner, "RESULTS", results)
    target = runner.publish("mode_coverage", tmp_path / "out", command="python ci/run_chapters.py ...")
    assert target == results / "mode_coverage" / "cpu"
    assert json.loads((target / "metrics.json").read_text())["provenance"]["command"] == "python ci/run_chapters.py ..."
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == \
        ["generators/a_s0.pt", "metrics.json", "samples_a.png", "seal.json"]
    from r3gan_core.book.seal import seal_problems

    assert seal_problems(target) == []  # sealed as published
    (target / "samples_a.png").write_bytes(b"another png")
    assert seal_problems(target) == ["samples_a.png changed since it was published (edited by hand?)"]


@pytest.mark.chapters
def test_book_builds_from_the_executed_chapters(smoke_book, smoke_html):
    """Jupyter Book renders every chapter the runner executed (no execution of its own)."""
    chapters = [p.name for p in smoke_book.iterdir() if (p / f"{p.name}.ipynb").exists()]
    html = smoke_html
    assert (html / "index.html").exists()
    for name in chapters:
        page = html / "book" / "executed" / name / f"{name}.html"
        assert page.exists(), f"no page for {name}"
        assert "profile=smoke" in page.read_text(), f"{name}: the provenance line is missing from the page"


def test_stalled_chapter_is_killed_retried_and_reported(tmp_path, monkeypatch, capsys):
    runner = _runner()
    source = tmp_path / "01_dirac_gan.py"
    source.write_text(BROKEN.replace('raise ZeroDivisionError("the chapter broke here")', "import time\ntime.sleep(120)"))
    monkeypatch.setattr(runner, "chapter_source", lambda name: source)
    with pytest.raises(RuntimeError, match=r"(?s)was killed at .*the 8s chapter limit, twice"):
        runner.run_chapter("dirac_gan", "smoke", tmp_path / "out", cell_timeout=300, chapter_timeout=8)
    err = capsys.readouterr().err
    assert err.count("no result after 8s") == 2 and "stalled in cell 2 (import time)" in err  # numbered as failing_cell numbers it


def test_a_kernel_that_finishes_no_cell_is_killed_early_and_retried(tmp_path, monkeypatch, capsys):
    """A kernel stalled at start-up (the first cell never returns) costs FIRST_CELL_LIMIT, not the chapter limit."""
    runner = _runner()
    source = tmp_path / "01_dirac_gan.py"
    source.write_text(BROKEN.replace('profile = "smoke"\n', 'profile = "smoke"\nimport time\ntime.sleep(120)\n', 1))
    monkeypatch.setattr(runner, "chapter_source", lambda name: source)
    monkeypatch.setattr(runner, "FIRST_CELL_LIMIT", 3)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"twice: no code cell finished within 3s \(a kernel stalled"):
        runner.run_chapter("dirac_gan", "smoke", tmp_path / "out", cell_timeout=300, chapter_timeout=200)
    assert time.perf_counter() - t0 < 60  # far below the 200 s chapter limit
    assert capsys.readouterr().err.count("no code cell finished within 3s") == 2


def test_chapter_limits_keep_a_stalled_kernel_cheap():
    runner = _runner()
    assert runner.chapter_limit("mode_coverage", "cpu") == runner.CHAPTER_TIMEOUT["cpu"]
    assert runner.chapter_limit("dirac_gan", "cpu") == 900 and runner.chapter_limit("roadmap", "cpu") == 900
    assert runner.chapter_limit("dirac_gan", "smoke") == 60 < runner.CHAPTER_TIMEOUT["smoke"]
    assert runner.chapter_limit("biggan", "smoke") == runner.CHAPTER_TIMEOUT["smoke"]


def test_chapters_side_by_side_keep_the_roadmap_after_the_configs_and_stop_after_a_failure():
    import threading

    runner = _runner()
    names = ["dirac_gan", "config_a", "config_b", "config_c", "config_d", "config_e", "roadmap", "biggan"]
    lock, events, now, most = threading.Lock(), [], [0], [0]

    def run_one(name):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
            events.append(("start", name))
        time.sleep(0.05 if name != "config_e" else 0.3)  # the last config finishes last
        with lock:
            now[0] -= 1
            events.append(("end", name))
        return True

    assert runner.run_in_order(names, run_one, jobs=2)
    assert most[0] == 2 and {n for kind, n in events if kind == "end"} == set(names)
    assert events.index(("start", "roadmap")) > max(events.index(("end", f"config_{c}")) for c in "abcde")
    events.clear()
    assert not runner.run_in_order(names, lambda name: name != "config_a", jobs=1)  # a failure: nothing after it


def test_the_start_gate_lets_one_kernel_start_at_a_time(tmp_path, monkeypatch):
    """With --jobs, a chapter's kernel starts only after the other's first code cell has finished."""
    import threading

    runner = _runner()
    gate = threading.Lock()
    gate.acquire()  # another chapter's kernel is starting
    source = tmp_path / "01_dirac_gan.py"
    source.write_text(BROKEN.replace('raise ZeroDivisionError("the chapter broke here")', "y = 2"))
    monkeypatch.setattr(runner, "chapter_source", lambda name: source)
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        wall=runner.run_chapter("dirac_gan", "smoke", tmp_path / "out", cell_timeout=120, start_gate=gate)))
    thread.start()
    time.sleep(2.0)
    assert not (tmp_path / "out" / "dirac_gan" / "dirac_gan.ipynb").exists()  # waiting at the gate: no kernel yet
    gate.release()
    thread.join(timeout=120)
    assert "wall" in result and not gate.locked()  # ran, and handed the gate back


def test_chapters_run_on_the_runners_own_kernelspec_and_the_users_is_untouched(tmp_path, monkeypatch):
    """A user's own "python3" kernel (here one pointing at a deleted interpreter) neither breaks the chapters nor
    gets rewritten: the runner resolves "python3" to a kernelspec of its own, first on JUPYTER_PATH."""
    runner = _runner()
    user = tmp_path / "user-data" / "kernels" / "python3"
    user.mkdir(parents=True)
    spec = json.dumps({"argv": ["/deleted/venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "mine", "language": "python"})
    (user / "kernel.json").write_text(spec)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    source = tmp_path / "01_dirac_gan.py"
    source.write_text(BROKEN.replace('raise ZeroDivisionError("the chapter broke here")',
                                     "import sys\nprint(sys.executable)"))
    monkeypatch.setattr(runner, "chapter_source", lambda name: source)
    wall, retries = runner.run_chapter("dirac_gan", "smoke", tmp_path / "out", cell_timeout=120)
    assert retries == 0
    printed = json.loads((tmp_path / "out" / "dirac_gan" / "dirac_gan.ipynb").read_text())["cells"]
    assert any(sys.executable in "".join(o.get("text", "")) for c in printed for o in c.get("outputs", []))
    assert (user / "kernel.json").read_text() == spec and sorted(p.name for p in user.parent.iterdir()) == ["python3"]


def test_setup_installs_no_kernelspec_of_the_users(tmp_path):
    """ci/setup.sh (what both README commands run first) writes nothing into the user's Jupyter folders."""
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
           "PYTHON": sys.executable, "R3GAN_NO_CHROMIUM": "1"}
    proc = subprocess.run(["bash", str(REPO / "ci" / "setup.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "jupyter").exists() and not (tmp_path / ".local").exists()


def test_a_chapter_killed_with_an_empty_notebook_gets_the_runners_message_and_exit_2(tmp_path, monkeypatch, capsys):
    """A kernel killed before papermill wrote its notebook leaves an empty file: the runner says which chapter,
    which cell (none known) and what to do, exits 2, and raises no traceback of its own."""
    runner = _runner()

    def killed(src_nb, dst_nb, *args, **kwargs):
        dst_nb.write_text("")  # papermill was killed while it wrote the notebook
        return "no code cell finished within 60s (a kernel stalled at start-up); no output notebook yet"

    monkeypatch.setattr(runner, "execute", killed)
    monkeypatch.setattr(runner, "available_chapters", lambda: ["dirac_gan"])
    assert runner.main(["--profile", "smoke", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr()
    assert "Traceback" not in err.err + err.out
    assert "FAILED: chapter 'dirac_gan' (profile smoke) was killed at no cell known" in err.err
    assert "empty or partial" in err.err and "What to do: run it alone" in err.err
    assert "retries used: 0" in err.out  # no chapter finished, so none of them used a retry
    assert runner.failing_cell(tmp_path / "out" / "dirac_gan" / "dirac_gan.ipynb").startswith("no cell known")


def test_side_by_side_the_longest_chapters_start_first():
    runner = _runner()
    names = ["dirac_gan", "toy_2d", "mode_coverage", "config_a", "roadmap", "biggan", "lazy_penalties"]
    started = []
    assert runner.run_in_order(names, lambda name: started.append(name) or True, jobs=2)
    assert started[:3] == ["biggan", "lazy_penalties", "mode_coverage"]
    started.clear()
    assert runner.run_in_order(names, lambda name: started.append(name) or True, jobs=1)
    assert started == names  # one at a time: book order


REWRITER = '''
import json, sys, time
path = sys.argv[1]
cell = {"cell_type": "code", "metadata": {"papermill": {"status": "completed"}}, "source": "x = 1", "outputs": []}
text = json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
open(path, "w").write(text)
end = time.time() + 5
while time.time() < end:  # as papermill saves at every cell: truncated in place, then written
    with open(path, "w") as f:
        f.write(text[:10])
        f.flush()
        time.sleep(0.4)
        f.write(text[10:])
    time.sleep(0.05)
'''


def test_a_half_written_notebook_after_the_first_cell_is_not_a_start_up_stall(tmp_path):
    """The watchdog that kills a kernel stalled at start-up reads the notebook papermill rewrites in place; a read
    that catches it half-written, after a cell has finished, must not kill a chapter that is running fine."""
    runner = _runner()
    notebook = tmp_path / "chapter.ipynb"
    notebook.write_text('{"cells": [')  # a half-written file reads as "no verdict", not "nothing finished"
    assert runner.code_cell_finished(notebook) is None
    assert runner.code_cell_finished(tmp_path / "missing.ipynb") is False
    notebook.unlink()
    code = runner._watch([sys.executable, "-c", REWRITER, str(notebook)], notebook, chapter_timeout=60,
                         first_cell_limit=1, held=[])
    assert code == 0
