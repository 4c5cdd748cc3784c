"""Real-writing strokes and pictures are seeded and readable by predict's normalisation; the committed
set loads, scores, and a broken one is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_lstm.data.writing import TEMPLATES, make_drawing, photograph, rasterise
from edge_lstm.data.writing_set import FAMILIES, WRITING_FILE, load_writing_set, score, summary_line
from edge_lstm.errors import DataError
from edge_lstm.runtime.preprocess import to_mnist


def test_drawings_are_seeded_and_stay_on_the_canvas() -> None:
    for digit in range(10):
        a = make_drawing(digit, np.random.default_rng(5))
        b = make_drawing(digit, np.random.default_rng(5))
        assert a.shape == b.shape and a.pen == b.pen and a.shape in TEMPLATES[digit]
        assert all(np.array_equal(s, t) for s, t in zip(a.strokes, b.strokes, strict=True))
        pts = np.vstack(a.strokes)
        assert pts.min() >= a.pen / 2 and pts.max() <= a.canvas - a.pen / 2


def test_every_shape_is_drawn_and_photographed_as_a_digit() -> None:
    rng = np.random.default_rng(0)
    for digit in range(10):
        ink = rasterise(make_drawing(digit, rng))
        assert 0.02 < float((ink > 0.5).mean()) < 0.4
        picture = np.asarray(photograph(digit, rng))
        assert to_mnist(picture).max() > 200  # the normalisation finds the digit
    a = np.asarray(photograph(3, np.random.default_rng(9)))
    assert np.array_equal(a, np.asarray(photograph(3, np.random.default_rng(9))))


def test_the_committed_set_loads_and_scores() -> None:
    ws = load_writing_set(WRITING_FILE)
    assert ws.families == FAMILIES and len(ws) > 4000
    for k in range(len(FAMILIES)):
        assert set(np.unique(ws.labels[ws.family == k])) == set(range(10))
    perfect = score(ws, ws.labels)
    assert perfect["accuracy"] == pytest.approx(1 - ws.refused.mean())
    drawn = perfect["families"]["drawn"]
    assert np.asarray(drawn["confusion"]).sum() == drawn["n"] and len(drawn["per_digit"]) == 10
    assert summary_line(perfect).startswith("real writing ")


def test_a_broken_set_is_refused_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "writing.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(DataError, match="not a readable real-writing set"):
        load_writing_set(bad)
