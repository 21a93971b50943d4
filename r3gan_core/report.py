"""Provenance of every number the book shows, and atomic JSON writing.

Every chapter opens with `Provenance.start(chapter, profile)`, and every stored result and figure footer
carries its fields: profile, device, git commit, date, images seen, wall time.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def pick_device(prefer: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for 'auto'; or the named device ('cpu', 'cuda', 'cuda:1', 'mps'). ValueError for a
    name torch does not know or a device this machine does not have, naming the valid choices here."""
    if prefer != "auto":
        return _named_device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _named_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {name!r} is not a device name; valid choices: {DEVICE_CHOICES}") from None
    here = ["auto", "cpu"]
    if torch.cuda.is_available():
        here += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    here += ["mps"] if mps else []
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this machine has no CUDA GPU; valid choices here: {', '.join(here)}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: there is no such GPU; valid choices here: {', '.join(here)}")
    if device.type == "mps" and not mps:
        raise ValueError(f"device {name!r}: MPS is not available here; valid choices here: {', '.join(here)}")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported; valid choices: {DEVICE_CHOICES}")
    return device


def device_description(device: torch.device | str | None = None) -> str:
    """A human-readable name: the GPU model on CUDA, else 'cpu (N threads)' or 'mps'."""
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def git_commit(repo: Path | None = None) -> str:
    """The current commit hash (with '+dirty' when the tree has changes), or 'unknown' outside git."""
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def jsonable(value: Any) -> Any:
    """Turn numpy / torch scalars and arrays, tuples and paths into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)  # JSON has no NaN / inf; keep them visible as strings
    return value


def describe_settings(settings: dict[str, Any], width: int = 110) -> str:
    """Settings as a reader reads them, not as a Python dict: `key value` pairs joined by " · ", a nested group in
    parentheses, a long list as its length and range, wrapped at `width` characters."""
    def value_text(value: Any) -> str:
        if isinstance(value, dict):
            inner = "; ".join(f"{str(k).replace('_', ' ')} {value_text(v)}" for k, v in value.items())
            return f"({inner})" if inner else "none"
        if isinstance(value, (list, tuple)):
            if len(value) > 8 and all(isinstance(v, (int, float)) for v in value):
                return f"{len(value)} values from {min(value):g} to {max(value):g}"
            return ", ".join(value_text(v) for v in value) if value else "none"
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
            return f"{value:,}"
        return "none" if value is None else str(value)

    import textwrap

    text = " · ".join(f"{key.replace('_', ' ')} {value_text(value)}" for key, value in settings.items())
    return "\n".join(textwrap.wrap(text, width=width, subsequent_indent="  ", break_on_hyphens=False))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Write through a temporary file beside `path`; on success fsync and rename it over `path`.

    A reader, or a process killed at any moment, sees the previous file or the new one, never half a file
    (os.replace is atomic on POSIX and Windows). On an exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_read_only(path: str | os.PathLike) -> bool:
    """Whether an existing file is read-only: no write bit in its mode (0444), or this process may not write it.
    The mode decides even for root, who may write any file: a user who made a file 0444 meant it to stay."""
    path = Path(path)
    return not (path.stat().st_mode & 0o222) or not os.access(path, os.W_OK)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (atomic_open): a reader never sees a half-written file."""
    with atomic_open(path) as f:
        json.dump(jsonable(data), f, indent=2, sort_keys=True)
        f.write("\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


@dataclass
class Provenance:
    """How a result was produced. `finish()` stamps the wall time; `footer()` is a figure caption."""

    chapter: str
    profile: str
    device: str
    commit: str
    date: str
    images_seen: int | None = None
    steps: int | None = None
    wall_time_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _t0: float = field(default=0.0, repr=False)

    @classmethod
    def start(cls, chapter: str, profile: str, device: torch.device | str | None = None) -> "Provenance":
        p = cls(chapter=chapter, profile=profile, device=device_description(device), commit=git_commit(),
                date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        p._t0 = time.perf_counter()
        return p

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def count(self, images_seen: int | None = None, steps: int | None = None) -> "Provenance":
        """Record the work done so far, so that every later figure footer states it."""
        if images_seen is not None:
            self.images_seen = int(images_seen)
        if steps is not None:
            self.steps = int(steps)
        return self

    def finish(self, images_seen: int | None = None, steps: int | None = None, **extra: Any) -> "Provenance":
        self.count(images_seen, steps)
        self.extra.update(extra)
        self.wall_time_s = round(self.elapsed(), 2)
        return self

    def footer(self) -> str:
        parts = [f"profile={self.profile}", f"device={self.device}"]
        if self.steps is not None:
            parts.append(f"steps={self.steps:,}")
        if self.images_seen is not None:
            parts.append(f"images seen={self.images_seen:,}")
        if self.extra.get("seeds"):
            parts.append("seeds=" + ",".join(str(s) for s in self.extra["seeds"]))
        wall = self.wall_time_s if self.wall_time_s is not None else round(self.elapsed(), 1)
        parts.append(f"wall={wall:.1f}s")
        parts.append(f"commit={self.commit}")
        return " · ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_t0", None)
        return d

    def __str__(self) -> str:
        return f"[{self.chapter}] " + self.footer() + f" · {self.date}"


def write_metrics(path: str | os.PathLike | None, metrics: dict[str, Any], provenance: Provenance) -> dict:
    """Write a chapter's headline numbers with their provenance (atomically); path None = don't write."""
    record = {"provenance": provenance.as_dict(), "metrics": metrics}
    if path:
        write_json_atomic(path, record)
    return record
