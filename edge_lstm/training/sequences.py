"""`edge-lstm train --data`: the same LSTM classifier on a user's own sequences.

Sizes come from the data: features per step, classes and their names, and the number of steps
(fixed when every sequence has the same length, otherwise any length: the exported file gets a
dynamic time axis and a `lengths` input). Each feature is standardised with the training set's
mean and deviation, and that standardisation is then folded into the input layer's weights, so
the checkpoint and every exported file take the raw values the user's sensors produce.

Small data sets (tens to hundreds of sequences) make this a different regime from MNIST's
60,000 images: at least MIN_STEPS optimizer steps however few the sequences (hundreds of passes),
AdamW with a one-cycle schedule, Gaussian noise on the standardised inputs. Measured with
bench/sequences.py (docs/sequences.md says what was tried).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_lstm.data.sequences import SequenceSet, feature_stats
from edge_lstm.errors import ConfigError
from edge_lstm.fileio import check_writable_dir
from edge_lstm.training import checkpoint
from edge_lstm.training.model import LSTMClassifier, ModelConfig, init_lstm_

FINAL = "model.pt"
MIN_STEPS = 1500
# ... unless that would run the LSTM over more than this many time steps in all: ACSF1's 100
# sequences of 1,460 steps took 10 s a pass here, and 1,500 steps would be 375 passes (an hour);
# the sets of bench/sequences.py all stay below it (ArrowHead, the largest, 6.8 million)
STEP_BUDGET = 8_000_000


@dataclass(frozen=True)
class SequenceTrainConfig:
    # None: as many passes as make MIN_STEPS optimizer steps (a few dozen sequences need hundreds of
    # passes), within STEP_BUDGET
    epochs: int | None = None
    batch_size: int = 32
    lr: float = 3e-3  # peak of the one-cycle schedule
    weight_decay: float = 1e-2
    # std of Gaussian noise added to the standardised inputs while training. 0.3 is the most that kept
    # BasicMotions at 100% on 3 seeds; JapaneseVowels gains from more (bench/results/sequences_noise.json:
    # `python bench/sequences.py --noise-sweep`). No one value suits both; the safe one is the default.
    noise: float = 0.3
    hidden: int = 128
    in_units: int = 64
    grad_clip: float = 1.0
    seed: int = 1
    threads: int | None = None  # None: torch's default

    def validate(self) -> None:
        checks = [
            (self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.noise >= 0, f"noise must be >= 0, got {self.noise}"),
            (1 <= self.hidden <= 4096, f"hidden size must be between 1 and 4096, got {self.hidden}"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SequenceTrainResult:
    test_accuracy: float
    train_seconds: float
    epochs: int
    checkpoint: Path
    n_train: int
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checkpoint": str(self.checkpoint)}


def _batches(n: int, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen)
    return [order[i : i + size] for i in range(0, n, size)]


Progress = Callable[[int, int, float], None]  # (epoch, epochs, that epoch's mean training loss)


def fit(
    config: SequenceTrainConfig, data: SequenceSet, any_length: bool, progress: Progress | None = None
) -> LSTMClassifier:
    """A trained model whose input layer takes raw (unstandardised) features; any_length: it is
    built for sequences of any length (a dynamic time axis), else for data's one length."""
    config.validate()
    mean, std = feature_stats(data)
    x = torch.from_numpy((data.x - mean) / std)
    mask = torch.from_numpy(np.arange(data.x.shape[1])[None, :] < data.lengths[:, None])[..., None]
    x = x * mask  # padding stays 0
    lengths, y = torch.from_numpy(data.lengths), torch.from_numpy(data.labels)
    ragged = not data.equal_length  # classify each sequence at its own last step
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model_config = ModelConfig(
        n_inputs=data.features,
        n_steps=0 if any_length else int(data.x.shape[1]),
        n_in_units=config.in_units,
        n_hidden=config.hidden,
        n_classes=len(data.classes),
    )
    model = LSTMClassifier(model_config)
    init_lstm_(model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    epochs = epochs_for(config, data)
    steps = epochs * math.ceil(len(data) / config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    every = max(1, epochs // 10)
    for epoch in range(1, epochs + 1):
        total = 0.0
        batches = _batches(len(data), config.batch_size, gen)
        for idx in batches:
            xb = x[idx]
            if config.noise:
                xb = xb + config.noise * torch.randn(xb.shape, generator=gen) * mask[idx]
            out = model(xb, lengths[idx] if ragged else None)
            loss = loss_fn(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            total += float(loss.detach())
        if progress is not None and (epoch % every == 0 or epoch in (1, epochs)):
            progress(epoch, epochs, total / len(batches))
    model.eval()
    fold_standardisation_(model, mean, std)
    return model


def epochs_for(config: SequenceTrainConfig, data: SequenceSet) -> int:
    """--epochs, else enough passes for MIN_STEPS optimizer steps within STEP_BUDGET time steps."""
    if config.epochs:
        return config.epochs
    by_steps = math.ceil(MIN_STEPS / math.ceil(len(data) / config.batch_size))
    by_budget = int(STEP_BUDGET // max(1, int(data.lengths.sum())))
    return max(1, min(by_steps, by_budget))


def fold_standardisation_(model: LSTMClassifier, mean: np.ndarray, std: np.ndarray) -> None:
    """W ((x - m) / s) + b = (W / s) x + (b - (W / s) m): the model then reads raw features."""
    with torch.no_grad():
        w = model.fc_in.weight.double() / torch.from_numpy(std).double()
        b = model.fc_in.bias.double() - w @ torch.from_numpy(mean).double()
        model.fc_in.weight.copy_(w.float())
        model.fc_in.bias.copy_(b.float())


@torch.inference_mode()
def predict(model: LSTMClassifier, data: SequenceSet, batch: int = 512) -> np.ndarray:
    """(N, classes) logits; padded sequences are read at their own last step, as the exported file's lengths input."""
    model.eval()
    out = []
    for i in range(0, len(data), batch):
        xb, lb = torch.from_numpy(data.x[i : i + batch]), torch.from_numpy(data.lengths[i : i + batch])
        out.append(model(xb, None if bool((lb == xb.shape[1]).all()) else lb))
    return torch.cat(out).numpy()


def train_sequences(
    config: SequenceTrainConfig,
    train_set: SequenceSet,
    test_set: SequenceSet,
    run_dir: Path,
    progress: Progress | None = None,
) -> SequenceTrainResult:
    """Train on train_set, score on test_set, write run_dir/model.pt (with the data's contract)."""
    config.validate()
    run_dir = Path(run_dir)
    check_writable_dir(run_dir)
    if test_set.features != train_set.features:
        raise ConfigError(
            f"the test data has {test_set.features} features per step, the training data {train_set.features}"
        )
    # Any length when the sequences differ in length, the test set's included.
    any_length = not (train_set.equal_length and test_set.equal_length and test_set.x.shape[1] == train_set.x.shape[1])
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        start = time.perf_counter()
        model = fit(config, train_set, any_length, progress)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    accuracy = float((predict(model, test_set).argmax(1) == test_set.labels).mean())
    path = run_dir / FINAL
    checkpoint.save(
        path,
        {
            "model_config": model.config.to_dict(),
            "train_config": {"data": "sequences", **config.to_dict()},
            "state_dict": model.state_dict(),
            "classes": list(train_set.classes),
            "data": {
                "train": str(Path(train_set.source).resolve()),
                "test": str(Path(test_set.source).resolve()),
                "n_train": len(train_set),
                "n_test": len(test_set),
                "features": train_set.features,
                "lengths": [int(train_set.lengths.min()), int(train_set.lengths.max())],
            },
            "metrics": {
                "test_accuracy": accuracy,
                "n_test": len(test_set),
                "train_seconds": seconds,
                "epochs": epochs_for(config, train_set),
            },
        },
    )
    return SequenceTrainResult(accuracy, seconds, epochs_for(config, train_set), path, len(train_set), len(test_set))
