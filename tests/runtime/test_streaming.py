from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_lstm.data import mnist
from edge_lstm.errors import InputError
from edge_lstm.runtime import Classifier, StreamingClassifier

runner = CliRunner()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return mnist.load_split(mnist.BUNDLED_DIR, "test").images


def test_step_model_contract(exported: dict[str, Path]) -> None:
    g = onnx.load(str(exported["step"])).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.input, *g.output]}
    assert dims == {
        "row": ["batch", 28],
        "h": [1, "batch", 128],
        "c": [1, "batch", 128],
        "logits": ["batch", 10],
        "h_out": [1, "batch", 128],
        "c_out": [1, "batch", 128],
    }
    assert [n.op_type for n in g.node].count("LSTM") == 1


@pytest.mark.parametrize("batch", [1, 3, 128])
def test_rows_one_by_one_reproduce_the_full_model(exported: dict[str, Path], images: np.ndarray, batch: int) -> None:
    x = images[200 : 200 + batch]
    full = Classifier(exported["fp32"]).logits(x)
    stream = StreamingClassifier(exported["step"], batch=batch)
    for t in range(28):
        logits = stream.push(x[:, t, :])
    assert np.abs(logits - full).max() <= 1e-4
    assert np.array_equal(stream.predict()[0], full.argmax(1))


def test_streams_are_independent(exported: dict[str, Path], images: np.ndarray) -> None:
    together = StreamingClassifier(exported["step"], batch=2)
    alone = StreamingClassifier(exported["step"], batch=1)
    for t in range(28):
        both = together.push(images[:2, t, :])
        one = alone.push(images[1, t, :])  # a single (28,) row
    assert np.abs(both[1] - one[0]).max() <= 1e-5


def test_push_validation_and_reset(exported: dict[str, Path], images: np.ndarray) -> None:
    s = StreamingClassifier(exported["step"], batch=2)
    with pytest.raises(InputError, match="no rows pushed yet"):
        s.predict()
    with pytest.raises(InputError, match="expected 2 rows"):
        s.push(images[0, 0])
    with pytest.raises(InputError, match=r"rows of shape"):
        s.push(images[:2, :2, :])
    for t in range(28):
        s.push(images[:2, t])
    with pytest.raises(InputError, match="reset"):
        s.push(images[:2, 0])
    s.reset(batch=5)
    assert s.steps == 0 and [x.shape for x in s.state] == [(1, 5, 128)] * 2 and not any(x.any() for x in s.state)
    with pytest.raises(InputError, match="batch must be >= 1"):
        s.reset(batch=0)
