"""`edge-lstm serve --ray local` on Ray's fast path (HAProxy ingress, direct ingress, throughput mode):
the answers equal the runner's, images spread over both replicas, a stream whose requests carry the
`edge-lstm-sequence-id` header stays on one replica (its state kept there) and streams without it still
get the right answers, bad input is a 4xx, and SIGTERM deletes the deployment and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_ray import classify, post

from edge_lstm.cluster.ray_serve import fast_path_missing
from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.serve.server import free_port

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def fast(exported: dict[str, Path]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    if (why := fast_path_missing()) is not None:
        pytest.skip(why)
    port = free_port("127.0.0.1")
    cmd = [
        sys.executable,
        "-m",
        "edge_lstm",
        "serve",
        str(exported["fp32"]),
        str(exported["step"]),
        "--ray",
        "local",
        "--replicas",
        "2",
        "--port",
        str(port),
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdout is not None
    deadline = time.time() + 180
    url = None
    while time.time() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            url = json.loads(line)["url"]
    if url is None:
        proc.kill()
        raise AssertionError(f"serve --ray local did not start: {proc.communicate()}")
    # HAProxy takes a replica in after two health checks (5 s apart): wait until both answer
    x = np.zeros((1, 28, 28), np.uint8)
    seen: set[str] = set()
    while len(seen) < 2 and time.time() < deadline:
        seen.add(classify(url, x)[1])
    yield url, proc
    if proc.poll() is None:  # SIGTERM: a killed driver would leave its cluster (and HAProxy) behind
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)


def row_request(sid: int, t: int, row: np.ndarray) -> bytes:
    return json.dumps(
        {
            "inputs": [{"name": "row", "shape": [1, 28], "datatype": "FP32", "data": row.tolist()}],
            "parameters": {"sequence_id": sid, "sequence_start": t == 0, "sequence_end": t == 27, "sequence_row": t},
        }
    ).encode()


def test_answers_equal_the_runners_and_images_spread(fast: Any, exported: dict, test_split: MnistSplit) -> None:
    url, _ = fast
    x = test_split.images[:9]
    np.testing.assert_allclose(classify(url, x)[0], Classifier(exported["fp32"]).logits(x), atol=1e-6)
    assert both_replicas_answer(url, test_split.images[:1])


def both_replicas_answer(url: str, x: np.ndarray, tries: int = 200) -> bool:
    """Requests without the header go round robin: both replicas answer within `tries` of them. (HAProxy
    takes a replica out for a while when its health check is late on a busy machine: not at once.)"""
    seen: set[str] = set()
    for _ in range(tries):
        seen.add(classify(url, x)[1])
        if len(seen) == 2:
            return True
    return False


def test_a_stream_with_the_header_stays_on_one_replica(fast: Any, exported: dict, test_split: MnistSplit) -> None:
    url, _ = fast
    images = test_split.images[:6].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=6)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)

    def streams(first: int) -> dict[int, set[str]]:
        """Six streams, rows interleaved, every answer checked: which replicas each stream's rows reached."""
        replicas: dict[int, set[str]] = {k: set() for k in range(6)}
        for t in range(28):
            for k in range(6):
                sid = first + k
                headers = {"edge-lstm-sequence-id": str(sid)} if k < 4 else {}  # the last two without it
                data, h, _ = post(url, "/v2/models/edge_lstm_step/infer", row_request(sid, t, images[k, t]), headers)
                out = json.loads(data)["outputs"][0]
                np.testing.assert_allclose(np.asarray(out["data"], np.float32), expected[k, t], atol=1e-5)
                replicas[k].add(h["x-edge-lstm-replica"])
        return replicas

    replicas = streams(7000)
    if not all(len(replicas[k]) == 1 for k in range(4)):
        # The hash moves a header to the other replica when HAProxy's set of replicas changes (a health
        # check late on a busy machine takes one out for a while): the answers above stayed right, the
        # state following the stream. Once both answer again, the routing must hold for a whole run.
        assert both_replicas_answer(url, test_split.images[:1])
        replicas = streams(7100)
    assert all(len(replicas[k]) == 1 for k in range(4)), replicas  # routed by the header: one replica each
    assert len(set().union(*(replicas[k] for k in range(4)))) == 2, replicas  # and not all to the same one


def test_bad_input_is_a_4xx_with_the_reason(fast: Any) -> None:
    url, _ = fast
    body = json.dumps({"inputs": [{"name": "images", "shape": [1, 27, 28], "datatype": "FP32", "data": [0.0] * 756}]})
    with pytest.raises(AssertionError, match=r"^4[0-9][0-9]: .*28"):
        post(url, "/v2/models/edge_lstm/infer", body.encode(), {}, tries=1)


def test_sigterm_deletes_the_deployment_and_exits_0(fast: Any) -> None:
    _, proc = fast
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped: the deployment and its stream stores are deleted" in out
    assert "SIGTERM received" not in err and "Traceback" not in err
    # no HAProxy of its cluster outlives it (cluster/haproxy.py), and its port is free for the next server
    leftover = [p for p in Path("/proc").iterdir() if p.name.isdigit() and holds_ours(p)]
    assert not leftover, [(p / "cmdline").read_bytes() for p in leftover]
    import socket

    url, _ = fast
    with socket.socket() as s:  # as a server binds (its clients' closed connections may be in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        s.listen()


def holds_ours(proc_dir: Path) -> bool:
    from edge_lstm.cluster.haproxy import HAPROXY_PREFIX

    try:
        return f"/tmp/{HAPROXY_PREFIX}".encode() in (proc_dir / "cmdline").read_bytes()
    except OSError:
        return False


def test_a_ray_without_the_fast_path_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from edge_lstm.cluster.ray_serve import Scaling
    from edge_lstm.errors import ConfigError

    monkeypatch.setattr(metadata, "version", lambda name: "2.40.0")
    with pytest.raises(ConfigError, match=r"Ray 2\.40\.0 has no HAProxy fast path .* --ray-proxy python"):
        Scaling().validate()
    Scaling(proxy="python").validate()  # Ray's own proxy needs nothing more
    with pytest.raises(ConfigError, match="--ray-proxy must be haproxy or python"):
        Scaling(proxy="nginx").validate()


def test_a_taken_port_is_one_line_before_ray_starts(exported: dict[str, Path]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "edge_lstm", "serve", str(exported["fp32"]), "--ray", "local", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in out.stderr and "Started a local Ray instance" not in out.stderr
