"""cluster/affinity.py without a cluster: a replica's cached states, its grouped commits to a store
(here the single server's table behind a stand-in for the store actors), a stale copy running again
from the committed state; and the replica-only mode's refusals (the single server's table)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from edge_lstm.arch import Arch
from edge_lstm.cluster.affinity import AffineStore
from edge_lstm.serve.streams import LocalStore, SequenceBatcher
from edge_lstm.serve.streamtable import SequenceError, StreamTable, TableFull

ARCH = Arch(steps=28, features=28, classes=tuple("0123456789"), cell="gru", hidden=16)  # packed state: 16 values


class FakeActor:
    """The store actor's put_many, called as Ray would (`.put_many.remote(...)` awaited)."""

    def __init__(self, table: StreamTable) -> None:
        self.table, self.calls = table, 0
        outer = self

        class Method:
            async def remote(self, items: list[tuple[Any, ...]]) -> list[Any]:
                outer.calls += 1
                out: list[Any] = []
                for item in items:
                    try:
                        out.append(outer.table.put(*item))
                    except Exception as e:
                        out.append(e)
                return out

        self.put_many = Method()


class FakeRemote:
    def __init__(self, table: StreamTable) -> None:
        self.table, self.actors, self.acquires = table, [FakeActor(table)], 0

    async def acquire(self, sid: Any, start: bool, rows: int, first_row: int | None) -> Any:
        self.acquires += 1
        return self.table.acquire(sid, start, rows, first_row)

    async def live(self) -> int:
        return self.table.live


def step(rows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in step model on packed states (n, 16): the state counts the rows' sums, the logits show it."""
    out = states + rows.sum(axis=1)[:, None]
    return out[:, :10].copy(), out


def run(store: Any, requests: list[tuple[Any, bool, bool, int]]) -> list[np.ndarray]:
    async def go() -> list[np.ndarray]:
        batcher = SequenceBatcher(step, 64, store)
        batcher.start()
        out = []
        for sid, start, end, t in requests:
            out.append(await batcher.submit(sid, start, end, np.full((1, 28), t + 1, np.float32), t))
        await batcher.stop()
        return out

    return asyncio.run(go())


def test_a_replica_runs_its_streams_from_its_cache_and_commits_each_row() -> None:
    table = StreamTable(60, 100, state_size=16, max_steps=28)
    remote = FakeRemote(table)
    store = AffineStore(remote, 60, 16, 28)
    answers = run(store, [("a", t == 0, t == 27, t) for t in range(28)])
    assert remote.acquires == 0 and remote.actors[0].calls == 28  # no acquire at all; one commit per row
    assert answers[-1][0, 0] == 28 * sum(range(1, 29))  # every row applied once, in order
    assert "a" not in table.entries or table.entries["a"].ended  # the end committed


def test_a_stale_copy_runs_again_from_the_committed_state() -> None:
    table = StreamTable(60, 100, state_size=16, max_steps=28)
    a, b = AffineStore(FakeRemote(table), 60, 16, 28), AffineStore(FakeRemote(table), 60, 16, 28)
    run(a, [("s", True, False, 0), ("s", False, False, 1)])  # rows 0, 1 on replica a
    run(b, [("s", False, False, 2)])  # row 2 reaches replica b (the routing changed): from the store
    got = run(a, [("s", False, False, 3)])  # back on a, whose copy is at row 1: refused, then from the store
    assert got[0][0, 0] == 28 * (1 + 2 + 3 + 4)


def test_replica_only_streams_refuse_what_they_do_not_hold() -> None:
    """`--ray-streams replica`: each replica runs the single server's own table (the store in this process)."""
    store = LocalStore(60, 2, ARCH)
    run(store, [("x", True, False, 0)])
    with pytest.raises(SequenceError, match="'elsewhere' is not live"):
        run(store, [("elsewhere", False, False, 3)])
    with pytest.raises(SequenceError, match="starts at row 5; the stream is at row 1"):
        run(store, [("x", False, False, 5)])
    run(store, [("y", True, False, 0)])
    with pytest.raises(TableFull, match="2 sequences are live"):
        run(store, [("z", True, False, 0)])
