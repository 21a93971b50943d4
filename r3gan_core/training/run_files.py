"""What a run writes under its out_dir (main rank only), and reads back when it resumes.

checkpoint.pt (atomic, training.checkpoint), log.jsonl (one record per log interval), spectral.jsonl (sigma_0 of
every weight), samples/<images>.png (fixed-noise grids), config.json and train_metrics.json (atomic).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from torch import Tensor

from ..report import atomic_open, jsonable, write_json_atomic
from ..sampling import save_grid_png
from .config import CHECKPOINT_NAME, LOG_NAME, METRICS_NAME, SPECTRAL_NAME
from .guards import RunFolderError, RunLock, check_folder, existing_run, read_only_run_files, usable_folder


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a log.jsonl (NaN / inf were written as strings and come back as floats)."""
    return [{k: (float(v) if v in ("nan", "inf", "-inf") else v) for k, v in rec.items()} for rec in _read_jsonl(path)]


def _read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file. A torn last line (power loss, full disk: the file is appended) is dropped
    with a warning, since it lies after the last checkpoint anyway; a damaged line before it names its line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if line.strip()]
    records = []
    for k, (number, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if k == len(lines) - 1:
                print(f"[r3gan] {path}: dropped a torn last record (line {number}: {err.msg}); it was written "
                      "after the last checkpoint", file=sys.stderr)
                break
            raise ValueError(f"{path} line {number} is damaged ({err.msg}); the records after it cannot be "
                             "trusted: restore the file or start over with --overwrite") from None
    return records


def _rewrite_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    if not path.exists() and not records:
        return
    with atomic_open(path) as f:
        f.write("".join(json.dumps(jsonable(r)) + "\n" for r in records))


class RunFiles:
    """The files of one run. out_dir None = write nothing; on ranks other than the main one every write is skipped."""

    def __init__(self, out_dir: str | Path | None, is_main: bool):
        self.out_dir = Path(out_dir) if out_dir else None
        self.is_main = is_main
        self.checkpoint = self.out_dir / CHECKPOINT_NAME if self.out_dir else None
        self.log = self.out_dir / LOG_NAME if self.out_dir else None
        self.lock: RunLock | None = None  # held between claim() and release()

    @property
    def writes(self) -> bool:
        return self.is_main and self.out_dir is not None

    def check(self) -> None:
        """Before data and networks load: out_dir is (or can become) a writable folder. Writes nothing."""
        if self.writes:
            check_folder(self.out_dir)

    def claim(self, fresh: bool, overwrite: bool) -> None:
        """Create out_dir and lock it for this process; a fresh run refuses a folder that holds another run unless
        `overwrite` (RunFolderError names --resume and --overwrite). Release with `release()`."""
        if not self.writes:
            return
        usable_folder(self.out_dir)
        kept = read_only_run_files(self.out_dir) if (not fresh or overwrite) else []
        if kept:
            raise RunFolderError(f"out_dir {self.out_dir} holds read-only run files ({', '.join(kept)}), which "
                                 f"{'resuming' if not fresh else '--overwrite'} would replace: make them writable "
                                 f"(chmod u+w) to continue, or copy the run and train in the copy")
        self.lock = RunLock(self.out_dir).acquire()
        found = existing_run(self.out_dir)
        if fresh and found and not overwrite:
            self.release()
            raise RunFolderError(f"out_dir {self.out_dir} already holds a run ({', '.join(found)}): pass --resume "
                                 "to continue it, or --overwrite to start over (replaces those files); "
                                 "in Python: resume='auto' or overwrite=True")

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def prepare(self, fresh: bool, config: dict[str, Any]) -> None:
        """Create out_dir, drop temporary files a killed process left; a fresh run replaces an earlier run's files."""
        if not self.writes:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.out_dir.glob(f".{CHECKPOINT_NAME}.*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        if fresh:
            for old in [self.log, self.out_dir / SPECTRAL_NAME, *self.out_dir.glob("samples/*.png")]:
                old.unlink(missing_ok=True)
        write_json_atomic(self.out_dir / "config.json", config)

    def history(self, images_seen: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(log records, spectral records) up to `images_seen`; the main rank drops a killed run's later tail."""
        if self.out_dir is None:
            return [], []
        records = [r for r in read_log(self.log) if r["images_seen"] <= images_seen]
        spectral = [r for r in _read_jsonl(self.out_dir / SPECTRAL_NAME) if r["images_seen"] <= images_seen]
        if self.is_main:
            _rewrite_jsonl(self.log, records)
            _rewrite_jsonl(self.out_dir / SPECTRAL_NAME, spectral)
        return records, spectral

    def append(self, name: str, record: dict[str, Any]) -> None:
        """One JSON line appended to LOG_NAME or SPECTRAL_NAME."""
        if self.writes:
            with open(self.out_dir / name, "a") as f:
                f.write(json.dumps(jsonable(record)) + "\n")

    def save_samples(self, images_seen: int, grid: Tensor) -> None:
        if self.writes:
            save_grid_png(grid, self.out_dir / "samples" / f"{images_seen:010d}.png")

    def write_metrics(self, metrics: dict[str, Any]) -> Path | None:
        return write_json_atomic(self.out_dir / METRICS_NAME, metrics) if self.writes else None
