"""The live demos in a real browser: the demo page built alone (sketchlib.book.live.build_demo_site),
served on 127.0.0.1 and driven in Debian's headless Chromium. Screenshots of each state go to
``_build/screenshots/live-*.png``."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from conftest import ROOT, in_ci

import live_demo  # noqa: E402  (bench/live_demo.py, on the path by conftest: serve, launch Chromium, list the requests)

pytestmark = pytest.mark.book
SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The demo page, loaded, with every demo mounted: (driver, base URL, requests made while loading)."""
    paths = live_demo.chromium_paths()
    if paths is None:
        msg = "Debian's chromium and chromium-driver are not installed (`make test` installs them as root with apt)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    pytest.importorskip("selenium")
    from sketchlib.book.live import build_demo_site

    tmp = tmp_path_factory.mktemp("live")
    site = build_demo_site(tmp / "site")
    # the same page as the Chinese edition serves it: Sphinx (language zh_CN) writes <html lang="zh-CN">
    english = (site / "index.html").read_text()
    assert english.count('<html lang="en"') == 1
    (site / "index.zh.html").write_text(english.replace('<html lang="en"', '<html lang="zh-CN"'))
    driver = live_demo.launch_chromium(tmp / "profile", paths)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with live_demo.serve(site) as url:
            driver.get(f"{url}/index.html")
            mounted = live_demo.wait_ready(driver)
            assert mounted == {"sampler": 1, "interpolate": 1, "draw": 1}, mounted
            yield driver, url, live_demo.requested_urls(driver)
    finally:
        driver.quit()


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"live-{name}.png"))
    assert (SCREENSHOTS / f"live-{name}.png").stat().st_size > 5_000


def run_js(driver, body: str, *args):
    """Run an async JS body (``done(value)`` ends it) with ``L = window.sketchLive``."""
    script = "const done = arguments[arguments.length - 1]; const L = window.sketchLive;\n" + body
    return driver.execute_async_script(script, *args)


def test_the_page_loads_with_no_errors_and_no_outside_request(page):
    driver, url, requests = page
    host = urlparse(url).netloc
    outside = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).netloc != host]
    assert not outside, f"requests leaving 127.0.0.1: {outside}"
    assert any(u.endswith("ort-wasm-simd-threaded.wasm") for u in requests)
    assert any(u.endswith("kanjivg.step.onnx") for u in requests)
    errors = [log["message"] for log in driver.get_log("browser") if log["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    hidden = driver.execute_script("return [...document.querySelectorAll('[data-live-demo]')].map(e => e.hidden)")
    assert hidden == [False, False, False]
    fallbacks = driver.execute_script("return [...document.querySelectorAll('.live-fallback')].map(e => e.hidden)")
    assert fallbacks == [True], "the live demos loaded, so the fallback must be hidden"
    shot(driver, "loaded")


# What the reader sees of the three demos: slider names, buttons, the other labels (a control shown
# as [SELECT] or [INPUT]), the draw demo's choices for z, the canvases' aria-labels and status lines.
VISIBLE_TEXT_JS = """
const texts = (sel, f = (e) => e.textContent.trim()) => [...document.querySelectorAll(sel)].map(f);
const pieces = (e) => [...e.childNodes].map((n) => n.nodeType === Node.TEXT_NODE ? n.data : `[${n.tagName}]`).join('');
return {
  sliders: texts('.live-slider > span'),
  buttons: texts('.live-button'),
  labels: texts('.live-controls > label:not(.live-slider)', pieces),
  z_choices: texts('[data-live-demo=draw] option'),
  canvases: texts('.live-canvas', (e) => e.getAttribute('aria-label')),
  status: Object.fromEntries(texts('[data-live-demo]', (e) => [e.dataset.liveDemo, e.querySelector('.live-status').textContent])),
};"""


def visible_text(lang: str) -> dict:
    """What :data:`VISIBLE_TEXT_JS` should find on a page in ``lang`` ("en" or "zh"), once the demos have mounted."""
    from sketchlib.book.live import N_DIRECTIONS

    pcs = range(1, N_DIRECTIONS + 1)
    if lang == "zh":
        return {
            "sliders": [f"z 沿主成分 PC{j}（标准差）" for j in pcs] + ["温度 τ", "t（从第一个到第二个）", "温度 τ", "温度 τ"],
            "buttons": ["重新绘制（新的随机种子）", "重构", "补全", "清除"],
            "labels": ["[INPUT] 动画显示笔的移动", "从 [SELECT] 到 [SELECT]，用 [SELECT] 插值",
                       "[INPUT] 动画显示笔的移动", "补全时使用 [SELECT]"],
            "z_choices": ["z = 0（任意字符）", "z = 我这幅画的编码"],
            "canvases": ["本页由 z 解码出的字符", "在两个编码之间的路径上解码出的字符", "在这里书写", "模型根据你的书写画出的结果"],
            "status": {"draw": "请用鼠标、手指或触控笔书写。"},
        }
    return {
        "sliders": [f"z along PC{j} (std)" for j in pcs] + ["temperature τ", "t (from the first to the second)",
                                                            "temperature τ", "temperature τ"],
        "buttons": ["Re-draw (new seed)", "Reconstruct", "Complete", "Clear"],
        "labels": ["[INPUT] animate the pen", "from [SELECT] to [SELECT] by [SELECT]", "[INPUT] animate the pen",
                   "Complete with [SELECT]"],
        "z_choices": ["z = 0 (any character)", "z = the code of my drawing"],
        "canvases": ["a character decoded from z in this page", "a character decoded on the way between two codes",
                     "draw here", "what the model made of the drawing"],
        "status": {"draw": "Draw with the mouse, a finger or a pen."},
    }


DECODED = {"en": re.compile(r"\d+ points, decoded and drawn in \d+ ms \(in this page\)"),
           "zh": re.compile(r"\d+ 个点，在本页中解码并绘制，用时 \d+ ms")}


def check_visible_text(driver, lang: str) -> None:
    got = driver.execute_script(VISIBLE_TEXT_JS)
    for kind in ("sampler", "interpolate"):  # decoded once as they mounted
        assert DECODED[lang].fullmatch(got["status"].pop(kind)), (kind, got)
    assert got == visible_text(lang)


def test_the_demos_speak_the_language_of_the_page(page):
    """The English page (lang="en") shows the English labels, the same page with lang="zh-CN" the Chinese ones."""
    driver, url, _ = page
    check_visible_text(driver, "en")
    english = driver.current_window_handle
    driver.switch_to.new_window("tab")
    try:
        driver.get(f"{url}/index.zh.html")
        assert live_demo.wait_ready(driver) == {"sampler": 1, "interpolate": 1, "draw": 1}
        assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
        check_visible_text(driver, "zh")
        shot(driver, "zh")
        # what the draw demo answers: an empty drawing (drawing.mjs's error, worded here), then Clear
        answers = run_js(driver, """
            const demo = L.demos.draw[0];
            demo.reconstruct().then(() => {
              const empty = demo.status.textContent;
              document.querySelectorAll('[data-live-demo=draw] .live-button')[2].click();
              done([empty, demo.status.textContent]);
            });""")
        assert answers == ["画布上还没有笔画：请先写点什么", "已清除。"]
        errors = [log["message"] for log in driver.get_log("browser") if log["level"] in ("SEVERE", "WARNING")]
        assert not errors, errors
    finally:
        driver.close()
        driver.switch_to.window(english)


def test_a_fixed_z_decoded_greedily_in_the_page_matches_python(page, one_thread):
    from sketchlib import sample
    from sketchlib.pretrained import load_pretrained

    driver, _, _ = page
    model, hp, _ = load_pretrained("kanjivg", progress=False)
    z = torch.randn(4, hp.z_size, generator=torch.Generator().manual_seed(3)) * 0.7
    expected = sample.sample(model, n=4, z=z, greedy=True)
    got = run_js(driver, """
        const model = L.demos.sampler[0].model;
        Promise.all(arguments[0].map((z) => L.decode(model, Float32Array.from(z), {greedy: true})))
          .then(done, (e) => done(String(e)));""", z.tolist())
    assert isinstance(got, list), got
    assert sum(len(e) for e in expected) > 30
    for rows, ref in zip(got, expected):
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        assert rows.shape == ref.shape
        np.testing.assert_array_equal(rows[:, 2], ref[:, 2])
        np.testing.assert_allclose(rows[:, :2], ref[:, :2], atol=1e-4, rtol=0)


def test_moving_a_slider_changes_the_drawing(page):
    driver, _, _ = page
    result = run_js(driver, """
        const demo = L.demos.sampler[0];
        demo.animate.checked = false;
        const next = (n) => new Promise((ok) => { const poll = () => demo.timings.length > n ? ok() : setTimeout(poll, 5); poll(); });
        (async () => {
          let n = demo.timings.length;
          demo.sliders[0].value = '-2.5'; demo.sliders[0].dispatchEvent(new Event('input')); await next(n);
          const before = demo.last;
          const pixelsBefore = demo.canvas.toDataURL();
          n = demo.timings.length;
          demo.sliders[0].value = '2.5'; demo.sliders[0].dispatchEvent(new Event('input')); await next(n);
          done({before, after: demo.last, same_pixels: pixelsBefore === demo.canvas.toDataURL()});
        })();""")
    assert len(result["before"]) > 3 and len(result["after"]) > 3
    assert result["before"] != result["after"] and not result["same_pixels"]
    shot(driver, "slider")
    redraw = run_js(driver, """
        const demo = L.demos.sampler[0]; const n = demo.timings.length, before = demo.last;
        document.querySelector('[data-live-demo=sampler] .live-button').click();
        const poll = () => demo.timings.length > n ? done([before, demo.last]) : setTimeout(poll, 5); poll();""")
    assert redraw[0] != redraw[1], "Re-draw with a new seed gave the same sketch"


def test_interpolation_between_two_test_characters(page):
    driver, _, _ = page
    ends = run_js(driver, """
        const demo = L.demos.interpolate[0];
        const at = (t, method) => new Promise((ok) => {
          const n = demo.timings.length;
          demo.method.value = method; demo.t.value = String(t); demo.t.dispatchEvent(new Event('input'));
          const poll = () => demo.timings.length > n ? ok(demo.last) : setTimeout(poll, 5); poll();
        });
        (async () => done([await at(0, 'slerp'), await at(1, 'slerp'), await at(0.5, 'lerp'), await at(0.5, 'slerp')]))();""")
    assert all(len(e) > 3 for e in ends)
    assert ends[0] != ends[1]
    shot(driver, "interpolate")


def draw_with_the_mouse(driver, pad, segments) -> list:
    """Drag the mouse along straight segments (offsets from the pad's centre, CSS pixels), 20 moves each."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver, duration=10)
    for (x0, y0), (x1, y1) in segments:
        actions.move_to_element_with_offset(pad, x0, y0).click_and_hold()
        for k in range(1, 21):
            actions.move_to_element_with_offset(pad, round(x0 + (x1 - x0) * k / 20), round(y0 + (y1 - y0) * k / 20))
        actions.release()
    actions.perform()
    return driver.execute_script("return window.sketchLive.demos.draw[0].strokes")


ACTION = """
    const demo = L.demos.draw[0];
    demo[arguments[0]]().then(() => done(demo.last), (e) => done(String(e)));"""


def test_a_scripted_mouse_drawing_is_completed_and_reconstructed(page, one_thread):
    from sketchlib import sample
    from sketchlib.book.widgets import complete
    from sketchlib.data.drawing import drawing_to_stroke3
    from sketchlib.pretrained import load_pretrained

    driver, _, _ = page
    model, hp, _ = load_pretrained("kanjivg", progress=False)
    pad = driver.find_element("css selector", ".live-pad")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", pad)

    # the first stroke of 十, then Complete: the model goes on drawing (z = 0, and z = its code)
    strokes = draw_with_the_mouse(driver, pad, [((-90, -10), (90, -20))])
    assert len(strokes) == 1 and len(strokes[0]) > 10
    first = drawing_to_stroke3(strokes, hp.extra["scale"])
    outputs = []
    for z_from in ("drawing", "prior"):
        driver.execute_script("window.sketchLive.demos.draw[0].zFrom.value = arguments[0]", z_from)
        done = run_js(driver, ACTION, "complete")
        np.testing.assert_array_equal(np.asarray(done["input"], np.float32).reshape(-1, 3), first)
        outputs.append(done["output"])
        shot(driver, f"completed-z-{z_from}")
    assert max(len(o) for o in outputs) >= 2, outputs
    greedy = run_js(driver, """
        const demo = L.demos.draw[0];
        L.decode(demo.model, new Float32Array(demo.model.meta.z_size), {greedy: true, prefix: demo.last.input})
          .then(done);""")
    expected = complete(model, first, greedy=True)
    assert len(greedy) == len(expected) > 0
    np.testing.assert_allclose(np.asarray(greedy, np.float64).reshape(-1, 3), expected, atol=1e-4, rtol=0)

    # then the second stroke, and Reconstruct: the page's input equals Python's, and so does the code
    strokes = draw_with_the_mouse(driver, pad, [((0, -100), (2, 100))])
    assert len(strokes) == 2
    rec = run_js(driver, ACTION, "reconstruct")
    np.testing.assert_array_equal(np.asarray(rec["input"], np.float32).reshape(-1, 3),
                                  drawing_to_stroke3(strokes, hp.extra["scale"]))
    assert len(rec["output"]) >= 3 and sum(r[2] for r in rec["output"]) >= 1
    shot(driver, "reconstructed")
    mu_page = run_js(driver, """
        const demo = L.demos.draw[0], rows = demo.last.input;
        demo.model.encode(L.stroke3ToStroke5(rows, demo.model.meta.max_seq_len), rows.length)
          .then((mu) => done(Array.from(mu)));""")
    mu = sample.encode(model, [np.asarray(rec["input"], np.float32).reshape(-1, 3)])[0]
    np.testing.assert_allclose(mu_page, mu.numpy(), atol=1e-4, rtol=0)
    errors = [log["message"] for log in driver.get_log("browser") if log["level"] == "SEVERE"]
    assert not errors, errors



def test_without_webassembly_the_fallback_stays(page):
    """Runs last on the shared page: the browser then loads every page without WebAssembly."""
    driver, url, _ = page
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.WebAssembly;"})
    driver.get(f"{url}/index.html")
    live_demo.wait_ready(driver)
    state = driver.execute_script("""return {
        demos: [...document.querySelectorAll('[data-live-demo]')].map(e => e.hidden),
        fallback: [...document.querySelectorAll('.live-fallback')].map(e => e.hidden)}""")
    assert state == {"demos": [True, True, True], "fallback": [False]}, state
    shot(driver, "no-webassembly")


# ---------------------------------------------------------------------------------------------
# the build-time side (no browser): the pinned runtime is checked, the page's demos are embed_html's


def test_a_runtime_that_differs_from_the_pins_is_refused(tmp_path, monkeypatch):
    import io
    import tarfile

    from sketchlib.book import live

    with pytest.raises(RuntimeError, match="pinned integrity"):
        (tmp_path / "x.tgz").write_bytes(b"not the package")
        live._check_integrity(tmp_path / "x.tgz")

    def fake_pack(dest):  # a tarball with the right names and the wrong bytes
        tgz = dest / "fake.tgz"
        with tarfile.open(tgz, "w:gz") as tar:
            for name in live.ORT_FILES:
                info = tarfile.TarInfo(f"package/dist/{name}")
                info.size = 3
                tar.addfile(info, io.BytesIO(b"bad"))
        return tgz

    monkeypatch.setattr(live, "_npm_pack", fake_pack)
    monkeypatch.setattr(live, "_check_integrity", lambda tarball: None)
    with pytest.raises(RuntimeError, match="ort.wasm.min.mjs has sha256"):
        live.ensure_runtime(tmp_path / "cache")
    assert not (tmp_path / "cache" / "ort.wasm.min.mjs").exists()

    # a complete, verified cache is used as it is (npm is not called)
    for name in live.ORT_FILES:
        (tmp_path / "ok").mkdir(exist_ok=True)
        (tmp_path / "ok" / name).write_bytes(b"x")
    monkeypatch.setattr(live, "ORT_FILES", {n: live._sha256(tmp_path / "ok" / n) for n in live.ORT_FILES})
    monkeypatch.setattr(live, "_npm_pack", lambda dest: pytest.fail("npm should not run"))
    assert live.ensure_runtime(tmp_path / "ok") == tmp_path / "ok"


def test_the_playground_holds_the_three_demos_as_embed_makes_them():
    from sketchlib.book.live import DEMOS, embed, embed_html, page_uses_demos

    text = (ROOT / "book" / "playground.md").read_text()
    for demo in DEMOS:
        assert embed_html(demo) in text
        assert page_uses_demos(embed(demo).data)
    assert not page_uses_demos("<p>no demo here</p>")
    with pytest.raises(ValueError, match="unknown live demo"):
        embed_html("nope")
