"""Sphinx extension: the live demos' files (onnxruntime-web, the exported model) and their script.

At ``config-inited`` it builds ``.cache/live_site/live/{ort,models}`` with
:func:`sketchlib.book.live.build_assets` (npm fetches the pinned runtime once; every file is checked
by sha256) and adds that folder and ``book/_static`` (the demos' ES modules, ``live/*.mjs``) to
``html_static_path``. Pages whose body contains a demo (:func:`sketchlib.book.live.page_uses_demos`)
get ``_static/live/demos.mjs`` as a module script; no other page loads anything of it.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / ".cache" / "live_site"


def _config_inited(app, config):
    from sketchlib.book.live import build_assets

    build_assets(SITE)
    config.html_static_path = list(config.html_static_path) + [str(SITE), str(ROOT / "book" / "_static")]


def _page_context(app, pagename, templatename, context, doctree):
    from sphinx.builders.html._assets import _JavaScript

    from sketchlib.book.live import page_uses_demos

    if page_uses_demos(context.get("body", "")) and "script_files" in context:
        context["script_files"] = list(context["script_files"]) + [_JavaScript("_static/live/demos.mjs", type="module")]


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
