"""`serve --workers N`: N processes on one port, each with its own runner, batchers and event loop.

The port is bound here once and the socket handed to every worker (what uvicorn's and gunicorn's
supervisors do), so the kernel spreads connections over the workers; a gRPC port is bound by each
worker with SO_REUSEPORT (grpc's default on Linux). Workers are spawned, not forked: onnxruntime's
thread pools do not survive a fork. Streams: peers.py (each sequence has an owner worker). Metrics:
prometheus_client's multiprocess mode (metrics.py) in a private folder. A worker that dies is
started again (its streams are lost, as a restarted server's are); SIGTERM or Ctrl-C stops accepting,
every worker answers what it holds, then all exit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_lstm.errors import EdgeLstmError
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.peers import WorkerPlace
from edge_lstm.serve.server import GRACE_S, Stopped

MAX_AUTO = 8  # --workers' default: the usable cores, at most this (each worker holds its sessions, ~100 MB)
START_S = 120  # a worker that has not listened by then is a failed start
RESTARTS_PER_MINUTE = 5  # a worker dying faster than this is a fault to report, not to loop on


def default_workers() -> int:
    if os.name != "posix":
        return 1  # the workers' stream routing runs over Unix sockets
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO))


def _worker(place: WorkerPlace, config: ServeConfig, sock: socket.socket, log_level: str, said: Any) -> None:
    """One worker process: the single server's app and uvicorn, on the shared socket."""
    from edge_lstm.serve.app import build_app
    from edge_lstm.serve.server import run

    # A process group of its own: Ctrl-C in a terminal reaches the supervisor alone, which stops every
    # worker with SIGTERM (a SIGINT that reached a worker still importing would print a traceback).
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    logging.basicConfig(format=f"worker {place.index}: %(levelname)s %(message)s")
    parent = os.getppid()

    def orphaned() -> None:  # the supervisor was killed (SIGKILL, OOM): stop as on SIGTERM, not serve on
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        app = build_app(config, tag_replica=True, place=place)  # X-Edge-Lstm-Replica: which worker answered
        run(app, sock, log_level, on_ready=lambda: said.put(("ready", place.index, os.getpid())))
    except EdgeLstmError as e:
        said.put(("error", place.index, str(e)))
        raise SystemExit(1) from None


class Workers:
    """The supervisor: starts the workers, replaces a dead one, stops them all."""

    def __init__(
        self, config: ServeConfig, sock: socket.socket, workers: int, step_names: list[str], log_level: str
    ) -> None:
        self.config, self.sock, self.n, self.log_level = config, sock, workers, log_level
        self.ctx = multiprocessing.get_context("spawn")
        self.folder = Path(tempfile.mkdtemp(prefix="edge-lstm-serve-"))  # 0700: the sockets are ours alone
        (self.folder / "metrics").mkdir()
        self.said: Any = self.ctx.Queue()
        self.live = {name: self.ctx.Array("q", workers, lock=False) for name in step_names}
        self.procs: dict[int, Any] = {}
        self.deaths: list[float] = []

    def _spawn(self, i: int) -> None:
        place = WorkerPlace(i, self.n, self.folder, self.live)
        for counts in self.live.values():
            counts[i] = 0  # a dead worker's streams are gone
        p = self.ctx.Process(
            target=_worker,
            args=(place, self.config, self.sock, self.log_level, self.said),
            name=f"edge-lstm-worker-{i}",
            daemon=False,
        )
        p.start()
        self.procs[i] = p

    def start(self) -> list[int]:
        """Every worker started and listening; their pids. EdgeLstmError (and none left running) if one fails."""
        # Read by prometheus_client when each spawned worker imports it: their values go to files there.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.folder / "metrics")
        for i in range(self.n):
            self._spawn(i)
        pids: dict[int, int] = {}
        deadline = time.monotonic() + START_S
        while len(pids) < self.n:
            message = self._next(deadline)
            if message[0] == "error":
                raise EdgeLstmError(f"worker {message[1]}: {message[2]}")
            pids[message[1]] = message[2]
        return [pids[i] for i in range(self.n)]

    def _next(self, deadline: float) -> tuple[Any, ...]:
        import queue

        while time.monotonic() < deadline:
            try:
                message: tuple[Any, ...] = self.said.get(timeout=0.2)
                return message
            except queue.Empty:
                dead = [i for i, p in self.procs.items() if not p.is_alive()]
                if dead:
                    return ("error", dead[0], f"exited with code {self.procs[dead[0]].exitcode} while starting")
        return ("error", -1, f"not listening within {START_S} s")

    def watch(self, stopped: list[int]) -> None:
        """Until a stop signal: a worker that died is started again (and its metrics files retired)."""
        from prometheus_client import multiprocess

        while not stopped:
            time.sleep(0.2)
            for i, p in list(self.procs.items()):
                if p.is_alive() or stopped:
                    continue
                logging.getLogger("edge_lstm.serve").warning(
                    "worker %d (pid %s) exited with code %s; starting it again", i, p.pid, p.exitcode
                )
                multiprocess.mark_process_dead(p.pid, str(self.folder / "metrics"))
                now = time.monotonic()
                self.deaths = [t for t in self.deaths if t > now - 60] + [now]
                if len(self.deaths) > RESTARTS_PER_MINUTE:
                    raise EdgeLstmError(
                        f"workers died {len(self.deaths)} times within a minute (the last: code {p.exitcode}); "
                        "stopping (run with --workers 1 --verbose to see why)"
                    )
                self._spawn(i)
                with contextlib.suppress(Exception):
                    self._next(time.monotonic() + START_S)  # its "ready" (or a failure, found next round)

    def stop(self) -> None:
        """SIGTERM to every worker: each stops accepting and answers what it holds (GRACE_S at most)."""
        for p in self.procs.values():
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S + 5
        for p in self.procs.values():
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
        shutil.rmtree(self.folder, ignore_errors=True)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def run_workers(
    config: ServeConfig,
    sock: socket.socket,
    workers: int,
    step_names: list[str],
    log_level: str = "warning",
    on_ready: Callable[[list[int]], None] | None = None,
) -> Stopped:
    """Serve with `workers` processes until SIGTERM or Ctrl-C; returns which one stopped it. `step_names`:
    the step models' served names (load()'s), each given a shared count of live sequences."""
    if os.name != "posix":
        raise EdgeLstmError(
            "--workers above 1 needs Linux or macOS (Unix sockets between the workers); use --workers 1"
        )
    stopped: list[int] = []
    before = {s: signal.signal(s, lambda sig, frame: stopped.append(sig)) for s in (signal.SIGINT, signal.SIGTERM)}
    group = Workers(config, sock, workers, step_names, log_level)
    try:
        pids = group.start()
        if on_ready is not None:
            on_ready(pids)
        group.watch(stopped)
    finally:
        group.stop()
        for s, h in before.items():
            signal.signal(s, h)
    return Stopped(stopped[0] if stopped else None)
