from __future__ import annotations

import numpy as np

from edge_lstm.runtime import imageops


def test_area_resize_keeps_the_mean_and_constants() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (97, 61)).astype(np.float64)
    small = imageops.resize(img, 20, 13)
    assert small.shape == (20, 13)
    assert abs(small.mean() - img.mean()) < 1e-9  # exact box integration preserves the mean
    assert np.allclose(imageops.resize(np.full((50, 40), 7.0), 9, 31), 7.0)
    grown = imageops.resize(np.array([[0.0, 10.0]]), 1, 4)  # bilinear with half-pixel centres
    assert np.allclose(grown, [[0.0, 2.5, 7.5, 10.0]])


def test_filters() -> None:
    img = np.zeros((9, 9))
    img[4, 4] = 255  # one noisy pixel
    assert not imageops.median3(img).any()
    assert imageops.max_filter(img, 3)[3:6, 3:6].min() == 255 and imageops.min_filter(img, 3).max() == 0
    assert np.allclose(imageops.blur5(np.full((6, 7), 3.0)), 3.0)
    assert abs(imageops.blur5(img).sum() - 255) < 1e-9  # a normalised kernel (away from the edges)


def test_sequential_sum_and_rounding() -> None:
    x = np.array([1e16, 1.0, -1e16, 1.0])
    assert imageops.seq_sum(x) == ((1e16 + 1.0) - 1e16) + 1.0  # index order, as a JavaScript loop
    assert imageops.round_half_up(2.5) == 3 and imageops.round_half_up(-0.5) == 0
