"""The Chinese edition: translation files that fail when the English changes, generated sources that
are current, code cells identical between the editions (one execution serves both), and the words of
figures and printed output looked up in one catalog."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import ROOT
from sketchlib.book import edition, i18n

# ----------------------------------------------------------------------------- blocks


def test_blocks_keep_fences_and_display_math_whole():
    text = ("# Title\n\nA paragraph\nover two lines.\n\n```python\nx = 1\n\ny = 2\n```\n\n"
            "::::{note}\nProse inside.\n\n```{code-cell}\n\n```\nMore.\n::::\n\n"
            "1. item one,\n\n   $$a = b\n\n   c = d$$\n\n2. item two\n")
    got = i18n.blocks(text)
    assert got[0] == "# Title"
    assert got[1] == "A paragraph\nover two lines."
    assert got[2] == "```python\nx = 1\n\ny = 2\n```"
    assert got[3].startswith("::::{note}") and got[3].endswith("::::")
    assert got[4] == "1. item one,"
    assert got[5] == "   $$a = b\n\n   c = d$$"
    assert got[6] == "2. item two"
    assert i18n.translate_markdown(text, {}) == text


@pytest.mark.parametrize("block, needed", [
    ("```python\nprint('hello world')\n```", False),
    ("```{literalinclude} ../sketchlib/nn/lstm.py\n:pyobject: LSTMCell\n```", False),
    ("$$h = o \\odot \\tanh(c)$$", False),
    ("(sec-gates)=", False),
    ("<!-- a comment -->", False),
    ("$$x$$ where the words are", True),
    ("```{note}\nThe gates decide.\n```", True),
    ("Plain prose.", True),
    ("| $a$ | $b$ |\n|---|---|\n| 1 | 2 |", False),
])
def test_what_needs_a_translation(block, needed):
    assert i18n.needs_translation(block) is needed


def test_every_page_survives_the_split_and_join():
    for page in i18n.pages():
        for text in i18n.markdown_of(page):
            assert i18n.translate_markdown(text, {}) == text, page.name


@pytest.mark.parametrize("zh, problem", [
    ("编码器读取 $S$，见[第 1 章](01.ipynb)，用 `lstm()` 计算。", None),
    ("编码器读取 S，见[第 1 章](01.ipynb)，用 `lstm()` 计算。", "math"),
    ("编码器读取 $S$，见[第 1 章](02.ipynb)，用 `lstm()` 计算。", "link target"),
    ("编码器读取 $S$，见[第 1 章](01.ipynb)，用 lstm() 计算。", "inline code"),
])
def test_structure_check_catches_what_a_translation_must_keep(zh, problem):
    en = "The encoder reads $S$, see [chapter 1](01.ipynb), computed by `lstm()`."
    errors = i18n.structure_errors(en, zh)
    if problem is None:
        assert errors == []
    else:
        assert any(e.startswith(problem) for e in errors), errors


def test_structure_check_keeps_html_attributes_and_headings():
    en = '## Live\n<div class="live-demo" data-live-demo="sampler" hidden><p>Move a slider.</p></div>'
    assert i18n.structure_errors(en, '## 在线\n<div class="live-demo" data-live-demo="sampler" hidden><p>拖动滑块。</p></div>') == []
    assert i18n.structure_errors(en, '## 在线\n<div class="live-demo" data-live-demo="draw" hidden><p>拖动滑块。</p></div>')
    assert i18n.structure_errors(en, '# 在线\n<div class="live-demo" data-live-demo="sampler" hidden><p>拖动滑块。</p></div>')


# ----------------------------------------------------------------------------- the stale workflow


@pytest.fixture
def toy_book(tmp_path, monkeypatch):
    (tmp_path / "book").mkdir()
    page = tmp_path / "book" / "ch.md"
    page.write_text("# Gates\n\nThe forget gate decides what to keep.\n\n```python\nx = 1\n```\n\nThe end.\n")
    monkeypatch.setattr(i18n, "ROOT", tmp_path)
    monkeypatch.setattr(i18n, "CATALOGS", tmp_path / "i18n" / "zh")
    return page


def _fill(path, table):
    entries = i18n.read_catalog(path)
    for e in entries:
        if e.en in table:
            e.zh, e.was = table[e.en], None
    header = path.read_text(encoding="utf-8").split("@@ en", 1)[0]
    i18n.write_catalog(path, header, entries)


def test_a_changed_english_paragraph_makes_its_translation_stale(toy_book):
    assert i18n.update(toy_book) == {"missing": 3}
    assert len(i18n.problems(toy_book)) == 3
    path = i18n.catalog_path(toy_book)
    _fill(path, {"# Gates": "# 门", "The forget gate decides what to keep.": "遗忘门决定保留什么。", "The end.": "完。"})
    assert i18n.problems(toy_book) == []
    zh = i18n.translated_page(toy_book)
    assert "遗忘门决定保留什么。" in zh and "```python\nx = 1\n```" in zh and "forget" not in zh

    # The author edits one paragraph, deletes another and adds a third.
    toy_book.write_text("# Gates\n\nThe forget gate decides how much of c to keep.\n\n```python\nx = 1\n```\n\nA new one.\n")
    assert any("paragraph without a translation" in p for p in i18n.problems(toy_book))
    assert i18n.update(toy_book) == {"current": 1, "stale": 1, "missing": 1}
    entries = {e.en: e for e in i18n.read_catalog(path)}
    stale = entries["The forget gate decides how much of c to keep."]
    assert stale.was == "The forget gate decides what to keep." and stale.zh == "遗忘门决定保留什么。"
    assert "The end." not in entries  # its paragraph is gone: so is its translation
    assert any("stale translation" in p for p in i18n.problems(toy_book))
    # Until it is updated, the Chinese page shows the English paragraph, not the outdated translation.
    assert "The forget gate decides how much of c to keep." in i18n.translated_page(toy_book)

    _fill(path, {stale.en: "遗忘门决定 c 保留多少。", "A new one.": "新的一段。"})
    assert i18n.problems(toy_book) == []


def test_a_malformed_translation_file_names_the_line(tmp_path):
    bad = tmp_path / "x.md"
    bad.write_text("@@ en\nText\n@@ zh\n文本\n@@ en\nMore\n@@ zh\n@@ end\n")
    with pytest.raises(ValueError, match=r"x.md:5"):
        i18n.read_catalog(bad)
    bad.write_text("@@ en\nText\n@@ zhh\n")
    with pytest.raises(ValueError, match="unknown marker"):
        i18n.read_catalog(bad)


# ----------------------------------------------------------------------------- this repository


def test_every_english_paragraph_has_a_current_translation():
    found = [p for page in i18n.pages() for p in i18n.problems(page)]
    assert not found, ("the Chinese edition is behind the English one "
                       "(python -m sketchlib.book.i18n update, translate, then build):\n" + "\n".join(found[:40]))


def test_the_chinese_sources_are_generated_from_the_current_english_and_translations():
    stale = []
    for path, text in i18n.edition_files().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path.relative_to(ROOT)))
    assert not stale, "zh/ is out of date: run `python -m sketchlib.book.i18n build`:\n" + "\n".join(stale)


def _cache_key(path):
    from jupyter_cache.cache.main import JupyterCacheBase

    nb = nbformat.read(path, as_version=4)
    return JupyterCacheBase.create_hashed_notebook(None, nb)[1]


def test_code_cells_are_identical_so_one_execution_serves_both_editions():
    for page in i18n.pages():
        if page.suffix != ".ipynb":
            continue
        zh_path = i18n.EDITION / page.relative_to(ROOT)
        en, zh = (json.loads(p.read_text(encoding="utf-8")) for p in (page, zh_path))
        assert [c["cell_type"] for c in en["cells"]] == [c["cell_type"] for c in zh["cells"]], page.name
        for a, b in zip(en["cells"], zh["cells"]):
            if a["cell_type"] == "code":
                assert (a["source"], a["metadata"]) == (b["source"], b["metadata"]), f"{page.name}: a code cell differs"
        assert en["metadata"]["kernelspec"] == zh["metadata"]["kernelspec"]
        assert zh["metadata"]["sketchbook"] == {"language": "zh"}
        # jupyter-cache's own key: the Chinese build finds the English build's outputs.
        assert _cache_key(page) == _cache_key(zh_path), page.name
        # and the Markdown is Chinese
        md = "".join("".join(c["source"]) for c in zh["cells"] if c["cell_type"] == "markdown")
        assert len(edition.CJK.findall(md)) > 200, f"{zh_path.name} is not in Chinese"


def test_the_chinese_site_config_follows_the_english_one():
    import yaml

    en = yaml.safe_load((ROOT / "_config.yml").read_text())
    zh = yaml.safe_load((i18n.EDITION / "_config.yml").read_text())
    assert zh["sphinx"]["config"]["language"] == "zh_CN"
    assert edition.CJK.search(zh["sphinx"]["config"]["nb_code_prompt_show"])  # "Show code cell", in Chinese
    assert zh["repository"]["path_to_book"] == "zh"     # launch buttons open zh/book/*.ipynb
    assert set(zh["sphinx"]["local_extensions"]) == set(en["sphinx"]["local_extensions"])
    assert edition.CJK.search(zh["title"])
    toc = yaml.safe_load((i18n.EDITION / "_toc.yml").read_text())
    assert all(edition.CJK.search(part["caption"]) for part in toc["parts"])


# ----------------------------------------------------------------------------- words in outputs


def test_catalog_templates_carry_numbers_in_order_and_reordered():
    table = {"chapter executed in {} s": "本章执行用时 {} 秒", "{} of {} points": "{1} 个点中的 {0} 个", "step": "步"}
    assert edition.translate("chapter executed in 12.5 s", table) == "本章执行用时 12.5 秒"
    assert edition.translate("36 of 40 points", table) == "40 个点中的 36 个"
    assert edition.translate("step", table) == "步"
    # kanji and kana, like numbers, are taken out: one entry serves every character a figure names
    assert edition.template("猫, 11 strokes") == ("{}, {} strokes", ["猫", "11"])
    assert edition.translate("永, 5 strokes", {"{}, {} strokes": "{}，{} 画"}) == "永，5 画"
    assert edition.template("sketch $S_{N_s}$") == ("sketch $S_{{N_s}}$", [])
    assert edition.translate("steps", table) is None
    missing = []
    out = edition.translate_lines("  chapter executed in 3.0 s\nloss went down\n(4, 36, 5)", missing, table)
    assert out == "  本章执行用时 3.0 秒\nloss went down\n(4, 36, 5)"
    assert missing == ["loss went down"]


def test_every_catalog_entry_is_translated_and_fits_its_placeholders():
    from sketchlib.book.i18n import read_catalog

    bad = []
    for path in edition.catalog_files():
        for e in read_catalog(path):
            if e.state != "current":
                bad.append(f"{path.name}: {e.state}: {e.en!r}")
                continue
            n = e.en.count("{}")
            if n == 0 and "{{" not in e.en:
                bad += [f"{path.name}: {e.en!r}: {err}" for err in i18n.structure_errors(e.en, e.zh)]
                continue  # looked up as it is, never formatted
            try:
                filled = e.zh.format(*[f"<{k}>" for k in range(n)])
            except (IndexError, KeyError, ValueError) as exc:
                bad.append(f"{path.name}: {e.en!r} -> {e.zh!r}: {exc}")
                continue
            if any(f"<{k}>" not in filled for k in range(n)):
                bad.append(f"{path.name}: {e.en!r} -> {e.zh!r}: a number is dropped")
            bad += [f"{path.name}: {e.en!r}: {err}" for err in i18n.structure_errors(e.en, e.zh)]
    assert not bad, "\n".join(bad[:30])


@pytest.mark.parametrize("text, words", [
    ("step $t$", True), ("$\\Delta x$ / scale", True), ("τ = 0.25", False), ("猫", False),
    ("batch[0]", False), ("LSTM 256", False), ("N_max = 250", False), ("z along PC1", True),
    ("training: ch. 8", True), ("ch. 1", True), ("Step 1:", True), ("(4, 36, 5)", False),
    ("sketchlib.nn.loss.kl_loss", False), ("[B, N_max + 1, 5]", False), ("DECODER: draws,", True),
])
def test_which_strings_carry_english_words(text, words):
    assert edition.needs_words(text) is words


def test_a_figure_is_drawn_in_both_languages_while_the_site_is_built(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(edition, "catalog", lambda: {"training step": "训练步", "loss": "损失"})
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title("an untranslated title")
    html = edition.bilingual_html(fig)
    assert html.count("<img") == 2 and 'class="edition-zh"' in html and 'class="edition-en"' in html
    assert "an untranslated title" in html  # named in data-missing
    assert ax.get_xlabel() == "training step"  # the figure is left as it was
    en_png, zh_png = [part.split('"', 1)[0] for part in html.split("base64,")[1:]]
    assert en_png != zh_png

    fig2, ax2 = plt.subplots(figsize=(2, 2))
    ax2.set_title("猫")
    assert edition.bilingual_html(fig2) is None  # nothing to translate: the plain PNG serves both
    plt.close("all")


def test_the_language_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("SKETCHBOOK_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert edition.language() == "en"
    monkeypatch.setenv("JPY_SESSION_NAME", str(ROOT / "zh" / "book" / "02_encoder.ipynb"))
    assert edition.language() == "zh"
    monkeypatch.setenv("SKETCHBOOK_LANG", "en")
    assert edition.language() == "en"
    monkeypatch.setenv("SKETCHBOOK_LANG", "fr")
    with pytest.raises(ValueError, match="SKETCHBOOK_LANG"):
        edition.language()


def test_colab_tells_the_language_through_the_notebooks_metadata(monkeypatch, tmp_path):
    import sys
    import types

    monkeypatch.delenv("SKETCHBOOK_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    zh_nb = json.loads((i18n.EDITION / "book" / "02_encoder.ipynb").read_text(encoding="utf-8"))
    message = types.ModuleType("google.colab._message")
    message.blocking_request = lambda kind, request="", timeout_sec=0: {"ipynb": zh_nb}
    colab = types.ModuleType("google.colab")
    colab._message = message
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    edition._ask_colab.cache_clear()
    assert edition.language() == "zh"
    message.blocking_request = lambda *a, **k: (_ for _ in ()).throw(AssertionError("asked twice"))
    assert edition.language() == "zh"  # asked once per session
    edition._ask_colab.cache_clear()
    message.blocking_request = lambda *a, **k: (_ for _ in ()).throw(TimeoutError("no answer"))
    assert edition.language() == "en"
    edition._ask_colab.cache_clear()
