"""Train-time augmentation: the same (seed, step) draws the same changes; half a batch changed, in range."""

from __future__ import annotations

import numpy as np
import torch

from edge_lstm.data import MnistSplit
from edge_lstm.training.augment import AUGMENTED_SHARE, augment, batch_generator


def test_the_same_seed_and_step_give_the_same_batch(test_split: MnistSplit) -> None:
    x = torch.from_numpy(test_split.images[:256].copy()).float() / 255
    a, b = augment(x, batch_generator(1, 7)), augment(x, batch_generator(1, 7))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(x, batch_generator(1, 8)))
    assert not torch.equal(a, augment(x, batch_generator(2, 7)))


def test_a_share_of_the_batch_is_changed_and_stays_in_range(test_split: MnistSplit) -> None:
    x = torch.from_numpy(test_split.images[:512].copy()).float() / 255
    y = augment(x, batch_generator(3, 0))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert abs(changed - AUGMENTED_SHARE) < 0.08
    # a changed digit keeps its ink (peak 1, as predict's normalisation scales it) and most of its place
    moved = (y != x).flatten(1).any(1)
    peaks = y[moved].flatten(1).amax(1)
    assert torch.allclose(peaks, torch.ones_like(peaks))
    overlap = ((y[moved] > 0.3) & (x[moved] > 0.3)).flatten(1).sum(1) / (x[moved] > 0.3).flatten(1).sum(1)
    assert float(np.median(overlap.numpy())) > 0.3


def test_a_run_recorded_before_augmentation_resumes_without_it() -> None:
    from edge_lstm.training import TrainConfig

    recorded = TrainConfig().to_dict()
    assert TrainConfig.from_dict(recorded).augment == "writing"
    del recorded["augment"]  # what a run of the previous version recorded
    assert TrainConfig.from_dict(recorded).augment == "none"
