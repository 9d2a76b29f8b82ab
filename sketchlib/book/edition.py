"""One program, two languages: the words in a chapter's figures and printed output, in English or 中文.

The English and Chinese editions run the same code cells (the Chinese notebooks differ only in their
Markdown), so the language cannot be written into the code. It comes from one setting,
:func:`language`, and the words are looked up in one catalog, ``sketchlib/book/locale/zh.md`` (the
format of the book's translation files, :mod:`sketchlib.book.i18n`; English keys may hold ``{}``
where a number goes).

Every chapter's set-up cell calls :func:`setup`:

* in a live kernel (JupyterLab, Colab) whose language is Chinese, figures are drawn with their
  titles, labels and legends translated, and printed lines are translated as they are printed;
* while the website is built (``SKETCHBOOK_EDITIONS`` lists both editions; the book's Sphinx
  extension sets it), each figure with words is drawn twice, and the cell outputs an HTML block
  holding both images. The page of each edition shows its own (``book/_static/editions.css``), so
  executing the book once serves both editions. A figure word without a translation is named in the
  block's ``data-missing`` attribute, which the tests and the Chinese build report.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("en", "zh")
LANG_ENV = "SKETCHBOOK_LANG"          # "en" or "zh": the language of a live session
EDITIONS_ENV = "SKETCHBOOK_EDITIONS"  # "en,zh" while the website is built
CATALOG = Path(__file__).with_name("locale") / "zh.md"
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?(?![\w])")
#: Names the two editions share: never a reason to translate.
NAMES = {"Sketch", "RNN", "LSTM", "HyperLSTM", "KanjiVG", "Kanji", "Quick", "Draw", "PyTorch", "Colab",
         "JupyterLab", "sketchlib", "ONNX", "GPU", "CPU", "MDN", "PCA", "TensorFlow", "Magenta", "KL",
         "slerp", "lerp", "torch", "numpy", "kanjivg", "kanjivg_hyper", "float32", "tanh", "softmax", "exp",
         "std", "max", "min", "log", "mean", "sigma", "eps", "mu", "rho", "pi", "tau", "dx", "dy", "lift"}


def language() -> str:
    """The language of this session: ``$SKETCHBOOK_LANG``; else a notebook under a ``zh`` folder
    (JupyterLab names the notebook in ``$JPY_SESSION_NAME``; a build runs in the notebook's folder);
    else the notebook's own metadata in Colab; else English."""
    env = os.environ.get(LANG_ENV, "").strip().lower()
    if env:
        if env not in LANGUAGES:
            raise ValueError(f"{LANG_ENV}={env!r}: the book has editions {', '.join(LANGUAGES)}")
        return env
    for where in (os.environ.get("JPY_SESSION_NAME", ""), os.getcwd()):
        if "zh" in Path(where).parts:
            return "zh"
    return _colab_language() or "en"


def _colab_language() -> str | None:
    return _ask_colab() if "google.colab" in sys.modules else None


@lru_cache(maxsize=1)
def _ask_colab() -> str | None:
    """Asked once per session: a round trip to Colab's front end (up to 10 s unanswered), and every
    widget label looks the language up."""
    try:  # Colab's front end hands the kernel the open notebook; the Chinese ones say so in their metadata
        from google.colab import _message

        nb = _message.blocking_request("get_ipynb", request="", timeout_sec=10)["ipynb"]
        lang = nb.get("metadata", {}).get("sketchbook", {}).get("language")
        return lang if lang in LANGUAGES else None
    except Exception:  # noqa: BLE001 - an unanswered request means: no edition known, English
        return None


def building() -> bool:
    """True while the website is built (both editions' figures are drawn)."""
    return len([x for x in os.environ.get(EDITIONS_ENV, "").split(",") if x.strip()]) > 1


# ----------------------------------------------------------------------------- the catalog

def catalog_files() -> list[Path]:
    """``locale/zh.md`` (figures and printed output) and any ``locale/zh-*.md`` (e.g. the widgets')."""
    return sorted(CATALOG.parent.glob("zh*.md"))


@lru_cache(maxsize=None)
def catalog() -> dict[str, str]:
    """English -> Chinese, for every current entry of the catalog files."""
    from sketchlib.book.i18n import current_table

    return {en: zh for path in catalog_files() for en, zh in current_table(path).items()}


def words(text: str) -> str:
    """``text`` in this session's language: its catalog translation in a Chinese session, else itself
    (for words a live kernel shows outside figures and printed lines, such as widget labels)."""
    if language() != "zh":
        return text
    return translate(text) or text


#: What a template takes out of a text: numbers, and runs of kanji or kana (the characters a figure or a
#: printed line names change with the data: "猫, 11 strokes" and "永, 5 strokes" share one entry).
_SLOT = re.compile(_NUMBER.pattern + r"|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def template(text: str) -> tuple[str, list[str]]:
    """``text`` with each number and each run of CJK characters replaced by ``{}``, and what was taken
    out: the key of a catalog entry."""
    found = []

    def keep(m):
        found.append(m.group(0))
        return "{}"

    return _SLOT.sub(keep, text.replace("{", "{{").replace("}", "}}")), found


def translate(text: str, table: dict[str, str] | None = None) -> str | None:
    """The Chinese of one English string (a figure label, a printed line), or None if the catalog has
    none. Looks the string up as it is, then as a template with its numbers taken out."""
    table = catalog() if table is None else table
    if text in table:
        return table[text]
    key, numbers = template(text)
    if key in table:  # the key of a text with numbers (or braces, which a template doubles)
        zh = table[key]
        try:
            return zh.format(*numbers)
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(f"catalog entry {key!r} -> {zh!r}: its placeholders do not fit: {exc}") from None
    return None


def needs_words(text: str) -> bool:
    """True when ``text`` carries English words (not only numbers, symbols, math, code or names)."""
    words = []
    for token in re.sub(r"\$[^$]*\$", " ", text).split():      # math aside
        token = token.strip(".,:;!?\"'()…")                        # punctuation around a word
        if re.search(r"[_=/\[\]().{}<>\d]", token):               # identifiers, shapes, paths, numbers
            continue
        words += [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", token) if w not in NAMES]
    return any(len(w) >= 3 and w[1:].islower() or w.islower() and len(w) >= 2 for w in words)


def translate_lines(text: str, missing: list[str] | None = None, table: dict[str, str] | None = None) -> str:
    """Translate printed output line by line; lines with words but no catalog entry stay English and
    are appended to ``missing``."""
    out = []
    for line in text.split("\n"):
        body = line.strip()
        zh = translate(body, table) if body else None
        if zh is None:
            if missing is not None and body and needs_words(body):
                missing.append(body)
            out.append(line)
        else:
            out.append(line[: len(line) - len(line.lstrip())] + zh)
    return "\n".join(out)


# ----------------------------------------------------------------------------- figures

def _texts(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_text().strip()]


@contextmanager
def in_chinese(fig):
    """``fig`` with its words translated, for the time of the ``with``; yields the strings with no entry."""
    from sketchlib.fonts import CJK_FONT_FAMILY, use_cjk_font

    use_cjk_font()
    undo, missing = [], []
    try:
        for t in _texts(fig):
            en = t.get_text()
            zh = translate(en)
            if zh is None:
                if needs_words(en):
                    missing.append(en)
                continue
            undo.append((t, en, t.get_fontfamily()))
            t.set_text(zh)
            # Mathtext draws the words around $...$ in the text's first font (no fallback): put the CJK one first.
            t.set_fontfamily([CJK_FONT_FAMILY, "DejaVu Sans"])
        yield missing, bool(undo)
    finally:
        for t, en, family in undo:
            t.set_text(en)
            t.set_fontfamily(family)


def _png(fig) -> bytes:
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches="tight")


def bilingual_html(fig) -> str | None:
    """Both editions of ``fig`` as one HTML block (None when the figure has no words to translate)."""
    with in_chinese(fig) as (missing, translated):
        if not (translated or missing):
            return None
        zh = _png(fig) if translated else None
    en = _png(fig)
    b64 = lambda png: base64.b64encode(png).decode("ascii")  # noqa: E731
    attr = f' data-missing="{html.escape(json.dumps(missing, ensure_ascii=False))}"' if missing else ""
    return (f'<div class="edition-figure"{attr}>'
            f'<img class="edition-en" lang="en" alt="figure" src="data:image/png;base64,{b64(en)}"/>'
            f'<img class="edition-zh" lang="zh-CN" alt="图" src="data:image/png;base64,{b64(zh or en)}"/></div>')


def _zh_png(fig) -> bytes:
    with in_chinese(fig):
        return _png(fig)


class _TranslatingStream:
    """A stdout that translates whole printed lines (a live Chinese session)."""

    def __init__(self, stream):
        self._stream, self._buf = stream, ""

    def write(self, s):
        self._buf += s
        if "\n" in self._buf:
            done, self._buf = self._buf.rsplit("\n", 1)
            self._stream.write(translate_lines(done) + "\n")
        return len(s)

    def flush(self):
        if self._buf:
            self._stream.write(translate_lines(self._buf))
            self._buf = ""
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def setup() -> str:
    """Make this notebook's figures (and, live, its printed lines) follow the edition; returns its
    language. Called by every chapter's set-up cell; does nothing outside IPython."""
    lang = language()
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return lang
    ip = get_ipython()
    if ip is None:
        return lang
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # Resolve the backend now: the inline backend, when it loads, drops every formatter of Figure.
    plt.switch_backend(matplotlib.get_backend())

    formatters = ip.display_formatter.formatters
    if building():
        formatters["text/html"].for_type(Figure, bilingual_html)
    elif lang == "zh":
        formatters["image/png"].for_type(Figure, _zh_png)
        if not isinstance(sys.stdout, _TranslatingStream):
            sys.stdout = _TranslatingStream(sys.stdout)
    return lang
