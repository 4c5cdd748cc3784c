"""The PyTorch modules that get exported: the full sequence and the one-step model.

Both can fold the input Linear into the LSTM's input weights (`fuse`): the same function with one
matrix product fewer per time step.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_lstm.training.model import LSTMClassifier


def fuse_input_layer(model: LSTMClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    """W_ih (W_in x + b_in) + b_ih = (W_ih W_in) x + (W_ih b_in + b_ih); computed in float64."""
    lstm, fc_in = model.lstm.state_dict(), model.fc_in.state_dict()
    w_ih = lstm["weight_ih_l0"].double()  # (4H, 64)
    w_in, b_in = fc_in["weight"].double(), fc_in["bias"].double()  # (64, 28), (64,)
    w = (w_ih @ w_in).float()  # (4H, 28)
    b = (w_ih @ b_in + lstm["bias_ih_l0"].double()).float()  # (4H,)
    return w, b


def _fused_lstm_state(model: LSTMClassifier) -> dict[str, torch.Tensor]:
    w, b = fuse_input_layer(model)
    state = dict(model.lstm.state_dict())
    state["weight_ih_l0"], state["bias_ih_l0"] = w, b
    return state


class FullSequence(nn.Module):
    """images (B, 28, 28) -> logits (B, 10); with `fuse`, one LSTM reads the raw rows."""

    def __init__(self, model: LSTMClassifier, fuse: bool) -> None:
        super().__init__()
        cfg = model.config
        self.fc_in: nn.Module = nn.Identity() if fuse else model.fc_in
        self.lstm = nn.LSTM(cfg.n_inputs if fuse else cfg.n_in_units, cfg.n_hidden, batch_first=True)
        self.lstm.load_state_dict(model.lstm.state_dict() if not fuse else _fused_lstm_state(model))
        self.fc_out = model.fc_out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.fc_in(images))  # h: (1, B, 128)
        # squeeze(0), not h[-1]: torch versions decompose indexing differently (Gather with a
        # scalar or a 1-element index); the graph pass normalises the tail either way.
        return self.fc_out(h.squeeze(0))  # (B, 10)


class Step(nn.Module):
    """One time step: row (B, 28), h, c (1, B, 128) -> logits (B, 10), h_out, c_out."""

    def __init__(self, model: LSTMClassifier, fuse: bool) -> None:
        super().__init__()
        seq = FullSequence(model, fuse)
        self.fc_in, self.lstm, self.fc_out = seq.fc_in, seq.lstm, seq.fc_out

    def forward(self, row: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, (h_out, c_out) = self.lstm(self.fc_in(row.unsqueeze(1)), (h, c))  # one step of the sequence
        return self.fc_out(h_out.squeeze(0)), h_out, c_out
