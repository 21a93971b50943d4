#!/usr/bin/env python
"""Commit the executed chapters to the branch the book's launch buttons open.

    python ci/publish_notebooks.py [--executed book/executed] [--branch NAME]

The rendered pages come from the notebooks `ci/run_chapters.py` executed into book/executed/, which main never
commits (its chapters are jupytext .py files). Colab and JupyterHub open a notebook from the repository, so the
launch buttons (_config.yml: `launch_buttons`) point at `repository.branch`, and this script fills that branch: one
commit whose tree is HEAD's plus every book/executed/<chapter>/<chapter>.ipynb, with HEAD as its parent. It works
on a private index (GIT_INDEX_FILE), so neither the working tree, the real index nor the current branch changes.
Push the branch with `git push origin <branch>`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MESSAGE_START = "Executed chapters of"  # how this script's commits begin; it overwrites no branch whose tip is not one


def config_branch(config: Path = REPO / "_config.yml") -> str:
    """The branch the launch buttons open (_config.yml: repository.branch)."""
    import yaml

    branch = ((yaml.safe_load(config.read_text()) or {}).get("repository") or {}).get("branch")
    if not branch:
        raise SystemExit(f"{config} names no repository.branch for the launch buttons to open")
    return str(branch)


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in `repo`; its stdout, stripped. A failure exits naming the command and git's message."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def executed_notebooks(executed: Path) -> list[Path]:
    """book/executed/<chapter>/<chapter>.ipynb of every executed chapter."""
    found = sorted(p for p in executed.glob("*/*.ipynb") if p.stem == p.parent.name)
    if not found:
        raise SystemExit(f"no executed chapters in {executed}: run `bash ci/build_book.sh` first")
    return found


def publish(executed: Path, branch: str, repo: Path = REPO) -> str:
    """Write the commit (HEAD's tree + the executed notebooks) to refs/heads/<branch>; return its hash. Refuses
    the checked-out branch, and a branch whose last commit this script did not make."""
    if branch == git(repo, "rev-parse", "--abbrev-ref", "HEAD"):
        raise SystemExit(f"refusing to overwrite the checked-out branch {branch!r}; name another with --branch")
    existing = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%s", f"refs/heads/{branch}", "--"],
                              capture_output=True, text=True)
    if existing.returncode == 0 and not existing.stdout.startswith(MESSAGE_START):
        raise SystemExit(f"refusing to overwrite branch {branch!r}: its last commit was not made by this script "
                         f"({existing.stdout.strip()[:60]!r}); name another with --branch")
    head = git(repo, "rev-parse", "HEAD")
    notebooks = executed_notebooks(executed)
    if not executed.resolve().is_relative_to(repo.resolve()):
        raise SystemExit(f"{executed} is outside the repository {repo}: the launch buttons open paths in it")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", head, env=env)
        for nb in notebooks:
            blob = git(repo, "hash-object", "-w", str(nb))
            path = nb.resolve().relative_to(repo.resolve()).as_posix()
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env)
    commit = git(repo, "commit-tree", tree, "-p", head, "-m",
                 f"{MESSAGE_START} {head[:12]} for the launch buttons ({len(notebooks)} notebooks)")
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executed", type=Path, default=REPO / "book" / "executed", help="the executed chapters")
    parser.add_argument("--branch", default=None, help="the branch to fill (default: _config.yml repository.branch)")
    args = parser.parse_args(argv)
    branch = args.branch or config_branch()
    commit = publish(args.executed.resolve(), branch)
    print(f"[publish_notebooks] {branch} -> {commit[:12]}; push it with: git push origin {branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
