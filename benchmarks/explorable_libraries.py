#!/usr/bin/env python
"""Which plotting library carries the book's explorables: page weight and load time, measured in Chromium.

    python benchmarks/explorable_libraries.py [--states 200] [--points 201] [--repeats 5] [--json out.json]

The same explorable is built with each candidate that is installed (Bokeh, Plotly): a slider over `--states`
precomputed paths of `--points` points each, the Dirac explorable's shape. Each page is served from 127.0.0.1 with
the library's JavaScript from its own Python package (no CDN) and loaded `--repeats` times in headless Chromium
(Debian's, through Playwright); reported: the JavaScript's size, the page's own size, and the median time from
navigation to the plot being drawn. The README's choice of library quotes this script's output.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "ci"))


def paths(states: int, points: int) -> np.ndarray:
    t = np.linspace(0, 10, points)
    return np.stack([np.stack([np.exp(-0.01 * s * t) * np.cos(t), np.exp(-0.01 * s * t) * np.sin(t)], axis=1)
                     for s in range(states)]).astype(np.float32)


def bokeh_page(folder: Path, data: np.ndarray) -> tuple[Path, int]:
    import shutil

    import bokeh
    from bokeh.embed import components
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, CustomJS, Slider
    from bokeh.plotting import figure

    store = ColumnDataSource({f"{i}|{a}": data[i][:, j] for i in range(len(data)) for j, a in enumerate("xy")})
    line = ColumnDataSource({"x": data[0][:, 0], "y": data[0][:, 1]})
    fig = figure(width=370, height=370)
    fig.line("x", "y", source=line)
    slider = Slider(start=0, end=len(data) - 1, step=1, value=0)
    slider.js_on_change("value", CustomJS(args=dict(store=store, line=line), code="""
        line.data = {x: store.data[cb_obj.value + '|x'], y: store.data[cb_obj.value + '|y']};"""))
    script, div = components(column(slider, fig))
    js = Path(bokeh.__file__).parent / "server" / "static" / "js"
    for name in ("bokeh.min.js", "bokeh-widgets.min.js"):
        shutil.copy(js / name, folder / name)
    page = folder / "bokeh.html"
    page.write_text('<html><head><script src="bokeh.min.js"></script><script src="bokeh-widgets.min.js"></script>'
                    f"</head><body>{div}{script}</body></html>")
    weight = sum((folder / n).stat().st_size for n in ("bokeh.min.js", "bokeh-widgets.min.js"))
    return page, weight


def plotly_page(folder: Path, data: np.ndarray) -> tuple[Path, int]:
    import shutil

    import plotly
    import plotly.graph_objects as go

    frames = [go.Frame(data=[go.Scatter(x=d[:, 0], y=d[:, 1])], name=str(i)) for i, d in enumerate(data)]
    steps = [{"method": "animate", "args": [[str(i)], {"mode": "immediate", "frame": {"duration": 0}}],
              "label": str(i)} for i in range(len(data))]
    fig = go.Figure(data=[go.Scatter(x=data[0][:, 0], y=data[0][:, 1])], frames=frames,
                    layout=go.Layout(width=370, height=420, sliders=[{"steps": steps}]))
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copy(js, folder / "plotly.min.js")
    page = folder / "plotly.html"
    body = fig.to_html(include_plotlyjs=False, full_html=False)
    page.write_text(f'<html><head><script src="plotly.min.js"></script></head><body>{body}</body></html>')
    return page, (folder / "plotly.min.js").stat().st_size


DRAWN = {"bokeh": "() => window.Bokeh && Bokeh.documents.length > 0 && document.querySelector('.bk-Column')",
         "plotly": "() => document.querySelector('.js-plotly-plot .scatterlayer path')"}


def measure(page: Path, library: str, repeats: int, browser) -> float:
    from check_book import QuietHandler

    handler = functools.partial(QuietHandler, directory=str(page.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    times = []
    try:
        for _ in range(repeats):
            context = browser.new_context()  # a cold cache each time
            tab = context.new_page()
            start = time.perf_counter()
            tab.goto(f"http://127.0.0.1:{server.server_address[1]}/{page.name}")
            tab.wait_for_function(DRAWN[library], timeout=30_000)
            times.append(time.perf_counter() - start)
            context.close()
    finally:
        server.shutdown()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=200)
    parser.add_argument("--points", type=int, default=201)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from check_book import find_browser
    from playwright.sync_api import sync_playwright

    browser_path = find_browser()
    if browser_path is None:
        print("no Chromium found (apt-get install -y chromium)")
        return 1
    data, rows = paths(args.states, args.points), []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        for library, build in (("bokeh", bokeh_page), ("plotly", plotly_page)):
            try:
                folder = Path(tmp) / library
                folder.mkdir()
                page, js_bytes = build(folder, data)
            except ImportError:
                print(f"{library}: not installed, skipped")
                continue
            seconds = measure(page, library, args.repeats, browser)
            rows.append({"library": library, "js_kib": round(js_bytes / 1024), "page_kib": round(
                page.stat().st_size / 1024), "load_s_median": round(seconds, 3), "states": args.states,
                "points": args.points, "repeats": args.repeats})
            print(json.dumps(rows[-1]))
        browser.close()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
