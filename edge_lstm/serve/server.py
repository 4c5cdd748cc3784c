"""Running the app: uvicorn on a socket bound here first (a taken or foreign address is one clean
error), stopped gracefully by SIGTERM or Ctrl-C: no new connections, what is in flight finishes.

`start_in_thread` runs the same server in a background thread (the page's tests, `bench` against a
page) and returns its URL and a stop function.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lstm.errors import EdgeLstmError

GRACE_S = 30  # how long in-flight requests get to finish after a stop signal


class QuietConnections(logging.Filter):
    """A client that drops its connection mid-download (a reload, a closed tab) is one line, not a
    traceback: uvicorn logs such errors with the exception attached."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ConnectionError | BrokenPipeError):
            record.msg = f"connection dropped by the client ({type(record.exc_info[1]).__name__})"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def bind(host: str, port: int, option: str = "--port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise EdgeLstmError(
            f"cannot serve on {host}:{port} ({e.strerror or e}); choose another {option}"
            + (" (0: any free one)" if option == "--port" else "")
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def free_port(host: str) -> int:
    """A port free on `host` now, for a server that takes no port 0 (HAProxy's pages, Triton). Chosen
    between 20000 and the kernel's range for ephemeral ports: a port inside that range may be handed
    to any process binding port 0 (Ray starts a dozen) before that server binds it, which made Ray
    Serve's start fail now and then; below 20000 are Ray's worker ports."""
    first = 32768
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200 if first > 20001 else 0):
        port = random.randrange(20000, first)
        with contextlib.suppress(EdgeLstmError), bind(host, port):
            return port
    with bind(host, 0) as sock:  # none free there (or no such range): any port
        return int(sock.getsockname()[1])


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@dataclass
class Stopped:
    signal: int | None  # signal.SIGINT, signal.SIGTERM, or None (stopped from code)


def _server(app: Any, log_level: str, on_started: Callable[[], None] | None = None) -> Any:
    """uvicorn's server for `app`; `on_started` runs once it listens (what the CLI prints then)."""
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's, but a stop signal is reported to the caller instead of raised again."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            before = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in before.items():
                    signal.signal(s, h)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if on_started is not None:
                on_started()

    logging.getLogger("uvicorn.error").addFilter(QuietConnections())
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=GRACE_S,
        lifespan="on",
        loop="auto",
        http="auto",
        proxy_headers=False,  # nothing here reads the client's address: no X-Forwarded-For rewrite per request
        # The stream socket's frames are float32 rows and logits, which do not compress: deflate cost the
        # server about a twentieth of its time with 16 streams (py-spy) for nothing.
        ws_per_message_deflate=False,
    )
    return Server(config)


def run(
    app: Any, sock: socket.socket, log_level: str = "warning", on_ready: Callable[[], None] | None = None
) -> Stopped:
    """Serve until a stop signal; returns which one."""
    server = _server(app, log_level, on_ready)
    server.run(sockets=[sock])
    captured = getattr(server, "_captured_signals", [])
    return Stopped(captured[-1] if captured else None)


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """The server in a background thread: (its URL, a function that stops it and waits)."""
    sock = bind(host, port)
    started = threading.Event()
    server = _server(app, "error", started.set)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="edge-lstm-serve")
    thread.start()
    if not started.wait(30):
        raise EdgeLstmError("the server did not start within 30 s")

    def stop() -> None:
        server.should_exit = True
        thread.join(GRACE_S + 5)
        sock.close()

    return url_of(sock), stop
