from __future__ import annotations

import numpy as np
from helpers import hand_drawn

from edge_lstm.data import mnist
from edge_lstm.runtime.preprocess import to_mnist


def test_hand_drawn_is_normalised_the_mnist_way(test_split: mnist.MnistSplit) -> None:
    photo = hand_drawn(test_split.images[0])
    norm = to_mnist(photo)
    assert norm.shape == (28, 28) and norm.dtype == np.uint8
    assert norm[0].max() == 0 and norm[:, 0].max() == 0  # dark background, digit inside
    ys, xs = np.nonzero(norm > 25)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= 22  # fitted into ~20x20
    mass = norm.astype(float)
    cy = (mass.sum(1) * np.arange(28)).sum() / mass.sum()
    cx = (mass.sum(0) * np.arange(28)).sum() / mass.sum()
    assert abs(cy - 14) < 1.0 and abs(cx - 14) < 1.0  # centred by centre of mass


def test_sample_pictures_are_normalised_like_mnist() -> None:
    """data/samples: drawn, transparent-canvas and photographed digits (uneven light, noise, blur, JPEG)
    all come out as one centred digit fitted to 20x20, the uneven paper not counted as ink."""
    from pathlib import Path

    from edge_lstm.runtime.preprocess import load_inputs

    samples = sorted((Path(__file__).resolve().parents[2] / "data" / "samples").glob("*_*.*[gp]"))
    assert len(samples) >= 6
    for path in samples:
        (img,) = load_inputs(path)
        ys, xs = np.nonzero(img > 40)
        side = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert 14 <= side <= 22, (path.name, side)  # paper counted as ink would shrink the digit inside its box
        mass = img.astype(float)
        cy = (mass.sum(1) * np.arange(28)).sum() / mass.sum()
        cx = (mass.sum(0) * np.arange(28)).sum() / mass.sum()
        assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5, path.name
