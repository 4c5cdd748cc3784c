"""Streams over a WebSocket (`/v2/models/NAME/stream`): for clients that speak neither gRPC nor the
Open Inference Protocol, the browser included. One socket carries any number of streams; every frame
is one request of one stream, answered on the same socket.

A binary frame from the client: a 16-byte little-endian header, uint64 sequence id (not 0), uint32
flags (1: the stream's first rows, 2: its last), uint32 rows k, then k rows of float32 features.
The answer: uint64 sequence id, uint32 rows k, uint32 classes, then k rows of float32 logits (after
each row). A refused frame (a wrong size, NaN, a row past the model's steps, an unknown sequence,
a full table) is answered by a text frame `{"sequence_id": ID, "error": "..."}` and the socket goes
on. Frames of one stream run in their order; of different streams at once, so the rows of every
stream waiting at the same moment run as one step call (streams.py). A socket's sequence ids are its
own (two sockets' id 5 are two streams; one client cannot advance or end another's), and their
states live in the process that holds the socket: under `serve --workers` no row of a socket is
forwarded to another worker (peers.py). A client that goes away frees the streams it started and did
not end. The token, when the server has one, comes as
`Authorization: Bearer TOKEN` or, for browsers (which cannot set headers on a WebSocket), `?token=`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
import struct
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from edge_lstm.errors import EdgeLstmError
from edge_lstm.runtime.inputs import to_input
from edge_lstm.serve.core import Core
from edge_lstm.serve.refusals import refusal
from edge_lstm.serve.streams import InOrder
from edge_lstm.serve.streamtable import Scoped, SequenceError

HEADER = struct.Struct("<QII")  # sequence id, flags (client) or rows (server), rows (client) or classes (server)
START, END = 1, 2
POLICY = 1008  # the WebSocket close code for a refused connection (no token, not a step model)


def authorized(ws: WebSocket, core: Core) -> bool:
    """The Authorization header, or ?token= (a browser's WebSocket cannot set headers)."""
    return core.authorized(ws.headers.get("authorization") or f"Bearer {ws.query_params.get('token', '')}")


def parse(frame: bytes, features: int) -> tuple[int, int, np.ndarray]:
    """(sequence id, flags, (k, features) rows) from a client frame; SequenceError saying what is wrong."""
    if len(frame) < HEADER.size:
        raise SequenceError(
            f"a frame is a {HEADER.size}-byte header (uint64 sequence id, uint32 flags, uint32 rows) "
            f"and the rows; got {len(frame)} bytes"
        )
    sid, flags, k = HEADER.unpack_from(frame)
    if sid == 0:
        raise SequenceError("sequence id 0 is not a sequence: use any other number")
    body = len(frame) - HEADER.size
    if k < 1 or body != k * features * 4:
        raise SequenceError(
            f"{k} rows of {features} float32 features are {k * features * 4} bytes; the frame has {body}"
        )
    return sid, flags, np.frombuffer(frame, "<f4", offset=HEADER.size).reshape(k, features)


async def serve_socket(ws: WebSocket, core: Core) -> None:
    name = ws.path_params["name"]
    s = core.registry.latest.get(name)
    why = None
    if not authorized(ws, core):
        why = "missing or wrong bearer token (Authorization: Bearer TOKEN, or ?token=)"
    elif s is None or s.kind != "streaming-step":
        steps = [n for n, m in core.registry.latest.items() if m.kind == "streaming-step"]
        why = f"no step model named {name!r}; this server streams {', '.join(steps) or 'none'}"
    await ws.accept()
    if why is not None or s is None:  # accepted only to say why (a refusal before it is a bare HTTP 403)
        await ws.send_text(json.dumps({"sequence_id": None, "error": why}))
        await ws.close(POLICY, str(why)[:120])  # a close reason holds at most 123 bytes
        return
    out: asyncio.Queue[bytes | str | None] = asyncio.Queue()
    order = InOrder()
    started: set[int] = set()  # this socket's streams not yet ended: freed if it goes away
    here = s.batcher.here  # this process's batcher: a socket's streams stay where the socket is
    scope = secrets.randbits(63)  # this socket's: unique among the sockets of every process sharing a store

    async def run(sid: int, flags: int, rows: np.ndarray) -> None:
        try:
            logits = await here.submit(Scoped(scope, sid), bool(flags & START), bool(flags & END), rows)
        except Exception as e:
            refused = refusal(e, f"WebSocket {s.name} stream")
            if refused is None:
                raise
            await out.put(json.dumps({"sequence_id": sid, "error": refused[1]}))
            return
        if flags & END:
            started.discard(sid)
        logits = np.ascontiguousarray(logits, "<f4")
        await out.put(HEADER.pack(sid, *logits.shape) + logits.tobytes())

    async def write() -> None:
        while (message := await out.get()) is not None:
            await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message))

    writer = asyncio.get_running_loop().create_task(write())
    try:
        while True:
            message: Any = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            sid = None
            try:
                if frame is None:
                    raise SequenceError("send rows as binary frames (see the header layout in the docs), not text")
                sid, flags, raw = parse(frame, s.arch.features)
                rows = to_input(raw, rank=2, arch=s.arch)  # NaN, infinity and size checked as for every request
            except (SequenceError, EdgeLstmError) as e:
                if sid is None and frame is not None and len(frame) >= HEADER.size:
                    sid = HEADER.unpack_from(frame)[0] or None  # the header was read: say whose frame it was
                refusal(e, f"WebSocket {s.name} frame")  # logged like every other transport's refusals
                await out.put(json.dumps({"sequence_id": sid, "error": str(e)}))
                continue
            if flags & START:
                started.add(sid)
            order.run(sid, functools.partial(run, sid, flags, rows))
    except WebSocketDisconnect:
        pass
    finally:
        order.cancel()
        writer.cancel()
        for sid in started:
            with contextlib.suppress(Exception):
                await here.forget(Scoped(scope, sid))
