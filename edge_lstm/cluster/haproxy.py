"""The HAProxy processes of a local `serve --ray` cluster: files of their own, and none left running.

Ray Serve's fast path runs HAProxy with its files in a fixed folder (/tmp/haproxy-serve), and reloads it
by starting a successor with `-sf OLD_PID`. Stopped mid-reload (SIGTERM to the whole process group under
load), the successor outlives Ray, reparented to init, and keeps the serve port and two more: the next
server on that port cannot start. So each local cluster gets a folder of its own (two clusters on one
machine no longer share an admin socket either), and its config path, which every HAProxy it starts
carries on its command line, is how `stop_leftover_haproxy` finds the ones still running after Ray's
shutdown.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

# Short: Ray puts each node's files in a 56-character subfolder of it, and HAProxy takes an admin socket
# path of at most 97 characters (/tmp/elhp-<8 random characters>/<node>/admin.sock is 87)
HAPROXY_PREFIX = "elhp-"
_haproxy_folders: list[str] = []  # the HAProxy folders of the local clusters this process started


def stop_leftover_haproxy(grace_s: float = 5.0) -> list[int]:
    """Stop every HAProxy of this process's local cluster still running after Ray's shutdown (a reload's
    `-sf` successor outlives its parent when Ray is stopped mid-reload); remove its folder. The pids."""
    if not _haproxy_folders:
        return []  # this process started no local cluster: another's HAProxy is not ours to stop
    folder = _haproxy_folders.pop()
    mine = f"{folder}/".encode()  # Ray's config path: FOLDER/<node id>/haproxy.cfg
    pids = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(arg.startswith(mine) for arg in (entry / "cmdline").read_bytes().split(b"\0")):
                    pids.append(int(entry.name))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
    shutil.rmtree(folder, ignore_errors=True)
    return pids


def own_haproxy_files() -> dict[str, str]:
    """Ray Serve's HAProxy variables for a local cluster: its files in a new folder of this process's."""
    folder = tempfile.mkdtemp(prefix=HAPROXY_PREFIX, dir="/tmp" if os.path.isdir("/tmp") else None)
    if not _haproxy_folders:
        atexit.register(stop_all)  # a start that failed, an exception: none left running either
    _haproxy_folders.append(folder)
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": f"{folder}/haproxy.cfg",
        "RAY_SERVE_HAPROXY_SOCKET_PATH": f"{folder}/admin.sock",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": folder,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": f"{folder}/server-state",
    }


def stop_all() -> None:
    while _haproxy_folders:
        stop_leftover_haproxy()
