// The exported Sketch-RNN (sketchlib.export) run with onnxruntime-web, served with the book.
// Three ONNX graphs: the encoder, the decoder's initial state from z, and ONE decoder step whose
// state is an explicit input and output. No cell or MDN maths is written here: it is all in the graphs.
import * as ort from "./ort/ort.wasm.min.mjs";

ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which GitHub Pages does not send
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;  // the runtime's files, from this site only


export class LiveModel {
  static async load(name, base = new URL("./models/", import.meta.url).href) {
    const meta = await (await fetch(`${base}${name}.json`)).json();
    const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const sessions = {};
    for (const [part, file] of Object.entries(meta.files)) {
      sessions[part] = await ort.InferenceSession.create(`${base}${file}`, opts);
    }
    return new LiveModel(meta, sessions);
  }

  constructor(meta, sessions) {
    this.meta = meta;
    this.sessions = sessions;
    this.conv = { ...meta.strokes, scale: meta.scale, max_seq_len: meta.max_seq_len };
    const M = meta.num_mixture;
    // where each piece of the step's "head" output starts: q_hat has 3 entries, the others M each
    this.headParts = meta.head_layout.map((name, j) => [name, j === 0 ? 0 : 3 + (j - 1) * M, j === 0 ? 3 : M]);
  }

  // A stroke-5 Float32Array [(N_max + 1) * 5] with S_0 in row 0 and the number of real points -> mu.
  async encode(stroke5, length) {
    const T = this.meta.max_seq_len;
    const feeds = {
      strokes: new ort.Tensor("float32", stroke5.subarray(5), [1, T, 5]),
      lengths: new ort.Tensor("int64", BigInt64Array.from([BigInt(length)]), [1]),
    };
    const out = await this.sessions.encoder.run(feeds, ["mu"]);
    return Float32Array.from(out.mu.data);
  }

  // z (Float32Array [N_z]) -> the decoder's state [h_0 ; c_0 (; ...)] as one tensor.
  async initialState(z) {
    return (await this.sessions.init.run({ z: this.tensor(z) })).state;
  }

  tensor(values) { return new ort.Tensor("float32", Float32Array.from(values), [1, values.length]); }

  // One step: S_{i-1} (5 numbers), z tensor, state -> { head: {q_hat, pi_hat, ...}, state }.
  async step(sPrev, zTensor, state) {
    const out = await this.sessions.step.run({ s_prev: this.tensor(sPrev), z: zTensor, state },
                                             ["next_state", "head"]);
    const data = out.head.data, head = {};
    for (const [name, start, n] of this.headParts) head[name] = data.subarray(start, start + n);
    return { head, state: out.next_state };
  }
}
