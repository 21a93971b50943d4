"""The rendered book as a reader meets it: nothing loaded from another host, math served from the build, no
parameters cells, exercises in one form, readable tables, and the generated "Reproduce this book" page."""

from __future__ import annotations

import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------
# The HTML of a built book (the smoke chapters, built once per session by the smoke_html fixture).
# ---------------------------------------------------------------------------------------------------------
LOADING = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "source": ("src", "srcset"),
           "audio": ("src",), "video": ("src", "poster"), "embed": ("src",), "object": ("data",)}
LINK_LOADS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut", "manifest"}


def is_external(url: str) -> bool:
    """A URL that names another host (http(s), protocol-relative, ws)."""
    return bool(re.match(r"^\s*(https?:|wss?:)?//", url, re.IGNORECASE))


class ExternalLoads(HTMLParser):
    """Collects every URL a page would load from another host: script/img/iframe/... sources and <link>s that
    load something (stylesheets, preloads, icons). Plain <a href> links are not loads."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        names = LOADING.get(tag, ())
        if tag == "link" and LINK_LOADS & set((values.get("rel") or "").lower().split()):
            names = ("href",)
        for name in names:
            for url in re.split(r",\s*", values.get(name) or ""):
                if url and is_external(url.split()[0]):
                    self.found.append(f"<{tag} {name}={url}>")


def external_loads(html: str) -> list[str]:
    parser = ExternalLoads()
    parser.feed(html)
    return parser.found


def test_external_load_finder_tells_loads_from_links():
    page = ('<script src="https://cdn.example.org/x.js"></script><script src="../_static/local.js"></script>'
            '<link rel="stylesheet" href="//fonts.example.org/a.css"><link rel="canonical" href="https://x.org/">'
            '<a href="https://jupytext.readthedocs.io">docs</a><img src="data:image/png;base64,AAAA">'
            '<img srcset="a.png 1x, https://x.org/b.png 2x">')
    assert external_loads(page) == ["<script src=https://cdn.example.org/x.js>",
                                    "<link href=//fonts.example.org/a.css>", "<img srcset=https://x.org/b.png 2x>"]


def _pages(html_dir: Path) -> list[Path]:
    return [p for p in html_dir.rglob("*.html") if "_static" not in p.parts]


@pytest.mark.chapters
def test_no_page_loads_a_script_stylesheet_font_or_image_from_another_host(smoke_html):
    pages = _pages(smoke_html)
    assert len(pages) >= 12
    found = {p.relative_to(smoke_html).as_posix(): external_loads(p.read_text()) for p in pages}
    assert not {page: urls for page, urls in found.items() if urls}
    css_urls = {css.name: re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])((?:https?:)?//[^'\")\s]+)", css.read_text())
                for css in (smoke_html / "_static").rglob("*.css")}
    assert not {name: urls for name, urls in css_urls.items() if urls}


@pytest.mark.chapters
def test_math_is_typeset_by_mathjax_served_from_the_build(smoke_html):
    page = (smoke_html / "book" / "executed" / "dirac_gan" / "dirac_gan.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, re.IGNORECASE)
    assert scripts and all(not is_external(s) for s in scripts), scripts
    served = (smoke_html / "book" / "executed" / "dirac_gan" / scripts[0].split("?")[0]).resolve()
    assert served.is_file() and served.stat().st_size > 100_000  # MathJax 3's combined tex-chtml component
    assert (served.parent / "output" / "chtml" / "fonts" / "woff-v2").is_dir()  # its fonts, beside it


@pytest.mark.chapters
def test_chapter_pages_hide_the_parameters_and_keep_the_provenance(smoke_book, smoke_html):
    for name in sorted(p.name for p in smoke_book.iterdir() if (p / f"{p.name}.ipynb").exists()):
        page = (smoke_html / "book" / "executed" / name / f"{name}.html").read_text()
        text = re.sub(r"<[^>]+>", "", page)
        assert "metrics_path = " not in text and 'profile = "smoke"' not in text, f"{name}: a parameters cell shows"
        assert f"[{name}] profile=smoke" in text, f"{name}: the provenance line is missing"
        assert "Show code cell source" in page, f"{name}: the setup cell is not collapsed"
        assert "widget-state+json" not in page and "require.min.js" not in page
        # _config.yml names no repository yet, so no launch button points anywhere (tests/test_launch.py fills it)
        assert "colab.research.google.com" not in page


@pytest.mark.chapters
def test_every_chapter_has_exercises_in_one_form_with_collapsed_solutions(smoke_book, smoke_html):
    for name in sorted(p.name for p in smoke_book.iterdir() if (p / f"{p.name}.ipynb").exists()):
        page = (smoke_html / "book" / "executed" / name / f"{name}.html").read_text()
        assert re.search(r'class="exercise admonition"', page), f"{name}: no exercise"
        solutions = re.findall(r'<div class="solution([^"]*)"', page)
        assert solutions, f"{name}: no solution"
        assert all("dropdown" in classes for classes in solutions), f"{name}: a solution is not collapsed"


@pytest.mark.chapters
def test_tables_have_readable_headers_and_no_python_dicts(smoke_html):
    page = (smoke_html / "book" / "executed" / "roadmap" / "roadmap.html").read_text()
    assert "{&#39;config&#39;" not in page and "{'config'" not in page  # parameter_table() is a table, not dicts
    assert page.count('class="r3gan-table"') >= 2
    # What a reader sees: code, an explorable's scripts and its data attribute (metric keys for the browser check)
    # are not text on the page.
    shown = re.sub(r'<pre.*?</pre>|<code.*?</code>|<script.*?</script>|data-settings="[^"]*"', "", page, flags=re.S)
    assert "FD\u2011digits ↓" in page and "fd_digits" not in shown


@pytest.mark.chapters
def test_reproduce_page_lists_every_executed_chapter(smoke_book, smoke_html):
    text = re.sub(r"<[^>]+>", "", (smoke_html / "book" / "reproduce.html").read_text())  # the commands are highlighted
    for name in json.loads((smoke_book / "timings.json").read_text()):
        assert f"python ci/run_chapters.py --profile smoke --only {name} --out runs/book" in text, name


@pytest.mark.chapters
def test_every_page_passes_the_browser_check(smoke_html, tmp_path):
    """ci/check_book.py in headless Chromium: no request to another host, no JavaScript error, math typeset,
    images loaded, tables inside the text column. Skipped where no Chromium is installed."""
    check = _load("check_book")
    if check.find_browser() is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    pytest.importorskip("playwright")
    assert check.main(["--html", str(smoke_html), "--shots", str(tmp_path / "shots")]) == 0
    assert len(list((tmp_path / "shots").glob("*.png"))) >= 12
    # Every explorable was found, moved and compared with the library (a screenshot after each move).
    from r3gan_core.book import explorables

    moved = {shot.stem.rsplit("__", 1)[-1].rsplit("_", 1)[0] for shot in (tmp_path / "shots").glob("*__*_[12].png")}
    assert moved == set(explorables.INTERACTIONS), moved


# ---------------------------------------------------------------------------------------------------------
# The pieces, without a build.
# ---------------------------------------------------------------------------------------------------------
def _provenance(chapter: str, profile: str, **fields) -> dict:
    return {"chapter": chapter, "profile": profile, "device": "cpu (2 threads)", "commit": "abc123def456",
            "date": "2026-11-20 10:00 UTC", "images_seen": 96_000, "steps": 1500, "wall_time_s": 3725.0, **fields}


def test_reproduce_page_from_a_fake_results_folder(tmp_path):
    page = _load("reproduce_page")
    results, executed = tmp_path / "results", tmp_path / "executed"
    for chapter, profile in (("config_a", "cpu"), ("biggan", "gpu")):
        (results / chapter / profile).mkdir(parents=True)
        device = "NVIDIA H100" if profile == "gpu" else "cpu (2 threads)"
        (results / chapter / profile / "metrics.json").write_text(json.dumps(
            {"provenance": _provenance(chapter, profile, device=device), "metrics": {}}))
    (executed / "dirac_gan").mkdir(parents=True)
    (executed / "dirac_gan" / "metrics.json").write_text(json.dumps(
        {"provenance": _provenance("dirac_gan", "cpu", commit="fedcba987654", wall_time_s=12.0), "metrics": {}}))
    timings = {"dirac_gan": {"profile": "cpu", "wall_s": 14.2}, "config_a": {"profile": "cpu", "wall_s": 31.0},
               "biggan": {"profile": "smoke", "wall_s": 83.0}}
    (executed / "timings.json").write_text(json.dumps(timings))

    rows = page.collect(results, executed)
    got = [(r["chapter"], r["profile"], r["source"], r["shown"]) for r in rows]
    assert got == [("dirac_gan", "cpu", "build", True), ("config_a", "cpu", "stored", True),
                   ("biggan", "gpu", "stored", False), ("biggan", "smoke", "build", True)]  # book order
    by_key = {(r["chapter"], r["profile"]): r for r in rows}
    assert by_key[("config_a", "cpu")]["wall_s"] == 3725.0  # the training's wall time, from its provenance
    assert by_key[("dirac_gan", "cpu")]["wall_s"] == 14.2  # the runner's wall time for a chapter it executed
    assert by_key[("dirac_gan", "cpu")]["commit"] == "fedcba987654"

    text = page.render(rows, timings)
    assert text.startswith("# Reproduce this book")
    text = text.replace("\u00a0", " ").replace("\u2011", "-")  # no-break spaces and hyphens keep cells whole
    assert "| `cpu`: stored results | cpu (2 threads) | 1 h 02 min | abc123def456 | 2026-11-20 10:00 |" in text
    assert "| `gpu`: stored results (not on the page) | NVIDIA H100 |" in text
    assert "| `cpu`: this build | cpu (2 threads) | 14.2 s | fedcba987654 |" in text
    assert "python ci/run_chapters.py --profile cpu --only config_a --out runs/book --publish" in text
    assert "python ci/run_chapters.py --profile gpu --only biggan --out runs/book --publish" in text
    assert "python ci/run_chapters.py --profile cpu --only dirac_gan --out runs/book\n" in text
    assert "python ci/run_chapters.py --profile smoke --only biggan --out runs/book\n" in text
    assert "toy_2d" not in text  # neither executed nor stored
    assert "1 chapter(s) in the `smoke` profile (biggan)" in text
    assert "[Config A: StyleGAN2, the starting point](executed/config_a/config_a.ipynb)" in text

    out = tmp_path / "book" / "reproduce.md"
    assert page.main(["--results", str(results), "--executed", str(executed), "--out", str(out)]) == 0
    assert out.read_text().replace("\u00a0", " ").replace("\u2011", "-") == text


def test_reproduce_page_without_anything_executed_or_stored(tmp_path):
    page = _load("reproduce_page")
    assert page.collect(tmp_path / "results", tmp_path / "executed") == []
    assert "no chapter has been executed" in page.render([], {})
    assert [page.wall(s) for s in (None, 12.34, 245, 3725)] == ["–", "12.3 s", "4 min 05 s", "1 h 02 min"]


def test_runner_tidies_an_executed_notebook_for_the_book(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {}}}}
    params = nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["injected-parameters"]})
    training = nbformat.v4.new_code_cell("train()", outputs=[
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                     "text/plain": "runs:   0%|          | 0/1"}),
        nbformat.v4.new_output("stream", name="stdout", text="done\n")])
    nb.cells = [params, injected, training]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    _load("run_chapters").tidy_for_book(path)
    tidy = nbformat.read(path, as_version=4)
    assert tidy.cells[1].metadata.tags == ["injected-parameters", "remove-cell"]
    assert tidy.cells[0].metadata.tags == ["parameters", "remove-cell"]
    assert [o.output_type for o in tidy.cells[2].outputs] == ["stream"]
    assert "widgets" not in tidy.metadata


def test_every_chapter_source_hides_its_parameters_and_uses_sphinx_exercise():
    for source in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py")):
        text = source.read_text()
        assert '# %% tags=["parameters"]' in text, source.name
        assert "# ## Exercises" in text and "# :::{exercise}" in text, source.name
        assert "admonition} Solution" not in text and 'tags=["hide-cell"]' not in text, source.name
        starts, ends = text.count(":::{solution-start}"), text.count(":::{solution-end}")
        assert starts == ends, f"{source.name}: {starts} solution-start, {ends} solution-end"
        for block in re.findall(r":::\{solution(?:-start)?\} [\w-]+\n# (:class: \w+)", text):
            assert block == ":class: dropdown", source.name


@pytest.mark.parametrize("debris", ["Provenance(chapter='toy_2d', profile='cpu')", "{'r1': 1.0, 'r2': 1.0}"])
def test_the_browser_check_fails_a_page_that_prints_a_raw_repr(tmp_path, capsys, debris):
    """The debris rule matches a dataclass repr and a dict repr in an output, also inside a collapsed solution."""
    check = _load("check_book")
    if check.find_browser() is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    pytest.importorskip("playwright")
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text('<meta http-equiv="refresh" content="0; url=page.html">')
    (html / "page.html").write_text('<html><body><article class="bd-article"><details><summary>solution</summary>'
                                    f'<div class="cell_output"><pre>{debris}</pre></div></details>'
                                    '<div class="cell_output"><pre>a sentence, 3 numbers: 1, 2, 3</pre></div>'
                                    '</article></body></html>')
    assert check.main(["--html", str(html), "--shots", str(tmp_path / "shots")]) == 1
    assert "raw Python repr in an output" in capsys.readouterr().out


@pytest.mark.parametrize("shown, fails", [(None, False), (200, True)])
def test_the_browser_check_measures_figure_text_at_its_displayed_size(tmp_path, capsys, shown, fails):
    """A figure whose smallest text is 8 pt at 100 dpi (11.1 px) passes at its natural width and fails at 200 px (its
    text then 11.1 x 200 / natural width px, about 6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from r3gan_core.book.plotting import figure_png

    check = _load("check_book")
    if check.find_browser() is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    pytest.importorskip("playwright")
    html = tmp_path / "html"
    (html / "_images").mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot([0, 1])
    ax.tick_params(labelsize=8)
    ax.title.set_fontsize(8)
    png = figure_png(fig)
    (html / "_images" / "fig.png").write_bytes(png)
    plt.close(fig)
    natural = int.from_bytes(png[16:20], "big")  # the PNG header's width
    style = "" if shown is None else f' style="width: {shown}px"'
    img = f'<div style="width: 400px"><div class="cell_output"><img src="_images/fig.png"{style}></div></div>'
    (html / "index.html").write_text('<meta http-equiv="refresh" content="0; url=page.html">')
    (html / "page.html").write_text(f'<html><body><article class="bd-article">{img}</article></body></html>')
    assert check.main(["--html", str(html), "--shots", str(tmp_path / "shots")]) == int(fails)
    out = capsys.readouterr().out
    assert (f"text at {8 * 100 / 72 * (shown or natural) / natural:.1f} px in figure fig.png" in out) == fails, out
