#!/usr/bin/env python
"""The README's two commands on fresh clones, one after another, as a new user's machine runs them (issue 33).

    python benchmarks/fresh_clone_runs.py --clones 5 --out benchmarks/measured/cpu-YYYY-MM-DD/fresh_clones.json

For each clone of HEAD (in a temporary folder, removed afterwards): `bash ci/build_book.sh`, then `bash
ci/test.sh`, each timed with its exit status, the chapter runner's retry count (its last line, "retries used: N";
for the tests, the smoke book's runner output, which tests/conftest.py writes to R3GAN_SMOKE_LOG) and pytest's
summary line. Run it on an idle machine: the wall times are the figures the README states. Each clone's set-up
re-installs r3gan-core in editable mode from that clone (ci/setup.sh), so afterwards run `bash ci/setup.sh` in
your own checkout again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {"build": ["bash", "ci/build_book.sh"], "test": ["bash", "ci/test.sh"]}


def retries(text: str) -> int | None:
    """The runner's count of retries in its output (None when it printed none: it did not get that far)."""
    found = re.findall(r"retries used: (\d+)", text)
    return sum(int(n) for n in found) if found else None


def run(kind: str, clone: Path, log_dir: Path, k: int) -> dict:
    """One timed command in `clone`; its record."""
    smoke_log = log_dir / f"{kind}{k}.smoke.log"
    env = {**os.environ, "R3GAN_SMOKE_LOG": str(smoke_log)}
    t0 = time.monotonic()
    proc = subprocess.run(COMMANDS[kind], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    text = proc.stdout + proc.stderr
    (log_dir / f"{kind}{k}.log").write_text(text)
    runner_text = smoke_log.read_text() if kind == "test" and smoke_log.exists() else text
    summary = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return {"kind": kind, "clone": k, "returncode": proc.returncode, "wall_s": round(wall, 1),
            "retries": retries(runner_text), "pytest": summary[-1] if summary else None,
            "killed_or_retried": [line for line in runner_text.splitlines() if "killed" in line][:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clones", type=int, default=5)
    parser.add_argument("--only", choices=sorted(COMMANDS), nargs="+", default=["build", "test"])
    parser.add_argument("--out", type=Path, required=True, help="the JSON record, rewritten after every command")
    args = parser.parse_args()
    args.out = args.out.resolve()  # the commands run in the clone: every path they are given is absolute
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    records: list[dict] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = args.out.with_suffix("")
    log_dir.mkdir(exist_ok=True)
    for k in range(args.clones):
        with tempfile.TemporaryDirectory(prefix="r3gan-fresh-") as tmp:
            clone = Path(tmp) / "r3gan-book"
            subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
            cloned = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()  # HEAD may move while the clones run
            for kind in args.only:
                record = {**run(kind, clone, log_dir, k), "commit": cloned}
                records.append(record)
                print(f"[fresh_clone_runs] clone {k + 1}/{args.clones} {kind}: rc {record['returncode']}, "
                      f"{record['wall_s']} s, retries {record['retries']}, {record['pytest'] or ''}", flush=True)
                args.out.write_text(json.dumps({"commit": commit, "date": time.strftime("%Y-%m-%d"),
                                                "runs": records}, indent=1))


if __name__ == "__main__":
    main()
