"""No process outlives `edge-lstm serve --ray local`: Ctrl-C to the whole process group (what a terminal
sends) while wrk loads it through HAProxy, the way a user stops it mid-load. Every process below the
driver (Ray's GCS, raylet, workers, Serve's proxy and HAProxy), any HAProxy of its cluster that a
reload left to init, and nothing holds the port afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import descendants, running
from test_ray import classify
from test_ray_fast_path import holds_ours

from edge_lstm.cluster.ray_serve import fast_path_missing
from edge_lstm.serve.server import free_port

pytestmark = pytest.mark.ray


def test_ctrl_c_to_the_group_under_load_leaves_no_process(exported: dict[str, Path]) -> None:
    if (why := fast_path_missing()) is not None:
        pytest.skip(why)
    if shutil.which("wrk") is None:
        if os.environ.get("EDGE_LSTM_REQUIRE_WRK"):
            pytest.fail("wrk is required here (apt-get install wrk)")
        pytest.skip("no wrk (apt-get install wrk)")
    port = free_port("127.0.0.1")
    cmd = [sys.executable, "-m", "edge_lstm", "serve", str(exported["fp32"]), "--ray", "local", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    deadline = time.time() + 180
    while not (line := proc.stdout.readline()).startswith("{"):
        assert line and time.time() < deadline, proc.communicate()
    url = json.loads(line)["url"]
    while time.time() < deadline:  # HAProxy takes the replica in after its health checks
        try:
            classify(url, np.zeros((1, 28, 28), np.uint8))
            break
        except AssertionError:
            time.sleep(0.5)
    wrk = subprocess.Popen(
        ["wrk", "-t1", "-c16", "-d4s", f"{url}/v2/models/edge_lstm"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    below = descendants(proc.pid)
    assert below, "no Ray process below the driver"
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group, mid-load
    _, err = proc.communicate(timeout=180)
    wrk.wait(30)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    end = time.monotonic() + 30
    while time.monotonic() < end and (any(running(p) for p in below) or _leftover()):
        time.sleep(0.5)
    left = [p for p in below if running(p)]
    assert not left, [Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in left if running(p)]
    assert not _leftover()
    with socket.socket() as s:  # the next server can take the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def _leftover() -> list[Path]:
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and holds_ours(p)]
