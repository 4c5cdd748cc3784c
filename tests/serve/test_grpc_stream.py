"""The protocol's gRPC bidirectional stream (ModelStreamInfer), as tritonclient's start_stream /
async_stream_infer use it: many sequences' rows pipelined on one stream are answered as the
in-process StreamingClassifier answers them, row by row; a refused request is answered in-stream with
the reason and the stream goes on; the token guards it; a client that goes away leaves a working server."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from serving import Server, start_server
from triton_helpers import send_row as send_stream_row
from triton_helpers import stream_reusing_ids

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import StreamingClassifier
from edge_lstm.serve.server import free_port

TOKEN = "a-stream-token-of-24-chars"


@pytest.fixture(scope="module")
def grpc_server(exported: dict[str, Path]) -> Iterator[tuple[Server, str]]:
    port = free_port("127.0.0.1")
    s = start_server(str(exported["fp32"]), str(exported["step"]), "--grpc-port", str(port), "--token", TOKEN)
    yield s, f"127.0.0.1:{port}"
    s.stop()


def open_stream(address: str, token: str | None = TOKEN) -> tuple[Any, queue.Queue[Any]]:
    answers: queue.Queue[Any] = queue.Queue()
    client = tgrpc.InferenceServerClient(address)
    headers = {"authorization": f"Bearer {token}"} if token else None
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=headers)
    return client, answers


@contextlib.contextmanager
def streaming(address: str, token: str | None = TOKEN) -> Iterator[tuple[Any, queue.Queue[Any]]]:
    """An open stream (client, its answers), stopped and closed afterwards."""
    client, answers = open_stream(address, token)
    try:
        yield client, answers
    finally:
        client.stop_stream()
        client.close()


def send_row(client: Any, sid: int, t: int, row: np.ndarray, rid: str, last: int = 27) -> None:
    """Row t of sequence `sid` on the step model (the first starts it, `last` ends it)."""
    send_stream_row(client, "edge_lstm_step", row, rid, sid, t == 0, t == last)


def test_pipelined_interleaved_streams_equal_the_streaming_classifier(
    grpc_server: Any, exported: dict, test_split: MnistSplit
) -> None:
    _, address = grpc_server
    images = test_split.images[:8].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=8)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)  # (8, 28, 10)
    with streaming(address) as (client, answers):
        for t in range(28):  # every row of every stream sent without waiting for any answer
            for k in range(8):
                send_row(client, 100 + k, t, images[k, t], f"{k}:{t}")
        got = {}
        for _ in range(8 * 28):
            result, error = answers.get(timeout=60)
            assert error is None, error
            got[result.get_response().id] = result.as_numpy("logits")[0]
    for k in range(8):
        np.testing.assert_allclose(np.stack([got[f"{k}:{t}"] for t in range(28)]), expected[k], atol=1e-5)


def test_ids_reused_at_once_keep_every_sequence_apart(grpc_server: Any, exported: dict, test_split: MnistSplit) -> None:
    """16 sequences on 4 ids, each id taken again by the next sequence as soon as one ends (END, then
    START), pipelined on one stream, across the server's workers: every row equals the runner's."""
    _, address = grpc_server
    images = test_split.images[:16].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=16)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)
    got = stream_reusing_ids(address, images, [7, 8, 9, 10], token=TOKEN)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_refused_request_is_answered_in_stream_and_the_stream_goes_on(grpc_server: Any) -> None:
    _, address = grpc_server
    row = np.full(28, 0.5, np.float32)
    with streaming(address) as (client, answers):
        cases = [
            (lambda: send_row(client, 900, 3, row, "unstarted"), "not live"),
            (lambda: send_row(client, 901, 0, row + np.nan, "nan"), "NaN"),
            (lambda: send_row(client, 902, 0, np.zeros(27, np.float32), "short"), "28"),
        ]
        for send, reason in cases:
            send()
            result, error = answers.get(timeout=30)
            assert result is None and reason in str(error), error
        for t in range(28):  # a whole stream on the same gRPC stream afterwards
            send_row(client, 903, t, row, f"ok{t}", last=99)
            result, error = answers.get(timeout=30)
            assert error is None and result.as_numpy("logits").shape == (1, 10)
        send_row(client, 903, 28, row, "past")
        result, error = answers.get(timeout=30)
        assert result is None and "would have 29 rows" in str(error)


def test_the_token_guards_the_stream(grpc_server: Any) -> None:
    from tritonclient.utils import InferenceServerException

    _, address = grpc_server
    with streaming(address, token=None) as (client, answers):
        # The server refuses the stream when it opens. On a busy machine that refusal can reach the
        # client before its first row is sent: tritonclient then marks the stream invalid and raises
        # from async_stream_infer. Either way the callback gets the server's reason.
        with contextlib.suppress(InferenceServerException):
            send_row(client, 1, 0, np.zeros(28, np.float32), "x")
        result, error = answers.get(timeout=30)
        assert result is None and "bearer token" in str(error)


def test_a_client_that_goes_away_leaves_the_server_serving(grpc_server: Any) -> None:
    _, address = grpc_server
    client, _ = open_stream(address)
    for t in range(5):
        send_row(client, 555, t, np.zeros(28, np.float32), f"gone{t}")
    client.close()  # the channel dropped with the stream open and answers unread
    with streaming(address) as (again, answers):
        send_row(again, 556, 0, np.zeros(28, np.float32), "after")
        result, error = answers.get(timeout=30)
        assert error is None and result.get_response().id == "after"
