"""`serve --workers 2` as a real process: the kernel spreads connections over both workers; streams
whose rows reach either worker (a new connection per row) equal the in-process StreamingClassifier;
WebSocket streams too; /metrics adds up both workers; --max-sequences holds for the server; a
killed worker is replaced and its streams are told to start again; SIGTERM with streams open drains
both and exits 0."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serving import Server, answer, frame, get, post, start_server
from websockets.sync.client import connect

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import StreamingClassifier

ROW_IMAGE = json.dumps(
    {"inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}]}
).encode()


def row_body(rows: np.ndarray, sid: int, start: bool, end: bool) -> bytes:
    return json.dumps(
        {
            "inputs": [{"name": "row", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}],
            "parameters": {"sequence_id": sid, "sequence_start": start, "sequence_end": end},
        }
    ).encode()


def infer_row(server: Server, rows: np.ndarray, sid: int, start: bool, end: bool) -> tuple[int, str, dict]:
    """One row on a connection of its own (so rows land on either worker): (status, worker, body)."""
    status, headers, data = post(server.url, "/v2/models/edge_lstm_step/infer", row_body(rows, sid, start, end))
    return status, headers["x-edge-lstm-replica"], json.loads(data)


@pytest.fixture(scope="module")
def two(exported: dict[str, Path]) -> Iterator[Server]:
    s = start_server(str(exported["fp32"]), str(exported["step"]), "--workers", "2", "--max-sequences", "40")
    yield s
    s.stop()


def test_connections_reach_both_workers_and_streams_stay_exact(
    two: Server, exported: dict, test_split: MnistSplit
) -> None:
    assert len(two.info["workers"]) == 2
    images = test_split.images[:12].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=12)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)  # (12, 28, 10)
    got = np.zeros_like(expected)
    seen: set[str] = set()

    def stream(k: int) -> None:
        for t in range(28):
            status, worker, body = infer_row(two, images[k, t : t + 1], 5000 + k, t == 0, t == 27)
            assert status == 200, body
            seen.add(worker)
            got[k, t] = np.asarray(body["outputs"][0]["data"], np.float32)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(stream, range(12)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert {w.split(":")[1] for w in seen} == {str(p) for p in two.info["workers"]}, seen


def test_websocket_streams_on_both_workers_equal_the_streaming_classifier(
    two: Server, exported: dict, test_split: MnistSplit
) -> None:
    images = test_split.images[:16].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=16)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)
    url = two.url.replace("http://", "ws://") + "/v2/models/edge_lstm_step/stream"
    got = np.zeros_like(expected)

    def socket(half: int) -> None:  # two sockets, eight streams each, rows interleaved
        with connect(url) as ws:
            for t in range(28):
                for k in range(half * 8, half * 8 + 8):
                    ws.send(frame(6000 + k, images[k, t], start=t == 0, end=t == 27))
            for _ in range(28 * 8):
                reply = answer(ws.recv(timeout=30))
                assert isinstance(reply, tuple), reply
                sid, logits = reply
                k = sid - 6000
                got[k, seen[k]] = logits[0]  # a sequence's answers come in its rows' order
                seen[k] += 1

    seen = [0] * 16
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(socket, range(2)))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_metrics_add_up_every_worker(two: Server) -> None:
    def infers() -> float:
        _, text = get(two.url, "/metrics")
        return sum(
            float(line.split()[-1])
            for line in text.decode().splitlines()
            if line.startswith("edge_lstm_requests_total{") and 'route="infer"' in line and 'model="edge_lstm"' in line
        )

    before = infers()
    workers = set()
    for _ in range(40):
        status, headers, _ = post(two.url, "/v2/models/edge_lstm/infer", ROW_IMAGE)
        assert status == 200
        workers.add(headers["x-edge-lstm-replica"])
    assert len(workers) == 2  # both answered some
    assert infers() - before == 40  # whichever worker answers /metrics counts both


def test_max_sequences_holds_for_the_whole_server(exported: dict) -> None:
    s = start_server(str(exported["step"]), "--workers", "2", "--max-sequences", "6")
    try:
        row = np.zeros((1, 28), np.float32)
        statuses = [infer_row(s, row, 100 + k, True, False)[0] for k in range(9)]
        assert statuses == [200] * 6 + [503] * 3, statuses
        assert infer_row(s, row, 100, False, True)[0] == 200  # one ends: room for another
        assert infer_row(s, row, 200, True, False)[0] == 200
    finally:
        s.stop()


def test_a_killed_worker_is_replaced_and_its_streams_start_again(exported: dict) -> None:
    s = start_server(str(exported["fp32"]), str(exported["step"]), "--workers", "2")
    try:
        row = np.zeros((1, 28), np.float32)
        for sid in (1, 2):  # ids 1 and 2 belong to different workers (sid % 2)
            assert infer_row(s, row, sid, True, False)[0] == 200
        first = {str(p) for p in s.info["workers"]}
        os.kill(s.info["workers"][1], signal.SIGKILL)
        deadline, new = time.time() + 60, set()
        while time.time() < deadline and not new:  # a new worker answers within seconds
            status, headers, _ = post(s.url, "/v2/models/edge_lstm/infer", ROW_IMAGE)
            assert status == 200  # the surviving worker answers meanwhile
            new = {headers["x-edge-lstm-replica"].split(":")[1]} - first
            time.sleep(0.05)
        assert new, "no new worker answered within 60 s"
        status, _, body = infer_row(s, row, 1, False, False)  # owned by the dead worker: lost, said so
        assert status == 400 and "start" in body["error"], body
        assert infer_row(s, row, 2, False, True)[0] == 200  # the other worker's stream goes on
        assert infer_row(s, row, 1, True, True)[0] == 200  # and the lost one starts again
    finally:
        code, _, err = s.stop()
    assert code == 0 and "Traceback" not in err, err


def test_sigterm_with_streams_open_drains_every_worker(exported: dict) -> None:
    s = start_server(str(exported["step"]), "--workers", "2")
    url = s.url.replace("http://", "ws://") + "/v2/models/edge_lstm_step/stream"
    row = np.zeros(28, np.float32)
    with connect(url) as ws:
        for k in range(6):
            ws.send(frame(900 + k, row, start=True))
        for _ in range(6):
            assert isinstance(answer(ws.recv(timeout=30)), tuple)
        code, out, err = s.stop(signal.SIGTERM, timeout=60)
    assert code == 0 and "every request in flight was answered" in out and "Traceback" not in err, err
    for pid in s.info["workers"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_sigterm_with_rows_in_flight_answers_every_one(exported: dict) -> None:
    """Streams posting rows on both workers (half of them forwarded to their owner) when SIGTERM comes:
    every request that got an answer got 200, none a refusal from a peer that stopped first."""
    import threading

    s = start_server(str(exported["step"]), "--workers", "2")
    row = np.zeros((1, 28), np.float32)
    statuses: list[int] = []
    stop = threading.Event()

    def stream(k: int) -> None:
        t = 0
        while not stop.is_set():
            try:
                status, _, body = infer_row(s, row, 3000 + k, t == 0, t == 27)
            except (OSError, KeyError):  # refused or reset once the server stopped accepting
                return
            statuses.append(status)
            assert status == 200, body
            t = (t + 1) % 28

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(stream, k) for k in range(8)]
        time.sleep(1.5)
        code, _, err = s.stop(signal.SIGTERM, timeout=60)
        stop.set()
        for f in futures:
            f.result()
    assert len(statuses) > 50 and set(statuses) == {200}
    assert code == 0 and "Traceback" not in err, err


def test_a_terminals_ctrl_c_and_a_killed_supervisor_leave_no_worker(exported: dict) -> None:
    import subprocess
    import sys

    def started() -> tuple[subprocess.Popen[str], list[int]]:
        cmd = [
            sys.executable,
            "-m",
            "edge_lstm",
            "serve",
            str(exported["fp32"]),
            "--workers",
            "2",
            "--port",
            "0",
            "--json",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert proc.stdout is not None
        while not (line := proc.stdout.readline()).startswith("{"):
            assert line, proc.communicate()[1]
        return proc, json.loads(line)["workers"]

    def running(pid: int) -> bool:  # a zombie (exited, not yet reaped by whoever adopted it) is not
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def gone(pids: list[int]) -> bool:
        deadline = time.time() + 10
        while time.time() < deadline and any(running(p) for p in pids):
            time.sleep(0.1)
        return not any(running(p) for p in pids)

    proc, pids = started()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert gone(pids)
    proc, pids = started()
    proc.kill()  # the supervisor, outright: its workers notice within a second or two
    proc.wait()
    assert gone(pids)


def test_wrk_load_on_two_workers_is_all_answered(two: Server, tmp_path: Path) -> None:
    """wrk (C, 16 connections, 2 s) on `--workers 2`: every answer a 200, every one counted in /metrics."""
    import re
    import shutil
    import subprocess

    from edge_lstm.bench.oip import binary_request

    if shutil.which("wrk") is None:
        if os.environ.get("EDGE_LSTM_REQUIRE_WRK"):
            pytest.fail("wrk is required here (apt-get install wrk)")
        pytest.skip("no wrk (apt-get install wrk)")

    def answered() -> float:
        _, text = get(two.url, "/metrics")
        return sum(
            float(line.split()[-1])
            for line in text.decode().splitlines()
            if line.startswith("edge_lstm_requests_total{")
            and 'code="200"' in line
            and 'route="infer"' in line
            and 'model="edge_lstm"' in line
        )

    body, headers = binary_request(np.full((1, 28, 28), 0.5, np.float32))
    (tmp_path / "body").write_bytes(body)
    lua = [
        'wrk.method = "POST"',
        f'local f = io.open("{tmp_path / "body"}", "rb")',
        'wrk.body = f:read("*all")',
        "f:close()",
        *[f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()],
    ]
    (tmp_path / "post.lua").write_text("\n".join(lua) + "\n")
    before = answered()
    out = subprocess.run(
        ["wrk", "-t1", "-c16", "-d2s", "-s", str(tmp_path / "post.lua"), two.url + "/v2/models/edge_lstm/infer"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    assert done > 500 and "Non-2xx" not in out and "Socket errors" not in out, out
    assert answered() - before >= done  # wrk stops counting at its deadline; the server answered those and more
