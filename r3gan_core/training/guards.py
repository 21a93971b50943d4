"""What keeps a user's run folder safe: one process per folder, no silent replacement, a checkpoint on Ctrl-C.

RunLock       an exclusive `flock` on out_dir/.lock, held for the whole run: a second run into the same folder
              refuses instead of interleaving its log with the first. The kernel drops the lock when its process
              dies, so a folder left by a killed run is taken over without a stale-lock dance.
existing_run  the files of an earlier run in out_dir; a fresh run refuses them unless told to replace them.
StopSignals   SIGINT / SIGTERM set a flag instead of killing the process mid-step; the loop checkpoints at the
              end of the current step and returns status "interrupted" (a second signal interrupts at once).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from .config import CHECKPOINT_NAME, LOG_NAME, SPECTRAL_NAME

LOCK_NAME = ".lock"


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (busy, holds another run, not a writable folder)."""


def existing_run(out_dir: Path) -> list[str]:
    """Names of the files of an earlier run in out_dir (checkpoint, log, spectra), [] if none."""
    return [name for name in (CHECKPOINT_NAME, LOG_NAME, SPECTRAL_NAME) if (out_dir / name).is_file()]


RUN_FILES = (CHECKPOINT_NAME, LOG_NAME, SPECTRAL_NAME, "config.json", "train_metrics.json")


def read_only_run_files(out_dir: Path) -> list[str]:
    """The files of a run in out_dir that are read-only (mode without write bits, or not writable by this process):
    a resumed or replaced run would write over them, so it refuses instead."""
    from ..report import is_read_only

    return [name for name in RUN_FILES if (out_dir / name).is_file() and is_read_only(out_dir / name)]


def check_folder(out_dir: Path) -> None:
    """Before any work: out_dir (or, when it does not exist yet, its nearest existing parent) must be a writable
    folder. Creates nothing."""
    where = out_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    if where == out_dir and not out_dir.is_dir():
        raise RunFolderError(f"out_dir {out_dir} is a file, not a folder: choose another --out-dir")
    if not where.is_dir():
        raise RunFolderError(f"out_dir {out_dir} cannot be created: {where} is a file, not a folder")
    if not os.access(where, os.W_OK | os.X_OK):
        what = f"out_dir {out_dir}" if where == out_dir else f"the folder {where}, which would hold out_dir {out_dir},"
        raise RunFolderError(f"{what} is not writable: choose another --out-dir or fix its permissions")


def usable_folder(out_dir: Path) -> None:
    """Create out_dir if needed; RunFolderError if it is a file or cannot be written (checked before any work)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"out_dir {out_dir} is a file, not a folder: choose another --out-dir")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"out_dir {out_dir} cannot be created: {err.strerror or err}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise RunFolderError(f"out_dir {out_dir} is not writable: choose another --out-dir or fix its permissions")


class RunLock:
    """An exclusive lock on out_dir for this process (POSIX flock; where fcntl is missing, no lock)."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; the run proceeds unlocked
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"cannot write the lock file {self.path}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(f"out_dir {self.path.parent} is in use by a running training process (pid "
                                 f"{holder}); wait for it to finish or choose another --out-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class StopSignals:
    """Turn SIGINT and SIGTERM into a request the training loop honours at the end of a step.

    Only installed in the main thread and when the run writes a checkpoint (enabled); the previous handlers come
    back on exit. A second signal while a stop is pending raises KeyboardInterrupt at once.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping without a checkpoint")
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> "StopSignals":
        if self.enabled:
            for name in self.SIGNALS:
                num = getattr(signal, name)
                self._previous[num] = signal.signal(num, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for num, handler in self._previous.items():
            signal.signal(num, handler)
        self._previous = {}
