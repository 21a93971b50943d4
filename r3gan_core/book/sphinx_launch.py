"""Sphinx extension: launch buttons only once the book names its repository.

_config.yml configures `launch_buttons` (Colab, JupyterHub) while `repository.url` is still empty, so that filling in
the URL is the one step that turns them on. sphinx-book-theme, though, fails the build on a configured launch button
with no repository URL (its link builder unpacks a missing repository). This drops `launch_buttons` from the theme
options while `repository_url` is empty.
"""

from __future__ import annotations


def _launch_only_with_a_repository(app, config) -> None:
    options = config.html_theme_options
    if not str(options.get("repository_url") or "").strip():
        options.pop("launch_buttons", None)


def setup(app):
    app.connect("config-inited", _launch_only_with_a_repository)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
