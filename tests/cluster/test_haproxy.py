"""A local cluster's HAProxy processes: found by the config path of the folder this process made for
them, and stopped after Ray's shutdown, a reloaded one reparented to init included; another cluster's
HAProxy (another folder) is left alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from edge_lstm.cluster import haproxy


def pretend_haproxy(config: str) -> subprocess.Popen[bytes]:
    """A process whose command line carries `-f CONFIG` as HAProxy's does (it only sleeps)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-db", "-f", config])


def test_a_leftover_haproxy_is_stopped_and_another_clusters_is_not() -> None:
    env = haproxy.own_haproxy_files()
    folder = Path(env["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"]).parent
    assert folder.is_dir() and folder.name.startswith(haproxy.HAPROXY_PREFIX)
    ours = pretend_haproxy(str(folder / "0123abcd" / "haproxy.cfg"))  # Ray adds the node's folder
    theirs = pretend_haproxy("/tmp/haproxy-serve/haproxy.cfg")
    try:
        time.sleep(0.3)
        assert haproxy.stop_leftover_haproxy() == [ours.pid]
        assert ours.wait(timeout=10) != 0  # stopped by a signal
        assert theirs.poll() is None  # not ours to stop
        assert not folder.exists()
        assert haproxy.stop_leftover_haproxy() == []  # nothing of ours left
    finally:
        for p in (ours, theirs):
            p.kill()
            p.wait()
