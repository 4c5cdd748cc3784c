"""The tutorial's LSTM classifier in PyTorch.

Each 28x28 image is read as 28 time steps of 28 pixels: FC 28->64, LSTM(128), FC 128->10 on
the last hidden state. No batch size is baked in anywhere: nn.LSTM derives its zero state from
the input, which keeps the ONNX export's batch axis symbolic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    n_inputs: int = 28  # pixels per row = features per time step
    n_steps: int = 28  # rows = time steps; 0: sequences of any length (`train --data` with unequal lengths)
    n_in_units: int = 64  # width of the input projection in front of the LSTM
    n_hidden: int = 128  # LSTM units
    n_classes: int = 10

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__})


class LSTMClassifier(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        self.fc_in = nn.Linear(config.n_inputs, config.n_in_units)
        self.lstm = nn.LSTM(config.n_in_units, config.n_hidden, batch_first=True)
        self.fc_out = nn.Linear(config.n_hidden, config.n_classes)

    def forward(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, T, F) -> logits (B, classes). lengths (B,): padded sequences of other lengths
        (the state after each one's last real step is what is classified, as ONNX's sequence_lens)."""
        x = self.fc_in(images)  # (B, 28, 28) -> (B, 28, 64)
        if lengths is not None:
            # Padding comes after each sequence's real steps, so the state after its last real step is
            # the same whatever follows: run the padded batch whole (faster than a packed one,
            # whose batch shrinks step by step)
            out, _ = self.lstm(x)
            return self.fc_out(out[torch.arange(len(x)), lengths.long() - 1])
        _, (h, _) = self.lstm(x)  # h: (1, B, 128), the hidden state after the last row
        return self.fc_out(h[-1])  # (B, 10) logits

    def logits_per_step(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 28, 10): the logits after each row, what the streaming model answers at every step."""
        out, _ = self.lstm(self.fc_in(images))  # (B, 28, 128): the hidden state after every row
        return self.fc_out(out)


def init_tutorial_(model: LSTMClassifier) -> None:
    """The TensorFlow tutorial's initialisation, translated to PyTorch's parameter layout.

    FC weights ~ N(0, 1) and biases 0.1 (tf.random_normal / tf.constant(0.1)); the LSTM kernel is
    BasicLSTMCell's glorot-uniform over its fused [input+hidden, 4*hidden] matrix with zero bias,
    and forget_bias=1.0 added to the forget gate (PyTorch gate order: i, f, g, o).
    """
    cfg = model.config
    with torch.no_grad():
        for fc in (model.fc_in, model.fc_out):
            fc.weight.normal_(0.0, 1.0)
            fc.bias.fill_(0.1)
        fan_in, fan_out = cfg.n_in_units + cfg.n_hidden, 4 * cfg.n_hidden
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        h = cfg.n_hidden
        for name, p in model.lstm.named_parameters():
            if name.startswith("weight"):
                p.uniform_(-limit, limit)
            else:
                p.zero_()
                if name == "bias_ih_l0":
                    p[h : 2 * h] = 1.0  # forget gate


def init_lstm_(model: LSTMClassifier) -> None:
    """The default recipe's LSTM initialisation, on top of PyTorch's: forget-gate bias 1 (the cell
    keeps its memory at the start, Jozefowicz et al. 2015) and each gate's recurrent weights
    orthogonal (gradients through the 28 steps neither vanish nor explode at the start). The recipe
    with it: bench/results/train_speed.json (docs/results.md says how it was chosen)."""
    h = model.config.n_hidden
    params = dict(model.lstm.named_parameters())
    with torch.no_grad():
        params["bias_ih_l0"][h : 2 * h].fill_(1.0)  # PyTorch gate order: i, f, g, o
        params["bias_hh_l0"][h : 2 * h].zero_()
        for k in range(4):
            nn.init.orthogonal_(params["weight_hh_l0"][k * h : (k + 1) * h])


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 tensor in [0, 1], the model's input convention."""
    return torch.from_numpy(images.astype(np.float32) / 255.0)


@torch.inference_mode()
def logits_of(model: nn.Module, images: np.ndarray, batch: int = 2000) -> np.ndarray:
    """(N, 10) logits of uint8 images (N, 28, 28), in batches, in inference mode (eval, export, bench)."""
    model.eval()
    return torch.cat([model(to_float(images[i : i + batch])) for i in range(0, len(images), batch)]).numpy()
