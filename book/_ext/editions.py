"""Sphinx extension: the book's two editions, English (the site's root) and 简体中文 (under ``zh/``).

* ``config-inited``: sets ``SKETCHBOOK_EDITIONS=en,zh`` for the kernels the build starts, so every
  figure with words is drawn in both languages (:mod:`sketchlib.book.edition`); the outputs, and the
  jupyter-cache that holds them, are the same for both editions.
* every page gets ``editions.css`` (each edition shows its own image of a bilingual figure) and a link
  to the same page in the other edition (plus ``<link rel="alternate" hreflang>``).
* in the Chinese build, the words of the executed outputs (printed lines, tables, the live demos'
  notes) are translated with the catalog ``sketchlib/book/locale/zh.md``; words it lacks, and figure
  words it lacked at execution, are listed in ``_i18n_missing.json`` in the output folder (the tests
  require it empty).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
from pathlib import Path

from docutils import nodes

OTHER = {"en": ("zh-CN", "简体中文"), "zh": ("en", "English")}  # the other edition: hreflang, link text


def _lang(app) -> str:
    return "zh" if (app.config.language or "en").lower().startswith("zh") else "en"


def _catalog_digest() -> str:
    from sketchlib.book.edition import catalog_files

    digest = hashlib.sha256()
    for path in catalog_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _config_inited(app, config):
    os.environ["SKETCHBOOK_EDITIONS"] = "en,zh"
    # The kernels' matplotlib keeps its font list in a folder of the build, not in ~/.cache/matplotlib:
    # a list written by another matplotlib (a system one, without the bundled cm/STIX fonts) made every
    # chapter with mathtext print "findfont: Font family ['cmr10'] not found" into the page.
    os.environ.setdefault("MPLCONFIGDIR", str(Path(app.outdir).parent / ".matplotlib"))
    app.add_css_file("editions.css")
    # The Chinese figures are drawn at execution, from the catalog; jupyter-cache keys on the code only.
    # So a changed catalog empties the cache (the English build re-executes every chapter), and the
    # Chinese build refuses outputs drawn with another catalog.
    cache = Path(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    marker = cache.parent / ".editions-catalog.sha256"
    digest = _catalog_digest()
    if _lang(app) == "en":
        if not marker.exists() or marker.read_text().strip() != digest:
            shutil.rmtree(cache, ignore_errors=True)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(digest + "\n")
        # Without a cache (emptied just above, or deleted by hand) Sphinx would still keep the pages it
        # read before, and the Chinese build would find nothing to reuse: read, and so execute, them all.
        app._editions_reread = not cache.exists()
    else:
        app._editions_reread = True  # cheap: the Chinese build executes nothing
        if not marker.exists() or marker.read_text().strip() != digest:
            raise RuntimeError(f"the English build's outputs were drawn with another figure catalog ({marker}): "
                               "build the English edition first (make book does)")


def _outdated(app, env, added, changed, removed):
    return sorted(env.found_docs) if app._editions_reread else []


def _in_output(node) -> bool:
    while node is not None:
        if isinstance(node, nodes.Element) and "cell_output" in node.get("classes", []):
            return True
        node = node.parent
    return False


_HTML_TEXT = re.compile(r">([^<>]+)<")


def _translate_outputs(app, doctree, docname):
    if _lang(app) != "zh":
        return
    from sketchlib.book.edition import needs_words, translate, translate_lines

    missing = app._i18n_missing.setdefault(docname, [])
    for node in list(doctree.findall(nodes.literal_block)):
        # printed output (MyST-NB highlights streams with its "myst-ansi" lexer), not code shown by a cell
        if not _in_output(node) or node.get("language") not in (None, "none", "text", "default", "myst-ansi"):
            continue
        text = node.astext()
        zh = translate_lines(text, missing)
        if zh != text:
            node.children = [nodes.Text(zh)]
            node.rawsource = zh
    for node in list(doctree.findall(nodes.raw)):
        if not _in_output(node) or "html" not in node.get("format", ""):
            continue
        text = node.astext()
        if "edition-figure" in text:
            for m in re.finditer(r'data-missing="([^"]*)"', text):
                missing += json.loads(html.unescape(m.group(1)))
            continue

        def sub(m):
            body = m.group(1)
            stripped = body.strip()
            zh = translate(stripped) if stripped else None
            if zh is None:
                if stripped and needs_words(stripped) and "{" not in stripped:
                    missing.append(stripped)
                return m.group(0)
            return ">" + body.replace(stripped, zh) + "<"

        new = _HTML_TEXT.sub(sub, text)
        if new != text:
            node.children = [nodes.Text(new)]
            node.rawsource = new
    for node in list(doctree.findall(nodes.Text)):
        parent = node.parent
        if parent is None or isinstance(parent, (nodes.literal_block, nodes.raw, nodes.literal)) or not _in_output(parent):
            continue
        zh = translate(node.astext().strip())
        if zh is not None:
            parent.replace(node, nodes.Text(zh))


def _builder_inited(app):
    app._i18n_missing = {}


def _page_context(app, pagename, templatename, context, doctree):
    lang = _lang(app)
    hreflang, label = OTHER[lang]
    up = "../" * pagename.count("/")
    href = f"{up}zh/{pagename}.html" if lang == "en" else f"../{up}{pagename}.html"
    link = (f'<p class="edition-switch"><a href="{href}" hreflang="{hreflang}" lang="{hreflang}">{label}</a></p>')
    context["body"] = link + context.get("body", "")
    context["metatags"] = context.get("metatags", "") + f'\n<link rel="alternate" hreflang="{hreflang}" href="{href}" />'


def _build_finished(app, exception):
    if exception is not None or _lang(app) != "zh":
        return
    from sketchlib.data.fileio import atomic_write

    report = {doc: sorted(set(m)) for doc, m in sorted(app._i18n_missing.items()) if m}
    atomic_write(Path(app.outdir, "_i18n_missing.json"), json.dumps(report, ensure_ascii=False, indent=1))


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-get-outdated", _outdated)
    app.connect("doctree-resolved", _translate_outputs)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
