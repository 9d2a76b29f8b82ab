"""Drop repeated inline <script> blocks from each page.

With Jupyter Book 1.0.4, sphinx-thebe's inline configuration script (``const THEBE_JS_URL = ...``)
is added twice to every page, so the browser reports "Identifier 'THEBE_JS_URL' has already been
declared". This keeps the first copy of every identical script entry.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # The same body arrives once with filename None and once with "": compare them as equal.
        key = (getattr(script, "filename", str(script)) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
