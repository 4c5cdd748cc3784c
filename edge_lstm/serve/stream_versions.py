"""A step model's streams across its versions: a sequence runs on the version it started on until it
ends, whatever is loaded meanwhile (what Triton's sequence batcher gives a model instance).

Each loaded version has its own sequence batcher and stream table. A START goes to the newest version
(or the one the request names); every later row of that sequence goes where it started. A version
that is no longer served (a newer one replaced it, or it was unloaded) takes no new sequences and
stops once its last live sequence has ended or gone idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np

from edge_lstm.serve.streams import SequenceBatcher
from edge_lstm.serve.streamtable import SequenceError, Sid

TIDY_S = 1.0  # how often retired versions and forgotten sequences are looked at


class VersionedStreams:
    def __init__(self, name: str, idle_s: float) -> None:
        self.name, self.idle_s = name, idle_s
        self.batchers: dict[int, SequenceBatcher] = {}  # every version that holds or takes sequences
        self.latest = 0  # the version new sequences start on (0: none: the model is unloaded)
        self.retired: set[int] = set()  # versions that take no new sequences
        self.where: dict[Sid, tuple[int, float]] = {}  # sequence -> (its version, when last seen)
        self._tidy: asyncio.Task[None] | None = None

    @property
    def here(self) -> VersionedStreams:
        """This process's streams (the WebSocket's, which never leave their worker: peers.py)."""
        return self

    def add(self, version: int, batcher: SequenceBatcher) -> None:
        """A newly loaded version (its batcher started): new sequences start on it if it is the newest."""
        self.batchers[version] = batcher
        self.retired.discard(version)
        self.latest = max(v for v in self.batchers if v not in self.retired)

    def retire(self, version: int) -> None:
        self.retired.add(version)
        serving = [v for v in self.batchers if v not in self.retired]
        self.latest = max(serving) if serving else 0

    def start(self) -> None:
        self._tidy = asyncio.get_running_loop().create_task(self._tidy_loop())

    async def stop(self) -> None:
        if self._tidy is not None:
            self._tidy.cancel()
        for b in list(self.batchers.values()):
            await b.stop()

    def version_of(self, sid: Sid, start: bool, asked: int | None) -> int:
        if start:
            return asked or self.latest
        held = self.where.get(sid)
        if held is None:
            return asked or self.latest  # never started here: the table says so in its own words
        if asked is not None and asked != held[0]:
            raise SequenceError(f"sequence {sid!r} runs on version {held[0]} of {self.name!r}, not {asked}")
        return held[0]

    async def submit(
        self, sid: Sid, start: bool, end: bool, rows: np.ndarray, first_row: int | None = None, version: Any = None
    ) -> np.ndarray:
        v = self.version_of(sid, start, version)
        batcher = self.batchers.get(v)
        if batcher is None or (start and v in self.retired):
            raise SequenceError(f"version {v} of {self.name!r} is not loaded; start the sequence again")
        before = self.where.get(sid)
        if start and before is not None and before[0] != v and before[0] in self.batchers:
            await self.batchers[before[0]].forget(sid)  # a START restarts a live id: its old version's state goes
        self.where[sid] = (v, time.monotonic())
        return await batcher.submit(sid, start, end, rows, first_row)

    async def forget(self, sid: Sid) -> None:
        held = self.where.pop(sid, None)
        batcher = self.batchers.get(held[0] if held else self.latest)
        if batcher is not None:
            await batcher.forget(sid)

    async def _tidy_loop(self) -> None:
        while True:
            await asyncio.sleep(TIDY_S)
            cutoff = time.monotonic() - self.idle_s - TIDY_S  # past the table's own idle expiry
            self.where = {sid: held for sid, held in self.where.items() if held[1] >= cutoff}
            for v in list(self.retired):
                batcher = self.batchers.get(v)
                if batcher is not None and await batcher.store.live() == 0 and not batcher.jobs:
                    del self.batchers[v]
                    self.retired.discard(v)
                    with contextlib.suppress(Exception):
                        await batcher.stop()
