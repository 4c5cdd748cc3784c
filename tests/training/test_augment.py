"""Train-time augmentation: the same (seed, step) draws the same changes; half a batch changed, in range."""

from __future__ import annotations

from collections.abc import Callable

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


def test_an_epoch_changed_in_chunks_is_the_batches_changes_on_any_workers(test_split: MnistSplit) -> None:
    """EpochChanges (16 batches at once, split in parts over workers) gives each batch the changes
    augment() gives it (equal to float rounding: a batched matmul may round differently at another
    batch size), and bit for bit the same on one worker or several."""
    from concurrent.futures import ThreadPoolExecutor

    from edge_lstm.training.augment import EpochChanges

    x = torch.from_numpy(test_split.images[:1100].copy()).float() / 255
    order = torch.from_numpy(np.random.default_rng(0).permutation(1100))

    def one_worker(fn: Callable[[int], torch.Tensor], n: int) -> list[torch.Tensor]:
        return [fn(i) for i in range(n)]

    with ThreadPoolExecutor(2) as pool:

        def two_workers(fn: Callable[[int], torch.Tensor], n: int) -> list[torch.Tensor]:
            return list(pool.map(fn, range(n)))

        a = EpochChanges(x, order, 64, seed=4, first_step=100, run=one_worker, parts=2)
        b = EpochChanges(x, order, 64, seed=4, first_step=100, run=two_workers, parts=2)
        for k in range(a.n_batches):  # 18 batches in 2 chunks, the last batch short (1100 = 17 x 64 + 12)
            idx = order[k * 64 : (k + 1) * 64]
            got = a.batch(k)
            assert torch.equal(got, b.batch(k))
            assert torch.allclose(got, augment(x[idx], batch_generator(4, 100 + k)), atol=1e-5)
