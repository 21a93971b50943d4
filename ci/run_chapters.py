#!/usr/bin/env python
"""Execute the book's chapters with papermill.

    python ci/run_chapters.py --profile {smoke,cpu,gpu,book} --out DIR [--only NAME ...] [--publish] [--retrain]

Each chapter `notebooks/NN_<name>.py` (jupytext percent format, the only source) is converted to .ipynb with
the python3 kernelspec and executed, one at a time or `--jobs N` side by side (kernels started one at a time; the
roadmap after the config chapters it reads). The runner injects the parameters `profile`, `metrics_path`
(DIR/<name>/metrics.json), `artifacts_dir` (DIR/<name>/) and `runs_dir` (DIR/<name>/runs/: resumable run
folders, so a killed cpu or gpu chapter continues where it stopped when run again with the same DIR). It writes
the executed notebook to DIR/<name>/<name>.ipynb (tidied for the static book: `tidy_for_book`) and the wall times
to DIR/timings.json. `--profile book` picks
each chapter's book profile (r3gan_core.book.profiles.book_profile): image chapters then render their stored results
without training. `--publish` trains (`retrain=True`) and copies the chapter's metrics, sample grids and final
EMA generators into results/<name>/<profile>/, the stored results the book shows. A failing chapter stops the
run with a non-zero exit, naming the chapter and the failing cell: 1 when a cell raised, 2 when the runner killed
the chapter twice (over its limit, or a kernel that finished no cell). The last line says how many retries the
run used (a stalled kernel is killed and its chapter tried once more); the goal is none.

Kernels: papermill runs with ci/execute_notebook.py's engine (nbclient's Output-widget stall fixed, issue 33) on a
`python3` kernelspec the runner owns (`runner_kernels`, first on JUPYTER_PATH), never the user's own.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from r3gan_core.book.profiles import PROFILES, book_profile, chapter_names, chapter_profiles  # noqa: E402
from r3gan_core.book.seal import write_seal  # noqa: E402
from r3gan_core.report import git_commit, read_json, write_json_atomic  # noqa: E402

NOTEBOOKS = REPO / "notebooks"
RESULTS = REPO / "results"
PUBLISHED_PROFILES = ("cpu", "gpu")


def chapter_source(name: str) -> Path:
    """notebooks/NN_<name>.py for a chapter name."""
    matches = sorted(NOTEBOOKS.glob(f"[0-9][0-9]_{name}.py"))
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one notebooks/NN_{name}.py, found {[m.name for m in matches]}")
    return matches[0]


def available_chapters() -> list[str]:
    """Chapters of the profiles table that have a source file, in book order."""
    return [n for n in chapter_names() if list(NOTEBOOKS.glob(f"[0-9][0-9]_{n}.py"))]


INSTALL_TAG = "r3gan-install"  # the cell to_notebook puts first; not a cell of the chapter's source


def install_source(config: Path = REPO / "_config.yml") -> str | None:
    """Where a downloaded chapter installs r3gan-core from: the book's repository (`repository.url` in _config.yml,
    the one place it is set), pinned to the commit the chapters are executed at. None while the URL is empty."""
    import yaml

    url = ((yaml.safe_load(config.read_text()) or {}).get("repository") or {}).get("url") or ""
    if not url.strip():
        return None
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return f"r3gan-core[book] @ git+{url.strip().rstrip('/')}" + (f"@{commit}" if commit else "")


def install_cell(source: str | None) -> str:
    """The first code cell of every executed chapter: installs r3gan-core where it is missing (Colab, a JupyterHub),
    so that a notebook downloaded from its page runs on its own; does nothing where it is installed."""
    if source is None:
        action = ('raise ModuleNotFoundError("r3gan_core is not installed, and this book was built with no repository '
                  'URL to install it from (_config.yml: repository.url). In a clone of the book: pip install -e .[book]")')
    else:
        action = f'subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", {source!r}])'
    return ("# Installs r3gan-core when this notebook runs where it is missing (Colab, a JupyterHub kernel); set the\n"
            "# parameters below (profile = 'gpu' on a GPU kernel) before running the rest.\n"
            "import importlib.util, subprocess, sys\n\n"
            f'if importlib.util.find_spec("r3gan_core") is None:\n    {action}\n')


def to_notebook(source: Path, target: Path) -> None:
    """jupytext percent .py -> .ipynb with the python3 kernelspec papermill needs, and `install_cell` first."""
    import jupytext
    import nbformat

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, nbformat.v4.new_code_cell(install_cell(install_source()),
                                                          metadata={"tags": [INSTALL_TAG, "remove-cell"]}))
    jupytext.write(nb, target, fmt="ipynb")


ADDED_BY_RUNNER = {"injected-parameters", "papermill-error-cell-tag", INSTALL_TAG}  # cell tags not of the source


def source_cells(cells: list) -> list:
    """The cells of an executed notebook that come from the chapter's source (not the install cell, nor papermill's
    injected parameters or error cell), so that messages number cells as the chapter's source does, from 0."""
    return [c for c in cells if not ADDED_BY_RUNNER & set(c.get("metadata", {}).get("tags", []))]


def failing_cell(notebook: Path) -> str:
    """Describe the first cell of an executed notebook that holds an error output. A notebook that cannot be read
    (a chapter killed before papermill wrote it, or while it was writing it) gets a description, not a traceback."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as err:  # noqa: BLE001 - empty (NotJSONError), cut mid-write, or not a notebook: all the same here
        return (f"no cell known: its output notebook {notebook.name} is empty or partial "
                f"({type(err).__name__}; the kernel was killed before papermill saved it)")
    for i, cell in enumerate(source_cells(nb.cells)):  # numbered as in the chapter's source, from 0
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[:1]
                return f"cell {i} ({first[0][:80] if first else 'empty'}): {out.get('ename')}: {out.get('evalue')}"
    return "no cell holds an error output (the kernel may have died or timed out)"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tidy_for_book(notebook: Path) -> None:
    """Ready an executed notebook for the static book, in place.

    * the chapter's `parameters` cell and papermill's `injected-parameters` cell get the `remove-cell` tag, so a
      page does not show `profile = "smoke"` and then `profile = "cpu"` (sources keep the plain papermill tag);
    * widget outputs (progress bars frozen at 0%, sliders) and the notebook's widget state are dropped: without a
      kernel they do nothing, and rendering them would make every page load require.js and the ipywidgets embed
      manager from a CDN. The figures an interactive cell draws are drawn statically beside it.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
        if cell.get("outputs"):
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, notebook)


# A whole chapter's wall-clock limit per profile (seconds). A kernel can stall without any cell running (a lost
# start-up message when two kernels start at once, seen here); the limit turns that into one retry, not a hang.
CHAPTER_TIMEOUT = {"smoke": 300, "cpu": 5400, "gpu": 3600}  # cpu: a chapter's budget is 75 minutes


def chapter_limit(name: str, profile: str) -> int:
    """The wall-clock limit of a chapter: CHAPTER_TIMEOUT per profile, except that a chapter that trains no image
    model (no gpu profile: Dirac-GAN, the 2D toys, the anatomy, the roadmap) gets at most 900 s in any profile and
    60 s in smoke (they take 8-22 s there), so a stalled kernel costs a minute, not the image chapters' limits."""
    limit = CHAPTER_TIMEOUT.get(profile, 3600)
    trains_images = "gpu" in chapter_profiles(name) and name != "roadmap"
    return limit if trains_images else min(limit, 60 if profile == "smoke" else 900)


KERNEL = "python3"  # the kernelspec name the chapters carry (to_notebook); the runner resolves it to its own
ENGINE = "r3gan"  # ci/execute_notebook.py: papermill's engine with nbclient's Output-widget stall fixed (issue 33)


@functools.cache
def runner_kernels() -> Path:
    """A Jupyter data folder the runner owns, holding one kernelspec, `python3`, that starts this interpreter's
    ipykernel. The runner puts it first on JUPYTER_PATH for papermill only, so the chapters run in the runner's
    environment whatever `python3` kernel the user has, and nothing of the user's (~/.local/share/jupyter) is read
    or written. Removed when the runner exits."""
    folder = Path(tempfile.mkdtemp(prefix="r3gan-kernels-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    write_json_atomic(spec / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (r3gan-book runner)", "language": "python"})
    return folder


def kernel_environment() -> dict[str, str]:
    """The environment papermill runs in: this one, with the runner's kernelspec folder first on JUPYTER_PATH."""
    path = os.pathsep.join(filter(None, [str(runner_kernels()), os.environ.get("JUPYTER_PATH")]))
    return {**os.environ, "JUPYTER_PATH": path}


def running_cell(notebook: Path) -> str:
    """Which cell papermill marks as running in its saved output (for the message when a chapter is killed)."""
    import json

    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return "no output notebook yet"
    for i, cell in enumerate(source_cells(cells)):  # numbered as in the chapter's source, from 0
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            first = "".join(cell.get("source", "")).strip().splitlines()[:1]
            return f"stalled in cell {i} ({first[0][:60] if first else 'empty'})"
    return "no cell was running"


# A kernel that has not finished even the parameters cell after this long has stalled at start-up; it is killed and
# the chapter tried again, instead of waiting for the chapter limit. The check is made until a code cell is seen
# finished, and never on a notebook caught half-written: the "start-up stalls" of long chapters in fresh-clone book
# builds (biggan, lazy_penalties, toy_2d; killed at "no output notebook yet" while their kernel was busy in a later
# cell, py-spy showed) were this watchdog reading papermill's in-place rewrite of the notebook after 60 s.
FIRST_CELL_LIMIT = 60


def code_cell_finished(notebook: Path) -> bool | None:
    """Whether papermill has marked a code cell of the chapter's own in `notebook` (the output it saves as it goes)
    as completed; the runner's install cell does not count, it finishes before the chapter's first cell runs.
    None when the file is there but cannot be read: papermill rewrites it in place (truncate, then write) at every
    cell, so a read can catch it half-written, which says nothing about the kernel."""
    import json

    try:
        text = notebook.read_text()
    except OSError:  # not written yet
        return False
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError):  # caught mid-write
        return None
    return any(c.get("cell_type") == "code" and c.get("metadata", {}).get("papermill", {}).get("status") == "completed"
               for c in source_cells(cells))


def execute(src_nb: Path, dst_nb: Path, params: dict[str, str], cell_timeout: int, chapter_timeout: int,
            first_cell_limit: float | None = None, start_gate: threading.Lock | None = None) -> int | str:
    """papermill (ci/execute_notebook.py, engine ENGINE, kernel KERNEL from `runner_kernels`) in a child process:
    its exit code, or why it was killed (it outlived chapter_timeout, or no code
    cell finished within first_cell_limit seconds: a kernel stalled at start-up). `start_gate`, when chapters run
    side by side (--jobs): held from the kernel's start until its first code cell has finished, so that no two
    kernels start at once (the start-up stalls seen here came with kernels started together)."""
    first_cell_limit = FIRST_CELL_LIMIT if first_cell_limit is None else first_cell_limit
    command = [sys.executable, str(REPO / "ci" / "execute_notebook.py"), str(src_nb), str(dst_nb), "--engine", ENGINE,
               "--kernel", KERNEL, "--cwd", str(REPO), "--execution-timeout", str(cell_timeout), "--no-progress-bar",
               "--no-log-output"]
    for key, value in params.items():
        command += ["-p", key, value]
    dst_nb.unlink(missing_ok=True)  # an earlier attempt's output would hide a stall
    held = [start_gate or threading.Lock()]  # emptied when released: the lock may be another chapter's by then
    held[0].acquire()
    try:
        return _watch(command, dst_nb, chapter_timeout, first_cell_limit, held)
    finally:
        if held:
            held.pop().release()


def _watch(command: list[str], dst_nb: Path, chapter_timeout: int, first_cell_limit: float,
           held: list[threading.Lock]) -> int | str:
    """Run papermill's `command` and watch it (execute); releases the start gate it holds (`held`, emptied then)
    once a code cell of the chapter has finished."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err, text=True,
                                env=kernel_environment())
        start, reason, started = time.monotonic(), None, False
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - start
            finished = started or code_cell_finished(dst_nb)  # once seen, never asked again (issue 33)
            started = finished is True
            if held and started:
                held.pop().release()
            if elapsed > chapter_timeout:
                reason = f"no result after {chapter_timeout}s"
            elif elapsed > first_cell_limit and finished is False:  # None: a half-written notebook, no verdict
                reason = f"no code cell finished within {first_cell_limit}s (a kernel stalled at start-up)"
            if reason:
                reason += f"; {running_cell(dst_nb)}"
                print(stall_report(proc.pid, err), file=sys.stderr, flush=True)
                os.killpg(proc.pid, signal.SIGKILL)  # papermill and its group; the kernel exits when its parent dies
                proc.wait()
                return reason
        if proc.returncode != 0:
            err.seek(0)
            print(err.read()[-3000:], file=sys.stderr)
    return proc.returncode


def stall_report(pid: int, err) -> str:
    """What a chapter about to be killed was doing, for the next person to find the cause: the tail of papermill's
    log (how far it got: kernel started or not, which cell), and a py-spy stack dump of papermill and of each of its
    child processes (the kernel) where py-spy is installed."""
    err.flush()
    err.seek(0)
    lines = [f"[run_chapters] papermill's log, last lines:\n{err.read()[-1500:]}"]
    err.seek(0, os.SEEK_END)
    if shutil.which("py-spy"):
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for target in [str(pid), *children]:
            dump = subprocess.run(["py-spy", "dump", "--pid", target], capture_output=True, text=True, timeout=30)
            lines.append(f"[run_chapters] py-spy dump of {target}:\n{(dump.stdout + dump.stderr)[-3000:]}")
    return "\n".join(lines)


class ChapterKilled(RuntimeError):
    """A chapter the runner killed twice (it outlived its limit, or its kernel stalled before any cell finished)."""


def run_chapter(name: str, profile: str, out: Path, cell_timeout: int | None, chapter_timeout: int | None = None,
                retrain: bool = False, start_gate: threading.Lock | None = None) -> tuple[float, int]:
    """Execute one chapter; return its wall time in seconds and the retries it needed (0 or 1). RuntimeError
    (ChapterKilled when it was killed twice) names the chapter, the cell, and what to do."""
    chapter_dir = out / name
    chapter_dir.mkdir(parents=True, exist_ok=True)
    src_nb = chapter_dir / f"{name}.source.ipynb"
    dst_nb = chapter_dir / f"{name}.ipynb"
    to_notebook(chapter_source(name), src_nb)
    params = {"profile": profile, "metrics_path": str(chapter_dir / "metrics.json"),
              "artifacts_dir": str(chapter_dir), "runs_dir": str(chapter_dir / "runs")}
    if retrain:
        params["retrain"] = "True"
    limit = chapter_timeout or chapter_limit(name, profile)
    cell_timeout = cell_timeout or limit
    t0 = time.perf_counter()
    try:
        for attempt in (1, 2):
            code = execute(src_nb, dst_nb, params, cell_timeout, limit, start_gate=start_gate)
            if isinstance(code, int):
                break
            print(f"[run_chapters] {name}: {code} (attempt {attempt}); killed", file=sys.stderr, flush=True)
        if code != 0:
            where = failing_cell(dst_nb) if dst_nb.exists() else "before any cell ran (no output notebook)"
            if isinstance(code, int):
                raise RuntimeError(f"chapter {name!r} (profile {profile}) failed at {where}\n  (exit code {code})")
            reason = f"the {limit}s chapter limit, twice" if code.startswith("no result") else f"twice: {code}"
            raise ChapterKilled(f"chapter {name!r} (profile {profile}) was killed at {where}\n  ({reason})\n  What to "
                                f"do: run it alone, python ci/run_chapters.py --profile {profile} --only {name} --out "
                                f"{out}; the notebook as far as it got is {dst_nb}")
        tidy_for_book(dst_nb)
    finally:
        src_nb.unlink(missing_ok=True)
    return time.perf_counter() - t0, attempt - 1


def chapter_record_is_stored(name: str, out: Path) -> bool:
    """Whether the chapter executed into `out` rendered stored runs (its provenance is the stored one), i.e. it
    trained nothing now and --publish-stored may store what it added."""
    from r3gan_core.book.chapter import published_results

    record = read_json(out / name / "metrics.json")
    profile = record.get("provenance", {}).get("profile")
    stored = published_results(name, profile) if profile in PUBLISHED_PROFILES else None
    return stored is not None and stored["provenance"].get("date") == record["provenance"].get("date") and \
        stored["provenance"].get("commit") == record["provenance"].get("commit")


def publish(name: str, out: Path, command: str | None = None, republished: str | None = None,
            root: Path | None = None) -> Path:
    """Copy a cpu- or gpu-profile chapter's metrics.json, grids and generators into results/<name>/<profile>/
    (or <root>/<name>/<profile>/: the recipe sweeps publish under results/recipes/, ci/run_recipes.py).

    `command` (the runner's command line) is stamped into the published provenance. Files are replaced one at a
    time, atomically; stale generators of runs no longer in the record are removed. Last, the folder is sealed
    (r3gan_core.book.seal: seal.json, the SHA-256 of every file in it).
    """
    root = RESULTS if root is None else root
    record = read_json(out / name / "metrics.json")
    profile = record.get("provenance", {}).get("profile")
    previous = root / name / str(profile) / "metrics.json"
    previous = read_json(previous).get("provenance", {}) if previous.is_file() else {}
    if profile not in PUBLISHED_PROFILES:
        raise ValueError(f"refusing to publish {name!r} in profile {profile!r}: only {PUBLISHED_PROFILES} results "
                         "are published")
    source, target = out / name, root / name / profile
    commit = git_commit()  # before the copy below makes the tree dirty
    files = [f for f in source.iterdir() if f.is_file() and f.suffix in {".json", ".png", ".csv"}]
    files += sorted((source / "generators").glob("*.pt"))
    for f in files:
        dest = target / f.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.tmp"
        shutil.copyfile(f, tmp)
        tmp.replace(dest)
    if command is not None:
        record["provenance"]["command"] = command
        write_json_atomic(target / "metrics.json", record)
    if republished is not None:  # the training provenance stays; what re-rendered it is noted beside
        record["provenance"] = {**previous, **record["provenance"],
                                "republished": {"command": republished, "commit": commit,
                                                "date": time.strftime("%Y-%m-%d")}}
        write_json_atomic(target / "metrics.json", record)
    # Generators of the record's finished runs stay: a chapter that rendered its stored runs (adding what they
    # lacked, e.g. baselines) exports none, and its stored weights are what the record is re-derived from.
    runs = record.get("metrics", {}).get("runs", [])  # image chapters: run records; the toys: a table by name
    keep = {f.name for f in files} | {f"{r['run']}.pt" for r in (runs if isinstance(runs, list) else [])
                                      if r.get("status") == "ok" and "run" in r}
    missing = sorted(name for name in keep if name.endswith(".pt") and not (target / "generators" / name).is_file())
    if missing:
        raise FileNotFoundError(f"publishing {name!r}: the record's runs {missing} have no generator in "
                                f"{source / 'generators'} nor in {target / 'generators'}")
    for old in (target / "generators").glob("*.pt"):
        if old.name not in keep:
            old.unlink()
    write_seal(target)  # last: the digest of every file as published (tests/test_stored_results.py checks it)
    return target


def file_in_the_way(out: Path) -> Path | None:
    """`out` itself, or the nearest existing folder above it, when that is a file (so `out` cannot be a folder)."""
    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    return where if where.exists() and not where.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", required=True, choices=[*(p for p in PROFILES if p != "paper"), "book"],
                        help="paper is documented in each chapter, never executed here")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these chapters")
    parser.add_argument("--cell-timeout", type=int, default=None,
                        help="seconds allowed per cell (default: the chapter limit)")
    parser.add_argument("--chapter-timeout", type=int, default=None,
                        help="seconds allowed per chapter before it is killed and retried once "
                             f"(default per profile: {CHAPTER_TIMEOUT})")
    parser.add_argument("--publish", action="store_true",
                        help="train (cpu/gpu profile) and store the results under results/<chapter>/<profile>/")
    parser.add_argument("--publish-stored", action="store_true",
                        help="store again what the chapter adds to its stored cpu/gpu runs (baselines, judgements, "
                             "readings, studies of the stored generators) without training them again")
    parser.add_argument("--jobs", type=int, default=1,
                        help="chapters executed side by side (default 1; kernels still start one at a time)")
    parser.add_argument("--retrain", action="store_true",
                        help="train even where results/ holds stored runs of the profile (implied by --publish)")
    args = parser.parse_args(argv)

    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    names = available_chapters()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            parser.error(f"unknown chapter(s) {unknown}; valid choices: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    if args.profile == "paper":
        parser.error("the paper profile is documented as commands in each chapter and is never executed here; "
                     "valid choices: smoke, cpu, gpu, book")
    if (args.publish or args.publish_stored) and args.profile not in PUBLISHED_PROFILES:
        parser.error(f"--publish stores cpu or gpu results (so does --publish-stored); got --profile "
                     f"{args.profile}")
    if args.publish_stored and (args.publish or args.retrain):
        parser.error("--publish-stored renders the stored runs without training; it cannot go with --publish or "
                     "--retrain (which train them again)")
    blocker = file_in_the_way(args.out)
    if blocker is not None:
        parser.error(f"--out {args.out}: {blocker} is a file, not a folder; choose another --out (a folder, or one "
                     "that can be created)")

    # Progress bars are for people at a kernel; in an executed notebook they would freeze as "0%" widgets.
    os.environ.setdefault("TQDM_DISABLE", "1")
    # Kernels import this checkout's r3gan_core, whatever else is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    args.out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, dict] = {}
    timings_path = args.out / "timings.json"
    if timings_path.exists():
        timings = read_json(timings_path)
    lock = threading.Lock()

    def run_one(name: str) -> bool:
        """Run, time and (if asked) publish one chapter; False when it failed."""
        profile = book_profile(name) if args.profile == "book" else args.profile
        if profile not in chapter_profiles(name):
            if args.publish or args.publish_stored:
                print(f"[run_chapters] {name}: has no {profile} profile; skipped", flush=True)
                return True
            profile = "smoke"
        print(f"[run_chapters] {name}: profile {profile} ...", flush=True)
        try:
            wall, retries = run_chapter(name, profile, args.out, args.cell_timeout, args.chapter_timeout,
                                        retrain=args.publish or args.retrain, start_gate=start_gate)
        except RuntimeError as err:
            print(f"[run_chapters] FAILED: {err}", file=sys.stderr, flush=True)
            with lock:
                killed.append(isinstance(err, ChapterKilled))
            return False
        with lock:
            timings[name] = {"profile": profile, "wall_s": round(wall, 1), "retries": retries}
            write_json_atomic(timings_path, timings)
            retried.append(retries)
        print(f"[run_chapters] {name}: done in {wall:.1f}s" + (f" after {retries} retry" if retries else ""),
              flush=True)
        if args.publish:
            command = f"python ci/run_chapters.py --profile {profile} --only {name} --out {args.out} --publish"
            print(f"[run_chapters] {name}: published to {publish(name, args.out, command)}", flush=True)
        elif args.publish_stored:
            if chapter_record_is_stored(name, args.out):
                command = f"python ci/run_chapters.py --profile {profile} --only {name} --out {args.out} --publish-stored"
                print(f"[run_chapters] {name}: published again to {publish(name, args.out, republished=command)}",
                      flush=True)
            else:
                print(f"[run_chapters] {name}: not stored before (it trained now); use --publish", flush=True)
        return True

    start_gate = threading.Lock() if args.jobs > 1 else None
    killed: list[bool] = []
    retried: list[int] = []
    ok = run_in_order(names, run_one, args.jobs)
    print(f"[run_chapters] {len(retried)} of {len(names)} chapters done; retries used: {sum(retried)}", flush=True)
    return 0 if ok else (2 if any(killed) else 1)


# A chapter that reads what other chapters of the same run wrote (their DIR/<name>/metrics.json) starts after them.
AFTER = {"roadmap": tuple(f"config_{c}" for c in "abcde")}
# With --jobs > 1 the longest chapters start first, so that a short one, not a long one, runs alone at the end
# (measured 2026-12-07 on 2 cores, fresh clone, book profile: biggan 155 s, lazy_penalties 96 s, mode_coverage 64 s,
# every other chapter 14-35 s; started in book order, biggan ran last and alone).
LONGEST_FIRST = ("biggan", "lazy_penalties", "mode_coverage")


def run_in_order(names: list[str], run_one, jobs: int) -> bool:
    """Run `run_one(name)` for every chapter, `jobs` at a time (LONGEST_FIRST first when jobs > 1), each chapter of
    AFTER only once those of `names` it reads from have finished; stops starting new chapters after a failure. True
    when every chapter succeeded."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending, running, done, ok = list(names), {}, set(), True
    if jobs > 1:
        pending.sort(key=lambda n: LONGEST_FIRST.index(n) if n in LONGEST_FIRST else len(LONGEST_FIRST))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            ready = [n for n in pending if all(d in done or d not in names for d in AFTER.get(n, ()))]
            while ok and ready and len(running) < jobs:
                name = ready.pop(0)
                pending.remove(name)
                running[pool.submit(run_one, name)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done.add(running.pop(future))
                ok = future.result() and ok
    return ok and not pending


if __name__ == "__main__":
    sys.exit(main())
