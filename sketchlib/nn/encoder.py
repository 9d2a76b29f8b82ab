"""The encoder: a bidirectional LSTM that reads a whole sketch and gives the latent distribution.

Two LSTMs read the real points S_1..S_{N_s} of a sketch, one forwards and one backwards; their
final hidden states, joined, describe the whole sketch::

    h→ = encode→(S),   h← = encode←(S_reverse),   h = [h→ ; h←]
    μ = W_μ h + b_μ,   σ̂ = W_σ h + b_σ,   σ = exp(σ̂ / 2)

Each sketch is read over its TRUE length N_s: the forward pass ends at the last real point and
the backward pass starts there, never in the padding (the reference's ``bidirectional_dynamic_rnn``
with ``sequence_length``).
"""

from __future__ import annotations

import torch
from torch import nn

from sketchlib.config import HParams
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib.nn.lstm import LSTMCell, call_native_lstm, native_lstm_template


def check_lengths(lengths: torch.Tensor, batch_size: int, n_max: int) -> torch.Tensor:
    """Lengths must be integers in [1, N_max], one per sketch; returns them as int64.

    The values are checked when ``lengths`` lives on the CPU (as the data loaders give it); on a GPU
    reading them would stall the stream (and break CUDA-graph capture), so only shape and dtype are.
    """
    if lengths.dim() != 1 or lengths.shape[0] != batch_size:
        raise ValueError(f"lengths must have shape [{batch_size}], got {list(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.device.type == "cpu" and batch_size:
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > n_max:
            raise ValueError(f"lengths must lie in [1, {n_max}], got min {low} max {high}")
    return lengths.long()


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x [B, T, D] over its first ``lengths[b]`` steps; padding stays behind.

    Row t of sketch b becomes row N_s - 1 - t, so the backward LSTM starts at the real end.
    """
    B, T, D = x.shape
    t = torch.arange(T, device=x.device).expand(B, T)
    L = lengths.to(x.device)[:, None]
    index = torch.where(t < L, L - 1 - t, t)  # [B, T]
    return x.gather(1, index[..., None].expand(B, T, D))


def last_real_step(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """h [B, T, H] at each sequence's last real step, index lengths[b] - 1 -> [B, H]."""
    return h[torch.arange(h.shape[0], device=h.device), lengths.to(h.device) - 1]


class Encoder(nn.Module):
    """Bidirectional LSTM (``hp.enc_model``: lstm | layer_norm) and the (μ, σ̂) head.

    ``forward(x, lengths)`` takes the sketch rows S_1..S_{N_max} [B, N_max, 5] and the true lengths
    [B]; returns μ and σ̂, each [B, N_z]. The head has N(0, 0.001) weights and zero biases.
    """

    def __init__(self, hp: HParams):
        super().__init__()
        cell = {"lstm": LSTMCell, "layer_norm": LayerNormLSTMCell}[hp.enc_model]
        options = dict(forget_bias=hp.forget_bias,
                       dropout_keep=hp.recurrent_dropout_prob if hp.use_recurrent_dropout else 1.0)
        if hp.enc_model == "layer_norm":
            options["eps"] = hp.layer_norm_eps
        H = hp.enc_rnn_size
        self.cell_fw = cell(5, H, **options)  # reads S_1 .. S_{N_s}
        self.cell_bw = cell(5, H, **options)  # reads S_{N_s} .. S_1
        self.to_mu = nn.Linear(2 * H, hp.z_size)  # μ = W_μ h + b_μ
        self.to_sigma_hat = nn.Linear(2 * H, hp.z_size)  # σ̂ = W_σ h + b_σ
        for head in (self.to_mu, self.to_sigma_hat):
            nn.init.normal_(head.weight, std=0.001)
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, fast: bool = True):
        """x [B, N_max, 5], lengths [B] -> (μ [B, N_z], σ̂ [B, N_z])."""
        h = self.final_hidden(x, lengths, fast=fast)  # [B, 2H] = [h→ ; h←]
        return self.to_mu(h), self.to_sigma_hat(h)

    def final_hidden(self, x: torch.Tensor, lengths: torch.Tensor, fast: bool = True) -> torch.Tensor:
        """h = [h→ ; h←] [B, 2H]: final hidden states of both directions over the true lengths."""
        if x.dim() != 3 or x.shape[-1] != 5:
            raise ValueError(f"encoder input must be [B, N_max, 5] stroke-5 rows, got {list(x.shape)}")
        lengths = check_lengths(lengths, x.shape[0], x.shape[1])
        if fast and self._can_use_native():
            return self._native_final_hidden(x, lengths)
        x_bw = reverse_within_lengths(x, lengths)
        if fast:  # both directions in one loop
            B, T = x.shape[:2]
            masks = [cell.dropout_masks(T, B, x) for cell in (self.cell_fw, self.cell_bw)]
            zero = [cell.zero_state(B) for cell in (self.cell_fw, self.cell_bw)]
            (out_fw, out_bw), _ = type(self.cell_fw).stacked_fast_sequence(
                [self.cell_fw, self.cell_bw], [x, x_bw], zero, masks)  # each [B, T, H]
        else:
            out_fw, _ = self.cell_fw.sequence(x, fast=False)  # [B, T, H]
            out_bw, _ = self.cell_bw.sequence(x_bw, fast=False)
        return torch.cat([last_real_step(out_fw, lengths), last_real_step(out_bw, lengths)], dim=1)

    def _can_use_native(self) -> bool:
        cells = (self.cell_fw, self.cell_bw)
        return all(isinstance(c, LSTMCell) and c.use_native and not c.dropout_active() for c in cells)

    def _native_final_hidden(self, x: torch.Tensor, lengths: torch.Tensor, packed: bool | None = None) -> torch.Tensor:
        """Plain LSTM without dropout: PyTorch's LSTM kernel (cuDNN on a GPU).

        With ``lengths`` on the CPU (``packed`` default) the sketches go in as packed sequences, so
        no step is computed in the padding. With lengths on the GPU reading them would stall the
        stream (and break CUDA-graph capture), so each direction runs over all N_max steps, the
        backward one over :func:`reverse_within_lengths`, and h is read at the last real step:
        the same numbers, some wasted steps.
        """
        if packed is None:
            packed = lengths.device.type == "cpu"
        if not packed:
            template = native_lstm_template(self.cell_fw.input_size, self.cell_fw.hidden_size, bidirectional=False)
            out_fw, _ = call_native_lstm(template, self.cell_fw.native_parameters(), x)  # [B, T, H]
            out_bw, _ = call_native_lstm(template, self.cell_bw.native_parameters(), reverse_within_lengths(x, lengths))
            return torch.cat([last_real_step(out_fw, lengths), last_real_step(out_bw, lengths)], dim=1)
        packed_x = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        params = {**self.cell_fw.native_parameters(), **self.cell_bw.native_parameters(suffix="_reverse")}
        template = native_lstm_template(self.cell_fw.input_size, self.cell_fw.hidden_size, bidirectional=True)
        _, (h_n, _) = call_native_lstm(template, params, packed_x)  # h_n [2, B, H] in the batch's order
        return torch.cat([h_n[0], h_n[1]], dim=1)
