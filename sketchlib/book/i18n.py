"""The book's second edition (简体中文): translation files keyed by the English paragraph itself.

One translation file per page, ``i18n/zh/<page>.md`` (``book/02_encoder.ipynb`` ->
``i18n/zh/02_encoder.md``). It holds one entry per English paragraph ("block": text between blank
lines, a fenced block kept whole), in page order::

    @@ en
    The English paragraph, exactly as in the page.
    @@ zh
    译文。
    @@ end

The English text is the key, as a gettext ``msgid`` is: when a paragraph of the English edition
changes, its entry no longer matches. ``update`` then re-keys the closest old entry to the new text
and keeps the old English under ``@@ was``: the entry is *stale* until a translator has updated the
Chinese and deleted the ``@@ was`` section. ``status`` (and ``tests/test_i18n.py``) fail while any
paragraph is missing or stale. Blocks with nothing to translate (code, display math, labels,
``literalinclude``) are copied as they are and have no entry.

``build`` writes the Chinese edition's sources into ``zh/`` (committed, so Colab can open them from
GitHub): every notebook with its code cells copied unchanged (so the two editions execute the same
program and share one jupyter-cache), its Markdown cells translated block by block, and the
``_config.yml``/``_toc.yml`` of the Chinese site.

    python -m sketchlib.book.i18n update [PAGE ...]   # add new English paragraphs, mark changed ones stale
    python -m sketchlib.book.i18n status              # what is missing or stale, per page (exit 1 if any)
    python -m sketchlib.book.i18n build               # write zh/ from book/ and i18n/zh/
    python -m sketchlib.book.i18n strings [REPORT]    # add a Chinese build's untranslated figure/output words
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LANG = "zh"
CATALOGS = ROOT / "i18n" / LANG
EDITION = ROOT / LANG          # the Chinese edition's Jupyter Book project (generated)

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(.*?)\s*$")
#: Directives whose body is code, math or options only: nothing in them is prose.
_VERBATIM_DIRECTIVES = {"literalinclude", "code-cell", "code-block", "code", "math", "raw", "bibliography",
                        "tableofcontents", "eval-rst"}


# ----------------------------------------------------------------------------- blocks

def blocks(text: str) -> list[str]:
    """Split Markdown into blocks at blank lines, keeping fenced blocks and ``$$`` math whole.

    Each block keeps its lines exactly (leading indentation too); blank lines between blocks are
    dropped, so ``"\\n\\n".join(blocks(t))`` is ``t`` up to the number of blank lines."""
    out: list[str] = []
    cur: list[str] = []
    stack: list[tuple[str, int, bool]] = []   # open fences: (char, length, is_directive)
    in_math = False
    for line in text.splitlines():
        m = _FENCE.match(line)
        if m and not in_math:
            char, n, info = m.group(2)[0], len(m.group(2)), m.group(3)
            if stack and stack[-1][0] == char and n >= stack[-1][1] and not info:
                stack.pop()
            elif not stack or stack[-1][2]:        # code fences are literal: nothing opens inside them
                stack.append((char, n, info.startswith("{") or char == ":"))
        elif not stack and line.count("$$") % 2:
            in_math = not in_math              # display math may hold blank lines: keep it whole
        if not line.strip() and not stack and not in_math:
            if cur:
                out.append("\n".join(cur).rstrip())
                cur = []
            continue
        cur.append(line.rstrip("\n"))
    if cur:
        out.append("\n".join(cur).rstrip())
    return out


def needs_translation(block: str) -> bool:
    """False for a block with no prose: code, display math, a label, comments, a verbatim directive."""
    s = block.strip()
    m = _FENCE.match(s.splitlines()[0])
    if m:
        info = m.group(3)
        name = info[1:info.index("}")] if info.startswith("{") and "}" in info else None
        if name is None and m.group(2)[0] != ":":
            return False                       # ```python and friends
        if name in _VERBATIM_DIRECTIVES:
            return False
        return True
    if re.fullmatch(r"\(\S+\)=", s):
        return False
    if re.fullmatch(r"(<!--.*?-->\s*)+", s, flags=re.S):
        return False
    return bool(re.search(r"[A-Za-z]{2,}", _strip_verbatim(s)))


def _strip_verbatim(s: str) -> str:
    s = re.sub(r"`[^`]*`", "", s)
    s = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", s, flags=re.S)
    return s


# What a translation must keep exactly: it changes the words around these, never these.
_KEEP = [
    ("inline code", re.compile(r"(?<!`)`[^`\n]+`(?!`)")),
    ("math", re.compile(r"\$\$.*?\$\$|(?<![\\$])\$[^$]+\$", re.S)),   # inline math may wrap a line
    ("link target", re.compile(r"\]\(([^)\s]+)\)")),
    ("label", re.compile(r"^\(([^)\s]+)\)=\s*$", re.M)),
    ("directive", re.compile(r"^\s*(?:`{3,}|:{3,})\{[^}]+\}", re.M)),
    ("html tag", re.compile(r"<(?!/)[a-zA-Z][^>]*>")),
    ("heading level", re.compile(r"^#+(?= )", re.M)),
]


def structure_errors(en: str, zh: str) -> list[str]:
    """What the translation ``zh`` changed that it must keep: code, math, links, labels, directives,
    HTML tags and heading levels of ``en``, as multisets (prose may reorder them)."""
    def kept(pattern, text):  # a line wrapped inside (inline math, say) counts as one space
        return Counter(re.sub(r"\s+", " ", x) for x in pattern.findall(text))

    errors = []
    for name, pattern in _KEEP:
        a, b = kept(pattern, en), kept(pattern, zh)
        if a != b:
            lost, added = sorted((a - b).elements()), sorted((b - a).elements())
            errors.append(f"{name}: " + ", ".join(
                [f"missing {x!r}" for x in lost[:3]] + [f"not in the English {x!r}" for x in added[:3]]))
    return errors


# ----------------------------------------------------------------------------- catalogs

@dataclass
class Entry:
    en: str
    zh: str = ""
    was: str | None = None      # the English this translation was made from, while it is stale

    @property
    def state(self) -> str:
        if self.was is not None:
            return "stale"
        return "current" if self.zh.strip() else "missing"


_HEADER = ("<!-- Translation of {page} into Simplified Chinese (sketchlib.book.i18n). One entry per English\n"
           "     paragraph: edit only the text under '@@ zh'; an entry with '@@ was' is stale (its English\n"
           "     changed): update the Chinese, then delete the '@@ was' section. -->\n")


def read_catalog(path: Path) -> list[Entry]:
    """Entries of one translation file, in file order (a malformed file raises ValueError)."""
    entries: list[Entry] = []
    section, buf, cur = None, [], None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        tag = line.rstrip() if line.startswith("@@ ") else None
        if tag in ("@@ en", "@@ was", "@@ zh", "@@ end"):
            if section is not None:
                setattr(cur, section, "\n".join(buf).strip("\n"))
            if tag == "@@ en":
                if cur is not None and section is not None:
                    raise ValueError(f"{path}:{n}: '@@ en' before the previous entry's '@@ end'")
                cur = Entry(en="")
            elif cur is None:
                raise ValueError(f"{path}:{n}: {tag!r} outside an entry")
            if tag == "@@ end":
                entries.append(cur)
                cur, section = None, None
            else:
                section = tag[3:]
            buf = []
        elif tag is not None:
            raise ValueError(f"{path}:{n}: unknown marker {line!r} (markers: @@ en, @@ was, @@ zh, @@ end)")
        elif section is not None:
            buf.append(line)
    if cur is not None:
        raise ValueError(f"{path}: the last entry has no '@@ end'")
    return entries


def write_catalog(path: Path, header: str, entries: list[Entry]) -> None:
    """Write ``header`` (kept as it is: a comment saying what the file holds), then the entries."""
    from sketchlib.data.fileio import atomic_write

    atomic_write(path, header + "\n".join(
        "@@ en\n" + e.en + "\n" + (f"@@ was\n{e.was}\n" if e.was is not None else "")
        + "@@ zh\n" + (e.zh + "\n" if e.zh else "") + "@@ end\n" for e in entries))


def current_table(path: Path) -> dict[str, str]:
    """English -> Chinese for the current entries of one file (none if the file is missing)."""
    return {e.en: e.zh for e in read_catalog(path) if e.state == "current"} if path.exists() else {}


# ----------------------------------------------------------------------------- pages

def pages() -> list[Path]:
    """The English edition's pages, in table-of-contents order (root first)."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    out = []
    for f in files:
        for ext in (".ipynb", ".md"):
            if (ROOT / (f + ext)).exists():
                out.append(ROOT / (f + ext))
                break
        else:
            raise FileNotFoundError(f"_toc.yml names {f!r}, which is neither {f}.ipynb nor {f}.md")
    return out


def catalog_path(page: Path) -> Path:
    return CATALOGS / (page.stem + ".md")


def markdown_of(page: Path) -> list[str]:
    """The Markdown texts of a page: each Markdown cell of a notebook, or the whole of a .md page."""
    if page.suffix == ".ipynb":
        nb = json.loads(page.read_text(encoding="utf-8"))
        return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    return [page.read_text(encoding="utf-8")]


def needed_blocks(page: Path) -> list[str]:
    seen, out = set(), []
    for text in markdown_of(page):
        for b in blocks(text):
            if needs_translation(b) and b not in seen:
                seen.add(b)
                out.append(b)
    return out


def update(page: Path) -> dict[str, int]:
    """Bring ``page``'s translation file in line with the English: new paragraphs get an empty entry,
    changed ones take over the closest old entry and are marked stale, deleted ones are dropped."""
    path = catalog_path(page)
    old = read_catalog(path) if path.exists() else []
    by_en = {e.en: e for e in old}
    need = needed_blocks(page)
    needed = set(need)
    orphans = [e for e in old if e.en not in needed]
    out = []
    for b in need:
        if b in by_en:
            out.append(by_en[b])
            continue
        best, score = None, 0.0
        for e in orphans:
            r = difflib.SequenceMatcher(None, e.en, b).ratio()
            if r > score:
                best, score = e, r
        if best is not None and score >= 0.5:
            orphans.remove(best)
            out.append(Entry(en=b, zh=best.zh, was=best.was if best.was is not None else best.en))
        else:
            out.append(Entry(en=b))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_catalog(path, _HEADER.format(page=page.relative_to(ROOT).as_posix()) + "\n", out)
    return dict(Counter(e.state for e in out))


def problems(page: Path) -> list[str]:
    """Every reason the page's translation is not current: missing, stale, unused or mangled entries."""
    path = catalog_path(page)
    rel = page.relative_to(ROOT).as_posix()
    if not path.exists():
        return [f"{rel}: no translation file {path.relative_to(ROOT)} (run: python -m sketchlib.book.i18n update {rel})"]
    entries = read_catalog(path)
    need = needed_blocks(page)
    have = {e.en: e for e in entries}
    out = []
    for b in need:
        e = have.get(b)
        first = b.strip().splitlines()[0][:70]
        if e is None:
            out.append(f"{rel}: paragraph without a translation: {first!r} (run update)")
        elif e.state != "current":
            out.append(f"{rel}: {e.state} translation: {first!r}")
        else:
            out += [f"{rel}: {first!r}: {err}" for err in structure_errors(e.en, e.zh)]
    needed = set(need)
    unused = [e.en for e in entries if e.en not in needed]
    out += [f"{rel}: translation of a paragraph the page no longer has: {u.splitlines()[0][:70]!r} (run update)"
            for u in unused]
    return out


def translate_markdown(text: str, table: dict[str, str]) -> str:
    """``text`` with every block replaced by its current translation (English where there is none)."""
    return "\n\n".join(table.get(b, b) for b in blocks(text)) + ("\n" if text.endswith("\n") else "")


def table_of(page: Path) -> dict[str, str]:
    return current_table(catalog_path(page))


_INCLUDE = re.compile(r"^(\s*(?:`{3,}|:{3,})\{(?:literalinclude|include|image|figure)\}\s+)(\.\./)", re.M)


def _one_level_deeper(text: str) -> str:
    """The Chinese pages sit one folder deeper (zh/book/): a directive's ``../`` path needs one more."""
    return _INCLUDE.sub(r"\1../\2", text)


def translated_page(page: Path) -> str:
    """The Chinese edition's text of ``page`` (a notebook's JSON, or Markdown)."""
    table = table_of(page)
    if page.suffix == ".md":
        return _one_level_deeper(translate_markdown(page.read_text(encoding="utf-8"), table))
    nb = json.loads(page.read_text(encoding="utf-8"))
    zh = copy.deepcopy(nb)
    for cell in zh["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = _one_level_deeper(translate_markdown("".join(cell["source"]), table)).splitlines(keepends=True)
    zh["metadata"]["sketchbook"] = {"language": LANG}     # notebook metadata: not in the cache's hash
    return json.dumps(zh, indent=1, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------- the edition's project

def site_strings() -> dict[str, str]:
    """Titles and captions of the Chinese site (``i18n/zh/_site.md``: English -> Chinese)."""
    return current_table(CATALOGS / "_site.md")


def edition_files() -> dict[Path, str]:
    """Every file of the generated ``zh/`` project, path -> text."""
    import yaml

    site = site_strings()
    files: dict[Path, str] = {}
    for page in pages():
        files[EDITION / page.relative_to(ROOT)] = translated_page(page)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        part["caption"] = site.get(part["caption"], part["caption"])
    files[EDITION / "_toc.yml"] = ("# Generated by `python -m sketchlib.book.i18n build` from ../_toc.yml: do not edit.\n"
                                   + yaml.safe_dump(toc, allow_unicode=True, sort_keys=False))
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    cfg["title"] = site.get(cfg["title"], cfg["title"])
    cfg["exclude_patterns"] = ["_build", "_build/*", "**.ipynb_checkpoints"]
    cfg["execute"]["cache"] = "_build/.jupyter_cache"  # the English edition's cache (make runs at the root)
    cfg["bibtex_bibfiles"] = ["../book/references.bib"]
    cfg["repository"]["path_to_book"] = LANG
    cfg["html"]["favicon"] = "../book/_static/favicon.png"
    sphinx = cfg["sphinx"]
    sphinx["local_extensions"] = {k: "../" + v for k, v in sphinx["local_extensions"].items()}
    sc = sphinx["config"]
    sc["language"] = "zh_CN"
    # the toggle of a hidden code cell (Sphinx translates the theme's own words, not MyST-NB's)
    sc["nb_code_prompt_show"], sc["nb_code_prompt_hide"] = "显示代码单元格", "隐藏代码单元格"
    sc["html_static_path"] = ["../" + p for p in sc["html_static_path"]]
    files[EDITION / "_config.yml"] = ("# Generated by `python -m sketchlib.book.i18n build` from ../_config.yml: do not edit.\n"
                                      + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return files


def build() -> list[Path]:
    """Write the ``zh/`` project; returns the files that changed."""
    from sketchlib.data.fileio import atomic_write

    changed = []
    for path, text in edition_files().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text)
            changed.append(path)
    return changed


def add_strings(report: Path) -> int:
    """Add the words a Chinese build found without a translation (its ``_i18n_missing.json``) to the
    figure-and-output catalog as empty entries, numbers written ``{}``; returns how many were added."""
    from sketchlib.book.edition import CATALOG, template

    entries = read_catalog(CATALOG) if CATALOG.exists() else []
    known = {e.en for e in entries}
    added = 0
    for words in json.loads(report.read_text(encoding="utf-8")).values():
        for text in words:
            key, slots = template(text)
            key = key if slots else text
            if key not in known:
                known.add(key)
                entries.append(Entry(en=key))
                added += 1
    header = CATALOG.read_text(encoding="utf-8").split("@@ en", 1)[0] if CATALOG.exists() else ""
    write_catalog(CATALOG, header, entries)
    return added


def _select(args: list[str]) -> list[Path]:
    every = pages()
    if not args:
        return every
    chosen = []
    for a in args:
        hits = [p for p in every if p.stem == Path(a).stem]
        if not hits:
            raise SystemExit(f"error: no page {a!r} in _toc.yml (pages: {', '.join(p.stem for p in every)})")
        chosen += hits
    return chosen


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "strings":
        report = Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / "html" / "zh" / "_i18n_missing.json"
        print(f"added {add_strings(report)} entries to sketchlib/book/locale/zh.md")
        return 0
    if not argv or argv[0] not in ("update", "status", "build"):
        print(__doc__.split("\n\n")[-1])
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "update":
        for page in _select(rest):
            print(f"{page.relative_to(ROOT)}: {update(page)}")
        return 0
    if cmd == "status":
        chosen = _select(rest)
        found = [p for page in chosen for p in problems(page)]
        for page in chosen:
            need = needed_blocks(page)
            words = sum(len(b.split()) for b in need)
            print(f"{page.relative_to(ROOT).as_posix():36s} {len(need):4d} paragraphs  {words:6d} English words")
        for p in found:
            print(p)
        print(f"{len(found)} problem(s)")
        return 1 if found else 0
    for path in build():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
