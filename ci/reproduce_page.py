#!/usr/bin/env python
"""Write the book's "Reproduce this book" page from what is stored, never by hand.

    python ci/reproduce_page.py [--results results] [--executed book/executed] [--out book/reproduce.md]

Sources: results/<chapter>/<profile>/metrics.json (the stored findings and their provenance: device, commit,
date, wall time of the training, images seen) and the runner's output folder (its timings.json, {chapter:
{profile, wall_s}}, and each executed chapter's metrics.json provenance). `ci/build_book.sh` runs it after the
chapters and before Jupyter Book; the page (book/reproduce.md) is generated, so git ignores it.

Each chapter gets one row per source of numbers: its stored results (one row per stored profile), or, for a
chapter without stored results of the profile the build executed, the build's own run (profile and runner wall
time). Each row names the one command that regenerates it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from r3gan_core.book.profiles import book_profile, chapter_names  # noqa: E402

STORED_PROFILES = ("cpu", "gpu")  # what --publish stores under results/<chapter>/<profile>/


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def chapter_title(name: str, notebooks: Path = REPO / "notebooks") -> str:
    """The chapter's first heading (`# # Title` in notebooks/NN_<name>.py), else its name."""
    for source in sorted(notebooks.glob(f"[0-9][0-9]_{name}.py")):
        found = re.search(r"^# # (.+)$", source.read_text(), re.MULTILINE)
        if found:
            return found.group(1).strip()
    return name


def wall(seconds: float | None) -> str:
    """12.3 s, 4 min 05 s, 1 h 02 min; '–' when unknown."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def command(name: str, profile: str, publish: bool) -> str:
    return (f"python ci/run_chapters.py --profile {profile} --only {name} --out runs/book"
            + (" --publish" if publish else ""))


def recipe_rows(results: Path, name: str, built_profile: str | None) -> list[dict[str, Any]]:
    """One row per phase of a config's stored recipe sweep (results/recipes/<chapter>/<profile>/, ci/run_recipes.py):
    the sweep, the tuned seeds, the long runs, each with the command that made it."""
    rows = []
    for profile in STORED_PROFILES:
        record = read_json(results / "recipes" / name / profile / "metrics.json")
        for phase, prov in ((record or {}).get("metrics", {}).get("phases") or {}).items():
            rows.append({"chapter": name, "title": f"{chapter_title(name)}: recipe {phase}", "profile": profile,
                         "source": "stored", "shown": profile == built_profile, "device": prov.get("device"),
                         "wall_s": prov.get("measured_s"), "images_seen": prov.get("images_seen"),
                         "commit": prov.get("commit"), "date": prov.get("date"), "command": prov.get("command")})
    return rows


def collect(results: Path, executed: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (chapter, source of its numbers), in book order. Keys: chapter, title, profile, source
    ('stored' or 'build'), shown (whether the book's page shows it), device, wall_s, images_seen, commit, date,
    command. The page prints all but images_seen."""
    timings = read_json(executed / "timings.json") or {}
    rows = []
    for name in names or list(chapter_names()):
        run = timings.get(name)
        built_profile = run["profile"] if run else None
        stored = {p: read_json(results / name / p / "metrics.json") for p in STORED_PROFILES}
        stored = {p: record for p, record in stored.items() if record is not None}
        if run is None and not stored:
            continue
        for profile, record in stored.items():
            prov = record.get("provenance", {})
            rows.append({"chapter": name, "title": chapter_title(name), "profile": profile, "source": "stored",
                         "shown": profile == built_profile, "device": prov.get("device"),
                         "wall_s": prov.get("wall_time_s"), "images_seen": prov.get("images_seen"),
                         "commit": prov.get("commit"), "date": prov.get("date"),
                         "command": command(name, profile, publish=True)})
        rows += recipe_rows(results, name, built_profile)
        if run is not None and built_profile not in stored:
            prov = (read_json(executed / name / "metrics.json") or {}).get("provenance", {})
            rows.append({"chapter": name, "title": chapter_title(name), "profile": built_profile, "source": "build",
                         "shown": True, "device": prov.get("device"), "wall_s": run.get("wall_s"),
                         "images_seen": prov.get("images_seen"), "commit": prov.get("commit"),
                         "date": prov.get("date"), "command": command(name, built_profile, publish=False)})
    return rows


NBSP = "\u00a0"  # keeps "14.6 s", "cpu (2 threads)" and a date on one line of a narrow table column


def _cell(value: Any, keep_together: bool = False) -> str:
    if value in (None, ""):
        return "–"
    text = str(value).replace("|", "\\|")
    return text.replace(" ", NBSP) if keep_together else text


def render(rows: list[dict[str, Any]], timings: dict[str, Any]) -> str:
    """The page, as MyST Markdown."""
    lines = [
        "# Reproduce this book",
        "",
        "This page is generated when the book is built (`ci/reproduce_page.py`), from the stored results under "
        "`results/` and the chapter runner's timings; nobody types its numbers. Each chapter's numbers come either "
        "from **stored results** (trained once in the `cpu` or `gpu` profile, published with `--publish`, and "
        "rendered by the book without retraining) or from the **book build** itself (executed while the book was "
        "built; for those the wall time is the runner's, the whole chapter).",
        "",
        "The whole book, every chapter in its book profile: `bash ci/build_book.sh` (add `PROFILE=smoke` for the "
        "seconds-long smoke run that only shows that the code runs).",
        "",
    ]
    smoke = sorted(n for n, t in timings.items() if t.get("profile") == "smoke")
    if smoke:
        lines += [":::{note}",
                  f"This build executed {len(smoke)} chapter(s) in the `smoke` profile ({', '.join(smoke)}): the "
                  "numbers of those pages only show that the code runs; they are not findings.", ":::", ""]
    if timings:
        total = sum(float(t.get("wall_s") or 0) for t in timings.values())
        lines += [f"The chapter runner spent {wall(total)} on the {len(timings)} chapters of this build.", ""]
    lines += ["| chapter | profile: numbers from | device | wall time | commit | date (UTC) |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        source = ("stored results" if r["source"] == "stored" else "this build") + ("" if r["shown"] else
                                                                                     " (not on the page)")
        title = f"[{r['title']}](executed/{r['chapter']}/{r['chapter']}.ipynb)"
        date = (r["date"] or "").removesuffix(" UTC").replace("-", "\u2011")  # wraps before the time only
        lines.append(f"| {_cell(title)} | `{r['profile']}`: {source} | {_cell(r['device'])} "
                     f"| {_cell(wall(r['wall_s']), True)} | {_cell(r['commit'])} | {_cell(date)} |")
    if not rows:
        lines.append("| (no chapter has been executed and nothing is stored) | | | | | |")
    lines += ["", "## The command behind each row", "",
              "Run from the repository root. A killed run resumes when the same command runs again. `--publish` "
              "trains and stores the results under `results/<chapter>/<profile>/`, which the book then renders.",
              "", "```bash"]
    lines += [r["command"] for r in rows]
    lines += ["```", ""]
    book = {n: book_profile(n) for n in dict.fromkeys(r["chapter"] for r in rows)}
    lines += ["Each chapter's book profile (what `bash ci/build_book.sh` executes): "
              + ", ".join(f"{n} `{p}`" for n, p in book.items()) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results", help="stored results")
    parser.add_argument("--executed", type=Path, default=REPO / "book" / "executed", help="the runner's --out")
    parser.add_argument("--out", type=Path, default=REPO / "book" / "reproduce.md")
    args = parser.parse_args(argv)
    rows = collect(args.results, args.executed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(rows, read_json(args.executed / "timings.json") or {}))
    print(f"[reproduce_page] {len(rows)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
