"""The serving core: what every transport serves, whatever carries the request. HTTP (app.py with its
hot path), gRPC (grpc.py) and the WebSocket (websocket.py) are thin fronts over it.

It holds the models and their versions (registry.py), the metrics, the token check, readiness, and
the server's start and stop: the batchers, under `serve --workers` this worker's end of the streams
routed between workers (peers.py), and the fronts that run beside HTTP in its event loop (gRPC). What
a failure means for a client (its status and one-line message) is refusals.py's, for every front.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.metrics import Metrics
from edge_lstm.serve.models import Served, StoreFactory, local_store
from edge_lstm.serve.peers import Owner, RoutedBatcher, WorkerPlace, broadcast, connect
from edge_lstm.serve.registry import Registry
from edge_lstm.serve.server import GRACE_S
from edge_lstm.serve.stream_versions import VersionedStreams
from edge_lstm.serve.streams import LocalStore, StateStore
from edge_lstm.serve.streamtable import SequenceError

UNAUTHORIZED = "missing or wrong bearer token (Authorization: Bearer TOKEN)"


class Front(Protocol):
    """A transport started with the core and stopped before it (gRPC's server)."""

    async def stop(self, grace: float) -> Any: ...


def worker_store(place: WorkerPlace, s: Served, config: ServeConfig) -> StateStore:
    """A worker's table of the sequences it owns, max_sequences counted over every worker's (a model
    loaded after the workers started counts its own)."""
    shared = place.live.get(s.name)
    return LocalStore(
        config.stream_idle_s, config.max_sequences, s.arch, None if shared is None else (shared, place.index)
    )


class Core:
    def __init__(self, config: ServeConfig, stream_store: StoreFactory = local_store, place: WorkerPlace | None = None):
        """Opens every model (a bad file is one error here, before any port is bound). `stream_store`:
        where streams' states live (a cluster's shared store); `place`: one worker of `serve --workers`."""
        self.config, self.place = config, place
        self.registry = Registry(config, remember=place.folder / "control.json" if place is not None else None)
        self.store = functools.partial(worker_store, place) if place is not None else stream_store
        self.metrics = Metrics()
        self.ready = False
        self._token = f"Bearer {config.token}".encode() if config.token else None
        self._owner: Owner | None = None
        self._fronts: list[Front] = []

    def authorized(self, given: str | bytes | None) -> bool:
        """The Authorization header's value (or the WebSocket's ?token= as 'Bearer TOKEN') is the token."""
        if self._token is None:
            return True
        given = given.encode() if isinstance(given, str) else (given or b"")
        return hmac.compare_digest(given, self._token)

    def default_classifier(self) -> str:
        """The model /predict and the page's pictures go to when none is named."""
        return next((n for n, s in self.registry.latest.items() if s.kind == "classifier"), "")

    async def start(self, fronts: Sequence[Callable[[Core], Awaitable[Front]]] = ()) -> None:
        """Inside the running event loop: the batchers, the workers' stream routing, then the fronts."""
        place = self.place
        if place is None:
            self.registry.start(self.metrics, self.store)
        else:
            peers = connect(place)

            def routed(name: str, streams: VersionedStreams) -> RoutedBatcher:
                return RoutedBatcher(name, streams, place.index, place.workers, peers)

            self.registry.start(self.metrics, self.store, routed)
            self.registry.broadcast = functools.partial(broadcast, peers)
            self._owner = Owner(self._streams, self._control)
            await self._owner.listen(place.folder, place.index)
        for start in fronts:
            self._fronts.append(await start(self))
        self.ready = True

    async def stop(self) -> None:
        """After the HTTP server stopped accepting (SIGTERM): the fronts, the other workers' last forwarded
        rows, then the batchers once what they hold is answered."""
        self.ready = False
        for front in self._fronts:
            await front.stop(GRACE_S)
        if self._owner is not None:
            await self._owner.drain(GRACE_S)
        await self.registry.stop()

    def _streams(self, name: str) -> VersionedStreams:
        streams = self.registry.streams.get(name)
        if streams is None:
            raise SequenceError(f"no step model named {name!r} on this worker")
        return streams

    async def _control(self, op: str, name: str) -> None:
        """Another worker's load or unload, done here too (and not passed on again)."""
        await (self.registry.load(name, spread=False) if op == "load" else self.registry.unload(name, spread=False))
