"""Streams of every cell: a two-layer GRU and a two-layer LSTM (tiny MNIST models) served by `edge-lstm
serve` (its default workers: rows of one sequence reach any worker and are forwarded to its owner)
answer row by row exactly as the in-process StreamingClassifier and the whole-sequence file, over HTTP,
the gRPC stream and the WebSocket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as thttp
from serving import Server, answer, frame, start_server
from websockets.sync.client import connect

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.serve.server import free_port


@pytest.fixture(scope="module", params=["gru2", "lstm2"])
def cell_files(
    request: pytest.FixtureRequest, gru2: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    from helpers import cell_files as make

    return gru2 if request.param == "gru2" else make(tmp_path_factory.mktemp("lstm2"), "lstm", 2)


@pytest.fixture(scope="module")
def cell_server(cell_files: dict[str, Path]) -> Iterator[tuple[Server, str]]:
    port = free_port("127.0.0.1")
    s = start_server(str(cell_files["fp32"]), str(cell_files["step"]), "--grpc-port", str(port))
    yield s, f"127.0.0.1:{port}"
    s.stop()


def expected_rows(files: dict[str, Path], images: np.ndarray) -> np.ndarray:
    local = StreamingClassifier(files["step"], batch=len(images))
    rows = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)  # (n, 28, 10)
    np.testing.assert_allclose(rows[:, -1], Classifier(files["fp32"]).logits(images), atol=1e-4)
    return rows


def test_http_streams_equal_the_runner(
    cell_server: tuple[Server, str], cell_files: dict[str, Path], test_split: MnistSplit
) -> None:
    images = test_split.images[:4].astype(np.float32) / 255
    expected = expected_rows(cell_files, images)
    client = thttp.InferenceServerClient(cell_server[0].host)
    for t in range(28):  # four sequences interleaved, one row per request: the workers share them
        for k in range(4):
            row = thttp.InferInput("row", [1, 28], "FP32")
            row.set_data_from_numpy(images[k, t : t + 1])
            got = client.infer(
                "edge_lstm_step", [row], sequence_id=500 + k, sequence_start=t == 0, sequence_end=t == 27
            )
            np.testing.assert_allclose(got.as_numpy("logits")[0], expected[k, t], atol=1e-5)


def test_grpc_and_websocket_streams_equal_the_runner(
    cell_server: tuple[Server, str], cell_files: dict[str, Path], test_split: MnistSplit
) -> None:
    from triton_helpers import stream_rows

    images = test_split.images[4:8].astype(np.float32) / 255
    expected = expected_rows(cell_files, images)
    for k, rows in enumerate(stream_rows(cell_server[1], images, first_id=700)):
        np.testing.assert_allclose(rows, expected[k], atol=1e-5)
    url = cell_server[0].url.replace("http://", "ws://") + "/v2/models/edge_lstm_step/stream"
    got: dict[int, list[np.ndarray]] = {k: [] for k in range(4)}
    with connect(url) as ws:
        for t in range(28):
            for k in range(4):
                ws.send(frame(1 + k, images[k, t], start=t == 0, end=t == 27))
        for _ in range(4 * 28):
            sid, logits = answer(ws.recv(timeout=30))  # type: ignore[misc]
            got[sid - 1].append(logits[0])
    for k in range(4):
        np.testing.assert_allclose(np.stack(got[k]), expected[k], atol=1e-5)
