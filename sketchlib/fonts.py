"""The CJK font of the book's figures: a book about drawing kanji titles its figures with the
characters themselves (充, not U+5145). matplotlib is imported only when the font is registered."""

from __future__ import annotations

import logging

#: The CJK font the figures use for characters (titles such as 猫): Noto Sans CJK JP, SIL Open Font
#: License 1.1, shipped on PyPI as ``noto-cjk-sans-jp-regular`` (a dependency of sketchlib).
CJK_FONT_FAMILY = "Noto Sans CJK JP"
_CJK_FONT_READY = False


def use_cjk_font() -> str:
    """Register the CJK font with matplotlib and put it behind the default font in ``font.family``.

    Latin text keeps matplotlib's default face (DejaVu Sans); a glyph it lacks (汉字, かな) falls back
    to Noto Sans CJK JP (matplotlib >= 3.6 falls back glyph by glyph along the family list). Mathtext
    does not fall back: keep characters outside ``$...$`` AND out of any title that contains ``$``
    (such a title is parsed as mathtext as a whole). Called by
    every drawing function, and safe to call again; call it once in a notebook before titling your
    own figures with characters. Returns the family name. Without the font package it raises an
    ImportError naming the package, rather than letting figures print empty boxes.
    """
    global _CJK_FONT_READY
    import matplotlib
    from matplotlib import font_manager

    if not _CJK_FONT_READY:
        try:
            import noto_cjk_sans_jp_regular as font_pkg
        except ImportError as exc:
            raise ImportError("figures with characters need the CJK font: pip install noto-cjk-sans-jp-regular "
                              "(a dependency of sketchlib; `make book` and the Colab cell install it)") from exc
        font_manager.fontManager.addfont(str(font_pkg.FONT_PATH))
        # The font has one weight: bold text falls back to it by design, which matplotlib would log
        # on every bold title ("Failed to find font weight bold for Noto Sans CJK JP").
        logging.getLogger("matplotlib.font_manager").addFilter(
            lambda record: not (CJK_FONT_FAMILY in record.getMessage() and "font weight" in record.getMessage()))
        _CJK_FONT_READY = True
    family = matplotlib.rcParams["font.family"]
    family = [family] if isinstance(family, str) else list(family)
    if CJK_FONT_FAMILY not in family:
        sans = [f for f in family if f != "sans-serif"] or ["DejaVu Sans"]
        matplotlib.rcParams["font.family"] = [*sans, CJK_FONT_FAMILY]
    return CJK_FONT_FAMILY
