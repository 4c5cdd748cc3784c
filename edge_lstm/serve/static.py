"""A static folder (the browser page) served with the headers onnxruntime-web needs for threads.

WebAssembly threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages:
Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp. Starlette's
StaticFiles serves the files (ranges, ETags, MIME types); this adds the headers and `no-store`, so
that a rebuilt page is never mixed with a cached one.
"""

from __future__ import annotations

import mimetypes

from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
ISOLATION = [
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cache-control", b"no-store"),
]


class IsolatedStatic(StaticFiles):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_isolated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, *ISOLATION]}
            await send(message)

        await super().__call__(scope, receive, send_isolated)
