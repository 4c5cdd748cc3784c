"""Model versions on `edge-lstm serve`: a model repository in Triton's layout, Triton's model-control API
(load, unload, the index) through tritonclient HTTP and gRPC, a bad new version refused while the old
one serves, and a rollout under steady load with `--poll` and two workers: no request fails, every
live stream ends on the version it started on, and new streams start on the new one.

Version 1 is the session's LSTM (classifier and step model), version 2 a two-layer GRU's: their
answers differ, so which version answered is read from the logits, not only from model_version."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from serving import Server, post, start_server
from test_workers import row_body

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.serve.server import free_port


def put(repo: Path, name: str, version: int, model: Path | bytes) -> None:
    """NAME/VERSION/model.onnx, written beside and renamed into place (as a deployment tool does)."""
    tmp = repo / f".{name}-{version}.tmp"
    tmp.mkdir(parents=True)
    data = model if isinstance(model, bytes) else model.read_bytes()
    (tmp / "model.onnx").write_bytes(data)
    (repo / name).mkdir(exist_ok=True)
    tmp.rename(repo / name / str(version))


def image_body(x: np.ndarray) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "images", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    ).encode()


def infer(server: Server, x: np.ndarray, path: str = "/v2/models/edge_lstm/infer") -> tuple[int, dict]:
    status, _, raw = post(server.url, path, image_body(x))
    return status, json.loads(raw)


@pytest.fixture
def repo(tmp_path: Path, exported: dict[str, Path]) -> Path:
    root = tmp_path / "repository"
    root.mkdir()
    put(root, "edge_lstm", 1, exported["fp32"])
    put(root, "edge_lstm_step", 1, exported["step"])
    return root


def test_the_control_api_loads_unloads_and_refuses_a_bad_version(
    repo: Path, exported: dict, gru2: dict, test_split: MnistSplit
) -> None:
    grpc_port = free_port("127.0.0.1")
    server = start_server(str(repo), "--grpc-port", str(grpc_port), "--workers", "1")
    x = test_split.images[:4].astype(np.float32) / 255
    v1, v2 = Classifier(exported["fp32"]).logits(x), Classifier(gru2["fp32"]).logits(x)
    try:
        http = thttp.InferenceServerClient(server.host)
        grpc = tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        assert http.get_model_repository_index() == [
            {"name": "edge_lstm", "version": "1", "state": "READY"},
            {"name": "edge_lstm_step", "version": "1", "state": "READY"},
        ]
        status, body = infer(server, x)
        assert status == 200 and body["model_version"] == "1"
        np.testing.assert_allclose(np.reshape(body["outputs"][0]["data"], (4, 10)), v1, atol=1e-4)

        put(repo, "edge_lstm", 2, gru2["fp32"])  # a new version: served once loaded (the latest, by default)
        http.load_model("edge_lstm")
        status, body = infer(server, x)
        assert status == 200 and body["model_version"] == "2"
        np.testing.assert_allclose(np.reshape(body["outputs"][0]["data"], (4, 10)), v2, atol=1e-4)
        assert infer(server, x, "/v2/models/edge_lstm/versions/1/infer")[0] == 404
        assert http.get_model_metadata("edge_lstm")["versions"] == ["2"]

        put(repo, "edge_lstm", 3, b"not an onnx file")  # a bad version: refused, version 2 serves on
        with pytest.raises(thttp.InferenceServerException, match=r"failed to load 'edge_lstm' version 3.*still served"):
            http.load_model("edge_lstm")
        with pytest.raises(tgrpc.InferenceServerException, match="failed to load 'edge_lstm' version 3"):
            grpc.load_model("edge_lstm")
        status, body = infer(server, x)
        assert status == 200 and body["model_version"] == "2"
        failed = http.get_model_repository_index()[1]
        assert failed["version"] == "3" and failed["state"] == "UNAVAILABLE" and "model.onnx" in failed["reason"]

        grpc.unload_model("edge_lstm")
        assert not http.is_model_ready("edge_lstm")
        status, body = infer(server, x)
        assert status == 404 and "is not loaded (unloaded)" in body["error"]
        index = grpc.get_model_repository_index(as_json=True)["models"]
        assert {"name": "edge_lstm", "version": "2", "state": "UNAVAILABLE", "reason": "unloaded"} in index
        shutil.rmtree(repo / "edge_lstm" / "3")
        grpc.load_model("edge_lstm")
        assert infer(server, x)[1]["model_version"] == "2"
        with pytest.raises(thttp.InferenceServerException, match="no such model"):
            http.load_model("nope")
        status, _, raw = post(server.url, "/v2/repository/models/edge_lstm/load", b'{"parameters": {"config": "{}"}}')
        assert status == 400 and b"come from its repository" in raw
    finally:
        assert server.stop()[0] == 0


def test_a_version_policy_serves_several_and_a_bad_policy_is_one_line(repo: Path, gru2: dict) -> None:
    put(repo, "edge_lstm", 2, gru2["fp32"])
    server = start_server(str(repo), "--versions", "all", "--workers", "1")
    try:
        index = thttp.InferenceServerClient(server.host).get_model_repository_index()
        assert [(m["name"], m["version"]) for m in index] == [
            ("edge_lstm", "1"),
            ("edge_lstm", "2"),
            ("edge_lstm_step", "1"),
        ]
        x = np.zeros((1, 28, 28), np.float32)
        for version, times in (("1", 2), ("2", 3)):
            for _ in range(times):
                assert infer(server, x, f"/v2/models/edge_lstm/versions/{version}/infer")[0] == 200
        assert infer(server, x)[1]["model_version"] == "2"  # no version: the newest
        stats = thttp.InferenceServerClient(server.host).get_inference_statistics("edge_lstm")["model_stats"]
        counts = {m["version"]: m["inference_stats"]["success"]["count"] for m in stats}
        assert counts == {"1": 2, "2": 4}, stats  # per version, as Triton counts them
        one = thttp.InferenceServerClient(server.host).get_inference_statistics("edge_lstm", "1")["model_stats"]
        assert [(m["version"], m["execution_count"]) for m in one] == [("1", 2)]
    finally:
        server.stop()
    from typer.testing import CliRunner

    from edge_lstm.cli import app

    result = CliRunner().invoke(app, ["serve", str(repo), "--versions", "newest"])
    assert result.exit_code != 0 and "--versions 'newest': use latest" in result.output
    assert "Traceback" not in result.output


def test_a_rollout_under_load_drops_nothing_and_streams_keep_their_version(
    repo: Path, exported: dict, gru2: dict, test_split: MnistSplit
) -> None:
    server = start_server(str(repo), "--poll", "0.2", "--workers", "2")
    images = test_split.images[:8].astype(np.float32) / 255
    old = StreamingClassifier(exported["step"], batch=8)
    new = StreamingClassifier(gru2["step"], batch=8)
    expect_old = np.stack([old.push(images[:, t]) for t in range(28)], axis=1)
    expect_new = np.stack([new.push(images[:, t]) for t in range(28)], axis=1)
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def load() -> None:  # a steady stream of requests, one connection each (both workers), the whole time
        x = images[:1]
        while not stop.is_set():
            status, body = infer(server, x)
            statuses.append(status)
            versions.append(body.get("model_version", "?"))
            time.sleep(0.005)

    def rows(sid: int, k: int, steps: range, out: np.ndarray) -> None:
        for t in steps:
            status, _, raw = post(
                server.url, "/v2/models/edge_lstm_step/infer", row_body(images[k, t : t + 1], sid, t == 0, t == 27)
            )
            assert status == 200, raw
            out[k, t] = json.loads(raw)["outputs"][0]["data"]

    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        got = np.zeros_like(expect_old)
        for k in range(8):  # 8 live streams on version 1, half way through
            rows(7000 + k, k, range(14), got)
        put(repo, "edge_lstm", 2, gru2["fp32"])
        put(repo, "edge_lstm_step", 2, gru2["step"])
        deadline = time.monotonic() + 30
        while versions[-20:].count("2") < 20 and time.monotonic() < deadline:  # both workers switched
            time.sleep(0.1)
        assert versions[-20:] == ["2"] * 20, versions[-40:]
        for k in range(8):  # ... and they end on it
            rows(7000 + k, k, range(14, 28), got)
        np.testing.assert_allclose(got, expect_old, atol=1e-4)
        fresh = np.zeros_like(expect_new)
        for k in range(8):  # new streams start on version 2
            rows(7100 + k, k, range(28), fresh)
        np.testing.assert_allclose(fresh, expect_new, atol=1e-4)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        code, _, err = server.stop()
    assert statuses and set(statuses) == {200}, [s for s in statuses if s != 200][:5]
    assert "1" in versions and "2" in versions
    assert code == 0 and "loaded edge_lstm_step version(s) 2" in err


def test_poll_refuses_a_bad_new_file_once_and_the_control_api(repo: Path, exported: dict) -> None:
    server = start_server(str(repo), "--poll", "0.1", "--workers", "1")
    try:
        put(repo, "edge_lstm", 2, b"garbage")
        time.sleep(1.5)  # many polls: said once
        status, body = infer(server, np.zeros((1, 28, 28), np.float32))
        assert status == 200 and body["model_version"] == "1"
        with pytest.raises(thttp.InferenceServerException, match="not allowed if polling is enabled"):
            thttp.InferenceServerClient(server.host).unload_model("edge_lstm")
    finally:
        code, _, err = server.stop()
    assert code == 0 and err.count("failed to load 'edge_lstm' version 2") == 1, err


def test_every_worker_follows_the_control_api_and_a_restarted_one_too(repo: Path, gru2: dict) -> None:
    server = start_server(str(repo), "--workers", "2")
    x = np.zeros((1, 28, 28), np.float32)

    def ask(n: int = 30) -> tuple[set[int], set[str], set[str]]:
        """n requests, a connection each (the kernel spreads them over the workers): statuses, versions, pids."""
        statuses, versions, pids = set(), set(), set()
        for _ in range(n):
            status, headers, raw = post(server.url, "/v2/models/edge_lstm/infer", image_body(x))
            statuses.add(status)
            versions.add(json.loads(raw).get("model_version", ""))
            pids.add(headers["x-edge-lstm-replica"].split(":")[1])
        return statuses, versions, pids

    try:
        http = thttp.InferenceServerClient(server.host)
        put(repo, "edge_lstm", 2, gru2["fp32"])
        http.load_model("edge_lstm")  # one worker is asked; it tells the other
        statuses, versions, pids = ask()
        assert statuses == {200} and versions == {"2"} and len(pids) == 2
        http.unload_model("edge_lstm")
        assert ask()[0] == {404}
        os.kill(int(server.info["workers"][0]), signal.SIGKILL)  # its replacement serves what was asked
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses, _, pids = ask(10)
            if pids - {str(p) for p in server.info["workers"]}:  # the new worker answered
                break
            time.sleep(0.5)
        assert pids - {str(p) for p in server.info["workers"]} and statuses == {404}
    finally:
        server.stop()


def test_a_replaced_versions_batcher_refuses_instead_of_leaving_a_request_waiting() -> None:
    """A request that found a version just before it was replaced gets a 503 to send again, not a hang."""
    import asyncio

    from edge_lstm.serve.batcher import DynamicBatcher, Overloaded

    async def main() -> None:
        batcher = DynamicBatcher(lambda x: np.zeros((len(x), 10), np.float32), 64, 0.0, 4096)
        batcher.start()
        assert (await batcher.submit(np.zeros((2, 28, 28), np.float32))).shape == (2, 10)
        await batcher.stop()
        with pytest.raises(Overloaded, match="just replaced; send the request again"):
            await asyncio.wait_for(batcher.submit(np.zeros((1, 28, 28), np.float32)), 5)

    asyncio.run(main())
