"""The seal of a published results folder: a SHA-256 of every file in results/<chapter>/<profile>/, written when
the folder is published (ci/run_chapters.py --publish) into its seal.json.

Most stored numbers are re-derived from the stored weights (tests/test_stored_results.py): every final evaluation of
every run and every truncation-sweep row. Some cannot be: the intermediate evaluations (their generators are not
stored), the training curves and spectra (they need the training state at each step: retraining), and the timings.
The seal makes a hand edit of any of them, or of any other byte of the folder, fail the test: editing a number means
re-publishing, which retrains. JSON files are hashed in a canonical form (parsed, keys sorted, no spaces), so a
change of line endings or indentation is not an edit; every other file by its bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..report import write_json_atomic

SEAL_NAME = "seal.json"
ABOUT = ("SHA-256 of every file in this folder, written when it was published (r3gan_core.book.seal). "
         "tests/test_stored_results.py recomputes them, and re-derives from the stored generators every number "
         "that can be re-derived; a hand edit of any stored number fails it.")


def file_digest(path: Path) -> str:
    """SHA-256 of a file: of its canonical JSON for .json files, of its bytes otherwise."""
    if path.suffix == ".json":
        data = json.dumps(json.loads(path.read_text()), sort_keys=True, separators=(",", ":")).encode()
    else:
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """{relative path: digest} of every file under `folder` except the seal itself and hidden temporary files."""
    return {p.relative_to(folder).as_posix(): file_digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != SEAL_NAME and not p.name.startswith(".")}


def write_seal(folder: str | Path) -> Path:
    """Seal a published folder: seal.json with the digest of every file in it (replacing an older seal)."""
    folder = Path(folder)
    return write_json_atomic(folder / SEAL_NAME, {"about": ABOUT, "sha256": folder_digests(folder)})


def seal_problems(folder: str | Path) -> list[str]:
    """What differs from the folder's seal: files changed since it was sealed, missing, or added ([] = intact)."""
    folder = Path(folder)
    path = folder / SEAL_NAME
    if not path.is_file():
        return [f"{folder} has no {SEAL_NAME}: publish it with ci/run_chapters.py --publish"]
    sealed: dict[str, Any] = json.loads(path.read_text()).get("sha256", {})
    now = folder_digests(folder)
    problems = [f"{name} changed since it was published (edited by hand?)" for name in sorted(set(sealed) & set(now))
                if sealed[name] != now[name]]
    problems += [f"{name} is sealed but missing" for name in sorted(set(sealed) - set(now))]
    problems += [f"{name} was added after the folder was sealed" for name in sorted(set(now) - set(sealed))]
    return problems
