"""The one mapping from a failed request to its status and message, for every transport (HTTP's hot
path and Starlette routes, gRPC, the WebSocket), and the server log's line for each refusal: a client
that is refused should not be the only one who knows why.

The log says each kind of refusal (where, status, the message's start) at once and then at most once
per `QUIET_S`, with how many it left unsaid: a client sending the same bad request in a loop must not
flood the log or cost the server a line write per request.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect

from edge_lstm.errors import EdgeLstmError
from edge_lstm.serve import protocol
from edge_lstm.serve.batcher import Overloaded
from edge_lstm.serve.streamtable import SequenceError

QUIET_S = 10.0
LOG = logging.getLogger("edge_lstm.serve")
KINDS = 1024  # kinds remembered at most: memory stays bounded whatever clients send
_said: dict[tuple[str, int, str], tuple[float, int]] = {}  # kind -> (last said, left unsaid since)


def refusal(e: Exception, where: str = "") -> tuple[int, str, dict[str, str]] | None:
    """A failed request's (status, message, headers), logged; None for a failure that is a bug (a 500)."""
    out: tuple[int, str, dict[str, str]]
    if isinstance(e, protocol.ProtocolError):
        out = e.status, str(e), {}
    elif isinstance(e, EdgeLstmError | SequenceError):
        out = 400, str(e), {}
    elif isinstance(e, Overloaded):
        out = 503, f"overloaded: {e}; retry later", {"Retry-After": "1"}
    elif isinstance(e, ClientDisconnect):
        return 499, "", {}  # nobody to answer; counted, nothing to say
    else:
        return None
    log(where, out[0], out[1])
    return out


def log(where: str, status: int, message: str) -> None:
    now, kind = time.monotonic(), (where, status, message[:40])
    last, unsaid = _said.get(kind, (-QUIET_S, 0))
    if now - last < QUIET_S:
        _said[kind] = (last, unsaid + 1)
        return
    if len(_said) >= KINDS:
        _said.clear()
    _said[kind] = (now, 0)
    more = f" ({unsaid} more like it in the last {now - last:.0f} s)" if unsaid else ""
    LOG.warning("refused %s: %d %s%s", where or "a request", status, message, more)
