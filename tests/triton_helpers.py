"""Triton client helpers for the Triton tests (imported by name, like serving.py)."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import tritonclient.grpc as tgrpc


def grpc_address(server: Any) -> str:
    """Where `serve --triton` serves gRPC (its JSON line says)."""
    return str(server.info["grpc"])


def http_infer(client: Any, module: Any, x: np.ndarray, model: str = "edge_lstm", **kwargs: Any) -> np.ndarray:
    name = "row" if model == "edge_lstm_step" else "images"
    inp = module.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(np.ascontiguousarray(x, np.float32))
    return np.asarray(client.infer(model, [inp], **kwargs).as_numpy("logits"))


def stream_rows(address: str, images: np.ndarray, first_id: int, model: str = "edge_lstm_step") -> list[np.ndarray]:
    """Every row of every image over one gRPC stream, interleaved; (28, 10) logits per image."""
    answers: queue.Queue[Any] = queue.Queue()
    client = tgrpc.InferenceServerClient(address)
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    got: dict[str, list[np.ndarray]] = {}
    try:
        for t in range(images.shape[1]):
            for k in range(len(images)):
                inp = tgrpc.InferInput("row", [1, images.shape[2]], "FP32")
                inp.set_data_from_numpy(np.ascontiguousarray(images[k, t][None], np.float32))
                client.async_stream_infer(
                    model,
                    [inp],
                    request_id=f"{k}:{t}",
                    sequence_id=first_id + k,
                    sequence_start=t == 0,
                    sequence_end=t == images.shape[1] - 1,
                )
                result, error = answers.get(timeout=30)  # one answer before the next row: rows stay in order
                assert error is None, error
                got.setdefault(result.get_response().id.split(":")[0], []).append(result.as_numpy("logits")[0])
    finally:
        client.stop_stream()
        client.close()
    return [np.stack(got[str(k)]) for k in range(len(images))]
