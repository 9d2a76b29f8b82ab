"""Export a trained Sketch-RNN to ONNX for the website's live demos (and any other ONNX runtime).

Three graphs, each a plain ONNX file with its weights inside, plus one JSON file beside them:

* ``<name>.encoder.onnx``: ``strokes`` [B, N_max, 5] (the rows S_1..S_{N_max}, padded with p3 rows,
  as :func:`sketchlib.data.strokes.pad_batch` pads them) and ``lengths`` [B] (int64, N_s) ->
  ``mu`` [B, N_z] and ``sigma_hat`` [B, N_z]: the bidirectional encoder over the TRUE length;
* ``<name>.init.onnx``: ``z`` [B, N_z] -> the decoder's starting state as one vector
  ``state`` = ``[h_0 ; c_0] = tanh(W_z z + b_z)`` [B, sum of the state sizes];
* ``<name>.step.onnx``: ONE decoder step with its state as an explicit input and output,
  ``s_prev`` [B, 5] (S_{i-1}), ``z`` [B, N_z], ``state`` -> ``y`` [B, 6M+3], ``next_state``, and
  ``head`` [B, 6M+3], the MDN head applied to y (:mod:`sketchlib.nn.mdn`, bounds included) in y's
  layout: ``[q_hat (3) | pi_hat | mu_x | mu_y | sigma_x = exp(sigma_hat_x) | sigma_y | rho = tanh(rho_hat)]``.
  (One state tensor and one head tensor, not one per piece: in the browser every tensor crossing
  into WebAssembly and back costs time at every step.)

So a runtime holds no copy of the cell or the head: what is left to it is the sampling rule
(temperature, the choice of component and pen state, stopping at p3), which the browser keeps in
one module (``book/_static/live/sampling.mjs``) and Python in :func:`sketchlib.sample.sample_outputs`.

``<name>.json`` carries what a runtime needs to feed the model as the data were fed: the config,
the data scale (the training std the offsets were divided by), the stroke conventions of the data
(grid, RDP epsilon, the first offset's origin, the pen columns, the start token, the layout of y),
the PCA directions of the latent space, a few test characters, and the sha256 of every ONNX file.

The weights stay float32: the LSTM 256 checkpoint gives 2.8 MB of ONNX (encoder 0.83, init 0.26,
step 1.73), small next to the runtime's 14 MB of WebAssembly, and float32 keeps the ONNX outputs
within 1e-5 of PyTorch's (measured 9e-6 on y over 12 test characters; tested to 1e-4).
Exported with ``torch.onnx.export(..., dynamo=False)`` (TorchScript tracing, one file per graph;
no ``onnxscript`` needed). Only plain LSTM cells export: the LayerNorm cells call
``F.layer_norm(v, v.shape[-1:])``, which this exporter cannot trace. The encoder uses PyTorch's LSTM kernel (ONNX ``LSTM`` op) over all
N_max rows and reads h at the last real step, as :func:`sketchlib.fast.native.native_final_hidden`
does for lengths on a GPU: the same numbers as the packed path.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sketchlib import sample as _sample
from sketchlib.data.fileio import atomic_write
from sketchlib.data.strokes import START_TOKEN
from sketchlib.fast.torch_lstm import TorchStepper
from sketchlib.fast.native import native_parameters
from sketchlib.nn import mdn
from sketchlib.nn.encoder import last_real_step, reverse_within_lengths
from sketchlib.nn.lstm import LSTMCell

#: Bumped when the files' inputs, outputs or JSON keys change.
EXPORT_FORMAT = 1
OPSET = 17
#: The MDN pieces in the step graph's ``head`` output, in order (3 entries for q_hat, M for each other).
HEAD_LAYOUT = ("q_hat", "pi_hat", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho")


class _EncoderGraph(nn.Module):
    """strokes [B, N_max, 5], lengths [B] -> (mu, sigma_hat), each [B, N_z].

    Each direction is an ``nn.LSTM`` holding the cell's weights in PyTorch's layout
    (:func:`sketchlib.fast.native.native_parameters`, forget bias folded in), run over all N_max
    rows; h is read at the last real step (the backward one over the rows reversed within the length).
    """

    def __init__(self, model):
        super().__init__()
        enc = model.encoder
        self.fw, self.bw = (self._lstm(c) for c in (enc.cell_fw, enc.cell_bw))
        self.to_mu, self.to_sigma_hat = enc.to_mu, enc.to_sigma_hat

    @staticmethod
    def _lstm(cell: LSTMCell) -> nn.LSTM:
        lstm = nn.LSTM(cell.input_size, cell.hidden_size, batch_first=True)
        lstm.load_state_dict({k: v.detach() for k, v in native_parameters(cell).items()})
        return lstm

    def forward(self, strokes, lengths):
        out_fw, _ = self.fw(strokes)  # [B, T, H]
        out_bw, _ = self.bw(reverse_within_lengths(strokes, lengths))
        h = torch.cat([last_real_step(out_fw, lengths), last_real_step(out_bw, lengths)], dim=1)  # [B, 2H]
        return self.to_mu(h), self.to_sigma_hat(h)


class _InitGraph(nn.Module):
    """z [B, N_z] -> the decoder's initial state as one vector [B, sum(state_sizes)]."""

    def __init__(self, model):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, z):
        return torch.cat(self.decoder.initial_state(z, z.shape[0]), dim=1)


class _StepGraph(nn.Module):
    """(S_{i-1}, z, state) -> (y, next state, the MDN head's pieces in y's layout)."""

    def __init__(self, model):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, s_prev, z, state):
        cell = self.decoder.cell
        y, new_state = self.decoder.step(s_prev, z, cell.state_from_vector(state))  # y [B, 6M+3]
        p = mdn.split(y)
        head = torch.cat([p.q_hat, p.pi_hat, p.mu_x, p.mu_y, p.sigma_x, p.sigma_y, p.rho], dim=1)  # [B, 6M+3]
        return y, torch.cat(new_state, dim=1), head


def _check_exportable(model) -> None:
    hp = getattr(model, "hp", None)
    if hp is None:
        raise ValueError("export: expected a sketchlib SketchRNN (the model has no .hp)")
    if not hp.conditional:
        raise ValueError("export: the live demos need a conditional model (encoder and z); this one is unconditional")
    cells = (model.encoder.cell_fw, model.encoder.cell_bw, model.decoder.cell)
    if not all(type(c) is LSTMCell for c in cells):
        # the LayerNorm cells call F.layer_norm(v, v.shape[-1:]), which the TorchScript exporter cannot trace
        raise ValueError(f"export: only plain LSTM cells export (enc_model and dec_model 'lstm'), got "
                         f"{hp.enc_model!r} / {hp.dec_model!r}")


def _onnx_bytes(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str]) -> bytes:
    buf = io.BytesIO()
    axes = {name: {0: "batch"} for name in inputs + outputs}
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer notes that shape checks become constants and that the LSTM was traced at batch 2;
        # both are true and harmless here (tests/test_export.py runs batches of 1 and 8)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        # the legacy (TorchScript) exporter is deprecated in favour of torch.export (dynamo=True), which
        # also exports these graphs but needs onnxscript and takes ~10 s a graph instead of ~0.5 s;
        # tests/test_export.py fails the day the legacy path goes
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="You are using the legacy")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return buf.getvalue()


def onnx_graphs(model) -> dict[str, bytes]:
    """The three ONNX graphs of ``model`` (a conditional SketchRNN, LSTM encoder): name -> file bytes."""
    _check_exportable(model)
    hp = model.hp
    was_training = model.training
    model.eval()
    try:
        B, T = 2, hp.max_seq_len
        strokes = torch.zeros(B, T, 5)
        strokes[:, :, 4] = 1
        lengths = torch.full((B,), T, dtype=torch.int64)
        z = torch.zeros(B, hp.z_size)
        state = torch.cat(model.decoder.initial_state(z, B), dim=1)  # [B, sum(state_sizes)]
        return {
            "encoder": _onnx_bytes(_EncoderGraph(model), (strokes, lengths), ["strokes", "lengths"],
                                   ["mu", "sigma_hat"]),
            "init": _onnx_bytes(_InitGraph(model), (z,), ["z"], ["state"]),
            "step": _onnx_bytes(_StepGraph(model), (torch.zeros(B, 5), z, state), ["s_prev", "z", "state"],
                                ["y", "next_state", "head"]),
        }
    finally:
        model.train(was_training)


def stroke_conventions(grid_size: float, epsilon: float) -> dict:
    """How the training data's drawings were turned into model input (what a drawing canvas must repeat)."""
    return {
        "grid_size": float(grid_size),
        "rdp_epsilon": float(epsilon),
        "origin": [0.0, 0.0],
        "first_offset": "the first row is the offset of the first point from the grid's corner (0, 0), "
                        "not (0, 0) and not from the centre",
        "y_down": True,
        "stroke3": "rows (dx, dy, lift); lift = 1 after the last point of each stroke (the last one too)",
        "stroke5": "rows (dx, dy, p1, p2, p3): p1 pen stays down, p2 lifts after this point, p3 the end; "
                   "padding rows (0, 0, 0, 0, 1)",
        "start_token": START_TOKEN.tolist(),
        "output_layout": list(mdn.OUTPUT_LAYOUT),
        "log_sigma_min": mdn.LOG_SIGMA_MIN,
        "rho_eps": mdn.RHO_EPS,
        "temperature": "Pi and q logits divided by tau; sigma multiplied by sqrt(tau) (variance sigma^2 tau); "
                       "greedy: argmax component, its mean, argmax pen state",
    }


def _floats(a, digits: int = 7) -> list:
    """A float array as nested lists rounded to ``digits`` significant figures (a compact, exact-enough JSON)."""
    a = np.asarray(a, dtype=np.float64)
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[float])(a).tolist() if a.size else a.tolist()


def export_model(model, out_dir, name: str, *, scale: float, grid_size: float, epsilon: float,
                 latent=None, examples: dict | None = None, source: dict | None = None) -> dict:
    """Write ``<name>.{encoder,init,step}.onnx`` and ``<name>.json`` into ``out_dir``; returns the JSON dict.

    ``scale``: the training std the data were divided by; ``grid_size`` and ``epsilon``: the box the
    data's drawings live in and the RDP epsilon they were simplified with (KanjiVG: 109 and 1.0).
    ``latent``: (mean [N_z], directions [k, N_z], std [k]) of the codes (the z sliders);
    ``examples``: label -> normalised stroke-3 (the interpolation's end points); ``source``: where the
    weights came from (name, sha256). Every file is written atomically.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"export: scale must be a positive number, got {scale!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    graphs = onnx_graphs(model)
    files, sizes, shas = {}, {}, {}
    for part, data in graphs.items():
        fname = f"{name}.{part}.onnx"
        atomic_write(out / fname, data)
        files[part], sizes[part], shas[part] = fname, len(data), hashlib.sha256(data).hexdigest()
    hp = model.hp
    state_sizes = list(model.decoder.cell.state_sizes)
    meta = {
        "format": EXPORT_FORMAT,
        "name": name,
        "files": files,
        "bytes": sizes,
        "sha256": shas,
        "config": hp.to_dict(),
        "scale": float(scale),
        "max_seq_len": hp.max_seq_len,
        "z_size": hp.z_size,
        "num_mixture": hp.num_mixture,
        "state_sizes": state_sizes,
        "head_layout": list(HEAD_LAYOUT),
        "strokes": stroke_conventions(grid_size, epsilon),
        "source": source or {},
    }
    if latent is not None:
        mean, directions, std = (np.asarray(t, dtype=np.float64) for t in latent)
        if directions.ndim != 2 or directions.shape[1] != hp.z_size or mean.shape != (hp.z_size,):
            raise ValueError(f"export: latent directions {list(directions.shape)} / mean {list(mean.shape)} "
                             f"do not match N_z = {hp.z_size}")
        meta["latent"] = {"mean": _floats(mean), "directions": _floats(directions), "std": _floats(std)}
    if examples:
        meta["examples"] = [{"label": k, "stroke3": _floats(v, 6)} for k, v in examples.items()]
    atomic_write(out / f"{name}.json", json.dumps(meta, indent=1, ensure_ascii=False).encode())
    return meta


# ----------------------------------------------------------------------------------------------
# Running the exported files with onnxruntime (Python): what the tests compare with PyTorch


class OnnxSketchRNN:
    """The exported files of ``<out_dir>/<name>`` run with ``onnxruntime`` (CPU, one thread)."""

    def __init__(self, out_dir, name: str):
        import onnxruntime as ort

        out = Path(out_dir)
        self.meta = json.loads((out / f"{name}.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.sessions = {}
        for part, fname in self.meta["files"].items():
            data = (out / fname).read_bytes()
            if hashlib.sha256(data).hexdigest() != self.meta["sha256"][part]:
                raise ValueError(f"{out / fname}: sha256 differs from {name}.json; re-export the model")
            self.sessions[part] = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])

    def encode(self, strokes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A stroke-5 batch [B, N_max + 1, 5] (row 0 = S_0, as pad_batch gives) -> (mu, sigma_hat)."""
        feeds = {"strokes": np.ascontiguousarray(strokes[:, 1:], np.float32), "lengths": lengths.astype(np.int64)}
        return tuple(self.sessions["encoder"].run(None, feeds))

    def initial_state(self, z: np.ndarray) -> np.ndarray:
        """[B, sum(state_sizes)]: the decoder's state as one vector."""
        return self.sessions["init"].run(None, {"z": z.astype(np.float32)})[0]

    def step(self, s_prev: np.ndarray, z: np.ndarray, state: np.ndarray):
        """One step: (y [B, 6M+3], new state, head [B, 6M+3])."""
        feeds = {"s_prev": s_prev.astype(np.float32), "z": z.astype(np.float32), "state": state}
        return tuple(self.sessions["step"].run(None, feeds))

    def teacher_forced(self, strokes: np.ndarray, z: np.ndarray) -> np.ndarray:
        """y [B, N_max, 6M+3] for the decoder inputs S_0..S_{N_max-1} of a stroke-5 batch, step by step."""
        state = self.initial_state(z)
        ys = []
        for t in range(strokes.shape[1] - 1):
            y, state, _ = self.step(strokes[:, t], z, state)
            ys.append(y)
        return np.stack(ys, axis=1)

    def sample(self, z: np.ndarray, temperature: float = 1.0, greedy: bool = True,
               max_len: int | None = None, generator: torch.Generator | None = None) -> list[np.ndarray]:
        """Decode one sketch per row of ``z`` [n, N_z] with :mod:`sketchlib.sample`'s loop and rule."""
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.meta["z_size"])
        T = self.meta["max_seq_len"] if max_len is None else int(max_len)
        n = z.shape[0]

        def step(s_prev: torch.Tensor, state: np.ndarray):  # the exported step in TorchStepper's interface
            y, state, _ = self.step(s_prev.numpy(), z, state)
            return torch.from_numpy(y), state

        stepper = TorchStepper(step, self.initial_state(z), torch.device("cpu"), n)
        return _sample.run_stepper(stepper, n, T, self.meta["num_mixture"], temperature=temperature, greedy=greedy,
                                   generator=generator)
