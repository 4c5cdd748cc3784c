"""A real `edge-lstm serve` process on a free loopback port, for the serving tests (imported by name:
`from serving import ...`; a `conftest` module cannot be, as every test folder has one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any


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
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            info = json.loads(line)
            return Server(proc, info["url"], info["url"].removeprefix("http://"), info)
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"the server did not start: {out}\n{err}")
