"""Speed of the live demos, measured in the page in headless Chromium (``python bench/live_demo.py``).

Builds the demo page alone (:func:`sketchlib.book.live.build_demo_site`), serves it on 127.0.0.1
and measures in the page (``performance.now()``):

* ``slider_to_drawing``: a z slider is moved (an ``input`` event) and the time from the event to the
  finished drawing (decoded and drawn, pen animation off) is recorded by the demo itself;
* ``decode_36`` / ``decode_250``: decoding and drawing exactly 36 / 250 points (a typical KanjiVG
  character has 36; 250 is the reference's N_max) from a fixed z, through the same functions,
  ``repeats`` times;
* the bytes the demo page loads (every resource, from the Resource Timing API).

Writes ``bench/results/live_demo-cpu.json``. The helpers (serve, launch Chromium, list the
requests) are shared with ``tests/test_live_demo.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGET_MS = {"decode_36": 30.0, "decode_250": 150.0}


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def launch_chromium(profile: Path, paths: tuple[str, str]):
    """Headless Chromium kept off the network (closed-network flags), logging console and network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,1400", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    return driver


def requested_urls(driver) -> list[str]:
    """Every URL the page requested since the last call (from the DevTools network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


@contextlib.contextmanager
def local_http_server(handler):
    """An HTTP server on 127.0.0.1 (a free port) answering with ``handler``, in a thread; yields its
    base URL. (The tests serve their fake download servers with it too: ``tests/conftest.py``.)"""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Static files with the types ES modules and WebAssembly need, and no request log."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread: ``with serve(d) as url``."""
    return local_http_server(functools.partial(_QuietFiles, directory=str(directory)))


def wait_ready(driver, timeout_s: float = 90) -> dict:
    """Wait for every demo of the page to mount; returns how many of each kind did."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const t0 = performance.now();
        const poll = () => {
          if (window.sketchLive) { window.sketchLive.ready.then(() => {
              const d = window.sketchLive.demos;
              done(Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.length])));
          }); return; }
          if (performance.now() - t0 > arguments[0] * 1000) { done({error: 'sketchLive never appeared'}); return; }
          setTimeout(poll, 100);
        };
        poll();""", timeout_s)


SLIDER_JS = """
const [repeats, done] = [arguments[0], arguments[arguments.length - 1]];
const demo = window.sketchLive.demos.sampler[0];
demo.animate.checked = false;
const out = [];
const once = (i) => new Promise((resolve) => {
  const n = demo.timings.length;
  const s = demo.sliders[i % demo.sliders.length];
  s.value = String(((i * 7) % 41 - 20) / 10);
  s.dispatchEvent(new Event('input'));
  const poll = () => (demo.timings.length > n ? resolve(demo.timings[demo.timings.length - 1]) : setTimeout(poll, 1));
  poll();
});
(async () => { for (let i = 0; i < repeats; i++) out.push(await once(i)); done(out); })();
"""

DECODE_JS = """
const [points, repeats, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const L = window.sketchLive;
const demo = L.demos.sampler[0];
(async () => {
  const render = await import(new URL('./live/render.mjs', L.staticBase).href);
  const model = demo.model;
  const z = new Float32Array(model.meta.latent.mean);
  const ms = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const rows = await L.decode(model, z, {temperature: 0.25, seed: i, maxLen: points, untilEnd: false});
    render.clear(demo.canvas);
    render.drawSketch(demo.canvas, [{rows}], model.conv);
    ms.push({ms: performance.now() - t0, points: rows.length});
  }
  done(ms);
})();
"""

BYTES_JS = """
const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
return entries.map(e => ({name: e.name, path: new URL(e.name).pathname, bytes: e.decodedBodySize || e.encodedBodySize || 0}));
"""


def measure(url: str, driver, repeats: int) -> dict:
    driver.get(f"{url}/index.html")
    mounted = wait_ready(driver)
    slider = driver.execute_async_script(SLIDER_JS, repeats)
    decode = {f"decode_{n}": driver.execute_async_script(DECODE_JS, n, repeats) for n in (36, 250)}
    resources = driver.execute_script(BYTES_JS)
    by_kind: dict[str, int] = {}
    for r in resources:
        kind = ("runtime" if "/live/ort/" in r["name"] else "model" if "/live/models/" in r["name"]
                else "demo modules" if "/live/" in r["name"] else "page and theme")
        by_kind[kind] = by_kind.get(kind, 0) + r["bytes"]
    rows = []
    for name, runs in [("slider_to_drawing", slider), *decode.items()]:
        ms = [r["ms"] for r in runs]
        rows.append({"what": name, "points_median": statistics.median(r["points"] for r in runs),
                     "median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
                     "max_ms": round(max(ms), 2), "repeats": len(ms), "target_ms": TARGET_MS.get(name)})
    return {"mounted": mounted, "rows": rows, "bytes_loaded": by_kind,
            "bytes_total": sum(by_kind.values()), "resources": resources}


def _without_host(result: dict) -> dict:
    """The resources by path (the test server's port changes from run to run)."""
    result["resources"] = [{"path": r["path"], "bytes": r["bytes"]} for r in result["resources"]]
    return result


def gzip_sizes(site: Path, url: str, resources: list[dict]) -> dict:
    """What the same resources weigh gzip-compressed (GitHub Pages compresses; this test server does not)."""
    import gzip

    sizes = {}
    for r in resources:
        path = site / r["path"].lstrip("/")
        if r["name"].startswith(url) and path.is_file():
            kind = "runtime" if "/live/ort/" in r["name"] else "model" if "/live/models/" in r["name"] else "page and modules"
            sizes[kind] = sizes.get(kind, 0) + len(gzip.compress(path.read_bytes(), 6))
    return sizes


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=RESULTS / "live_demo-cpu.json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from sketchlib.book.live import ORT_VERSION, build_demo_site

    paths = chromium_paths()
    if paths is None:
        raise SystemExit("chromium and chromedriver are needed (make browser-deps)")
    with tempfile.TemporaryDirectory() as tmp:
        site = build_demo_site(Path(tmp) / "site")
        driver = launch_chromium(Path(tmp) / "profile", paths)
        try:
            with serve(site) as url:
                result = measure(url, driver, args.repeats)
                result["bytes_gzip"] = gzip_sizes(site, url, result["resources"])
            version = driver.capabilities.get("browserVersion")
        finally:
            driver.quit()
    result = {
        "command": "python bench/live_demo.py" + (f" --repeats {args.repeats}" if args.repeats != 30 else ""),
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
                    "browser": f"Chromium {version} (headless)", "onnxruntime_web": ORT_VERSION,
                    "wasm_threads": 1},
        "model": "kanjivg (LSTM 256 decoder, float32 ONNX)",
        **_without_host(result),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp_out, args.out)
    for r in result["rows"]:
        print(f"{r['what']:>18}: median {r['median_ms']:7.2f} ms ({r['points_median']} points; "
              f"target {r['target_ms']} ms)")
    print(f"bytes loaded by the demo page: {result['bytes_total']} {result['bytes_loaded']}; "
          f"gzip-compressed: {result['bytes_gzip']}")
    return result


if __name__ == "__main__":
    main()
