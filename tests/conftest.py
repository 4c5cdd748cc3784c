"""Shared fixtures. Everything is offline: the bundled MNIST copy, tiny models, loopback servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_lstm.data import MnistSplit

os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "mnist"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def test_split() -> MnistSplit:
    """The MNIST test set from the bundled copy."""
    from edge_lstm.data import mnist

    return mnist.load_split(mnist.BUNDLED_DIR, "test")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small but real checkpoint (a few seconds of training on 12,000 images, about 95% accurate)."""
    from edge_lstm.training import TrainConfig, train

    run = tmp_path_factory.mktemp("run")
    train(TrainConfig(subset=12000, epochs=2, batch_size=64, log_every=50), run)
    return run / "model.pt"


@pytest.fixture(scope="session")
def exported(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32 + int8 + fp16 + ORT format from one verified export, plus the streaming step model."""
    from edge_lstm.export import ExportConfig, export

    out = tmp_path_factory.mktemp("export")
    arts = export(ExportConfig(output=out / "model.onnx", checkpoint=trained, int8=True, fp16=True, ort=True))
    step = export(ExportConfig(output=out / "step.onnx", checkpoint=trained, streaming=True))
    files = {a.variant: Path(a.path) for a in arts}
    files["step"] = Path(step[0].path)
    return files


@pytest.fixture(scope="session")
def gru2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A two-layer GRU's files: what every serving path must stream as exactly as the LSTM's."""
    from helpers import cell_files

    return cell_files(tmp_path_factory.mktemp("gru2"), "gru", 2)


# `pytest -m "not slow"`: the quick inner loop. Slow are the tests that train or export a model (the
# fixtures below), start servers, a Ray cluster or a browser, or drive a device; the rest runs in
# well under a minute.
SLOW_FIXTURES = {"trained", "exported", "server", "cluster", "served", "site", "repo", "arm64", "gru2"}
SLOW_FOLDERS = ("serve", "cluster", "web", "devices", "tritonserver", "mcu")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
