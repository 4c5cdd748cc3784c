"""What a served model is called and what its answers say: names from the files (`--name` to choose),
class names in the metadata and, where a client asks (Triton's classification extension), in the
answers over HTTP and gRPC; every refusal said in the server's log, once per burst."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from serving import Server, post, start_server

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier
from edge_lstm.serve.config import default_names
from edge_lstm.serve.server import free_port


def test_names_come_from_the_files() -> None:
    c, s = "classifier", "streaming-step"
    paths = [Path("a/motions.onnx"), Path("a/motions.int8.onnx"), Path("b/motions-step.onnx")]
    assert default_names(paths, [c, c, s]) == ["motions", "motions.int8", "motions-step"]
    assert default_names([Path("export/model.onnx"), Path("export/step.onnx")], [c, s]) == [
        "edge_lstm",
        "edge_lstm_step",
    ]
    assert default_names([Path("x/model.int8.onnx")], [c]) == ["edge_lstm"]
    assert default_names([Path("m.onnx"), Path("m-step.onnx"), Path("n.onnx")], [c, s, c], "gesture") == [
        "gesture",
        "gesture_step",
        "n",
    ]
    assert default_names([Path("my model!.onnx")], [c]) == ["my_model_"]


@pytest.fixture(scope="module")
def named(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    folder = tmp_path_factory.mktemp("named")
    for key, name in (("fp32", "digits.onnx"), ("int8", "digits.int8.onnx"), ("step", "digits-step.onnx")):
        shutil.copy(exported[key], folder / name)
    grpc_port = free_port("127.0.0.1")
    files = [str(folder / n) for n in ("digits.onnx", "digits.int8.onnx", "digits-step.onnx")]
    s = start_server(*files, "--grpc-port", str(grpc_port), "--workers", "1")
    yield s, grpc_port
    s.stop()


def test_each_file_is_served_under_its_name_with_its_classes(named: tuple[Server, int]) -> None:
    server, _ = named
    assert set(server.info["models"]) == {"digits", "digits.int8", "digits-step"}
    client = thttp.InferenceServerClient(server.host)
    assert client.is_model_ready("digits") and not client.is_model_ready("edge_lstm")
    assert client.get_model_metadata("digits")["parameters"]["classes"] == [str(d) for d in range(10)]


def test_classification_answers_name_the_best_classes(
    named: tuple[Server, int], exported: dict[str, Path], test_split: MnistSplit
) -> None:
    server, grpc_port = named
    x = test_split.images[:5].astype(np.float32) / 255
    logits = Classifier(exported["fp32"]).logits(x)
    best = np.argsort(-logits, axis=1)[:, :3]
    for triton, host in ((thttp, server.host), (tgrpc, f"127.0.0.1:{grpc_port}")):
        inp = triton.InferInput("images", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        out = triton.InferRequestedOutput("logits", class_count=3)
        got = triton.InferenceServerClient(host).infer("digits", [inp], outputs=[out]).as_numpy("logits")
        assert got.shape == (5, 3)
        for row, want, values in zip(got, best, logits, strict=True):
            parts = [b.decode().split(":") for b in row]
            assert [int(p[1]) for p in parts] == list(want)  # best first
            assert [p[2] for p in parts] == [str(c) for c in want]  # the class names
            np.testing.assert_allclose([float(p[0]) for p in parts], values[want], atol=1e-4)


def test_refusals_are_said_in_the_log_once_per_burst(exported: dict[str, Path]) -> None:
    server = start_server(str(exported["fp32"]), "--workers", "1")
    try:
        for _ in range(5):
            status, _, body = post(server.url, "/v2/models/edge_lstm/infer", b'{"inputs": []}')
            assert status == 400 and b"non-empty 'inputs'" in body
        bad_k = b'{"inputs":[{"name":"images","shape":[1,28,28],"datatype":"FP32","data":[' + b"0," * 783 + b"0]}],"
        status, _, body = post(
            server.url,
            "/v2/models/edge_lstm/infer",
            bad_k + b'"outputs":[{"name":"logits","parameters":{"classification":11}}]}',
        )
        assert status == 400 and b"more than the model's 10 classes" in body
    finally:
        _, _, log = server.stop()
    lines = [ln for ln in log.splitlines() if "refused POST edge_lstm infer: 400" in ln]
    assert len(lines) == 2, log  # five of one kind said once, then the other kind
    assert "non-empty 'inputs'" in lines[0] and "more than the model's 10 classes" in lines[1]
