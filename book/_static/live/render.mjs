// Drawing stroke-3 sketches on a <canvas>, at once or as the pen moves.
import { stroke3ToLines } from "./drawing.mjs";

export const READER_COLOR = "#222222";
export const MODEL_COLOR = "#d62728";

// A square canvas of `size` CSS pixels, sharp on high-density screens.
export function makeCanvas(size, label) {
  const c = document.createElement("canvas");
  const dpr = window.devicePixelRatio || 1;
  c.width = c.height = Math.round(size * dpr);
  c.style.width = c.style.height = `${size}px`;
  c.className = "live-canvas";
  c.setAttribute("role", "img");
  c.setAttribute("aria-label", label);
  c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  return c;
}

export function clear(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.restore();
}

// Draw polylines (grid units) in one colour; the grid (conv.grid_size) fills the canvas.
function strokeLines(canvas, lines, conv, color, width = 2.5) {
  const ctx = canvas.getContext("2d");
  const k = parseFloat(canvas.style.width) / conv.grid_size;
  ctx.strokeStyle = color; ctx.lineWidth = width; ctx.lineCap = ctx.lineJoin = "round";
  for (const line of lines) {
    ctx.beginPath();
    line.forEach(([x, y], i) => (i ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
    if (line.length === 1) ctx.lineTo(line[0][0] * k + 0.01, line[0][1] * k);
    ctx.stroke();
  }
}

// Parts: [{rows, color, start}] drawn in order; returns the absolute end point of the last part.
export function drawSketch(canvas, parts, conv) {
  for (const { rows, color, start } of parts) strokeLines(canvas, stroke3ToLines(rows, conv, start), conv, color);
}

// The pen drawing `rows` point by point (about `msPerPoint` each); resolves when it is done.
export function animateSketch(canvas, rows, conv, { color = READER_COLOR, start, msPerPoint = 12, token } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const frame = (now) => {
      if (token && token.cancelled) return resolve(false);
      const n = Math.min(rows.length, Math.floor((now - t0) / msPerPoint) + 1);
      clear(canvas);
      drawSketch(canvas, [{ rows: rows.slice(0, n), color, start }], conv);
      if (n < rows.length) requestAnimationFrame(frame); else resolve(true);
    };
    requestAnimationFrame(frame);
  });
}
