"""Triton's statistics extension on `edge-lstm serve`, through tritonclient HTTP and gRPC: the counts
of what was sent (successes, failures, images, runner calls, batch sizes), summed over the workers, the
same on both transports, with Triton's fields (tests/tritonserver compares them with the real Triton's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from serving import Server, post, start_server

from edge_lstm.serve.server import free_port


@pytest.fixture(scope="module")
def counted(exported: dict[str, Path]) -> Iterator[tuple[Server, str]]:
    grpc_port = free_port("127.0.0.1")
    s = start_server(str(exported["fp32"]), str(exported["step"]), "--grpc-port", str(grpc_port), "--workers", "2")
    yield s, f"127.0.0.1:{grpc_port}"
    s.stop()


def infer(triton: object, host: str, batch: int) -> None:
    x = np.zeros((batch, 28, 28), np.float32)
    inp = triton.InferInput("images", list(x.shape), "FP32")  # type: ignore[attr-defined]
    inp.set_data_from_numpy(x)
    triton.InferenceServerClient(host).infer("edge_lstm", [inp])  # type: ignore[attr-defined]


def test_statistics_count_what_was_sent_on_both_transports(counted: tuple[Server, str]) -> None:
    server, grpc_host = counted
    for _ in range(5):
        infer(thttp, server.host, 3)
    for _ in range(2):
        infer(tgrpc, grpc_host, 1)
    status, _, _ = post(server.url, "/v2/models/edge_lstm/infer", b'{"inputs": [{"name": "x"}]}')
    assert status == 400
    http = thttp.InferenceServerClient(server.host).get_inference_statistics("edge_lstm")
    grpc = tgrpc.InferenceServerClient(grpc_host).get_inference_statistics("edge_lstm", as_json=True)
    (mine,) = http["model_stats"]
    assert mine["name"] == "edge_lstm" and mine["version"] == "1"
    s = mine["inference_stats"]
    assert s["success"]["count"] == 7 and s["fail"]["count"] == 1 and s["success"]["ns"] > 0
    assert mine["inference_count"] == 17 and 1 <= mine["execution_count"] <= 7
    assert sum(b["compute_infer"]["count"] for b in mine["batch_stats"]) == mine["execution_count"]
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in mine["batch_stats"]) == 17
    assert s["compute_infer"]["ns"] > 0 and s["queue"]["count"] == 7 and mine["last_inference"] > 0
    # gRPC's answer (protobuf as JSON: 64-bit numbers as strings) carries the same numbers
    (theirs,) = grpc["model_stats"]
    assert int(theirs["inference_count"]) == 17 and int(theirs["inference_stats"]["success"]["count"]) == 7
    everything = thttp.InferenceServerClient(server.host).get_inference_statistics()
    assert [m["name"] for m in everything["model_stats"]] == ["edge_lstm", "edge_lstm_step"]


def test_statistics_of_an_unknown_model_are_a_404(counted: tuple[Server, str]) -> None:
    server, _ = counted
    with pytest.raises(thttp.InferenceServerException, match="unknown model 'nope'"):
        thttp.InferenceServerClient(server.host).get_inference_statistics("nope")


def test_the_repository_index_lists_every_model_on_both_transports(counted: tuple[Server, str]) -> None:
    server, grpc_host = counted
    http = thttp.InferenceServerClient(server.host).get_model_repository_index()
    assert http == [
        {"name": "edge_lstm", "version": "1", "state": "READY"},
        {"name": "edge_lstm_step", "version": "1", "state": "READY"},
    ]
    grpc = tgrpc.InferenceServerClient(grpc_host).get_model_repository_index(as_json=True)
    assert [(m["name"], m["state"]) for m in grpc["models"]] == [("edge_lstm", "READY"), ("edge_lstm_step", "READY")]
    status, _, raw = post(server.url, "/v2/repository/index", b"[1, 2]")
    assert status == 400 and b"the repository index request is JSON" in raw
