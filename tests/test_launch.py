"""Running a chapter from its page: the install cell every executed chapter starts with, the launch buttons that
appear once _config.yml names the repository, and the branch ci/publish_notebooks.py fills for them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_chapters = load_script("run_chapters")
publish_notebooks = load_script("publish_notebooks")


def run_install_cell(source: str | None, installed: bool, monkeypatch) -> list[list[str]]:
    """Execute the install cell with r3gan_core present or missing; return the pip commands it ran."""
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, *a, **k: calls.append(cmd) or 0)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if installed else None)
    exec(run_chapters.install_cell(source), {})
    return calls


def test_the_install_cell_installs_from_the_source_only_where_r3gan_core_is_missing(monkeypatch):
    source = "r3gan-core[book] @ git+https://example.org/owner/r3gan-book@abc123"
    assert run_install_cell(source, installed=True, monkeypatch=monkeypatch) == []
    calls = run_install_cell(source, installed=False, monkeypatch=monkeypatch)
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", source]]


def test_the_install_cell_without_a_repository_says_how_to_install(monkeypatch):
    assert run_install_cell(None, installed=True, monkeypatch=monkeypatch) == []
    with pytest.raises(ModuleNotFoundError, match=r"repository\.url.*pip install -e"):
        run_install_cell(None, installed=False, monkeypatch=monkeypatch)


def test_install_source_comes_from_the_config_pinned_to_the_commit(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text(yaml.safe_dump({"repository": {"url": ""}}))
    assert run_chapters.install_source(config) is None
    config.write_text(yaml.safe_dump({"repository": {"url": "https://github.com/owner/r3gan-book/"}}))
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run_chapters.install_source(config) == f"r3gan-core[book] @ git+https://github.com/owner/r3gan-book@{head}"
    # the book's own config names the repository in exactly that key, empty until it is filled in
    assert "url" in yaml.safe_load((REPO / "_config.yml").read_text())["repository"]


def test_to_notebook_puts_the_install_cell_first_and_failing_cell_numbers_past_it(tmp_path):
    source = tmp_path / "01_demo.py"
    source.write_text('# %% [markdown]\n# # Demo\n\n# %% tags=["parameters"]\nprofile = "smoke"\n\n# %%\nx = 1\n')
    target = tmp_path / "demo.ipynb"
    run_chapters.to_notebook(source, target)
    cells = json.loads(target.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert run_chapters.INSTALL_TAG in code[0]["metadata"]["tags"] and "remove-cell" in code[0]["metadata"]["tags"]
    assert "parameters" in code[1]["metadata"]["tags"]
    code[2]["outputs"] = [{"output_type": "error", "ename": "NameError", "evalue": "boom", "traceback": []}]
    target.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert run_chapters.failing_cell(target).startswith("cell 2 (x = 1)")  # markdown 0, parameters 1, x = 1 is 2


def write_book(root: Path, url: str, hub: str) -> None:
    """A two-page book with the project's _config.yml, the repository URL and hub filled in."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["repository"]["url"] = url
    config["launch_buttons"]["jupyterhub_url"] = hub
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/executed/demo/demo\n")
    shutil.copytree(REPO / "book" / "_static", root / "book" / "_static")
    (root / "book" / "intro.md").write_text("# Intro\n\nA page.\n")
    page = root / "book" / "executed" / "demo"
    page.mkdir(parents=True)
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Demo"},
                    {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "print(1)",
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}]}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (page / "demo.ipynb").write_text(json.dumps(nb))


def test_launch_buttons_appear_once_the_repository_url_is_filled_in(tmp_path):
    write_book(tmp_path, "https://github.com/example-owner/r3gan-book", "https://hub.example.edu")
    proc = subprocess.run([sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
                           str(tmp_path), "--builder", "html"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    html = (tmp_path / "_build" / "html" / "book" / "executed" / "demo" / "demo.html").read_text()
    branch = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["branch"]
    path = "book/executed/demo/demo.ipynb"
    assert f"https://colab.research.google.com/github/example-owner/r3gan-book/blob/{branch}/{path}" in html
    assert "https://hub.example.edu/hub/user-redirect/git-pull?" in html and f"branch={branch}" in html


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_publish_notebooks_fills_the_branch_and_touches_nothing_else(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    (repo / "README.md").write_text("book\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "first")
    executed = repo / "book" / "executed"
    (executed / "demo").mkdir(parents=True)
    (executed / "demo" / "demo.ipynb").write_text('{"cells": []}\n')
    (executed / "demo" / "demo.source.ipynb").write_text("not a chapter\n")
    head, status = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")

    commit = publish_notebooks.publish(executed, "executed", repo)
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == status
    assert git(repo, "rev-parse", "executed") == commit and git(repo, "rev-parse", f"{commit}^") == head
    assert git(repo, "show", "executed:book/executed/demo/demo.ipynb") == '{"cells": []}'
    assert git(repo, "show", "executed:README.md") == "book"
    assert "demo.source.ipynb" not in git(repo, "ls-tree", "-r", "--name-only", "executed")
    publish_notebooks.publish(executed, "executed", repo)  # its own branch: refreshed

    with pytest.raises(SystemExit, match="checked-out branch"):
        publish_notebooks.publish(executed, "main", repo)
    git(repo, "branch", "work")
    with pytest.raises(SystemExit, match="not made by this script"):
        publish_notebooks.publish(executed, "work", repo)
    assert git(repo, "rev-parse", "work") == head
