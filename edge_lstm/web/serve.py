"""A local static server for the page, with the headers onnxruntime-web needs for threads.

WebAssembly threads need SharedArrayBuffer, which browsers give only to cross-origin isolated
pages: Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp.
Python's http.server with those headers and the right MIME types (.mjs, .wasm) is all it takes.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any

from edge_lstm.errors import EdgeLstmError


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the base class's own attribute, extended
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
    }  # fmt: skip

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the CLI prints the URL, tests read the page


def start(folder: Path, port: int = 0, host: str = "127.0.0.1") -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `folder` in a background thread; returns the server and its URL (port 0: any free port)."""
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:  # the port is taken, or not ours to bind
        raise EdgeLstmError(
            f"cannot serve on {host}:{port} ({e.strerror or e}); choose another --port (0: any free one)"
        ) from None
    threading.Thread(target=server.serve_forever, daemon=True, name="edge-lstm-web").start()
    return server, f"http://{host}:{server.server_address[1]}/"
