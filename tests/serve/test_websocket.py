"""Streams over the WebSocket route (`/v2/models/NAME/stream`), with a real client (websockets) against
a real server process: many streams multiplexed on one socket equal the in-process StreamingClassifier
row by row; every bad frame is answered in-socket with the reason and the socket goes on; the token
(header or ?token=); a client that goes away frees the streams it started."""

from __future__ import annotations

import contextlib
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serving import HEADER, Server, answer, frame, start_server
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import StreamingClassifier

TOKEN = "a-socket-token-of-24-chars"


@pytest.fixture(scope="module")
def ws_server(exported: dict[str, Path]) -> Iterator[Server]:
    s = start_server(str(exported["fp32"]), str(exported["step"]), "--token", TOKEN)
    yield s
    s.stop()


def socket_url(server: Server, token: str | None = None) -> str:
    url = server.url.replace("http://", "ws://") + "/v2/models/edge_lstm_step/stream"
    return url + (f"?token={token}" if token else "")


def test_streams_multiplexed_on_one_socket_equal_the_streaming_classifier(
    ws_server: Server, exported: dict, test_split: MnistSplit
) -> None:
    images = test_split.images[:16].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=16)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)  # (16, 28, 10)
    got: dict[int, list[np.ndarray]] = {k: [] for k in range(16)}
    with connect(socket_url(ws_server), additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        for t in range(28):  # every stream's row t sent before any answer is read
            for k in range(16):
                ws.send(frame(1 + k, images[k, t], start=t == 0, end=t == 27))
        for _ in range(16 * 28):
            sid, logits = answer(ws.recv(timeout=30))  # type: ignore[misc]
            got[sid - 1].append(logits[0])
        ws.send(frame(99, images[0, :3], start=True))  # several rows in one frame: one answer row each
        sid, logits = answer(ws.recv(timeout=30))  # type: ignore[misc]
        assert sid == 99 and logits.shape == (3, 10)
    for k in range(16):
        np.testing.assert_allclose(np.stack(got[k]), expected[k], atol=1e-5)
    np.testing.assert_allclose(logits, expected[0, :3], atol=1e-5)


def test_every_bad_frame_is_answered_and_the_socket_goes_on(ws_server: Server) -> None:
    row = np.full(28, 0.5, np.float32)
    with connect(socket_url(ws_server, TOKEN)) as ws:  # the browser's way: ?token=
        cases = [  # (frame, why, the sequence id the answer names: the header's, where it could be read)
            (b"short", "16-byte header", None),
            (HEADER.pack(5, 1, 1) + row[:27].tobytes(), "the frame has 108", 5),
            (frame(0, row, start=True), "sequence id 0", None),
            (frame(6, row + np.nan, start=True), "NaN", 6),
            (frame(7, row), "not live", 7),
        ]
        for data, reason, sid in cases:
            ws.send(data)
            reply = answer(ws.recv(timeout=30))
            assert isinstance(reply, dict) and reason in reply["error"] and reply["sequence_id"] == sid, reply
        ws.send("a text frame")
        assert "binary frames" in answer(ws.recv(timeout=30))["error"]  # type: ignore[call-overload]
        ws.send(frame(8, np.tile(row, (28, 1)), start=True))
        assert answer(ws.recv(timeout=30))[1].shape == (28, 10)  # type: ignore[index]
        ws.send(frame(8, row))
        reply = answer(ws.recv(timeout=30))
        assert isinstance(reply, dict) and reply["sequence_id"] == 8 and "would have 29 rows" in reply["error"]


def test_no_token_or_no_step_model_refuses_the_socket(ws_server: Server) -> None:
    step = socket_url(ws_server)
    classifier = ws_server.url.replace("http://", "ws://") + f"/v2/models/edge_lstm/stream?token={TOKEN}"
    for url, reason in (
        (step, "bearer token"),
        (step + "?token=wrong-token-of-enough-length", "bearer token"),
        (classifier, "no step model named 'edge_lstm'"),
    ):
        with connect(url) as ws:
            assert reason in answer(ws.recv(timeout=10))["error"]  # type: ignore[call-overload]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def live_streams(server: Server) -> float:
    req = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = urllib.request.urlopen(req).read().decode()
    m = re.search(r'edge_lstm_live_streams\{model="edge_lstm_step"\} ([0-9.]+)', text)
    return float(m.group(1)) if m else 0.0


def test_a_client_that_goes_away_frees_its_streams(ws_server: Server) -> None:
    row = np.zeros(28, np.float32)
    before = live_streams(ws_server)
    with contextlib.suppress(Exception), connect(socket_url(ws_server, TOKEN)) as ws:
        for k in range(5):
            ws.send(frame(500 + k, row, start=True))
        for _ in range(5):
            ws.recv(timeout=30)
        ws.socket.shutdown(socket.SHUT_RDWR)  # the client vanishes: no closing handshake
    deadline = time.time() + 10
    while time.time() < deadline and live_streams(ws_server) > before:
        time.sleep(0.3)
    assert live_streams(ws_server) <= before
    with connect(socket_url(ws_server, TOKEN)) as again:  # and the streams are gone from the table
        again.send(frame(500, row))
        assert "not live" in answer(again.recv(timeout=30))["error"]  # type: ignore[call-overload]


def test_sigterm_with_streams_open_stops_cleanly(exported: dict[str, Path]) -> None:
    import signal

    server = start_server(str(exported["step"]))
    row = np.zeros(28, np.float32)
    with connect(server.url.replace("http://", "ws://") + "/v2/models/edge_lstm_step/stream") as ws:
        for k in range(4):
            ws.send(frame(700 + k, row, start=True))
        for _ in range(4):
            ws.recv(timeout=30)
        code, out, err = server.stop(signal.SIGTERM, timeout=60)
        with pytest.raises(ConnectionClosed):  # the server closed the socket on its way out
            ws.recv(timeout=10)
    assert code == 0, err
    assert "every request in flight was answered" in out and "Traceback" not in err


def test_a_sockets_sequence_ids_are_its_own(ws_server: Server) -> None:
    """Two sockets' id 42 are two streams: the second cannot end (or advance) the first's."""
    row = np.zeros(28, np.float32)
    with connect(socket_url(ws_server, TOKEN)) as a, connect(socket_url(ws_server, TOKEN)) as b:
        a.send(frame(42, row, start=True))
        assert isinstance(answer(a.recv(timeout=30)), tuple)
        b.send(frame(42, row, end=True))
        refused = answer(b.recv(timeout=30))
        assert isinstance(refused, dict) and "not live" in refused["error"], refused
        a.send(frame(42, row, end=True))
        reply = answer(a.recv(timeout=30))
        assert isinstance(reply, tuple) and reply[0] == 42, reply
