// The reader's drawing -> model input, exactly as sketchlib.data.drawing makes it (tested equal:
// tests/test_drawing.py feeds the same point lists through both). Pure functions, no DOM, so Node
// runs this file too.
//
//   strokes (canvas pixels, y down) -> grid units -> RDP(epsilon) per stroke -> keep the middle
//   point of long two-point strokes -> stroke-3 (first row from the grid's corner (0, 0),
//   lift = 1 after every stroke) -> divided by the data scale -> stroke-5 with S_0 in row 0.
//
// `conv` is the model JSON's "strokes" object plus "scale" and "max_seq_len" (sketchlib.export).

export const CANVAS_SIZE = 256;
export const LONG_STROKE = 40;

// sqrt(x^2 + y^2), correctly rounded in all but rare cases: the sum of squares is kept exactly in
// two doubles (Dekker's products), then one Newton step corrects the square root. RDP picks the
// farthest point, so when two points lie at the same distance a last-bit difference picks another
// one. V8's Math.hypot differs from the C library's hypot (which the Python side's RDP, Rust's geo,
// calls) in the last bit for about 35 % of random inputs, this function for about 0.5 % (it equals
// Python's math.hypot on them); tests/test_drawing.py checks identical arrays on random drawings
// that include symmetric loops, where such ties happen.
function split(a) {
  const c = 134217729 * a;  // 2^27 + 1
  const hi = c - (c - a);
  return [hi, a - hi];
}
function twoProduct(a, b) {
  const p = a * b;
  const [ah, al] = split(a), [bh, bl] = split(b);
  return [p, ((ah * bh - p) + ah * bl + al * bh) + al * bl];
}
export function hypot(x, y) {
  const [p1, e1] = twoProduct(x, x), [p2, e2] = twoProduct(y, y);
  const s = p1 + p2;
  const t = s - p1;
  const err = (p1 - (s - t)) + (p2 - t) + e1 + e2;  // x^2 + y^2 = s + err exactly (to ~2^-106)
  const r = Math.sqrt(s);
  if (r === 0) return 0;
  const [rr, er] = twoProduct(r, r);
  return r + (((s - rr) - er) + err) / (2 * r);
}

// Distance from p to the segment a-b, computed as the `simplification` package's RDP (Rust's geo) does.
function segmentDistance(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  if (dx === 0 && dy === 0) return hypot(p[0] - a[0], p[1] - a[1]);
  const d2 = dx * dx + dy * dy;
  const r = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / d2;
  if (r <= 0) return hypot(p[0] - a[0], p[1] - a[1]);
  if (r >= 1) return hypot(p[0] - b[0], p[1] - b[1]);
  const s = ((a[1] - p[1]) * dx - (a[0] - p[0]) * dy) / d2;
  return Math.abs(s) * hypot(dx, dy);
}

// Ramer-Douglas-Peucker: keep the ends and, recursively, the farthest point (the last of equals)
// when it lies more than epsilon from the segment joining the ends.
export function rdp(points, epsilon) {
  if (points.length <= 2) return points.slice();
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [i, j] = stack.pop();
    let far = 0, dist = 0;
    for (let k = i + 1; k < j; k++) {
      const d = segmentDistance(points[k], points[i], points[j]);
      if (d >= dist) { far = k; dist = d; }
    }
    if (far && dist > epsilon) {
      keep[far] = 1;
      stack.push([i, far], [far, j]);
    }
  }
  return points.filter((_, k) => keep[k]);
}

// A two-point stroke whose raw path is at least `longStroke` long keeps the raw point at half its arc length.
export function keepMiddle(raw, simplified, longStroke = LONG_STROKE) {
  if (simplified.length !== 2 || raw.length < 3) return simplified;
  const arc = [0];
  for (let k = 1; k < raw.length; k++) {
    arc.push(arc[k - 1] + Math.sqrt((raw[k][0] - raw[k - 1][0]) ** 2 + (raw[k][1] - raw[k - 1][1]) ** 2));
  }
  const total = arc[arc.length - 1];
  if (total < longStroke) return simplified;
  let i = arc.findIndex((a) => a >= total / 2);
  i = Math.min(Math.max(i, 1), raw.length - 2);
  return [simplified[0], raw[i], simplified[1]];
}

// The mistakes a reader's drawing can make: `reason` ("empty", "tooLong") and its numbers let the
// page word the message in its own language; `message` is the English one.
export class DrawingError extends Error {
  constructor(reason, message, details = {}) {
    super(message);
    Object.assign(this, { name: "DrawingError", reason, ...details });
  }
}

// Steps 1-3: canvas strokes -> simplified polylines in grid units (empty strokes skipped).
export function drawingToLines(strokes, conv, canvasSize = CANVAS_SIZE) {
  const units = conv.grid_size / canvasSize;
  const lines = [];
  for (const stroke of strokes) {
    if (!stroke.length) continue;
    const raw = stroke.map(([x, y]) => [x * units, y * units]);
    lines.push(keepMiddle(raw, rdp(raw, conv.rdp_epsilon), conv.long_stroke ?? LONG_STROKE));
  }
  if (!lines.length) throw new DrawingError("empty", "the drawing is empty: draw something first");
  return lines;
}

// Steps 1-5: rows [dx, dy, lift] in normalised units (Float32 values, as the Python returns).
export function drawingToStroke3(strokes, conv, canvasSize = CANVAS_SIZE) {
  const lines = drawingToLines(strokes, conv, canvasSize);
  const rows = [];
  let [px, py] = conv.origin;
  for (const line of lines) {
    line.forEach(([x, y], k) => {
      rows.push([Math.fround((x - px) / conv.scale), Math.fround((y - py) / conv.scale), k === line.length - 1 ? 1 : 0]);
      px = x; py = y;
    });
  }
  return rows;
}

// stroke-3 rows -> stroke-5 Float32Array [(maxLen + 1) * 5]: S_0, the points, then p3 rows.
export function stroke3ToStroke5(rows, maxLen) {
  if (rows.length > maxLen) {
    throw new DrawingError("tooLong", `the drawing has ${rows.length} points after simplification, more than ` +
                           `the model's N_max = ${maxLen}: draw fewer or simpler strokes`,
                           { points: rows.length, maxLen });
  }
  const out = new Float32Array((maxLen + 1) * 5);
  out[2] = 1;
  rows.forEach(([dx, dy, lift], i) => {
    const o = (i + 1) * 5;
    out[o] = dx; out[o + 1] = dy; out[o + 2] = 1 - lift; out[o + 3] = lift;
  });
  for (let i = rows.length + 1; i <= maxLen; i++) out[i * 5 + 4] = 1;
  return out;
}

// Absolute polylines in grid units from normalised stroke-3 rows (for drawing on a canvas).
export function stroke3ToLines(rows, conv, start = conv.origin) {
  const lines = [];
  let [x, y] = start;
  let line = [[x, y]];
  let first = true;
  for (const [dx, dy, lift] of rows) {
    x += dx * conv.scale; y += dy * conv.scale;
    if (first) { line = [[x, y]]; first = false; } else line.push([x, y]);
    if (lift) { lines.push(line); first = true; }
  }
  if (!first && line.length) lines.push(line);
  return lines;
}
