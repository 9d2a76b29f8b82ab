"""The decoder: an autoregressive RNN that turns z into the parameters of each next point.

The latent vector sets the decoder's starting state, and is also fed in at every step::

    [h_0 ; c_0] = tanh(W_z z + b_z)          (HyperLSTM: also the hypernetwork's ĥ_0, ĉ_0)
    x_i = [S_{i-1} ; z]                      S_0 = (0, 0, 1, 0, 0), the start token
    h_i, c_i = cell(x_i, h_{i-1}, c_{i-1})   LSTM | LayerNorm LSTM | HyperLSTM  (hp.dec_model)
    y_i = W_y h_i + b_y,   y_i ∈ R^{6M+3}    read by :mod:`sketchlib.nn.mdn`

The unconditional model has no z: x_i = S_{i-1} and the state starts at zero (as the reference).
In training the inputs are the true previous points (teacher forcing); when sampling, each
sampled point is fed back with :meth:`Decoder.step`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sketchlib.nn import mdn
from sketchlib.config import HParams
from sketchlib.nn.hyper_lstm import HyperLSTMCell
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib.nn.lstm import LSTMCell


def make_cell(kind: str, input_size: int, hidden_size: int, hp: HParams) -> nn.Module:
    """The recurrent cell named by ``kind`` (lstm | layer_norm | hyper) with the options of ``hp``."""
    keep = hp.recurrent_dropout_prob if hp.use_recurrent_dropout else 1.0
    if kind == "lstm":
        return LSTMCell(input_size, hidden_size, forget_bias=hp.forget_bias, dropout_keep=keep)
    if kind == "layer_norm":
        return LayerNormLSTMCell(input_size, hidden_size, forget_bias=hp.forget_bias, dropout_keep=keep,
                                 eps=hp.layer_norm_eps)
    if kind == "hyper":
        return HyperLSTMCell(input_size, hidden_size, forget_bias=hp.forget_bias, dropout_keep=keep,
                             eps=hp.layer_norm_eps, hyper_num_units=hp.hyper_num_units,
                             hyper_embedding_size=hp.hyper_embedding_size)
    raise ValueError(f"unknown cell {kind!r}; expected lstm, layer_norm or hyper")


class Decoder(nn.Module):
    """Decoder cell (``.cell``), the z -> initial state projection and the output layer y = W_y h + b_y.

    Initialisation as the reference: W_z ~ N(0, 0.001), b_z = 0; W_y Glorot-uniform and b_y uniform
    in ±sqrt(3 / (6M + 3)) (TensorFlow's default Glorot initialiser on a 1-D variable).
    Optional input / output dropout (``hp.use_input_dropout`` / ``use_output_dropout``, off by
    default) drop elements of x_i and h_i with a fresh mask every step, like TF's DropoutWrapper.
    """

    def __init__(self, hp: HParams):
        super().__init__()
        self.conditional = hp.conditional
        self.z_size = hp.z_size
        self.cell = make_cell(hp.dec_model, 5 + (hp.z_size if hp.conditional else 0), hp.dec_rnn_size, hp)
        if hp.conditional:
            self.to_state = nn.Linear(hp.z_size, self.cell.state_size)  # [h_0 ; c_0] = tanh(W_z z + b_z)
            nn.init.normal_(self.to_state.weight, std=0.001)
            nn.init.zeros_(self.to_state.bias)
        n_out = mdn.output_size(hp.num_mixture)
        self.to_y = nn.Linear(hp.dec_rnn_size, n_out)  # y_i = W_y h_i + b_y
        nn.init.xavier_uniform_(self.to_y.weight)
        nn.init.uniform_(self.to_y.bias, -math.sqrt(3 / n_out), math.sqrt(3 / n_out))
        self.input_drop = 1 - hp.input_dropout_prob if hp.use_input_dropout else 0.0
        self.output_drop = 1 - hp.output_dropout_prob if hp.use_output_dropout else 0.0

    def initial_state(self, z: torch.Tensor | None, batch_size: int | None = None):
        """The cell's starting state: tanh(W_z z + b_z) split into (h_0, c_0[, ĥ_0, ĉ_0]); zeros if unconditional."""
        if not self.conditional:
            if batch_size is None:
                raise ValueError("the unconditional decoder needs batch_size for its zero initial state")
            return self.cell.zero_state(batch_size)
        self._check_z(z, batch_size)
        return self.cell.state_from_vector(torch.tanh(self.to_state(z)))

    def _check_z(self, z: torch.Tensor | None, batch_size: int | None) -> None:
        if z is None:
            raise ValueError("the conditional decoder needs z [B, N_z]")
        if z.dim() != 2 or z.shape[1] != self.z_size or (batch_size is not None and z.shape[0] != batch_size):
            raise ValueError(f"z must be [{batch_size if batch_size is not None else 'B'}, {self.z_size}], "
                             f"got {list(z.shape)}")

    def cell_inputs(self, s: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """x_i = [S_{i-1} ; z] for s [B, 5] or [B, T, 5] (just S_{i-1} when unconditional)."""
        if not self.conditional:
            return s
        self._check_z(z, s.shape[0])
        z = z[:, None].expand(-1, s.shape[1], -1) if s.dim() == 3 else z
        return torch.cat([s, z.to(s.dtype)], dim=-1)

    def forward(self, inputs: torch.Tensor, z: torch.Tensor | None, state=None):
        """Teacher forcing. inputs S_0..S_{N_max-1} [B, T, 5], z [B, N_z] -> (y [B, T, 6M+3], final state).

        ``state`` defaults to :meth:`initial_state`.
        """
        if inputs.dim() != 3 or inputs.shape[-1] != 5:
            raise ValueError(f"decoder inputs must be [B, T, 5] stroke-5 rows, got {list(inputs.shape)}")
        if state is None:
            state = self.initial_state(z, inputs.shape[0])
        x = F.dropout(self.cell_inputs(inputs, z), self.input_drop, self.training)  # [B, T, 5 + N_z]
        h, state = self.cell.sequence(x, state)  # [B, T, H] (the fast version when sketchlib.fast's switch is on)
        return self.to_y(F.dropout(h, self.output_drop, self.training)), state

    @torch.no_grad()
    def trace(self, inputs: torch.Tensor, z: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The cell's gates at every step of a teacher-forced pass (for plots): dict of [T, B, H] tensors."""
        return self.cell.trace(self.cell_inputs(inputs, z), self.initial_state(z, inputs.shape[0]))

    def step(self, s_prev: torch.Tensor, z: torch.Tensor | None, state):
        """One sampling step: S_{i-1} [B, 5], z, state -> (y_i [B, 6M+3], new state)."""
        x = F.dropout(self.cell_inputs(s_prev, z), self.input_drop, self.training)  # [B, 5 + N_z]
        h, state = self.cell(x, state)  # [B, H]
        return self.to_y(F.dropout(h, self.output_drop, self.training)), state
