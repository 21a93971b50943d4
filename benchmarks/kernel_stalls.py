#!/usr/bin/env python
"""Execute a notebook many times in a row and classify every run: the kernel-stall harness of issue 33.

    python benchmarks/kernel_stalls.py --notebook dirac_gan --engine nbclient --runs 40 --out DIR
    python benchmarks/kernel_stalls.py --notebook probe --widget interact_plot --runs 40 --out DIR
    python benchmarks/kernel_stalls.py --summary DIR [DIR ...]      # the rate table of stored runs

Each run executes the notebook through papermill in a child process (the runner's way: `ci/execute_notebook.py`'s
engines, `--engine nbclient` being papermill's own and `--engine r3gan` the fixed one) and is classified

    ok | stalled mid-run (a cell took at least 90 % of the cell timeout) | stalled at start-up (the kernel never
    answered within papermill's start timeout) | error (any other failure)

with the kernel's CPU time (read from /proc while it runs), the cell that stalled, and for every stall, while it
lasts, a `py-spy dump` of the kernel and of the client, and the child's message log (nbclient's debug log of every
IOPub message, the stand-in widget's shell sends, and the kernel's own timestamp of each execute_reply). A stall
lasts exactly the cell timeout (`--cell-timeout`, 10 s by default, so a stall is cheap to see): the timeout that
expires is nbclient's wait for the execute_reply.

The probe notebook imports torch and matplotlib and then runs `--cells` cells (10) of one widget kind:
interact_plot (`ipywidgets.interact` over a matplotlib figure, as dirac_gan's explorer), interact_print (interact
printing text, no matplotlib), output (an `ipywidgets.Output` capturing a print and a figure), widgets (a slider
displayed, no Output widget) or none (a figure, no widget).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WIDGET_CELLS = {
    "interact_plot": ("def f(x=1.0):\n    fig, ax = plt.subplots(figsize=(3, 2))\n    ax.plot([0, 1], [0, x])\n"
                      "    plt.show()\n\nwidgets.interact(f, x=widgets.FloatSlider(value=1.0, min=0, max=2));"),
    "interact_print": "def f(x=1.0):\n    print('x =', x)\n\nwidgets.interact(f, x=widgets.FloatSlider(value=1.0));",
    "output": ("out = widgets.Output()\ndisplay(out)\nwith out:\n    print('inside')\n"
               "    fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([0, 1]); plt.show()"),
    "widgets": "display(widgets.IntSlider(value=3, min=0, max=10))",
    "none": "fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([0, 1]); plt.show()",
}


def probe_notebook(widget: str, cells: int, target: Path) -> None:
    """The probe: an import cell (torch, matplotlib, ipywidgets) and `cells` cells of WIDGET_CELLS[widget]."""
    import nbformat

    head = ("import torch\nimport matplotlib.pyplot as plt\nimport ipywidgets as widgets\n"
            "from IPython.display import display")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(head)] +
                                  [nbformat.v4.new_code_cell(WIDGET_CELLS[widget]) for _ in range(cells)])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, target)


def chapter_notebook(name: str, target: Path) -> list[str]:
    """A chapter as the runner converts it, and the papermill parameters the runner gives it (smoke profile)."""
    sys.path.insert(0, str(REPO / "ci"))
    import run_chapters

    run_chapters.to_notebook(run_chapters.chapter_source(name), target)
    folder = target.parent / name
    folder.mkdir(parents=True, exist_ok=True)
    return ["-p", "profile", "smoke", "-p", "metrics_path", str(folder / "metrics.json"), "-p", "artifacts_dir",
            str(folder), "-p", "runs_dir", str(folder / "runs")]


def child(argv: list[str]) -> None:
    """In the child process: execute one notebook with papermill, logging the message traffic with timestamps."""
    src, dst, engine, timeout, store_state, log_path, *params = argv
    logging.basicConfig(filename=log_path, level=logging.DEBUG, format="%(relativeCreated)9.1f ms %(message)s")
    sys.path.insert(0, str(REPO / "ci"))
    import execute_notebook  # registers the r3gan engine
    import papermill
    from nbclient.output_widget import OutputWidget

    for cls in (OutputWidget, execute_notebook.WakingOutputWidget):  # log the stand-in's shell sends
        original = cls._publish_msg

        def logged(self, msg_type, *a, _original=original, _name=cls.__name__, **k):
            logging.getLogger("harness").debug("%s sends %s on the shell socket", _name, msg_type)
            return _original(self, msg_type, *a, **k)
        cls._publish_msg = logged
    parameters = dict(zip(params[1::3], params[2::3]))
    papermill.execute_notebook(src, dst, parameters=parameters, engine_name=engine, kernel_name="python3",
                               execution_timeout=int(timeout), store_widget_state=store_state == "1",
                               progress_bar=False, log_output=True, cwd=str(REPO))


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            found.append(k)
            todo.append(k)
    return found


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_kernel(pid: int) -> bool:
    try:
        return b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def py_spy(pid: int) -> str:
    """A stack dump of every thread of `pid` (py-spy), or why there is none."""
    try:
        out = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"py-spy failed: {err}"


def running_cell_seconds(notebook: Path) -> tuple[int, float] | None:
    """(index, seconds since it started) of the cell papermill marks as running in its saved output, if any."""
    from datetime import datetime, timezone

    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    for i, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("status") == "running" and meta.get("start_time"):
            start = datetime.fromisoformat(meta["start_time"].replace("Z", "+00:00"))
            return i, (datetime.now(timezone.utc) - start).total_seconds()
    return None


def one_run(src: Path, dst: Path, args: argparse.Namespace, params: list[str], work: Path, k: int) -> dict:
    """Execute once, watching the child; the run's record."""
    log = work / f"run{k}.log"
    cmd = [sys.executable, __file__, "--child", str(src), str(dst), args.engine, str(args.cell_timeout),
           "0" if args.no_widget_state else "1", str(log), *params]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "MPLBACKEND": args.mpl_backend or
           os.environ.get("MPLBACKEND", "")}
    if not env["MPLBACKEND"]:
        env.pop("MPLBACKEND")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kernel_cpu, dumps = {}, {}
    while proc.poll() is None:
        time.sleep(0.25)
        for pid in descendants(proc.pid):
            if is_kernel(pid):
                seconds = cpu_seconds(pid)
                kernel_cpu[pid] = seconds if seconds is not None else kernel_cpu.get(pid, 0.0)
        running = running_cell_seconds(dst)
        if running and running[1] > args.cell_timeout / 2 and running[0] not in dumps:
            kernels = [p for p in descendants(proc.pid) if is_kernel(p)]
            dumps[running[0]] = {"after_s": round(running[1], 1), "client": py_spy(proc.pid),
                                 "kernel": py_spy(kernels[0]) if kernels else "no kernel process"}
    err = proc.stderr.read()
    wall = time.monotonic() - t0
    record = {"run": k, "wall_s": round(wall, 2), "kernel_cpu_s": round(sum(kernel_cpu.values()), 2),
              "returncode": proc.returncode, "cells": cell_times(dst)}
    stalled = [c for c in record["cells"] if c["duration_s"] is not None and
               c["duration_s"] >= 0.9 * args.cell_timeout]
    if proc.returncode == 0:
        record["status"] = "stalled mid-run" if stalled else "ok"
    elif "Kernel didn't respond" in err or "RuntimeError: Kernel died before replying" in err:
        record["status"] = "stalled at start-up"
    else:
        record["status"], record["error"] = "error", err[-2000:]
    record["stalled_cells"] = [c["cell"] for c in stalled]
    if stalled or proc.returncode != 0:
        record["dumps"] = {str(i): d for i, d in dumps.items()}
        record["message_log"] = traffic(log)
    log.unlink(missing_ok=True)
    return record


def traffic(log: Path) -> list[str]:
    """The message traffic of a run's log: each IOPub message's type, each shell send of a widget stand-in, and
    each cell's start, with milliseconds since the child started (message contents left out)."""
    if not log.exists():
        return []
    keep = ("msg_type:", "on the shell socket", "Executing cell")
    return [line[:160] for line in log.read_text(errors="replace").splitlines() if any(k in line for k in keep)][-600:]


def cell_times(notebook: Path) -> list[dict]:
    """Per code cell: papermill's duration, and the kernel's own timestamp of its execute_reply (nbclient's
    record_timing) against the cell's end as the client saw it."""
    from datetime import datetime

    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return []
    rows = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        pm, ex = cell.get("metadata", {}).get("papermill", {}), cell.get("metadata", {}).get("execution", {})
        row = {"cell": i, "duration_s": pm.get("duration"), "widget": "widget" in json.dumps(cell.get("outputs", []))}
        if ex.get("shell.execute_reply") and pm.get("end_time"):
            reply = datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(pm["end_time"].replace("Z", "+00:00"))
            row["client_after_reply_s"] = round((end - reply).total_seconds(), 3)
        rows.append(row)
    return rows


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score 95 % interval of a rate k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / (1 + z * z / n)), min(1.0, (centre + half) / (1 + z * z / n))


def summary(folders: list[Path]) -> str:
    """A markdown table: per variant, runs stalled (and cells stalled, for widget cells) with their 95 % interval."""
    rows = ["| variant | runs | stalled runs | 95 % interval | widget cells | stalled cells | 95 % interval | other |",
            "|---|---|---|---|---|---|---|---|"]
    for path in sorted(p for f in folders for p in Path(f).glob("*.json")):
        data = json.loads(path.read_text())
        runs = data["runs"]
        bad = sum(r["status"] != "ok" and r["status"] != "error" for r in runs)
        errors = sum(r["status"] == "error" for r in runs)
        cells = sum(sum(c["widget"] for c in r["cells"]) for r in runs)
        stalled = sum(len(r["stalled_cells"]) for r in runs)
        lo, hi = wilson(bad, len(runs))
        clo, chi = wilson(stalled, cells)
        rows.append(f"| {data['variant']} | {len(runs)} | {bad} | {lo:.3f}-{hi:.3f} | {cells} | {stalled} | "
                    f"{clo:.3f}-{chi:.3f} | {errors} errors |")
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", default="probe", help="probe, or a chapter name (executed in smoke)")
    parser.add_argument("--widget", default="interact_plot", choices=sorted(WIDGET_CELLS))
    parser.add_argument("--cells", type=int, default=10, help="widget cells in the probe")
    parser.add_argument("--engine", default="nbclient", choices=["nbclient", "r3gan"])
    parser.add_argument("--no-widget-state", action="store_true", help="nbclient's store_widget_state off")
    parser.add_argument("--mpl-backend", default=None, help="MPLBACKEND for the kernel (default: the inline one)")
    parser.add_argument("--cell-timeout", type=int, default=10)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--summary", type=Path, nargs="+", default=None)
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return
    if args.out is None:
        parser.error("--out DIR is needed to store the runs (or --summary DIR to read them)")
    variant = (f"{args.notebook}" + (f"/{args.widget}" if args.notebook == "probe" else "") + f", engine {args.engine}"
               + (", no widget state" if args.no_widget_state else "") +
               (f", MPLBACKEND={args.mpl_backend}" if args.mpl_backend else "") + f", cell timeout {args.cell_timeout}s")
    args.out.mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "_" for ch in variant).strip("_")
    target = args.out / f"{slug}.json"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "in.ipynb"
        params = chapter_notebook(args.notebook, src) if args.notebook != "probe" else []
        if args.notebook == "probe":
            probe_notebook(args.widget, args.cells, src)
        runs = []
        for k in range(args.runs):
            record = one_run(src, work / "out.ipynb", args, params, work, k)
            runs.append(record)
            print(f"[kernel_stalls] {variant}: run {k + 1}/{args.runs} {record['status']} in {record['wall_s']}s"
                  + (f" (cells {record['stalled_cells']})" if record["stalled_cells"] else ""), flush=True)
            target.write_text(json.dumps({"variant": variant, "date": time.strftime("%Y-%m-%d"),
                                          "versions": versions(), "runs": runs}, indent=1))
    print(summary([args.out]))


def versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("papermill", "nbclient", "ipykernel", "ipywidgets", "jupyter_client", "pyzmq",
                                       "comm", "tornado", "matplotlib")}


if __name__ == "__main__":
    main()
