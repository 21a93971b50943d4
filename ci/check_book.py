#!/usr/bin/env python
"""Open every page of the built book in headless Chromium, as a reader with no network would.

    python ci/check_book.py [--html _build/html] [--shots _build/screenshots] [--width 1400]

The pages are served from 127.0.0.1; every request to another host is blocked and reported. A page fails when

* it asks another host for anything (a script, a stylesheet, a font, an image: the book must work offline),
* it raises a JavaScript error (an uncaught exception or a console error),
* it has math in its source (elements of class `math`) that MathJax did not typeset, or that it typeset as an
  error (`mjx-merror`),
* an image does not load, or a table is wider than the text column (cut off or hidden behind a scroll bar at a
  `--width` pixel window),
* a figure shows text smaller than 10 pixels at its displayed width: the smallest font each figure's PNG records
  (r3gan_core.book.plotting.figure_png) times its displayed / natural width,
* an output shows debris: a raw dict or dataclass repr (`{'r1': ...}`, `ToyConfig(dataset=...)`), or nothing at all
  (an output cell an interactive cell left empty),
* an explorable (r3gan_core.book.explorables) does not render, or does not answer its controls as the library
  does: for each one the check sets the control values `explorables.INTERACTIONS` names (clicking buttons as a
  reader would, setting sliders and selects through BokehJS), asserts that the drawn data change, reads them back
  and compares them with the library's own computation for that setting. Screenshots of the explorable before and
  after each move are saved beside the page's.

A full-page screenshot of each page is saved under --shots. Chromium is Debian's `chromium` package
(`apt-get install -y chromium`), driven by Playwright with that executable (Playwright downloads no browser of
its own here). When no Chromium is found the check says so and exits 0 (skipped); --require makes that a failure.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # r3gan_core, for the library's own values and the figures' text-size key
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SKIPPED = ("_static", "_sources", "_images", "_downloads")
MIN_TEXT_PX = 10.0  # the smallest text a figure may show a reader, in CSS pixels

# Runs in the page after load: what the reader sees of math, images and tables. A raw string, so that the regular
# expressions keep their backslashes (in a plain one, \b would be a backspace and the repr rule would never match).
INSPECT_JS = r"""
() => {
  const mathEls = [...document.querySelectorAll('.math')];
  const untypeset = mathEls.filter(el => !el.querySelector('mjx-container') && !el.closest('mjx-container'));
  const errors = [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80));
  const broken = [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth === 0)
      .map(i => i.getAttribute('src'));
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const box = article.getBoundingClientRect(), style = getComputedStyle(article);
  const column = {width: box.width - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)};
  const wide = [];
  for (const t of article.querySelectorAll('table')) {
    if (t.closest('details:not([open])') || t.closest('.toggle-hidden') || t.offsetParent === null) continue;
    const r = t.getBoundingClientRect();
    if (r.width > column.width + 1) {
      const head = [...t.querySelectorAll('th')].slice(0, 4).map(th => th.textContent.trim()).join(' | ');
      wide.push(`${Math.round(r.width)}px table in a ${Math.round(column.width)}px column (${head.slice(0, 90)})`);
    }
  }
  // Debris: a raw dict or dataclass repr in an output, or an output cell that shows nothing.
  const debris = [];
  for (const out of article.querySelectorAll('.cell_output')) {
    const text = out.textContent || '';  // textContent: outputs inside collapsed solutions count too
    const raw = text.match(/\{'[\w .+\-]+': |\b[A-Z][A-Za-z]+\([a-z_]+=/);
    if (raw) debris.push(`raw Python repr in an output: ${text.slice(Math.max(0, raw.index - 20), raw.index + 60)}`);
    if (!text.trim() && !out.querySelector('img, svg, canvas, table, iframe, .r3gan-explorable'))
      debris.push('an empty output cell');
  }
  // Output figures: natural and displayed widths (a figure in a collapsed block would show at the column width).
  const figures = [...article.querySelectorAll('.cell_output img')].map(i => ({
      src: i.getAttribute('src'), natural: i.naturalWidth,
      shown: i.offsetParent === null ? Math.min(i.naturalWidth, column.width) : i.getBoundingClientRect().width}));
  return {math: mathEls.length, typeset: document.querySelectorAll('mjx-container').length, debris, figures,
          untypeset: untypeset.map(el => el.textContent.slice(0, 60)), mathErrors: errors,
          brokenImages: broken, wideTables: wide, hasMathJax: !!window.MathJax};
}
"""


def find_browser() -> str | None:
    """Chromium's executable: $CHROMIUM, else the first of BROWSERS on PATH, else None."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def pages(html: Path) -> list[Path]:
    """Every built page (the book's chapters, the intro, the reproduce page, search and index), sorted."""
    return sorted(p for p in html.rglob("*.html") if not set(p.relative_to(html).parts) & set(SKIPPED))


def redirect_target(page: Path) -> str | None:
    """The URL of a page that only redirects (<meta http-equiv="refresh" content="0; url=...">), else None."""
    found = re.search(r'<meta\s+http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', page.read_text(errors="replace"),
                      re.IGNORECASE)
    return found.group(1).split("#")[0] if found else None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - silence the per-request log
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `root` on 127.0.0.1 (a free port) in a daemon thread; return the server and its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def shot_name(page: Path, html: Path) -> str:
    return "__".join(page.relative_to(html).with_suffix(".png").parts)


# BokehJS in the page: the document that holds an explorable's models (named "<explorable>:<model>").
FIND_DOC_JS = """
(name) => {
  if (!window.Bokeh || !Bokeh.documents) return null;
  const mine = d => [...(d.all_models || [])].some(m => m.name && m.name.startsWith(name + ':'));
  return Bokeh.documents.findIndex(mine);
}
"""

CONTROL_JS = """
([doc, name, controls]) => {
  const d = Bokeh.documents[doc], state = {}, kinds = {};
  for (const c of controls) {
    const m = d.get_model_by_name(name + ':' + c);
    if (!m) continue;  // an explorable may leave a control out (one run label: no label toggle)
    kinds[c] = m.type;
    state[c] = ('labels' in m && 'active' in m) ? m.labels[m.active] : String(m.value);
  }
  return {state, kinds};
}
"""

SET_JS = """
([doc, name, control, value]) => {
  const m = Bokeh.documents[doc].get_model_by_name(name + ':' + control);
  if (!m) return `no control ${control}`;
  if ('options' in m && !m.options.includes(value)) return `${control} has no option ${value}`;
  if ('categories' in m && !m.categories.includes(value)) return `${control} has no value ${value}`;
  m.value = value;
  return null;
}
"""

READ_JS = """
([doc, name, sources]) => {
  const d = Bokeh.documents[doc], out = {};
  for (const s of sources) {
    const m = d.get_model_by_name(name + ':' + s);
    if (!m) { out[s] = null; continue; }
    const data = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;
    const flat = v => Array.from(v).flatMap(e => (e !== null && typeof e === 'object' && 'length' in e)
                                                   ? Array.from(e, Number) : [Number(e)]);
    out[s] = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, flat(v)]));
  }
  return out;
}
"""


def check_explorables(page, shot: Path) -> list[str]:
    """Move every explorable's controls and compare what it draws with the library (see the module docstring)."""
    import json

    from r3gan_core.book import explorables

    problems: list[str] = []
    for index, root in enumerate(page.locator(f"div.{explorables.MARKER}").all()):
        name = root.get_attribute("data-name")
        spec = explorables.INTERACTIONS.get(name)
        if spec is None:
            problems.append(f"explorable {name!r} has no interactions in explorables.INTERACTIONS")
            continue
        settings = json.loads(root.get_attribute("data-settings"))
        try:
            page.wait_for_function(f"() => ({FIND_DOC_JS})({json.dumps(name)}) >= 0", timeout=10_000)
        except Exception:  # noqa: BLE001 - the timeout is the finding
            problems.append(f"explorable {name!r} did not render (no Bokeh document holds its models)")
            continue
        doc = page.evaluate(FIND_DOC_JS, name)
        root.scroll_into_view_if_needed()
        root.screenshot(path=str(shot.with_name(f"{shot.stem}__{name}_0.png")))
        before = page.evaluate(READ_JS, [doc, name, list(spec["sources"])])
        for step, move in enumerate(spec["moves"](settings), start=1):
            kinds = page.evaluate(CONTROL_JS, [doc, name, list(spec["controls"])])["kinds"]
            for control, value in move.items():
                if kinds.get(control) == "RadioButtonGroup":  # a reader's click on the button
                    root.get_by_role("button", name=value, exact=True).click()
                else:
                    error = page.evaluate(SET_JS, [doc, name, control, value])
                    if error:
                        problems.append(f"explorable {name!r}: {error}")
            page.wait_for_timeout(150)
            state = page.evaluate(CONTROL_JS, [doc, name, list(spec["controls"])])["state"]
            if any(state.get(c) != v for c, v in move.items()):
                problems.append(f"explorable {name!r}: controls read {state} after setting {move}")
            drawn = page.evaluate(READ_JS, [doc, name, list(spec["sources"])])
            if drawn == before:
                problems.append(f"explorable {name!r}: nothing drawn changed after setting {move}")
            problems += [f"explorable {name!r}: {p}" for p in spec["check"](settings, state, drawn)]
            root.screenshot(path=str(shot.with_name(f"{shot.stem}__{name}_{step}.png")))
            before = drawn
        print(f"[check_book]      explorable {name!r} (#{index}): {len(spec['moves'](settings))} moves checked "
              "against the library", flush=True)
    return problems


def small_text(figures: list[dict], url: str, html: Path, min_px: float = MIN_TEXT_PX) -> list[str]:
    """Figures whose smallest text a reader sees under `min_px` pixels: the size each figure's PNG records
    (r3gan_core.book.plotting.figure_png), scaled by its displayed / natural width."""
    from PIL import Image

    from r3gan_core.book.plotting import TEXT_PX_KEY

    problems = []
    for fig in figures:
        path = (html / urlsplit(urljoin(url, fig["src"])).path.lstrip("/")).resolve()
        if not path.is_file() or not fig["natural"]:
            continue  # a broken image is reported as such
        with Image.open(path) as image:
            recorded = image.info.get(TEXT_PX_KEY)
        if recorded is None:
            problems.append(f"figure {path.name} records no text size (not shown through plotting.figure_png)")
            continue
        seen_px = float(recorded) * fig["shown"] / fig["natural"]
        if seen_px < min_px:
            problems.append(f"text at {seen_px:.1f} px in figure {path.name} ({fig['natural']} px wide, shown at "
                            f"{fig['shown']:.0f} px; under {min_px:g} px)")
    return problems


def check_page(context, url: str, base: str, html: Path, shot: Path, mathjax_timeout_ms: int) -> list[str]:
    """Load one page; return what a reader would trip on (empty when the page is fine)."""
    problems: list[str] = []
    page = context.new_page()
    local = urlsplit(base).netloc

    def route(r) -> None:
        target = urlsplit(r.request.url)
        if target.scheme in ("http", "https", "ws", "wss") and target.netloc != local:
            problems.append(f"request to another host: {r.request.url}")
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.on("pageerror", lambda err: problems.append(f"JavaScript error: {err}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text[:200]}"))
    page.on("requestfailed", lambda req: urlsplit(req.url).netloc == local
            and problems.append(f"failed to load {req.url}: {req.failure}"))
    page.on("response", lambda resp: resp.status >= 400 and problems.append(f"HTTP {resp.status} for {resp.url}"))
    page.goto(url, wait_until="load")
    has_math = page.evaluate("() => document.querySelectorAll('.math').length") > 0
    if has_math:
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=mathjax_timeout_ms)
            page.evaluate("() => MathJax.startup.promise")
        except Exception as err:  # noqa: BLE001 - a timeout is the finding, whatever its class
            problems.append(f"MathJax did not start within {mathjax_timeout_ms / 1000:.0f}s: {str(err)[:120]}")
    page.wait_for_load_state("networkidle")
    seen = page.evaluate(INSPECT_JS)
    if has_math and seen["typeset"] == 0:
        problems.append(f"no typeset math, though the page has {seen['math']} math elements (raw LaTeX shows)")
    elif seen["untypeset"]:
        problems.append(f"{len(seen['untypeset'])} math element(s) left as raw LaTeX, e.g. {seen['untypeset'][0]!r}")
    problems += [f"MathJax error: {e}" for e in seen["mathErrors"]]
    problems += [f"broken image: {src}" for src in seen["brokenImages"]]
    problems += [f"table wider than the text column: {w}" for w in seen["wideTables"]]
    problems += seen["debris"]
    problems += small_text(seen["figures"], url, html)
    problems += check_explorables(page, shot)
    # A window as tall as the page, so that the sticky sidebars lay out as they would for a reader (a plain
    # full-page capture stretches a 900-pixel window and crops them). Chromium caps a capture at 16,384 pixels.
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": page.viewport_size["width"], "height": min(max(height, 900), 16_000)})
    page.wait_for_timeout(200)
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, default=REPO / "_build" / "html", help="the built book")
    parser.add_argument("--shots", type=Path, default=REPO / "_build" / "screenshots", help="screenshot folder")
    parser.add_argument("--width", type=int, default=1400, help="window width in pixels")
    parser.add_argument("--only", nargs="+", default=None, metavar="SUBSTRING",
                        help="check only pages whose path contains one of these")
    parser.add_argument("--mathjax-timeout", type=float, default=30.0, help="seconds to wait for MathJax per page")
    parser.add_argument("--require", action="store_true", help="fail (not skip) when no Chromium is installed")
    args = parser.parse_args(argv)

    browser_path = find_browser()
    verdict = "FAILED" if args.require else "SKIPPED"
    if browser_path is None:
        print(f"[check_book] {verdict}: no Chromium found (install Debian's: apt-get install -y chromium; or set "
              "CHROMIUM=/path/to/chrome)", flush=True)
        return 1 if args.require else 0
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print(f"[check_book] {verdict}: the playwright package is missing (pip install -e '.[book]')", flush=True)
        return 1 if args.require else 0
    if not (args.html / "index.html").is_file():
        print(f"[check_book] no built book at {args.html}: run `bash ci/build_book.sh` first", file=sys.stderr)
        return 2

    targets = pages(args.html)
    if args.only:
        targets = [p for p in targets if any(s in str(p.relative_to(args.html)) for s in args.only)]
    args.shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html)
    failed = 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": args.width, "height": 900}, service_workers="block")
            for path in targets:
                rel = path.relative_to(args.html).as_posix()
                target = redirect_target(path)
                if target is not None:  # index.html: a meta refresh to the first page, checked on its own
                    ok = (path.parent / target).is_file()
                    failed += not ok
                    print(f"[check_book] {'ok  ' if ok else 'FAIL'} {rel}  (redirects to {target}"
                          f"{'' if ok else ', which is missing'})", flush=True)
                    continue
                shot = args.shots / shot_name(path, args.html)
                problems = check_page(context, f"{base}/{rel}", base, args.html, shot, int(args.mathjax_timeout * 1000))
                failed += bool(problems)
                print(f"[check_book] {'FAIL' if problems else 'ok  '} {rel}  (screenshot {shot.name})", flush=True)
                for problem in dict.fromkeys(problems):  # once each, in order
                    print(f"             - {problem}", flush=True)
            browser.close()
    finally:
        server.shutdown()
    print(f"[check_book] {len(targets) - failed} of {len(targets)} pages fine; screenshots in {args.shots}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
