"""The website's live demos: the files they need, and the HTML that places one in a page.

The demos (``book/_static/live/*.mjs``) run the exported model (:mod:`sketchlib.export`) with
onnxruntime-web in the reader's browser: no kernel, no server beyond the static site, and no
request to any other site. At build time (``book/_ext/live_assets.py``, during ``make book``):

* :func:`ensure_runtime` fetches the pinned onnxruntime-web package with ``npm pack`` (once, into
  the cache), checks the tarball against npm's sha512 integrity and the three files the page serves
  (the ES module, its WebAssembly loader, the SIMD WebAssembly binary) against their sha256, and
  fails with a message naming the file if any differs;
* :func:`build_assets` writes ``live/ort/`` (those three files) and ``live/models/`` (the ONNX
  graphs and JSON of the shipped checkpoint, with the PCA directions of its codes and a few test
  characters) into a folder that Sphinx copies into ``_static/``.

:func:`embed` returns the HTML of one demo for a page or a notebook cell; the extension adds the
demos' module script only to pages that contain one.

Which model: the shipped ``kanjivg`` checkpoint (LSTM 256 decoder, LSTM 128 encoder, N_z = 128,
M = 20), about 2.8 MB of float32 ONNX, small next to the runtime (14.2 MB of WebAssembly,
3.7 MB compressed), so float16 would save little and cost accuracy.
"""

from __future__ import annotations

import base64
import hashlib
import html
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: The onnxruntime-web release the site serves (npm), and what its files must hash to.
ORT_VERSION = "1.30.0"
ORT_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
ORT_FILES = {
    "ort.wasm.min.mjs": "219e6a1fc8a9938268d18efca3c91d310bd2f4a59bbd13744df5b2b7fc6cee3b",
    "ort-wasm-simd-threaded.mjs": "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
}
#: The demos a page can embed.
DEMOS = ("sampler", "interpolate", "draw")
#: Test characters offered as the interpolation's end points (those present in the test split).
EXAMPLE_CHARS = "三井串也互ぎめヨ"
#: How many principal directions of the codes get a slider.
N_DIRECTIONS = 4

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "book" / "_static"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_integrity(tarball: Path) -> None:
    algo, _, expected = ORT_INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        raise RuntimeError(f"{tarball.name}: {algo} {actual} differs from the pinned integrity {expected} "
                           f"of onnxruntime-web {ORT_VERSION}; refusing to serve it")


def _npm_pack(dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed once to fetch onnxruntime-web {ORT_VERSION} for the live demos "
                           "(install Node.js; the files are then cached)")
    run = subprocess.run([npm, "pack", f"onnxruntime-web@{ORT_VERSION}", "--pack-destination", str(dest)],
                         capture_output=True, text=True)
    tarball = dest / f"onnxruntime-web-{ORT_VERSION}.tgz"
    if run.returncode != 0 or not tarball.is_file():
        raise RuntimeError(f"npm pack onnxruntime-web@{ORT_VERSION} failed:\n{run.stderr[-2000:]}")
    return tarball


def ensure_runtime(cache=None) -> Path:
    """The folder holding the three verified onnxruntime-web files (fetched with npm once, then cached)."""
    from sketchlib.data.fileio import atomic_write, cache_dir

    folder = Path(cache) if cache is not None else cache_dir() / "onnxruntime-web" / ORT_VERSION
    if all((folder / n).is_file() and _sha256(folder / n) == h for n, h in ORT_FILES.items()):
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        tarball = _npm_pack(Path(tmp))
        _check_integrity(tarball)
        with tarfile.open(tarball) as tar:
            for name, expected in ORT_FILES.items():
                member = tar.extractfile(f"package/dist/{name}")
                data = member.read() if member is not None else b""
                actual = hashlib.sha256(data).hexdigest()
                if actual != expected:
                    raise RuntimeError(f"onnxruntime-web {ORT_VERSION}: dist/{name} has sha256 {actual}, "
                                       f"expected {expected}; refusing to serve it")
                atomic_write(folder / name, data)
    return folder


def _assets_key(name: str) -> str:
    from sketchlib import export
    from sketchlib.pretrained import DATA_DIR

    parts = [(DATA_DIR / f"{name}.manifest.json").read_bytes(), Path(export.__file__).read_bytes(),
             Path(__file__).read_bytes(), str(export.EXPORT_FORMAT).encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def export_site_model(out_dir, name: str = "kanjivg") -> dict:
    """Export the shipped checkpoint ``name`` with its latent directions and example characters."""
    from sketchlib.book.widgets import latent_directions
    from sketchlib.data.datasets import load_dataset
    from sketchlib.data.kanjivg import DEFAULT_EPSILON, GRID_SIZE
    from sketchlib.export import export_model
    from sketchlib.pretrained import load_pretrained

    model, hp, info = load_pretrained(name, progress=False)
    if hp.extra.get("dataset") != "kanjivg":
        raise ValueError(f"the live demos are written for KanjiVG models; {name!r} was trained on "
                         f"{hp.extra.get('dataset')!r}")
    data = load_dataset("kanjivg", max_seq_len=hp.max_seq_len)
    latent = latent_directions(model, data.valid, k=N_DIRECTIONS)  # PCA of the validation codes
    labels = data.labels["test"]
    examples = {c: data.test[labels.index(c)] for c in EXAMPLE_CHARS if c in labels}
    source = {"checkpoint": name, "sha256": info["manifest"]["sha256"]}
    return export_model(model, out_dir, name, scale=hp.extra["scale"], grid_size=GRID_SIZE,
                        epsilon=DEFAULT_EPSILON, latent=latent, examples=examples, source=source)


def build_assets(dest, name: str = "kanjivg", runtime_cache=None) -> Path:
    """Write ``dest/live/ort/`` and ``dest/live/models/`` (skipped when already built from the same inputs)."""
    from sketchlib.data.fileio import atomic_write

    dest = Path(dest)
    live = dest / "live"
    ort_dir, models = live / "ort", live / "models"
    runtime = ensure_runtime(runtime_cache)
    ort_dir.mkdir(parents=True, exist_ok=True)
    for n, h in ORT_FILES.items():
        if not (ort_dir / n).is_file() or _sha256(ort_dir / n) != h:
            shutil.copyfile(runtime / n, ort_dir / n)
    stamp = dest / f"{name}.key"  # outside live/, so it is not served
    key = _assets_key(name)
    if not (stamp.is_file() and stamp.read_text() == key and (models / f"{name}.json").is_file()):
        export_site_model(models, name)
        atomic_write(stamp, key)
    return live


def embed_html(demo: str, model: str = "kanjivg") -> str:
    """The HTML of one live demo: hidden until the demo has loaded (then it replaces the fallbacks)."""
    if demo not in DEMOS:
        raise ValueError(f"unknown live demo {demo!r}; expected one of {DEMOS}")
    notes = {
        "sampler": "Move a slider: the page decodes z = mean + sum of c_j std_j d_j along the principal "
                   "directions of the codes, with the temperature you set.",
        "interpolate": "Two test characters are encoded in this page; the decoder draws the codes between them.",
        "draw": "The model knows stroke-ordered characters (KanjiVG kanji and kana) written on a square "
                "grid: draw ONE character filling the box, stroke by stroke in the usual order, each "
                "stroke one movement of the pen. A mouse draws straighter lines than a brush, so expect "
                "rough results; a character the data set holds, drawn in its stroke order, works best.",
    }
    return (f'<div class="live-demo" data-live-demo="{demo}" data-model="{html.escape(model)}" hidden>'
            f'<p class="live-note"><strong>Live:</strong> {html.escape(notes[demo])} '
            f'The model ({html.escape(model)}, LSTM decoder) runs in your browser with onnxruntime-web.</p>'
            f'<div class="live-body"></div></div>')


def embed(demo: str, model: str = "kanjivg"):
    """:func:`embed_html` as ``IPython.display.HTML`` (for a notebook cell of the book)."""
    from IPython.display import HTML

    return HTML(embed_html(demo, model))


def page_uses_demos(body: str) -> bool:
    """Whether a built page's body holds a live demo (so it gets the demos' module script)."""
    return "data-live-demo=" in body


def build_demo_site(dest, page: Path = ROOT / "book" / "playground.md") -> Path:
    """A Sphinx build of the demo page alone (``index.html``) with its assets, into ``dest/html``.

    What the tests and the benchmark serve: the same extension and static files as the book, in
    seconds instead of a whole book build (Sphinx's plain ``basic`` theme; the page's demos do not
    depend on the theme).
    """
    dest = Path(dest)
    src = dest / "src"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(page, src / "index.md")
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['myst_parser', 'live_assets']\n"
        "html_theme = 'basic'\n"
        f"html_favicon = {str(STATIC / 'favicon.png')!r}\n"
        "project = 'live demos'\n")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", str(src), str(dest / "html")],
                         capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        raise RuntimeError(f"sphinx build of {page.name} failed:\n{run.stdout[-2000:]}{run.stderr[-3000:]}")
    return dest / "html"
