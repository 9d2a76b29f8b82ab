"""The book: every chapter executes (the build fails on any failing cell or Sphinx warning), and the
built website is complete, checked as files and in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from conftest import ROOT, in_ci

pytestmark = pytest.mark.book
HTML = ROOT / "_build" / "html"
ZH = HTML / "zh"          # the Chinese edition (make book copies it there)
CJK = re.compile(r"[\u3400-\u9fff]")
SCREENSHOTS = ROOT / "_build" / "screenshots"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the executed book exactly as `make book` does (cached for authors, cold in a clean clone):
    the English edition (which executes), then the Chinese one from the committed zh/ (which finds every
    notebook in the English build's jupyter-cache), copied to _build/html/zh."""
    jb = Path(sys.executable).with_name("jupyter-book")
    jb = str(jb) if jb.exists() else "jupyter-book"
    flags = ["-W", "-n", "--keep-going"]
    for cmd, timeout in (([jb, "build", str(ROOT), *flags], 1500),
                         ([jb, "build", "zh", "--path-output", "_build/zh", *flags], 900)):
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd[1:3])} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
        if "zh" in cmd:
            assert "Executing notebook" not in proc.stdout + proc.stderr, "the Chinese build executed a notebook"
    shutil.rmtree(ZH, ignore_errors=True)
    shutil.copytree(ROOT / "_build" / "zh" / "_build" / "html", ZH)
    return HTML


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "script", "link"):
                self.links.append((tag, a[key]))


def _parse(page: Path) -> _Links:
    p = _Links()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def test_every_page_of_the_toc_is_built(built_book):
    for entry in toc_pages():
        assert (built_book / f"{entry}.html").exists(), f"{entry}.html missing"
        assert (ZH / f"{entry}.html").exists(), f"zh/{entry}.html missing"


def test_the_chinese_edition_has_every_word_translated(built_book):
    """Words of figures (drawn at execution) and of printed output (translated by the Chinese build)
    that the catalog sketchlib/book/locale/zh.md lacks are listed by the build; there must be none."""
    import json

    page = (ZH / "book" / "01_stroke5_data.html").read_text(encoding="utf-8")
    # (the code cell that prints it still says "chapter executed in {...}": code is the same in both editions)
    assert "本章执行用时" in page and not re.search(r"chapter executed in \d", page), "printed lines are not translated"
    missing = json.loads((ZH / "_i18n_missing.json").read_text(encoding="utf-8"))
    assert missing == {}, ("words with no entry in sketchlib/book/locale/zh.md:\n"
                           + "\n".join(f"{doc}: {w!r}" for doc, ws in missing.items() for w in ws[:50]))


def test_each_page_links_to_the_same_page_in_the_other_edition(built_book):
    for entry in toc_pages():
        en, zh = built_book / f"{entry}.html", ZH / f"{entry}.html"
        depth = entry.count("/")
        assert f'href="{"../" * depth}zh/{entry}.html" hreflang="zh-CN"' in en.read_text(encoding="utf-8"), entry
        assert f'href="{"../" * (depth + 1)}{entry}.html" hreflang="en"' in zh.read_text(encoding="utf-8"), entry
        assert '<html lang="zh-CN"' in zh.read_text(encoding="utf-8"), entry


def test_the_chinese_search_index_holds_chinese_words(built_book):
    """Sphinx indexes Chinese words only when jieba is installed; without it Chinese search finds nothing."""
    import json

    text = (ZH / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1: text.rindex(")")])
    terms = index["terms"]
    for word in ("编码器", "解码器", "变量", "温度"):  # jieba splits 潜变量 into 潜 + 变量
        assert word in terms, f"{word} is not in the Chinese search index"


def test_no_broken_local_links_or_images(built_book):
    broken = []
    for page in built_book.rglob("*.html"):
        if "_static" in page.parts:  # theme templates, not pages
            continue
        for tag, link in _parse(page).links:
            url = urlparse(link)
            if url.scheme or link.startswith(("#", "mailto:", "//", "data:")):
                continue
            target = (page.parent / unquote(url.path)).resolve()
            if url.path and not target.exists():
                broken.append(f"{page.relative_to(built_book)}: <{tag}> {link}")
    assert not broken, "broken local links:\n" + "\n".join(broken[:50])


def test_pages_load_no_script_or_style_from_another_site(built_book):
    """Everything a page runs or styles itself with is served with the book (MathJax, the live demos'
    runtime, the animations' player); links to other sites (launch buttons, references) are fine."""
    external = re.compile(r"<(script|link)\b[^>]*?\b(src|href)=\"(https?:)?//[^\"]+\"", re.S)
    found = []
    for page in built_book.rglob("*.html"):
        if "_static" in page.parts:
            continue
        for m in external.finditer(page.read_text(errors="replace")):
            found.append(f"{page.relative_to(built_book)}: {m.group(0)[:160]}")
    assert not found, "pages fetch from other sites:\n" + "\n".join(found[:20])


def test_chapters_have_figures_and_launch_buttons(built_book):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    repo = urlparse(url).path.strip("/")
    for nb, page in [(nb, site / "book" / f"{nb.stem}.html") for site in (built_book, ZH)
                     for nb in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))]:
        text = page.read_text(encoding="utf-8")
        where = "zh/book" if page.is_relative_to(ZH) else "book"
        assert f"colab.research.google.com/github/{repo}/blob/main/{where}/{nb.name}" in text, f"no Colab button on {page}"
        assert "mybinder.org" in text, f"no JupyterLab (Binder) button on {page.name}"
        parsed = _parse(page)
        n_figures = len(parsed.images) + text.count("<svg") + text.count("animation")
        assert n_figures > 0, f"{page.name} has no figure"
        assert "Traceback (most recent call last)" not in text, f"{page.name} shows a traceback"


# A display formula that MyST did not parse as a block renders as inline math with literal $ signs
# around it ("$<span class="math">\\(...\\)</span>$"), which -W does not catch.
_DOLLAR_BESIDE_MATH = re.compile(r'\$\s*<(?:span|div) class="math|\\[)\]]</(?:span|div)>\s*\$')


def test_no_dollar_sign_beside_a_math_block(built_book):
    bad = []
    for page in sorted(built_book.rglob("*.html")):
        if "_static" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        bad += [f"{page.relative_to(built_book)}: ...{text[max(0, m.start() - 80):m.end() + 40]}..."
                for m in _DOLLAR_BESIDE_MATH.finditer(text)]
    assert not bad, "math rendered with literal $ signs (display math inside a paragraph?):\n" + "\n".join(bad[:10])


def test_the_dollar_check_catches_the_broken_form():
    broken = 'join,\n$<span class="math notranslate nohighlight">\\(h = [a ; b]\\)</span>$</p>'
    fine = '<div class="math notranslate nohighlight">\n\\[h = [a ; b]\\]</div>'
    assert _DOLLAR_BESIDE_MATH.search(broken) and not _DOLLAR_BESIDE_MATH.search(fine)


def test_no_figure_fell_back_to_missing_glyphs(built_book):
    """A figure whose characters the font lacks makes matplotlib warn "Glyph ... missing from font";
    the warning lands in the page's stderr output."""
    signs = ("missing from font", "does not have a glyph", "Failed to find font",  # Agg, mathtext, findfont
             "findfont: Font family")  # a font list without matplotlib's own fonts (falls back, and says so)
    bad = [f"{p.name}: {s}" for p in built_book.rglob("*.html") for s in signs if s in p.read_text(encoding="utf-8")]
    assert not bad, f"pages with figures whose glyphs are missing: {bad}"


def test_benchmarks_show_skipped_rows_as_skipped(built_book):
    import json

    text = (built_book / "book" / "benchmarks.html").read_text(encoding="utf-8")
    n_errors = sum(1 for f in (ROOT / "bench" / "results").glob("train_step-*.json")
                   for row in json.loads(f.read_text())["rows"] if row.get("error"))
    assert text.count("<td><p>skipped</p></td>") + text.count("<td>skipped</td>") >= n_errors


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser():
    found = _chromium()
    if found is None:
        msg = "Debian's chromium and chromium-driver are not installed (`make test` installs them as root with apt)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={ROOT / '_build' / '.chromium-profile'}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def served_site(built_book):
    import live_demo  # bench/live_demo.py (conftest puts bench/ on the path)

    with live_demo.serve(built_book) as url:
        yield url


def test_site_in_a_headless_browser(browser, served_site):
    """Every page loads, its images decode, and no JavaScript error comes from a local asset.

    (The CDN scripts for widgets are unreachable offline; errors that name an external host are
    expected here and ignored. A reader online gets them.)"""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for entry in toc_pages():
        browser.get_log("browser")  # drop what earlier pages left
        browser.get(f"{served_site}/{entry}.html")
        for _ in range(100):  # get() returns at load; on a busy machine a page can still be finishing
            state = browser.execute_script("return document.readyState")
            if state == "complete":
                break
            time.sleep(0.2)
        title = browser.title
        bad_images = browser.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        n_images = browser.execute_script("return document.images.length")
        if state != "complete" or not title:
            problems.append(f"{entry}: not loaded (state={state}, title={title!r})")
        if bad_images:
            problems.append(f"{entry}: images that did not load: {bad_images}")
        for log in browser.get_log("browser"):
            if log["level"] == "SEVERE" and served_site in log["message"]:
                problems.append(f"{entry}: JS error from a local asset: {log['message']}")
        browser.set_script_timeout(60)
        browser.execute_async_script(  # let MathJax finish typesetting before measuring anything
            "const done = arguments[arguments.length - 1];"
            "if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " MathJax.startup.promise.then(() => done(true), () => done(false)); else done(null);")
        wide = browser.execute_script(  # display math wider than the text column runs off the page
            "return Array.from(document.querySelectorAll('div.math'))"
            ".filter(d => d.scrollWidth > d.clientWidth + 2).map(d => d.innerText.slice(0, 60))")
        if wide:
            problems.append(f"{entry}: display math wider than the page: {wide}")
        if entry.endswith(("00_introduction", "07_sampling")):
            assert n_images > 0, f"{entry} shows no images"
            browser.save_screenshot(str(SCREENSHOTS / f"{Path(entry).name}.png"))
        if entry.endswith("05_hyperlstm"):  # the equations, typeset by MathJax (not raw $ signs)
            typeset = _screenshot_element(browser, "#the-equations", SCREENSHOTS / "05_equations.png")
            if not typeset:
                problems.append(f"{entry}: MathJax (served from _static) did not typeset the equations")
        if entry.endswith("01_stroke5_data"):  # the first figure: KanjiVG characters titled in the CJK font
            _screenshot_element(browser, "#real-drawings img", SCREENSHOTS / "01_characters_figure.png")
    assert not problems, "\n".join(problems)
    assert (SCREENSHOTS / "00_introduction.png").stat().st_size > 10_000
    for name in ("05_equations.png", "01_characters_figure.png"):
        assert (SCREENSHOTS / name).stat().st_size > 5_000, name


# Prose elements of a page's article, and what inside them is not prose (code, math, outputs, citations).
_UNTRANSLATED_JS = r"""
const skip = 'pre, code, .math, mjx-container, .cell_output, .citation, .bibliography, nav, script, style, .edition-switch, .live-demo';
return Array.from(document.querySelectorAll('article p, article li, article h1, article h2, article h3, article dt, article dd, article caption, article figcaption'))
  .filter(e => !e.closest(skip) && !e.querySelector('p, li'))
  // a table row that has Chinese in it is translated (the glossary keeps an English column on purpose)
  .filter(e => !(e.closest('tr') && /[\u3400-\u9fff]/.test(e.closest('tr').textContent)))
  .map(e => { const c = e.cloneNode(true); c.querySelectorAll(skip).forEach(x => x.remove()); return c.textContent.trim(); })
  .filter(t => !/[\u3400-\u9fff]/.test(t) && (t.match(/\b[a-z]{3,}\b/g) || []).length >= 4);
"""

_SHOWN_JS = ("return Array.from(document.querySelectorAll(arguments[0]))"
             ".filter(i => i.offsetParent !== null && i.complete && i.naturalWidth > 0).length")


def test_chinese_pages_in_a_headless_browser(browser, served_site):
    """Every page of the Chinese edition loads with a Chinese title and text, no paragraph left in
    English (code, names and references aside), every image decoded, and its figures in Chinese;
    search finds Chinese words. Screenshots: the introduction and the sampling chapter."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    shown_zh = 0
    for entry in toc_pages():
        browser.get(f"{served_site}/zh/{entry}.html")
        for _ in range(100):
            if browser.execute_script("return document.readyState") == "complete":
                break
            time.sleep(0.2)
        title = browser.title
        lang = browser.execute_script("return document.documentElement.lang")
        text = browser.execute_script("return document.querySelector('article').innerText")
        if not CJK.search(title) or lang != "zh-CN":
            problems.append(f"zh/{entry}: title {title!r}, lang {lang!r}")
        if len(CJK.findall(text)) < 10:  # the bibliography is mostly its (English) references
            problems.append(f"zh/{entry}: hardly any Chinese text ({len(CJK.findall(text))} characters)")
        english = browser.execute_script(_UNTRANSLATED_JS)
        if english:
            problems.append(f"zh/{entry}: paragraphs in English: {[t[:80] for t in english[:3]]}")
        bad_images = browser.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))")
        if bad_images:
            problems.append(f"zh/{entry}: images that did not load: {bad_images}")
        if browser.execute_script(_SHOWN_JS, ".edition-en"):
            problems.append(f"zh/{entry}: shows a figure's English image")
        shown_zh += browser.execute_script(_SHOWN_JS, ".edition-zh")
        if entry.endswith(("00_introduction", "07_sampling")):
            browser.save_screenshot(str(SCREENSHOTS / f"zh-{Path(entry).name}.png"))
        if entry.endswith("01_stroke5_data"):
            _screenshot_element(browser, ".edition-figure", SCREENSHOTS / "zh-01_figure.png")
    assert not problems, "\n".join(problems)
    assert shown_zh >= 10, f"only {shown_zh} figures drawn in Chinese on the Chinese pages"
    for name in ("zh-00_introduction.png", "zh-07_sampling.png", "zh-01_figure.png"):
        assert (SCREENSHOTS / name).stat().st_size > 5_000, name

    # The English pages show the English image of the same figures.
    browser.get(f"{served_site}/book/01_stroke5_data.html")
    assert browser.execute_script(_SHOWN_JS, ".edition-en") > 0
    assert browser.execute_script(_SHOWN_JS, ".edition-zh") == 0

    browser.get(f"{served_site}/zh/search.html?q=%E7%BC%96%E7%A0%81%E5%99%A8")  # 编码器
    for _ in range(100):
        found = browser.execute_script("return document.querySelectorAll('#search-results li').length")
        if found:
            break
        time.sleep(0.2)
    assert found > 0, "searching the Chinese edition for 编码器 found nothing"


def test_the_untranslated_check_catches_an_english_paragraph(browser, served_site):
    browser.get(f"{served_site}/book/02_encoder.html")
    assert browser.execute_script(_UNTRANSLATED_JS), "the check finds no English prose on an English page"


def _screenshot_element(browser, css: str, path: Path) -> bool:
    """Scroll the first element matching ``css`` into view, let MathJax finish, and save its picture.
    Returns whether the element is free of raw TeX (MathJax typeset it, or it had none)."""
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.CSS_SELECTOR, css)
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
    raw_tex = "return arguments[0].innerText.includes('\\\\(') || arguments[0].innerText.includes('\\\\[')"
    for _ in range(50):  # MathJax typesets after load; wait until no raw TeX is left in the element
        if not browser.execute_script(raw_tex, element):
            break
        time.sleep(0.2)
    element.screenshot(str(path))
    return not browser.execute_script(raw_tex, element)
