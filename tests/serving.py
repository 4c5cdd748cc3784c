"""A real `edge-lstm serve` process on a free loopback port, for the serving tests (imported by name:
`from serving import ...`; a `conftest` module cannot be, as every test folder has one)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

HEADER = struct.Struct("<QII")  # the stream socket's frame header: sequence id, flags, rows


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT, as tritonclient takes it
    info: dict[str, Any]  # the JSON line it printed when ready

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def start_server(*args: str, timeout: float = 60) -> Server:
    """`edge-lstm serve ARGS --port 0 --json`; waits for its URL (the JSON line it prints when ready)."""
    cmd = [sys.executable, "-m", "edge_lstm", "serve", *args, "--port", "0", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    deadline = time.time() + timeout
    assert proc.stdout is not None
    printed = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            info = {**json.loads(line), "printed": printed}  # and the lines it printed before
            return Server(proc, info["url"], info["url"].removeprefix("http://"), info)
        printed.append(line.rstrip("\n"))
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"the server did not start: {out}\n{err}")


def post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("POST", path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def frame(sid: int, rows: np.ndarray, start: bool = False, end: bool = False) -> bytes:
    rows = np.ascontiguousarray(rows.reshape(-1, rows.shape[-1]), "<f4")
    return HEADER.pack(sid, (1 if start else 0) | (2 if end else 0), len(rows)) + rows.tobytes()


def answer(message: bytes | str) -> tuple[int, np.ndarray] | dict[str, Any]:
    if isinstance(message, str):
        return json.loads(message)  # type: ignore[no-any-return]
    sid, rows, classes = HEADER.unpack_from(message)
    return sid, np.frombuffer(message, "<f4", offset=HEADER.size).reshape(rows, classes)
