"""Triton client helpers for the Triton tests (imported by name, like serving.py)."""

from __future__ import annotations

import os
import queue
from typing import Any

import numpy as np
import tritonclient.grpc as tgrpc

from edge_lstm.triton.server import TritonError, find


def have_triton() -> bool:
    """A tritonserver to run (CI sets EDGE_LSTM_REQUIRE_TRITON=1: there a missing one fails, not skips)."""
    try:
        find()
    except TritonError:
        if os.environ.get("EDGE_LSTM_REQUIRE_TRITON"):
            raise
        return False
    return True


def grpc_address(server: Any) -> str:
    """Where `serve --triton` serves gRPC (its JSON line says)."""
    return str(server.info["grpc"])


def http_infer(client: Any, module: Any, x: np.ndarray, model: str = "edge_lstm", **kwargs: Any) -> np.ndarray:
    name = "row" if model == "edge_lstm_step" else "images"
    inp = module.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(np.ascontiguousarray(x, np.float32))
    return np.asarray(client.infer(model, [inp], **kwargs).as_numpy("logits"))


def send_row(client: Any, model: str, row: np.ndarray, request_id: str, sid: int, start: bool, end: bool) -> None:
    """One row of a sequence on an open gRPC stream (tritonclient's async_stream_infer)."""
    inp = tgrpc.InferInput("row", [1, row.shape[-1]], "FP32")
    inp.set_data_from_numpy(np.ascontiguousarray(row.reshape(1, -1), np.float32))
    client.async_stream_infer(
        model, [inp], request_id=request_id, sequence_id=sid, sequence_start=start, sequence_end=end
    )


def stream_rows(address: str, images: np.ndarray, first_id: int, model: str = "edge_lstm_step") -> list[np.ndarray]:
    """Every row of every image over one gRPC stream, interleaved; (28, 10) logits per image."""
    answers: queue.Queue[Any] = queue.Queue()
    client = tgrpc.InferenceServerClient(address)
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    got: dict[str, list[np.ndarray]] = {}
    try:
        for t in range(images.shape[1]):
            for k in range(len(images)):
                send_row(client, model, images[k, t], f"{k}:{t}", first_id + k, t == 0, t == images.shape[1] - 1)
                result, error = answers.get(timeout=30)  # one answer before the next row: rows stay in order
                assert error is None, error
                got.setdefault(result.get_response().id.split(":")[0], []).append(result.as_numpy("logits")[0])
    finally:
        client.stop_stream()
        client.close()
    return [np.stack(got[str(k)]) for k in range(len(images))]


def stream_reusing_ids(
    address: str,
    images: np.ndarray,
    ids: list[int],
    model: str = "edge_lstm_step",
    token: str | None = None,
    wait_for_end: bool = False,
) -> np.ndarray:
    """Every image as a sequence over one gRPC stream, with only len(ids) sequence ids: in rounds of
    len(ids) sequences, the rows of a round interleaved and pipelined (no waiting for answers), and each
    id taken by the next round's sequence as soon as its sequence ends (END, then START with the same
    id, as a client recycling its ids does). `wait_for_end`: a round starts only when the previous
    round's answers, its ENDs included, are in (what Triton needs; edge-lstm serve does not). Returns
    (N, T, classes) logits."""
    n, steps, slots = len(images), images.shape[1], len(ids)
    answers: queue.Queue[Any] = queue.Queue()
    client = tgrpc.InferenceServerClient(address)
    headers = {"authorization": f"Bearer {token}"} if token else None
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=headers)
    got: dict[tuple[int, int], np.ndarray] = {}

    def collect(count: int) -> None:
        for _ in range(count):
            result, error = answers.get(timeout=60)
            assert error is None, error
            seq, t = map(int, result.get_response().id.split(":"))
            got[(seq, t)] = result.as_numpy("logits")[0]

    try:
        sent = 0
        for first in range(0, n, slots):
            for t in range(steps):
                for slot, seq in enumerate(range(first, min(first + slots, n))):
                    send_row(client, model, images[seq, t], f"{seq}:{t}", ids[slot], t == 0, t == steps - 1)
                    sent += 1
            if wait_for_end:
                collect(sent - len(got))
        collect(sent - len(got))
    finally:
        client.stop_stream()
        client.close()
    return np.stack([np.stack([got[(k, t)] for t in range(steps)]) for k in range(n)])
