"""A Sphinx extension: serve BokehJS from the build, once, to the pages that hold an explorable.

The JavaScript comes from the installed bokeh package (the same version that made the explorables), is copied
into `_static/vendor/bokeh/` at the end of the build, and is loaded only by pages whose body has an element of
class `explorables.MARKER`. No page asks a CDN for anything.

    extensions: [..., r3gan_core.book.sphinx_bokeh]   # _config.yml, sphinx.config
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .explorables import MARKER

FILES = ("bokeh.min.js", "bokeh-widgets.min.js")  # the core and the widgets (sliders, selects, buttons)
TARGET = "vendor/bokeh"


def bokeh_js_dir() -> Path:
    import bokeh

    return Path(bokeh.__file__).parent / "server" / "static" / "js"


def add_scripts(app, pagename, templatename, context, doctree) -> None:
    """Load BokehJS (in the page's head, before the explorables' own scripts) on pages that need it."""
    if MARKER in (context.get("body") or ""):
        for name in FILES:
            app.add_js_file(f"{TARGET}/{name}", priority=200)


def copy_scripts(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / TARGET
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(bokeh_js_dir() / name, target / name)


def setup(app):
    missing = [name for name in FILES if not (bokeh_js_dir() / name).is_file()]
    if missing:
        raise RuntimeError(f"the bokeh package has no {', '.join(missing)} under {bokeh_js_dir()}")
    app.connect("html-page-context", add_scripts)
    app.connect("build-finished", copy_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
