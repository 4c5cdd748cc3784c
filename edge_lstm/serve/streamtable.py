"""The table of live streams: each sequence's recurrent state (packed: Arch.pack_state), with
optimistic versions, so that the state can live in the server (one process) or in a store every
replica shares (a cluster), and a request retried after a failure is answered once, never applied twice.

A request takes (acquires) a copy of its sequence's committed state and a version; after its rows
ran, it commits the new state, which succeeds only if nobody committed in between. A client that
sends `sequence_row` (the index of its first row) gets exact retries: a request for rows already
committed is answered with the stored answer instead of running again, and a request for a row the
sequence has not reached is refused. Sequences idle for `idle_s` are forgotten; at most
`max_sequences` are held. Plain Python and numpy: the same class runs inside a Ray actor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.serve.batcher import Overloaded

SWEEP_S = 0.5  # idle sequences are swept at most this often (an idle one asked for is dropped at once)


@dataclass(frozen=True)
class Scoped:
    """A sequence id that belongs to one connection (a WebSocket's): two sockets' id 5 are two streams,
    and one client cannot advance or end another's. Shown as the client's own id in messages."""

    scope: int  # the connection's: random, so unique across the processes that share a store
    sid: int

    def __repr__(self) -> str:
        return repr(self.sid)


Sid = str | int | Scoped  # what a sequence is known by: the protocol's sequence_id, or a socket's


class SequenceError(Exception):
    """A request the sequence rules refuse (unknown id, a row out of order, too many rows): a 400."""


class TableFull(Overloaded):
    """max_sequences are live: a 503, like a full queue."""


@dataclass
class Held:
    """A request's copy of its sequence's state."""

    state: np.ndarray  # (state_size,): every state tensor of every layer, packed
    steps: int  # rows the sequence had taken
    version: int


@dataclass
class _Entry:
    state: np.ndarray
    steps: int = 0
    version: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    answer: np.ndarray | None = None  # the last committed request's logits
    answer_from: int = 0  # the row its answer starts at
    ended: bool = False  # kept a while after sequence_end, so that a retried last request is answered


class StreamTable:
    def __init__(
        self,
        idle_s: float,
        max_sequences: int,
        state_size: int = contract.MNIST.state_size,
        max_steps: int | None = contract.MNIST.steps,
        shared_live: tuple[Any, int] | None = None,
        image: bool = True,
    ) -> None:
        self.idle_s, self.max_sequences = idle_s, max_sequences
        # `serve --workers`: (an array in shared memory, this table's slot): each worker writes its own
        # count and max_sequences holds for their sum (two workers starting a sequence at the same
        # moment may each pass it, so the sum may pass it by workers - 1 at most).
        self.shared_live = shared_live
        # the step model's (max_steps None: any length); image: its rows are a picture's
        self.state_size, self.max_steps, self.image = state_size, max_steps, image
        self.entries: dict[Sid, _Entry] = {}
        self.version = 0  # versions are never reused, even across restarts of a sequence id
        # Counted as entries change, and idle ones swept at most every SWEEP_S: both were a walk over
        # every entry per request, a fifth of the server's time with 256 streams (py-spy).
        self._live = 0
        self._swept = 0.0

    @property
    def live(self) -> int:
        return self._live

    def _add_live(self, n: int) -> None:
        self._live += n
        if self.shared_live is not None:
            counts, slot = self.shared_live
            counts[slot] = self._live

    def _all_live(self) -> int:
        return self._live if self.shared_live is None else int(sum(self.shared_live[0]))

    def _fresh(self, sid: Sid) -> _Entry:
        """A started (or restarted) sequence from zeros; TableFull if it would pass max_sequences."""
        old = self.entries.get(sid)
        if old is None or old.ended:
            live = self._all_live()
            if live >= self.max_sequences:
                raise TableFull(f"{live} sequences are live (limit {self.max_sequences})")
            self._add_live(1)
        self.version += 1
        entry = self.entries[sid] = _Entry(np.zeros(self.state_size, np.float32), version=self.version)
        return entry

    def _current(self, sid: Sid) -> _Entry | None:
        """The sequence's entry, None if it has been idle past idle_s (forgotten now, sweep or not)."""
        entry = self.entries.get(sid)
        if entry is not None and entry.last_seen < time.monotonic() - self.idle_s:
            self.forget(sid)
            return None
        return entry

    def forget(self, sid: Sid) -> None:
        entry = self.entries.pop(sid, None)
        if entry is not None and not entry.ended:
            self._add_live(-1)

    def acquire(self, sid: Sid, start: bool, rows: int, first_row: int | None = None) -> Held | np.ndarray:
        """The state to run `rows` rows from, or (a retried request already committed) its answer."""
        self.expire()
        entry = self._current(sid)
        # A retry of the committed request: the same answer, nothing runs twice. (A start needs no such
        # care: it runs from zeros again and gives the same answer and state.)
        answer = entry.answer if entry is not None and not start and first_row is not None else None
        if (
            answer is not None
            and entry is not None
            and first_row == entry.answer_from
            and entry.steps == first_row + rows
        ):
            return answer
        if start and first_row not in (None, 0):
            raise SequenceError(
                f"sequence {sid!r}: sequence_start with sequence_row {first_row}; a stream starts at row 0"
            )
        if start:
            entry = self._fresh(sid)
        elif entry is None or entry.ended:
            raise SequenceError(
                f"sequence {sid!r} is not live (never started, ended, or idle for over {self.idle_s:g} s); "
                "send its first request with sequence_start"
            )
        if first_row is not None and first_row != entry.steps:
            raise SequenceError(
                f"sequence {sid!r}: this request starts at row {first_row}; the stream is at row {entry.steps}"
            )
        if self.max_steps is not None and entry.steps + rows > self.max_steps:
            what = "an image has" if self.image else "the model's sequences have"
            raise SequenceError(
                f"sequence {sid!r} would have {entry.steps + rows} rows; {what} {self.max_steps} "
                "(end it and start a new sequence)"
            )
        entry.last_seen = time.monotonic()
        return Held(entry.state.copy(), entry.steps, entry.version)

    def commit(self, sid: Sid, held: Held, state: np.ndarray, answer: np.ndarray, end: bool) -> None:
        entry = self._current(sid)
        if entry is None or entry.version != held.version or entry.ended:
            raise SequenceError(f"sequence {sid!r} was advanced, restarted or forgotten by another request meanwhile")
        self.version += 1
        entry.state, entry.version = state, self.version
        entry.answer, entry.answer_from, entry.steps = answer, held.steps, held.steps + len(answer)
        if end:
            self._add_live(-1)
        entry.last_seen, entry.ended = time.monotonic(), end

    def put(
        self, sid: Sid, version: int | None, held_steps: int, state: np.ndarray, answer: np.ndarray, end: bool
    ) -> int:
        """A commit without an acquire, for a replica that holds the sequence's state itself: `version`
        None starts the sequence (as acquire with start does); otherwise it must be the committed one.
        The new version, for the replica's next put."""
        self.expire()
        if version is None:
            version = self._fresh(sid).version
        self.commit(sid, Held(state, held_steps, version), state, answer, end)  # commit checks the version
        return self.entries[sid].version

    def expire(self) -> None:
        now = time.monotonic()
        if now - self._swept < min(SWEEP_S, self.idle_s / 10):
            return
        self._swept = now
        cutoff = now - self.idle_s
        for sid in [s for s, e in self.entries.items() if e.last_seen < cutoff]:
            self.forget(sid)
