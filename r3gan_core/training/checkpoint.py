"""Atomic checkpoints and the random-number state that makes `resume` exact.

A checkpoint is one `torch.save` dictionary written to a temporary file in the destination folder and then
renamed over the destination (`os.replace` is atomic on POSIX and Windows): a process killed at any moment
leaves either the previous checkpoint or the new one, never half a file.

Loading uses `weights_only=False` because the RNG states are Python and NumPy objects: load only checkpoints
you wrote yourself.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..report import atomic_open

CHECKPOINT_FORMAT = "r3gan-checkpoint-1"


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save `obj` to `path` through a temporary file beside it, fsync'd, then renamed (report.atomic_open)."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_atomic`; ValueError if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated, empty, text, another pickle: torch raises many kinds
        others = sorted(str(p) for p in path.parent.glob("*.pt") if p != path)
        alternative = (f"other checkpoints in that folder: {', '.join(others)}" if others else
                       "there is no other checkpoint in that folder; start over with --overwrite")
        raise ValueError(f"checkpoint {path} is damaged and cannot be read ({type(err).__name__}: "
                         f"{str(err)[:120]}); {alternative}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an r3gan checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return ckpt


# What each use of a checkpoint reads from it.
GENERATOR_KEYS = ("train_config",)  # plus the generator asked for (G_ema or G)
RESUME_KEYS = ("train_config", "recipe", "images_seen", "step", "G", "D", "G_ema", "opt_G", "opt_D", "pl_mean",
               "batch_stream", "rng")


def require_keys(ckpt: dict[str, Any], keys: tuple[str, ...], path: str | os.PathLike, purpose: str) -> None:
    """ValueError naming the entries `purpose` needs that the checkpoint lacks (a file written by other code, or
    edited): a clear message instead of a KeyError."""
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path} cannot be used to {purpose}: it has no {', '.join(missing)} "
                         f"(it holds {', '.join(sorted(map(str, ckpt))) or 'nothing'}); it was not written by "
                         "r3gan train, or was damaged: use another checkpoint or start over with --overwrite")


def load_weights(module: torch.nn.Module, state: Any, name: str, path: str | os.PathLike, built: str) -> None:
    """module.load_state_dict(state), with a ValueError naming the first mismatch when the checkpoint's shapes or
    names do not fit the module this code builds (`built` says which: e.g. a preset's widths changed since)."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        problems = [p for line in lines[1:] for p in line.rstrip(".").split(". ") if p] or lines[:1]
        detail = problems[0] + (f"; {len(problems) - 1} more like it" if len(problems) > 1 else "")
        raise ValueError(f"checkpoint {path}: its {name} does not fit the networks this code builds for {built} "
                         f"({detail}); the checkpoint was written by a version whose network defaults differ: "
                         "sample or resume it with that version, or pass --network overrides that rebuild its "
                         "shapes") from None


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and every CUDA device) global generator states of this process."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (device states only where that device exists now)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "mps" in state and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"].cpu())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
