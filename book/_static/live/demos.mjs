// The live demos of the book: every element <div data-live-demo="sampler|interpolate|draw"
// data-model="kanjivg"> becomes a demo once the model has loaded; elements marked as fallbacks
// (class "live-fallback", or a notebook cell tagged "live-fallback") are then hidden. Without
// JavaScript or WebAssembly nothing changes: the demos stay hidden, the pre-rendered figures stay.
import { LiveModel } from "./model.mjs";
import { decode, latentPoint, lerp, slerp } from "./sampling.mjs";
import { CANVAS_SIZE, drawingToStroke3, stroke3ToStroke5 } from "./drawing.mjs";
import { MODEL_COLOR, READER_COLOR, animateSketch, clear, drawSketch, makeCanvas } from "./render.mjs";

// Every word the demos show the reader, in English and in Simplified Chinese. The page's <html lang>
// picks one table, once ("zh-CN" on the Chinese edition, which Sphinx builds with language zh_CN).
// Entries that hold numbers or form controls are functions; the controls come back as a list of
// the label's pieces, in the order that language puts them.
const TEXT = {
  en: {
    alongPC: (j) => `z along PC${j} (std)`,
    temperature: "temperature τ",
    redraw: "Re-draw (new seed)",
    animate: "animate the pen",
    decoded: (n, ms) => `${n} points, decoded and drawn in ${ms} ms (in this page)`,
    between: (a, b, how) => ["from ", a, " to ", b, " by ", how],
    t: "t (from the first to the second)",
    drawHint: "Draw with the mouse, a finger or a pen.",
    reconstruct: "Reconstruct",
    complete: "Complete",
    clear: "Clear",
    cleared: "Cleared.",
    completeWith: (choice) => ["Complete with ", choice],
    zPrior: "z = 0 (any character)",
    zDrawing: "z = the code of my drawing",
    answered: ({ action, pointsIn, pointsOut, red, ms }) => `${action}: your ${pointsIn} points in ` +
      `(what the model sees), ${pointsOut} points out${red ? " (red)" : ""}, ${ms} ms`,
    drawingError: {  // drawing.mjs's DrawingError, by reason
      empty: () => "the drawing is empty: draw something first",
      tooLong: ({ points, maxLen }) => `the drawing has ${points} points after simplification, more than ` +
        `the model's N_max = ${maxLen}: draw fewer or simpler strokes`,
    },
    canvas: {  // the canvases' aria-label
      sampler: "a character decoded from z in this page",
      interpolate: "a character decoded on the way between two codes",
      pad: "draw here",
      view: "what the model made of the drawing",
    },
  },
  zh: {
    alongPC: (j) => `z 沿主成分 PC${j}（标准差）`,
    temperature: "温度 τ",
    redraw: "重新绘制（新的随机种子）",
    animate: "动画显示笔的移动",
    decoded: (n, ms) => `${n} 个点，在本页中解码并绘制，用时 ${ms} ms`,
    between: (a, b, how) => ["从 ", a, " 到 ", b, "，用 ", how, " 插值"],
    t: "t（从第一个到第二个）",
    drawHint: "请用鼠标、手指或触控笔书写。",
    reconstruct: "重构",
    complete: "补全",
    clear: "清除",
    cleared: "已清除。",
    completeWith: (choice) => ["补全时使用 ", choice],
    zPrior: "z = 0（任意字符）",
    zDrawing: "z = 我这幅画的编码",
    answered: ({ action, pointsIn, pointsOut, red, ms }) => `${action}：输入你画的 ${pointsIn} 个点` +
      `（模型看到的样子），输出 ${pointsOut} 个点${red ? "（红色）" : ""}，用时 ${ms} ms`,
    drawingError: {
      empty: () => "画布上还没有笔画：请先写点什么",
      tooLong: ({ points, maxLen }) => `简化后这幅画有 ${points} 个点，超过了模型的 N_max = ${maxLen}：` +
        "请少写几笔，或把笔画写得简单些",
    },
    canvas: {
      sampler: "本页由 z 解码出的字符",
      interpolate: "在两个编码之间的路径上解码出的字符",
      pad: "在这里书写",
      view: "模型根据你的书写画出的结果",
    },
  },
};
const T = document.documentElement.lang.toLowerCase().startsWith("zh") ? TEXT.zh : TEXT.en;

const css = document.createElement("link");
css.rel = "stylesheet";
css.href = new URL("./live.css", import.meta.url).href;
document.head.append(css);

const models = {};
const loadModel = (name) => (models[name] ??= LiveModel.load(name));

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) (k in e ? (e[k] = v) : e.setAttribute(k, v));
  e.append(...children);
  return e;
}

function slider(label, value, min, max, step) {
  const input = el("input", { type: "range", min, max, step, value });
  const out = el("output", {}, String(value));
  input.addEventListener("input", () => { out.textContent = input.value; });
  return { input, row: el("label", { className: "live-slider" }, el("span", {}, label), input, out) };
}

// Runs `job` one at a time; a request while busy is kept (only the latest) and run next.
function serial(job) {
  let running = false, pending = null;
  const run = async (arg) => {
    if (running) { pending = arg ?? {}; return null; }
    running = true;
    try { return await job(arg ?? {}); } finally {
      running = false;
      if (pending) { const p = pending; pending = null; run(p); }
    }
  };
  return run;
}

// Decode, then draw (animated or at once); records the time from the request to the finished drawing.
function decodeAndShow(demo, canvas, z, opts, animate) {
  return async ({ t0 = performance.now() } = {}) => {
    const rows = await decode(demo.model, z(), opts());
    if (demo.token) demo.token.cancelled = true;
    if (animate()) {
      demo.token = { cancelled: false };
      animateSketch(canvas, rows, demo.model.conv, { token: demo.token });
    } else {
      clear(canvas);
      drawSketch(canvas, [{ rows, color: READER_COLOR }], demo.model.conv);
    }
    const ms = performance.now() - t0;
    demo.timings.push({ points: rows.length, ms });
    demo.status.textContent = T.decoded(rows.length, ms.toFixed(0));
    demo.last = rows;
    return { rows, ms };
  };
}

function sampler(root, model) {
  const latent = model.meta.latent;
  const demo = { model, timings: [], status: el("p", { className: "live-status" }) };
  const canvas = makeCanvas(CANVAS_SIZE, T.canvas.sampler);
  const pcs = latent.directions.map((_, j) => slider(T.alongPC(j + 1), 0, -3, 3, 0.1));
  const tau = slider(T.temperature, 0.25, 0.01, 1, 0.01);
  const animate = el("input", { type: "checkbox", checked: true });
  let seed = 1;
  const redraw = serial(decodeAndShow(demo, canvas,
    () => latentPoint(latent, pcs.map((p) => parseFloat(p.input.value))),
    () => ({ temperature: parseFloat(tau.input.value), seed }), () => animate.checked));
  const button = el("button", { type: "button", className: "live-button" }, T.redraw);
  button.addEventListener("click", () => { seed += 1; redraw({ t0: performance.now() }); });
  for (const s of [...pcs, tau]) s.input.addEventListener("input", () => redraw({ t0: performance.now() }));
  root.append(el("div", { className: "live-row" }, canvas,
    el("div", { className: "live-controls" }, ...pcs.map((p) => p.row), tau.row, button,
      el("label", {}, animate, " ", T.animate), demo.status)));
  Object.assign(demo, { canvas, redraw, sliders: pcs.map((p) => p.input), temperature: tau.input, animate });
  return demo;
}

function interpolate(root, model) {
  const examples = model.meta.examples;
  const demo = { model, timings: [], status: el("p", { className: "live-status" }) };
  const canvas = makeCanvas(CANVAS_SIZE, T.canvas.interpolate);
  const pick = (i) => el("select", {}, ...examples.map((e, k) => el("option", { value: k, selected: k === i }, e.label)));
  const a = pick(0), b = pick(Math.min(1, examples.length - 1));
  const method = el("select", {}, el("option", { value: "slerp" }, "slerp"), el("option", { value: "lerp" }, "lerp"));
  const t = slider(T.t, 0.5, 0, 1, 0.05);
  const tau = slider(T.temperature, 0.1, 0.01, 1, 0.01);
  const animate = el("input", { type: "checkbox", checked: false });
  const codes = new Map();
  const code = async (k) => {
    if (!codes.has(k)) {
      const rows = examples[k].stroke3;
      codes.set(k, await model.encode(stroke3ToStroke5(rows, model.meta.max_seq_len), rows.length));
    }
    return codes.get(k);
  };
  let z = null;
  const show = decodeAndShow(demo, canvas, () => z,
    () => ({ temperature: parseFloat(tau.input.value), seed: 1 }), () => animate.checked);
  const redraw = serial(async (arg) => {
    const [za, zb] = [await code(+a.value), await code(+b.value)];
    z = Float32Array.from((method.value === "slerp" ? slerp : lerp)(Array.from(za), Array.from(zb), parseFloat(t.input.value)));
    return show(arg);
  });
  for (const c of [a, b, method, t.input, tau.input]) c.addEventListener("input", () => redraw({ t0: performance.now() }));
  root.append(el("div", { className: "live-row" }, canvas,
    el("div", { className: "live-controls" }, el("label", {}, ...T.between(a, b, method)),
      t.row, tau.row, el("label", {}, animate, " ", T.animate), demo.status)));
  Object.assign(demo, { canvas, redraw, t: t.input, method, from: a, to: b });
  return demo;
}

function drawPad(root, model) {
  const conv = model.conv;
  const demo = { model, timings: [], strokes: [], status: el("p", { className: "live-status" }, T.drawHint) };
  const pad = makeCanvas(CANVAS_SIZE, T.canvas.pad);
  pad.classList.add("live-pad");
  const view = makeCanvas(CANVAS_SIZE, T.canvas.view);
  let down = false;
  const point = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * CANVAS_SIZE / r.width, (e.clientY - r.top) * CANVAS_SIZE / r.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    down = true; pad.setPointerCapture(e.pointerId); demo.strokes.push([point(e)]); e.preventDefault();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!down) return;
    const stroke = demo.strokes[demo.strokes.length - 1];
    const [x0, y0] = stroke[stroke.length - 1], [x, y] = point(e);
    stroke.push([x, y]);
    const ctx = pad.getContext("2d");
    ctx.strokeStyle = READER_COLOR; ctx.lineWidth = 3; ctx.lineCap = "round";
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x, y); ctx.stroke();
  });
  for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => { down = false; });
  const tau = slider(T.temperature, 0.1, 0.01, 1, 0.01);
  const zFrom = el("select", {}, el("option", { value: "prior" }, T.zPrior),
    el("option", { value: "drawing" }, T.zDrawing));
  const run = (what) => serial(async () => {
    const t0 = performance.now();
    let rows;
    try { rows = drawingToStroke3(demo.strokes, conv); stroke3ToStroke5(rows, conv.max_seq_len); } catch (err) {
      demo.status.textContent = T.drawingError[err.reason]?.(err) ?? err.message; return null;
    }
    const encode = () => model.encode(stroke3ToStroke5(rows, conv.max_seq_len), rows.length);
    const opts = { temperature: parseFloat(tau.input.value), seed: 1 };
    clear(view);
    let out;
    if (what === "reconstruct") {
      out = await decode(model, await encode(), opts);
      drawSketch(view, [{ rows: out, color: READER_COLOR }], conv);
    } else {
      const z = zFrom.value === "drawing" ? await encode() : new Float32Array(model.meta.z_size);
      out = await decode(model, z, { ...opts, prefix: rows });
      const end = rows.reduce(([x, y], [dx, dy]) => [x + dx * conv.scale, y + dy * conv.scale], conv.origin);
      drawSketch(view, [{ rows, color: READER_COLOR }, { rows: out, color: MODEL_COLOR, start: end }], conv);
    }
    const ms = performance.now() - t0;
    demo.timings.push({ what, points: out.length, ms });
    demo.status.textContent = T.answered({ action: T[what], pointsIn: rows.length, pointsOut: out.length,
                                           red: what === "complete", ms: ms.toFixed(0) });
    demo.last = { input: rows, output: out };
    return demo.last;
  });
  const actions = { reconstruct: run("reconstruct"), complete: run("complete") };
  const button = (label, fn) => { const b = el("button", { type: "button", className: "live-button" }, label); b.addEventListener("click", fn); return b; };
  const buttons = el("div", { className: "live-buttons" },
    button(T.reconstruct, () => actions.reconstruct()), button(T.complete, () => actions.complete()),
    button(T.clear, () => { demo.strokes = []; clear(pad); clear(view); demo.status.textContent = T.cleared; }));
  root.append(el("div", { className: "live-row" }, pad, view),
    el("div", { className: "live-controls" }, buttons, tau.row, el("label", {}, ...T.completeWith(zFrom)), demo.status));
  Object.assign(demo, { pad, view, ...actions, zFrom, temperature: tau.input });
  return demo;
}

const KINDS = { sampler, interpolate, draw: drawPad };
export const demos = {};

export async function mount(root) {
  const kind = root.dataset.liveDemo;
  if (!KINDS[kind]) throw new Error(`unknown live demo ${kind}`);
  const model = await loadModel(root.dataset.model || "kanjivg");
  const demo = KINDS[kind](root.querySelector(".live-body") || root, model);
  (demos[kind] ??= []).push(demo);
  root.hidden = false;
  root.classList.add("live-ready");
  document.querySelectorAll(".live-fallback, .tag_live-fallback").forEach((e) => { e.hidden = true; e.style.display = "none"; });
  if (demo.redraw) await demo.redraw();
  return demo;
}

export const ready = Promise.all([...document.querySelectorAll("[data-live-demo]")].map((root) =>
  mount(root).catch((err) => { root.hidden = true; console.warn(`live demo not available: ${err.message}`); })));

// For the tests and the benchmark (and the curious reader's console).
window.sketchLive = { demos, models, loadModel, decode, ready, drawingToStroke3, stroke3ToStroke5,
                      staticBase: new URL("../", import.meta.url).href };
