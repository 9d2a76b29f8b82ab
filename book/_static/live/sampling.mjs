// The sampling rule, in one place (the Python twin is sketchlib.sample.sample_outputs):
//   Pi = softmax(pi_hat / tau), q = softmax(q_hat / tau), sigma -> sigma * sqrt(tau) (variance sigma^2 tau);
//   the component k and the pen state are drawn as argmax(logits + tau * Gumbel noise), the offset
//   from component k's bivariate normal; greedy: the argmax component, its mean and the argmax pen.
// Decoding starts from S_0 = (0, 0, 1, 0, 0) and stops at p3 (or after maxLen points).

// A small seeded generator (mulberry32), so a seed always redraws the same sketch.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;  // in (0, 1)
  };
}

const gumbel = (u) => -Math.log(-Math.log(u()));
function normal(u) { return Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()); }

function argmaxNoisy(logits, offset, n, tau, u) {
  let best = 0, bestValue = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = logits[offset + j] + (u ? tau * gumbel(u) : 0);
    if (v > bestValue) { best = j; bestValue = v; }
  }
  return best;
}

// One point from the MDN head's pieces: [dx, dy, pen] with pen 0 (p1), 1 (p2) or 2 (p3).
export function drawPoint(head, tau, greedy, u) {
  const M = head.pi_hat.length;
  const noise = greedy ? null : u;
  const pen = argmaxNoisy(head.q_hat, 0, 3, tau, noise);
  const k = argmaxNoisy(head.pi_hat, 0, M, tau, noise);
  if (greedy) return [head.mu_x[k], head.mu_y[k], pen];
  const root = Math.sqrt(tau);
  const sx = head.sigma_x[k] * root, sy = head.sigma_y[k] * root, rho = head.rho[k];
  const e1 = normal(u), e2 = normal(u);
  return [head.mu_x[k] + sx * e1, head.mu_y[k] + sy * (rho * e1 + Math.sqrt(1 - rho * rho) * e2), pen];
}

// Decode a sketch from z: stroke-3 rows [dx, dy, lift] (normalised units).
// prefix: stroke-3 rows the decoder reads first as if it had drawn them (teacher forcing); the
// result is then only the continuation. untilEnd = false keeps going past p3 (for timing only).
export async function decode(model, z, { temperature = 0.25, greedy = false, seed = 0, maxLen,
                                         prefix = [], untilEnd = true } = {}) {
  const T = maxLen ?? model.meta.max_seq_len;
  const u = rng(seed);
  const zt = model.tensor(z);
  let state = await model.initialState(z);
  let sPrev = [0, 0, 1, 0, 0];
  for (const [dx, dy, lift] of prefix) {  // S_0 .. S_{n-1} in, S_n becomes the next input
    ({ state } = await model.step(sPrev, zt, state));
    sPrev = [dx, dy, 1 - lift, lift, 0];
  }
  const rows = [];
  for (let t = prefix.length; t < T; t++) {
    const out = await model.step(sPrev, zt, state);
    state = out.state;
    const [dx, dy, pen] = drawPoint(out.head, temperature, greedy, u);
    if (pen === 2 && untilEnd) break;
    const x = Math.fround(dx), y = Math.fround(dy);
    rows.push([x, y, pen === 1 ? 1 : 0]);
    sPrev = [x, y, 0, 0, 0];
    sPrev[2 + pen] = 1;
  }
  return rows;
}

// Points on the way from z0 to z1 (t in [0, 1]): linear, or spherical as in the paper's figures.
export function lerp(z0, z1, t) { return z0.map((a, j) => (1 - t) * a + t * z1[j]); }

export function slerp(z0, z1, t) {
  let dot = 0, n0 = 0, n1 = 0;
  z0.forEach((a, j) => { dot += a * z1[j]; n0 += a * a; n1 += z1[j] * z1[j]; });
  const cos = n0 > 0 && n1 > 0 ? dot / Math.sqrt(n0 * n1) : 1;
  const omega = Math.acos(Math.min(1, Math.max(-1, cos)));
  const so = Math.sin(omega);
  if (Math.abs(so) < 1e-7) return lerp(z0, z1, t);
  const a = Math.sin((1 - t) * omega) / so, b = Math.sin(t * omega) / so;
  return z0.map((v, j) => a * v + b * z1[j]);
}

// z = mean + sum_j c_j std_j d_j (c in standard deviations along the principal directions).
export function latentPoint(latent, coeffs) {
  const z = latent.mean.slice();
  coeffs.forEach((c, j) => {
    const s = c * latent.std[j];
    latent.directions[j].forEach((d, i) => { z[i] += s * d; });
  });
  return Float32Array.from(z);
}
