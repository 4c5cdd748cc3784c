"""The recurrent classifier in PyTorch, built from its architecture (edge_lstm/arch.py).

MNIST's is the tutorial's: each 28x28 image read as 28 time steps of 28 pixels; FC 28->64,
LSTM(128), FC 128->10 on the last hidden state. Other data, cells and depths only change the
sizes. No batch size is baked in anywhere: the recurrent layers derive their zero state from the
input.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from edge_lstm.arch import MNIST, Arch

RNN_MODULES: dict[str, type[nn.LSTM] | type[nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics count each sequence's real steps only (`valid` (B, T)): in a
    padded batch the padding would otherwise enter them (PLAID's 100-1,344 steps, three quarters of a
    batch padding). Without padding, and in eval mode, it is BatchNorm1d; export folds its running
    statistics into the convolution before it."""

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if valid is None or not self.training:
            return super().forward(x)
        w = valid[:, None, :].to(x.dtype)  # (B, 1, T)
        n = w.sum()
        mean = (x * w).sum((0, 2)) / n
        var = ((x - mean[None, :, None]) ** 2 * w).sum((0, 2)) / n
        with torch.no_grad():  # BatchNorm1d's update: the unbiased variance, `momentum` of the new
            assert self.running_mean is not None and self.running_var is not None
            self.running_mean.lerp_(mean, self.momentum or 0.1)
            self.running_var.lerp_(var * n / (n - 1).clamp(min=1), self.momentum or 0.1)
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


def symlog(x: torch.Tensor, scale: tuple[float, ...]) -> torch.Tensor:
    """sign(x) log(1 + |x| / scale) per feature (the last axis): Arch.log_scale's reading of the inputs."""
    c = torch.tensor(scale, dtype=x.dtype, device=x.device)
    return torch.sign(x) * torch.log1p(x.abs() / c)


class RecurrentClassifier(nn.Module):
    def __init__(self, arch: Arch = MNIST, standardised: bool = False) -> None:
        """standardised: the inputs come log-scaled (Arch.log_scale) and standardised already, as
        training feeds them; fold_standardisation_ turns the model into one that reads raw values,
        which a model built from a checkpoint does from the start."""
        super().__init__()
        arch.validate()
        self.arch = arch
        self.standardised = standardised
        widths = (arch.features, *arch.conv)
        self.conv = nn.ModuleList(
            nn.Conv1d(widths[k], c, arch.kernel, stride=arch.stride if k == 0 else 1) for k, c in enumerate(arch.conv)
        )
        self.norm = nn.ModuleList(MaskedBatchNorm1d(c) for c in arch.conv) if arch.norm else None
        self.fc_in = nn.Linear(arch.recurrent_inputs, arch.in_units)
        self.rnn = RNN_MODULES[arch.cell](arch.in_units, arch.hidden, num_layers=arch.layers, batch_first=True)
        self.fc_out = nn.Linear(arch.head_inputs, arch.n_classes)

    def read(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs on a log scale where the architecture says so."""
        return symlog(x, self.arch.log_scale) if self.arch.log_scale and not self.standardised else x

    def front(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The convolutional front-end: (B, T, F) -> (B, ceil(T / stride), channels); x itself without one.
        Causal: the kernel - 1 steps before each are read, the first step repeated before the start
        (replicate padding: the input standardisation then folds into the first convolution exactly).
        lengths: each padded sequence's steps after the stride (batch normalisation's statistics)."""
        if not self.conv:
            return x
        y = x.transpose(1, 2)  # (B, F, T)
        for k, conv in enumerate(self.conv):
            y = conv(nn.functional.pad(y, (self.arch.kernel - 1, 0), mode="replicate"))
            if self.norm is not None:
                valid = None if lengths is None else torch.arange(y.shape[2], device=y.device) < lengths[:, None]
                y = self.norm[k](y, valid)
            y = torch.relu(y)
        return y.transpose(1, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, F) -> logits (B, classes). lengths (B,): padded sequences of other lengths (the
        state after each one's last real step is what is classified, as ONNX's sequence_lens)."""
        if lengths is not None and self.conv:
            lengths = torch.div(lengths + self.arch.stride - 1, self.arch.stride, rounding_mode="floor")
        features = self.front(self.read(x), lengths)  # (B, T', channels)
        x = self.fc_in(features)  # (B, T', in_units)
        if lengths is not None:
            # Padding comes after each sequence's real steps, so the state after its last real step is
            # the same whatever follows: run the padded batch whole (faster than a packed one,
            # whose batch shrinks step by step)
            out, _ = self.rnn(x)  # (B, T, hidden): the top layer's state after every step
            last = out[torch.arange(len(x)), lengths.long() - 1]
        else:
            _, state = self.rnn(x)
            h = state[0] if isinstance(state, tuple) else state  # (layers, B, hidden); an LSTM's is (h, c)
            last = h[-1]  # (B, hidden): the top layer after the last step
        if self.arch.pool:  # the channels' mean over each sequence's own steps
            if lengths is None:
                pooled = features.mean(1)
            else:
                valid = torch.arange(features.shape[1], device=x.device)[None, :] < lengths[:, None]
                pooled = (features * valid[..., None]).sum(1) / lengths[:, None].to(features.dtype)
            last = torch.cat([last, pooled], 1)
        return self.fc_out(last)

    def logits_per_step(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, classes): the logits after each step, what the streaming model answers at every step
        (with a stride s, rows s k .. s k + s - 1 all answer from recurrent step k)."""
        features = self.front(self.read(x))  # (B, T', channels)
        out, _ = self.rnn(self.fc_in(features))  # (B, T', hidden)
        if self.arch.pool:  # the channels' mean over the steps so far
            runs = torch.arange(1, features.shape[1] + 1, device=x.device, dtype=features.dtype)
            out = torch.cat([out, features.cumsum(1) / runs[None, :, None]], 2)
        return self.fc_out(out).repeat_interleave(self.arch.stride, 1)[:, : x.shape[1]]


def init_tutorial_(model: RecurrentClassifier) -> None:
    """The TensorFlow tutorial's initialisation, translated to PyTorch's parameter layout.

    FC weights ~ N(0, 1) and biases 0.1 (tf.random_normal / tf.constant(0.1)); each recurrent layer's
    kernel is glorot-uniform over its fused [input+hidden, gates*hidden] matrix (BasicLSTMCell's) with
    zero bias, and an LSTM's forget_bias=1.0 added to the forget gate (PyTorch gate order: i, f, g, o).
    """
    arch = model.arch
    with torch.no_grad():
        for fc in (model.fc_in, model.fc_out):
            fc.weight.normal_(0.0, 1.0)
            fc.bias.fill_(0.1)
        h = arch.hidden
        for layer in range(arch.layers):
            inputs = arch.in_units if layer == 0 else h
            limit = math.sqrt(6.0 / (inputs + h + arch.gates * h))
            for kind in ("ih", "hh"):
                getattr(model.rnn, f"weight_{kind}_l{layer}").uniform_(-limit, limit)
                getattr(model.rnn, f"bias_{kind}_l{layer}").zero_()
            if arch.cell == "lstm":
                getattr(model.rnn, f"bias_ih_l{layer}")[h : 2 * h] = 1.0  # forget gate


def init_recurrent_(model: RecurrentClassifier) -> None:
    """The default recipe's initialisation, on top of PyTorch's: each gate's recurrent weights
    orthogonal (gradients through the steps neither vanish nor explode at the start) and an LSTM's
    forget-gate bias 1 (the cell keeps its memory at the start, Jozefowicz et al. 2015). The MNIST
    recipe with it: bench/results/train_speed.json (docs/results.md says how it was chosen)."""
    h = model.arch.hidden
    params = dict(model.rnn.named_parameters())
    with torch.no_grad():
        for layer in range(model.arch.layers):
            if model.arch.cell == "lstm":
                params[f"bias_ih_l{layer}"][h : 2 * h].fill_(1.0)  # PyTorch gate order: i, f, g, o
                params[f"bias_hh_l{layer}"][h : 2 * h].zero_()
            for k in range(model.arch.gates):
                nn.init.orthogonal_(params[f"weight_hh_l{layer}"][k * h : (k + 1) * h])


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 tensor in [0, 1], the model's input convention."""
    return torch.from_numpy(images.astype(np.float32) / 255.0)


@torch.inference_mode()
def logits_of(model: nn.Module, images: np.ndarray, batch: int = 2000) -> np.ndarray:
    """(N, 10) logits of uint8 images (N, 28, 28), in batches, in inference mode (eval, export, bench)."""
    model.eval()
    return torch.cat([model(to_float(images[i : i + batch])) for i in range(0, len(images), batch)]).numpy()


@torch.inference_mode()
def logits_of_sequences(
    model: nn.Module, x: np.ndarray, lengths: np.ndarray | None = None, batch: int = 512
) -> np.ndarray:
    """(N, classes) logits of float32 sequences (N, T, F); padded ones read at their own last step,
    as the exported file's lengths input."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch], np.float32))
        lb = None if lengths is None else torch.from_numpy(np.asarray(lengths[i : i + batch], np.int64))
        full = lb is None or bool((lb == xb.shape[1]).all())
        out.append(model(xb, None if full else lb))
    return torch.cat(out).numpy()
