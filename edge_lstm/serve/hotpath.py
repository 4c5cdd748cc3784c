"""The server's front: a bare ASGI callable in front of Starlette (app.py). It checks the bearer token
of every HTTP route but the health probes, tags every answer with the worker or replica that gave it
(X-Edge-Lstm-Replica, when asked), and answers POST /v2/models/NAME[/versions/V]/infer, the route
every inference takes, itself: without Starlette's middleware, exception wrappers, router and Request
objects, which cost about a tenth of the server's CPU per request (py-spy; `python bench/serve.py`
measures the CPU per request). Every other route and the WebSocket go on to Starlette.

Its refusals are mapped and logged by refusals.py, as every transport's are.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_lstm.serve import protocol
from edge_lstm.serve.core import UNAUTHORIZED, Core
from edge_lstm.serve.infer import answer, run_model
from edge_lstm.serve.refusals import refusal

INFER = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
Headers = dict[bytes, bytes]  # a request's headers, names in lower case (as ASGI servers give them)
RawHeaders = list[tuple[bytes, bytes]]
# (model name, version or None, body, headers) -> (response body, its headers, the version that answered)
InferFn = Callable[[str, str | None, bytes, Headers], Awaitable[tuple[bytes, RawHeaders, str]]]
OPEN = ("/v2/health/",)  # probes need no token (what Kubernetes and load balancers call)


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit` bytes: never held whole when too big."""
    length = headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise protocol.ProtocolError(f"the body is {int(length):,} bytes, over the {limit:,}-byte limit", 413)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise protocol.ProtocolError(f"the body is over the {limit:,}-byte limit", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HotPath:
    state: Any = None  # the Starlette app's state (app.py sets it)

    def __init__(self, inner: ASGIApp, infer: InferFn, core: Core, tag: bytes | None) -> None:
        self.inner, self.infer, self.core, self.limit = inner, infer, core, core.config.max_body
        self.metrics, self.known = core.metrics, core.registry.latest.__contains__
        self.open = core.config.token is None
        self.tag = [(b"x-edge-lstm-replica", tag)] if tag else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)  # the lifespan; the WebSocket checks its own token
            return
        path, root = scope["path"], scope.get("root_path", "")
        path = path[len(root) :] if root and path.startswith(root) else path
        match = INFER.fullmatch(path)
        if match is not None:
            await self._infer(scope, receive, send, match.group(1), match.group(2))
        elif not self.open and not path.startswith(OPEN) and not self._authorized(dict(scope["headers"])):
            await self._send(send, 401, _error(UNAUTHORIZED), [(b"www-authenticate", b"Bearer")])
        elif self.tag:

            async def tagged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *self.tag]}
                await send(message)

            await self.inner(scope, receive, tagged)
        else:
            await self.inner(scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        return self.open or self.core.authorized(headers.get(b"authorization"))

    async def _infer(self, scope: Scope, receive: Receive, send: Send, name: str, version: str | None) -> None:
        t0 = time.perf_counter()
        headers: Headers = dict(scope["headers"])
        extra: RawHeaders = []
        answered_by = ""  # the version that answered ("": none was reached)
        if not self._authorized(headers):
            status, payload = 401, _error(UNAUTHORIZED)
            extra = [(b"www-authenticate", b"Bearer")]
        elif scope["method"] != "POST":
            status, payload = 405, _error(f"{scope['method']} is not an inference: POST the request")
            extra = [(b"allow", b"POST")]
        else:
            try:
                body = await read_body(receive, headers, self.limit)
                payload, extra, answered_by = await self.infer(name, version, body, headers)
                status = 200
            except Exception as e:
                refused = refusal(e, f"POST {name} infer")
                if refused is None:
                    raise  # a bug: uvicorn answers 500 and logs it
                status, message, more = refused
                payload = _error(message)
                extra = [(k.lower().encode(), v.encode()) for k, v in more.items()]
        known = name if self.known(name) else "(unknown)"
        self.metrics.answered("infer", known, status, time.perf_counter() - t0, answered_by)
        if status != 499:
            await self._send(send, status, payload, extra)

    async def _send(self, send: Send, status: int, payload: bytes, headers: RawHeaders) -> None:
        if status != 200:
            headers = [*headers, (b"content-type", b"application/json")]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(payload)).encode()), *headers, *self.tag],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


WANTED = (b"content-encoding", b"inference-header-content-length", b"accept-encoding")  # what inference reads


async def infer_body(
    core: Core, name: str, version: str | None, body: bytes, headers: Headers
) -> tuple[bytes, RawHeaders, str]:
    """One HTTP inference request: its body and headers in, the answer's out (infer.py runs the model), and
    which version answered (the statistics count it there)."""
    config = core.config
    s = core.registry.get(name, version)
    text = {k: headers[k].decode("latin-1") for k in WANTED if k in headers}
    body = protocol.decompress(body, text.get(b"content-encoding"), config.max_body)
    req = protocol.decode_infer(body, text.get(b"inference-header-content-length"))
    logits = await run_model(s, req, config, pinned=bool(version))
    payload, header = protocol.encode_infer(s.name, req, [answer(s, req, logits)], s.version)
    payload, encoding = (
        protocol.compress(payload, text.get(b"accept-encoding")) if len(payload) > 1024 else (payload, None)
    )
    out: RawHeaders = [(b"content-type", b"application/octet-stream" if header is not None else b"application/json")]
    if header is not None:
        out.append((b"inference-header-content-length", str(header).encode()))
    if encoding:
        out.append((b"content-encoding", encoding.encode()))
    return payload, out, str(s.version)
