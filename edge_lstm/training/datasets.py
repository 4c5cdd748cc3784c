"""What the training loop trains on: MNIST or a user's own labelled sequences, as tensors, with the
architecture's sizes taken from the data.

MNIST: pixel / 255, 28 steps of 28 pixels. Own sequences (.npz, .ts; edge_lstm/data/sequences.py):
steps, features, classes and their names from the data (steps fixed when every sequence has the same
length, otherwise any length: the exported file gets a dynamic time axis and a `lengths` input).
Each feature is standardised with the training set's mean and deviation; that standardisation is
folded into the input layer's weights at the end (fold_standardisation_), so the checkpoint and every
exported file take the raw values the user's sensors produce. Features whose sequences' peaks span
LOG_SPAN or more (log_scales) are read on a log scale first (Arch.log_scale), here and in every file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_lstm.arch import MNIST, Arch
from edge_lstm.data import mnist, sequences
from edge_lstm.data.sequences import SequenceSet, feature_stats
from edge_lstm.errors import ConfigError, DataError
from edge_lstm.training.model import RecurrentClassifier, to_float
from edge_lstm.training.recipes import CONV, FCN, KERNEL, LOG_SPAN, TrainConfig, conv_stride

TEST_FRACTION = 0.2  # own data without --test-data: a stratified share held out for testing


@dataclass
class TrainingData:
    x: torch.Tensor  # (N, T, F) float32: the model's input (own data: standardised, padding 0)
    y: torch.Tensor  # (N,) int64 class indices
    lengths: torch.Tensor | None  # (N,) int64 real steps of each; None: all have T
    x_test: torch.Tensor
    y_test: torch.Tensor
    lengths_test: torch.Tensor | None
    arch: Arch  # sizes from the data, choices from the config
    mean: np.ndarray | None = None  # (F,) the standardisation folded into the input layer at the end
    std: np.ndarray | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the checkpoint's "data" entry (own data)
    description: str = "MNIST"  # for people: what is trained on

    @property
    def n_train(self) -> int:
        return len(self.y)

    def step_count(self) -> int:
        """Time steps of one pass over the training set (the work a pass costs)."""
        return int(self.lengths.sum()) if self.lengths is not None else int(self.x.shape[0] * self.x.shape[1])


def load_training_data(config: TrainConfig, data_dir: Path | None = None) -> TrainingData:
    """MNIST (config.data None) or the user's sequences, cut to config.subset / test_subset."""
    if config.data is None:
        return _mnist(config, data_dir)
    return _own(config)


def _choices(config: TrainConfig) -> dict[str, Any]:
    return {"cell": config.cell, "layers": config.layers, "hidden": config.hidden, "in_units": config.in_units}


def _mnist(config: TrainConfig, data_dir: Path | None) -> TrainingData:
    folder = mnist.locate(data_dir)
    train, test = mnist.load_split(folder, "train"), mnist.load_split(folder, "test")
    n = len(train) if config.subset is None else min(config.subset, len(train))
    n_test = len(test) if config.test_subset is None else min(config.test_subset, len(test))
    return TrainingData(
        x=to_float(train.images[:n]),
        y=torch.from_numpy(train.labels[:n].astype(np.int64)),
        lengths=None,
        x_test=to_float(test.images[:n_test]),
        y_test=torch.from_numpy(test.labels[:n_test].astype(np.int64)),
        lengths_test=None,
        arch=Arch(steps=MNIST.steps, features=MNIST.features, classes=MNIST.classes, image=True, **_choices(config)),
    )


def own_sets(config: TrainConfig) -> tuple[SequenceSet, SequenceSet]:
    """The training and test sequences of `train --data` (a stratified split when no test file)."""
    assert config.data is not None
    train = sequences.load(Path(config.data))
    if config.test_data is not None:
        test = sequences.load(Path(config.test_data), train.classes)
        if test.features != train.features:
            raise ConfigError(
                f"the test data has {test.features} features per step, the training data {train.features}"
            )
    else:
        train, test = sequences.split(train, TEST_FRACTION, config.seed)
        if len(test) == 0:
            raise DataError(f"{config.data}: too few sequences per class to hold some out; give --test-data")
    if config.subset is not None:
        train = train.subset(np.arange(min(config.subset, len(train))))
    if config.test_subset is not None:
        test = test.subset(np.arange(min(config.test_subset, len(test))))
    return train, test


def log_scales(data: SequenceSet) -> tuple[float, ...]:
    """Arch.log_scale for the training set: () unless some feature's sequence peaks (|x| max) span
    LOG_SPAN or more between the 10th and 90th percentile; then for every feature a tenth of its median
    |x| over the real steps (the scale below which the log is linear)."""
    valid = np.arange(data.x.shape[1])[None, :] < data.lengths[:, None]
    peaks = np.abs(np.where(valid[..., None], data.x, 0.0)).max(axis=1)  # (N, F)
    low, high = np.percentile(peaks, [10, 90], axis=0)
    if not (high >= LOG_SPAN * np.maximum(low, 1e-30)).any():
        return ()
    values = np.abs(data.x[valid])  # (steps, F)
    scales = []
    for f in range(data.features):
        typical = float(np.median(values[:, f])) or float(values[:, f].mean()) or 1.0
        scales.append(0.1 * typical)
    return tuple(scales)


def _log_scaled(data: SequenceSet, scale: tuple[float, ...]) -> SequenceSet:
    if not scale:
        return data
    # model.symlog's formula in numpy, as the committed results were trained (torch's log1p differs in
    # the last bit, which would change the training's path)
    x = np.sign(data.x) * np.log1p(np.abs(data.x) / np.asarray(scale, np.float32))
    return SequenceSet(x.astype(np.float32), data.lengths, data.labels, data.classes, data.source)


def _own(config: TrainConfig) -> TrainingData:
    raw_train, raw_test = own_sets(config)
    scale = log_scales(raw_train)
    train, test = _log_scaled(raw_train, scale), _log_scaled(raw_test, scale)
    mean, std = feature_stats(train)
    # Any length when the sequences differ in length, the test set's included.
    fixed = train.equal_length and test.equal_length and test.x.shape[1] == train.x.shape[1]
    front: dict[str, Any] = {}
    if config.arch in ("conv-lstm", "lstm-fcn"):
        fcn = config.arch == "lstm-fcn"
        front = {"conv": FCN if fcn else CONV, "kernel": KERNEL, "stride": conv_stride(float(train.lengths.mean()))}
        front["pool"], front["norm"] = fcn, True
    arch = Arch(
        steps=int(train.x.shape[1]) if fixed else None,
        features=train.features,
        classes=train.classes,
        **_choices(config),
        **front,
        log_scale=scale,
    )
    assert config.data is not None
    record = {
        "train": str(Path(config.data).resolve()),
        "test": str(Path(config.test_data or config.data).resolve()),
        "held_out": config.test_data is None,  # the test set is a split of `train`
        "n_train": len(train),
        "n_test": len(test),
        "features": train.features,
        "lengths": [int(train.lengths.min()), int(train.lengths.max())],
    }
    shape = f"{train.x.shape[1]}" if train.equal_length else f"{train.lengths.min()}-{train.lengths.max()}"
    names = ", ".join(train.classes[:8]) + (", ..." if len(train.classes) > 8 else "")
    description = (
        f"{config.data}: {len(train)} sequences of {shape} steps x {train.features} features, "
        f"{len(train.classes)} classes ({names}); testing on {len(test)}"
    )
    return TrainingData(
        *_standardised(train, mean, std, fixed),
        *_standardised(test, mean, std, fixed),
        arch=arch,
        mean=mean,
        std=std,
        record=record,
        description=description,
    )


def _standardised(
    data: SequenceSet, mean: np.ndarray, std: np.ndarray, fixed: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    valid = np.arange(data.x.shape[1])[None, :] < data.lengths[:, None]
    x = np.where(valid[..., None], (data.x - mean) / std, 0.0).astype(np.float32)  # padding stays 0
    lengths = None if fixed and data.equal_length else torch.from_numpy(data.lengths.astype(np.int64))
    return torch.from_numpy(x), torch.from_numpy(data.labels.astype(np.int64)), lengths


def fold_standardisation_(model: RecurrentClassifier, mean: np.ndarray, std: np.ndarray) -> None:
    """W ((x - m) / s) + b = (W / s) x + (b - (W / s) m): the model then reads raw features. Folded into
    the first layer that reads them: the input projection, or the first convolution (exact there too:
    its padding repeats the first step, so a padded step is standardised like a real one)."""
    first: torch.nn.Conv1d | torch.nn.Linear = model.conv[0] if len(model.conv) else model.fc_in  # type: ignore[assignment]
    assert first.bias is not None
    with torch.no_grad():
        w = first.weight.double()  # conv: (out, F, kernel); linear: (out, F)
        if w.dim() == 2:
            w = w[..., None]  # a linear layer is a convolution of kernel 1
        w = w / torch.from_numpy(std).double()[:, None]
        shift = (w * torch.from_numpy(mean).double()[:, None]).sum((1, 2))
        first.weight.copy_(w.reshape(first.weight.shape).float())
        first.bias.copy_((first.bias.double() - shift).float())
    model.standardised = False  # it reads raw values now (log-scaled first where its architecture says)
