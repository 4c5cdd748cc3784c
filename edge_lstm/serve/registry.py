"""The served models and their versions: every transport asks here for the model a request names, and
the model-control API (load, unload, the repository index) and `--poll` change it here.

What is served comes from the files given (each is version 1) or from a model repository in Triton's
layout (repository.py), its versions chosen by the version policy. A load opens the new versions
beside the old ones (off the event loop), starts their batchers, then swaps the table in one step on
the event loop: a request that already found its version finishes on it, and every later one finds
the new one, so nothing in flight is dropped or failed. A file that does not open is refused in one
line and what was served goes on. A classifier's replaced version stops once its queue is empty; a
step model's keeps the sequences that started on it until they end (stream_versions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from edge_lstm.errors import EdgeLstmError
from edge_lstm.serve import protocol
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.metrics import Metrics
from edge_lstm.serve.models import Served, StoreFactory, kind_of, local_store, named_files, open_served, start_batcher
from edge_lstm.serve.repository import Version, VersionPolicy, scan
from edge_lstm.serve.stream_versions import VersionedStreams

log = logging.getLogger("edge_lstm.serve")
POLLING = "explicit model load / unload is not allowed if polling is enabled"  # Triton's words
Wrap = Callable[[str, VersionedStreams], Any]  # a step model's streams -> what requests submit to (peers.py)


class Registry:
    def __init__(self, config: ServeConfig, remember: Path | None = None) -> None:
        """Opens every model now (a bad file is one error before any port is bound). `remember`: where
        explicit unloads are written, so that a restarted worker of `serve --workers` serves the same."""
        config.validate()
        self.config, self.remember = config, remember
        self.policy = VersionPolicy.parse(config.versions)
        self.loaded: dict[str, dict[int, Served]] = {}  # name -> version -> Served
        self.latest: dict[str, Served] = {}  # name -> its newest loaded version (what a request without one gets)
        # versions not served, and why (unloaded, failed to load; version 0: the model as a whole)
        self.unavailable: dict[str, dict[int, str]] = {}
        self.streams: dict[str, VersionedStreams] = {}
        self.kinds: dict[str, str] = {}
        self._files: list[tuple[str, Path, str]] | None = None  # the files given: (name, file, kind)
        self.unloaded: set[str] = set(self._remembered())
        self.metrics: Metrics | None = None
        self.store: StoreFactory = local_store
        self.wrap: Wrap = lambda name, streams: streams
        self.broadcast: Callable[[str, str], Awaitable[None]] | None = None  # the other workers (peers.py)
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failed: dict[str, tuple[Any, ...]] = {}  # --poll: what did not load, said once per change
        for name, versions in self.sources().items():
            chosen = self._chosen(versions)
            if name in self.unloaded or not chosen:
                self.unavailable[name] = {v: "unloaded" for v in chosen} or {0: self._none_chosen(versions)}
            else:
                self._install(name, {v: self._open(name, v, ver) for v, ver in chosen.items()})

    # --- what there is to serve
    def sources(self) -> dict[str, dict[int, Version]]:
        """Every model the files or the repository hold now, with their versions."""
        if self.config.repository is not None:
            return scan(self.config.repository)
        if self._files is None:  # named once (reading each file's inputs), then only looked at (--poll)
            self._files = named_files(self.config)
            self.kinds.update({name: kind for name, _, kind in self._files})
        return {
            name: {1: Version.of(path) if path.is_file() else Version(path, (0, 0))} for name, path, _ in self._files
        }

    def _chosen(self, versions: dict[int, Version]) -> dict[int, Version]:
        return {v: versions[v] for v in self.policy.choose(versions)}

    def _none_chosen(self, versions: dict[int, Version]) -> str:
        return (
            f"the version policy {self.policy} chooses none of its versions ({', '.join(map(str, sorted(versions)))})"
        )

    def _open(self, name: str, version: int, ver: Version) -> Served:
        kind = self.kinds.get(name) or kind_of(ver.path)
        s = open_served(name, ver.path, kind, self.config, version, ver.stamp)
        self.kinds.setdefault(name, kind)
        return s

    # --- what requests ask
    def get(self, name: str, version: str | None) -> Served:
        s = self.latest.get(name)
        if s is None:
            if name in self.unavailable:
                why = f"model {name!r} is not loaded ({next(iter(self.unavailable[name].values()))})"
                raise protocol.ProtocolError(f"{why}; load it: POST /v2/repository/models/{name}/load", 404)
            raise protocol.ProtocolError(
                f"unknown model {name!r}; this server has {', '.join(self.latest) or 'none'}", 404
            )
        if version in (None, "") or version == str(s.version):
            return s
        found = self.loaded[name].get(int(version)) if version.isdigit() else None
        if found is None:
            have = ", ".join(map(str, self.loaded[name]))
            raise protocol.ProtocolError(f"model {name!r} has version(s) {have} loaded, not {version!r}", 404)
        return found

    def names(self) -> list[str]:
        return list(self.latest)

    def index(self, ready_only: bool = False, stopping: bool = False) -> list[dict[str, str]]:
        """Triton's repository index: each loaded version READY (UNAVAILABLE while the server stops), each
        model not loaded UNAVAILABLE with why; `ready_only` leaves out what is not READY."""
        if stopping:
            return (
                []
                if ready_only
                else [{**m, "state": "UNAVAILABLE", "reason": "the server is stopping"} for m in self.index()]
            )
        names = sorted(
            set(self.latest) | set(self.unavailable) | (set(self.sources()) if self.config.repository else set())
        )
        out: list[dict[str, str]] = []
        for name in names:
            states = {v: ("READY", "") for v in self.loaded.get(name, {})}
            if not ready_only:
                states |= {v: ("UNAVAILABLE", why) for v, why in self.unavailable.get(name, {}).items()}
            for v, (state, why) in sorted(states.items()):
                # Triton's fields: no version for a model as a whole, no reason where there is none
                entry = {"name": name, **({"version": str(v)} if v else {}), "state": state}
                out.append(entry | ({"reason": why} if why else {}))
            if not states and not ready_only:
                out.append({"name": name})  # in the repository, never loaded: what Triton says of it
        return out

    # --- the event loop's side
    def start(self, metrics: Metrics, store: StoreFactory = local_store, wrap: Wrap | None = None) -> None:
        """Every loaded version's batcher, started (in the running event loop), and --poll's loop."""
        self.metrics, self.store, self._lock = metrics, store, asyncio.Lock()
        if wrap is not None:
            self.wrap = wrap
        for name, versions in self.loaded.items():
            self._start(name, versions.values())
        if self.config.poll_s is not None:
            self._spawn(self._poll_loop(self.config.poll_s))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for versions in self.loaded.values():
            for s in versions.values():
                if s.kind == "classifier":
                    await s.batcher.stop()
        for streams in self.streams.values():
            await streams.stop()

    async def load(self, name: str, explicit: bool = True, spread: bool = True) -> None:
        """(Re)load `name`'s versions as the files and the policy say; ProtocolError (400) if it cannot be,
        with what was served still served. `explicit`: the model-control API asked (not --poll); `spread`:
        the other workers are told to do the same."""
        if explicit and self.config.poll_s is not None:
            raise protocol.ProtocolError(f"{POLLING} (this server polls its files: --poll)", 503)
        assert self._lock is not None, "start() first"
        async with self._lock:
            sources = self.sources()
            if name not in sources:
                where = self.config.repository or "the files served"
                raise protocol.ProtocolError(f"failed to load {name!r}: no such model in {where}", 400)
            chosen = self._chosen(sources[name])
            if not chosen:
                raise protocol.ProtocolError(f"failed to load {name!r}: {self._none_chosen(sources[name])}", 400)
            old = self.loaded.get(name, {})
            loop = asyncio.get_running_loop()
            new: dict[int, Served] = {}
            for v, ver in chosen.items():
                same = old.get(v)
                if same is not None and same.stamp == ver.stamp:
                    new[v] = same
                    continue
                try:
                    new[v] = await loop.run_in_executor(None, self._open, name, v, ver)
                except EdgeLstmError as e:
                    self.unavailable[name] = {v: str(e)}  # listed by the index as Triton lists it
                    serving = (
                        f"version(s) {', '.join(map(str, old))} still served" if old else "nothing served under it"
                    )
                    raise protocol.ProtocolError(f"failed to load {name!r} version {v}: {e} ({serving})", 400) from None
            self._start(name, [s for s in new.values() if s not in old.values()])
            self._install(name, new)
            self._retire([s for v, s in old.items() if new.get(v) is not s])
            self.unloaded.discard(name)
            self._remember()
        log.warning("loaded %s version(s) %s", name, ", ".join(map(str, new)))
        if explicit and spread and self.broadcast is not None:
            await self.broadcast("load", name)

    async def unload(self, name: str, explicit: bool = True, reason: str = "unloaded", spread: bool = True) -> None:
        if explicit and self.config.poll_s is not None:
            raise protocol.ProtocolError(f"{POLLING} (this server polls its files: --poll)", 503)
        if name not in self.latest and name not in self.unavailable:
            raise protocol.ProtocolError(f"failed to unload {name!r}: no such model on this server", 400)
        assert self._lock is not None, "start() first"
        async with self._lock:
            old = self.loaded.pop(name, {})
            self.latest.pop(name, None)
            self.unavailable[name] = {v: reason for v in old} or {0: reason}
            self._retire(list(old.values()))
            if explicit:
                self.unloaded.add(name)
                self._remember()
        log.warning("unloaded %s (%s)", name, reason)
        if explicit and spread and self.broadcast is not None:
            await self.broadcast("unload", name)

    async def refresh(self) -> None:
        """--poll: load what changed in the files (new, replaced or removed versions), unload what is gone."""
        sources = self.sources()
        for name in sorted(set(sources) | set(self.loaded)):
            if name not in sources:
                if name in self.loaded:
                    await self.unload(name, explicit=False, reason="removed from the repository")
                continue
            chosen = self._chosen(sources[name])
            now = {v: s.stamp for v, s in self.loaded.get(name, {}).items()}
            wanted = {v: ver.stamp for v, ver in chosen.items()}
            if now == wanted or self.failed.get(name) == tuple(sorted(wanted.items())):
                continue
            try:
                await self.load(name, explicit=False)
                self.failed.pop(name, None)
            except protocol.ProtocolError as e:
                self.failed[name] = tuple(sorted(wanted.items()))  # said once, until the files change again
                log.error("%s", e)

    # --- inside
    def _install(self, name: str, versions: dict[int, Served]) -> None:
        self.loaded[name] = dict(sorted(versions.items()))
        self.latest[name] = self.loaded[name][max(versions)]
        self.unavailable.pop(name, None)

    def _start(self, name: str, versions: Any) -> None:
        if self.metrics is None:
            return  # not running yet: start() starts them
        for s in versions:
            batcher = start_batcher(s, self.config, self.metrics, self.store)
            if s.kind == "classifier":
                s.batcher = batcher
                continue
            if name not in self.streams:
                self.streams[name] = VersionedStreams(name, self.config.stream_idle_s)
                self.streams[name].start()
            self.streams[name].add(s.version, batcher)
            s.batcher = self.wrap(name, self.streams[name])

    def _retire(self, versions: list[Served]) -> None:
        for s in versions:
            if s.kind == "classifier":
                self._spawn(s.batcher.stop())  # what it holds is answered, then it stops
            elif s.name in self.streams:
                self.streams[s.name].retire(s.version)  # its live sequences end on it

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_loop(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh()
            except EdgeLstmError as e:  # the repository unreadable for a moment: said, and looked at again
                log.error("--poll: %s", e)

    def _remembered(self) -> list[str]:
        if self.remember is None or not self.remember.is_file():
            return []
        with contextlib.suppress(OSError, ValueError):
            return list(json.loads(self.remember.read_text()).get("unloaded", []))
        return []

    def _remember(self) -> None:
        if self.remember is not None:
            tmp = self.remember.with_suffix(".tmp")
            tmp.write_text(json.dumps({"unloaded": sorted(self.unloaded)}))
            tmp.replace(self.remember)
