"""`edge-lstm serve --triton` and `export --triton --triton-backend python`: the real Triton Inference
Server (its C++ front ends and batchers, its Python backend running the files with onnxruntime)
answers as edge-lstm's own runner does, through Triton's own clients, streams included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from helpers import descendants, running
from serving import Server, get, start_server
from triton_helpers import grpc_address, have_triton, http_infer, stream_reusing_ids, stream_rows

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier, StreamingClassifier


def test_http_and_grpc_answer_as_the_runner_does(
    triton: Server, exported: dict[str, Path], test_split: MnistSplit
) -> None:
    runner = Classifier(exported["fp32"])
    images = test_split.images[:300].astype(np.float32) / 255
    http = thttp.InferenceServerClient(triton.host)
    grpc = tgrpc.InferenceServerClient(grpc_address(triton))
    for batch in (images[:1], images[:3], images[:300]):
        expected = runner.logits(batch)
        np.testing.assert_allclose(http_infer(http, thttp, batch), expected, atol=1e-5)
        np.testing.assert_allclose(http_infer(grpc, tgrpc, batch), expected, atol=1e-5)
    # 64 one-image requests at once: Triton's dynamic batcher hands them to model.py together
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda i: http_infer(thttp.InferenceServerClient(triton.host), thttp, images[i : i + 1]), range(64)
            )
        )
    np.testing.assert_allclose(np.concatenate(answers), runner.logits(images[:64]), atol=1e-5)
    http.close()
    grpc.close()


def test_interleaved_streams_equal_the_streaming_classifier(
    triton: Server, exported: dict[str, Path], test_split: MnistSplit
) -> None:
    images = test_split.images[:6].astype(np.float32) / 255
    expected = StreamingClassifier(exported["step"], len(images))
    want = [expected.push(images[:, t]) for t in range(28)]  # (28, 6, 10): after each row
    http = thttp.InferenceServerClient(triton.host)
    for t in range(28):  # row t of every sequence before row t + 1 of any
        for k in range(3):
            out = http_infer(
                http,
                thttp,
                images[k, t][None],
                "edge_lstm_step",
                sequence_id=1000 + k,
                sequence_start=t == 0,
                sequence_end=t == 27,
            )
            np.testing.assert_allclose(out[0], want[t][k], atol=1e-5)
    http.close()
    # the other three over gRPC's bidirectional stream (ModelStreamInfer), as tritonclient streams
    got = stream_rows(grpc_address(triton), images[3:], first_id=2000)
    for k in range(3):
        np.testing.assert_allclose(got[k], np.stack([w[3 + k] for w in want]), atol=1e-5)


def test_ids_reused_at_once_keep_every_sequence_apart(
    triton: Server, exported: dict[str, Path], test_split: MnistSplit
) -> None:
    """16 sequences on 4 ids, each id taken again as soon as its sequence's END is answered (Triton does
    not order two sequences that share an id), the rows pipelined on one stream: every row equals the
    runner's."""
    images = test_split.images[:16].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=16)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)
    got = stream_reusing_ids(grpc_address(triton), images, [7, 8, 9, 10], wait_for_end=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_statistics_have_tritons_fields(triton: Server, exported: dict[str, Path]) -> None:
    """Triton's own statistics answer and edge-lstm serve's, for the same file: the same fields."""
    from serving import start_server as start_ours

    thttp.InferenceServerClient(triton.host).infer("edge_lstm", [images_input()])
    theirs = thttp.InferenceServerClient(triton.host).get_inference_statistics("edge_lstm")["model_stats"][0]
    ours_server = start_ours(str(exported["fp32"]), "--workers", "1")
    try:
        thttp.InferenceServerClient(ours_server.host).infer("edge_lstm", [images_input()])
        ours = thttp.InferenceServerClient(ours_server.host).get_inference_statistics("edge_lstm")["model_stats"][0]
    finally:
        ours_server.stop()
    assert set(ours) == set(theirs) and set(ours["inference_stats"]) == set(theirs["inference_stats"])
    assert set(ours["batch_stats"][0]) == set(theirs["batch_stats"][0])
    assert ours["inference_count"] == 1 and theirs["inference_count"] >= 1  # the fixture's Triton served others


def test_the_repository_index_has_tritons_fields(triton: Server, exported: dict[str, Path]) -> None:
    from serving import start_server as start_ours

    theirs = {m["name"]: m for m in thttp.InferenceServerClient(triton.host).get_model_repository_index()}
    ours_server = start_ours(str(exported["fp32"]), "--workers", "1")
    try:
        (ours,) = thttp.InferenceServerClient(ours_server.host).get_model_repository_index()
    finally:
        ours_server.stop()
    assert set(theirs["edge_lstm"]) <= set(ours) and theirs["edge_lstm"]["state"] == ours["state"] == "READY"


def images_input() -> thttp.InferInput:
    inp = thttp.InferInput("images", [1, 28, 28], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 28, 28), np.float32))
    return inp


def test_a_two_layer_gru_streams_as_the_runner(triton: Server, gru2: dict[str, Path], test_split: MnistSplit) -> None:
    images = test_split.images[:2].astype(np.float32) / 255
    local = StreamingClassifier(gru2["step"], len(images))
    want = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)
    got = stream_rows(grpc_address(triton), images, first_id=3000, model="gru_step")
    for k in range(2):
        np.testing.assert_allclose(got[k], want[k], atol=1e-5)


def test_bad_requests_get_tritons_4xx_with_a_reason(triton: Server) -> None:
    http = thttp.InferenceServerClient(triton.host)
    with pytest.raises(Exception, match="shape"):
        http_infer(http, thttp, np.zeros((1, 27, 28), np.float32))
    row = np.zeros((1, 28), np.float32)
    with pytest.raises(Exception, match="START"):
        http_infer(http, thttp, row, "edge_lstm_step", sequence_id=77)
    with pytest.raises(Exception, match="NaN"):
        http_infer(http, thttp, row + np.nan, "edge_lstm_step", sequence_id=78, sequence_start=True)
    for t in range(28):
        http_infer(http, thttp, row, "edge_lstm_step", sequence_id=79, sequence_start=t == 0)
    with pytest.raises(Exception, match="would pass 28 rows"):
        http_infer(http, thttp, row, "edge_lstm_step", sequence_id=79)
    http.close()


def test_bench_drives_triton(triton: Server) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_lstm",
            "bench",
            f"{triton.url}/v2/models/edge_lstm",
            "--scenario",
            "server",
            "--rate",
            "200",
            "--min-time",
            "1",
            "--min-count",
            "100",
            "--rounds",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout.strip().splitlines()[-1])["server"][0]["run"]
    assert run["via"] == "http" and run["n"] >= 100 and run["failed"] == 0 and run["p99_ms"] is not None


def test_a_token_guards_every_api_but_health(exported: dict[str, Path], triton: Server) -> None:
    token = "t0ken-of-sixteen-chars"
    server = start_server(str(exported["fp32"]), "--triton", "--token", token)
    try:
        assert urllib.request.urlopen(f"{server.url}/v2/health/ready").status == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server.url}/v2/models/edge_lstm")
        assert 400 <= e.value.code < 500
        http = thttp.InferenceServerClient(server.host)
        x = np.zeros((1, 28, 28), np.float32)
        assert http_infer(http, thttp, x, headers={"authorization": f"Bearer {token}"}).shape == (1, 10)
        http.close()
    finally:
        code, out, _ = server.stop(signal.SIGTERM, timeout=60)
    assert code == 0 and "stopped" in out


def test_sigterm_stops_triton_and_removes_its_folder(exported: dict[str, Path], triton: Server) -> None:
    before = set(Path(tempfile.gettempdir()).glob("edge-lstm-triton-*"))
    server = start_server(str(exported["fp32"]), "--triton")
    assert len(set(Path(tempfile.gettempdir()).glob("edge-lstm-triton-*")) - before) == 1  # its repository
    # Triton's own 404 for the picture route cannot say why; the start-up output does
    assert get(server.url, "/predict")[0] >= 400
    assert any("pictures (/predict) and the page are edge-lstm serve's" in ln for ln in server.info["printed"])
    code, out, err = server.stop(signal.SIGTERM, timeout=60)
    assert code == 0, err
    assert "Triton answered every request in flight" in out
    assert set(Path(tempfile.gettempdir()).glob("edge-lstm-triton-*")) == before


def test_no_tritonserver_is_one_line_naming_the_install(
    exported: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import shutil

    from typer.testing import CliRunner

    from edge_lstm.cli import app

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    result = CliRunner().invoke(app, ["serve", str(exported["fp32"]), "--triton", "--port", "0"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no tritonserver found: install Triton's server with: pip install --no-deps nvidia-pytriton" in result.output


def test_triton_options_that_cannot_hold_are_refused(exported: dict[str, Path]) -> None:
    from typer.testing import CliRunner

    from edge_lstm.cli import app

    for extra, message in ((["--ray", "local"], "choose one"), (["--provider", "cuda"], "drop --provider")):
        result = CliRunner().invoke(app, ["serve", str(exported["fp32"]), "--triton", *extra])
        assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
def test_no_process_outlives_serve_triton(exported: dict[str, Path], how: str) -> None:
    """Ctrl-C (SIGINT to the terminal's process group; SIGTERM takes the same path) or SIGKILL of `serve
    --triton`: tritonserver and its stubs are gone after each (a SIGKILLed CLI cannot stop them: the
    kernel tells Triton)."""
    if not have_triton():
        pytest.skip("no tritonserver")
    cmd = [sys.executable, "-m", "edge_lstm", "serve", str(exported["fp32"]), "--triton", "--port", "0", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    while not (line := proc.stdout.readline()).startswith("{"):
        assert line, proc.communicate()[1]
    below = descendants(proc.pid)
    assert len(below) >= 2, below  # tritonserver and at least one stub
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while any(running(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in below if running(p)], how
