"""The measurement loop, which knows nothing of models: warm-up, interleaved rounds, both stop rules.

Every configuration is warmed up (by count and time, excluded), then measured in interleaved rounds
(round-robin over configurations, direction alternating, so machine drift hits all of them alike)
until BOTH a minimum count and a minimum duration are met. With concurrency, several threads issue
requests at once; Ctrl-C stops all of them within one request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_lstm.bench.settings import BenchSettings
from edge_lstm.bench.targets import Target

Clock = Callable[[], int]  # nanoseconds


@dataclass
class Measured:
    target: Target
    samples_ns: list[int] = field(default_factory=list)
    busy_ns: int = 0  # wall time spent in measurement slices (for throughput)
    extra: dict[str, list[int]] = field(default_factory=dict)  # e.g. host<->device copies


def _slice(m: Measured, count: int, seconds: float, cfg: BenchSettings, clock: Clock, record: bool = True) -> None:
    """Run `m` until `count` requests AND `seconds` have passed (per issuing thread for concurrency)."""
    gap = cfg.interval_ms / 1000
    stop = threading.Event()

    def loop(out: list[int]) -> None:
        start = clock()
        done = 0
        while (done < count or (clock() - start) < seconds * 1e9) and not stop.is_set():
            t0 = clock()
            m.target.run()
            out.append(clock() - t0)
            done += 1
            if gap:
                stop.wait(gap)

    t_start = clock()
    results: list[list[int]] = [[] for _ in range(cfg.concurrency)]
    if cfg.concurrency == 1:
        loop(results[0])
    else:
        # Daemon threads, joined with a timeout: the main thread stays able to receive Ctrl-C, and on
        # it tells every worker to stop after its current request.
        workers = [threading.Thread(target=loop, args=(r,), daemon=True) for r in results]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(timeout=0.1)
        except KeyboardInterrupt:
            stop.set()
            for w in workers:
                w.join(timeout=1.0)
            raise
    if record:
        m.busy_ns += clock() - t_start
        for r in results:
            m.samples_ns.extend(r)


def measure(
    configs: list[Measured],
    cfg: BenchSettings,
    clock: Clock = time.perf_counter_ns,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Warm up each configuration, then measure all of them in interleaved rounds."""
    total, done = len(configs) * (1 + cfg.rounds), 0
    for m in configs:
        done += 1
        if progress:
            progress(f"[{done}/{total}] warm-up {m.target.info.label}")
        _slice(m, cfg.warmup, cfg.warmup_s, cfg, clock, record=False)
    per_count = -(-cfg.min_count // cfg.rounds)  # ceil: the rounds together reach min_count
    per_seconds = cfg.min_seconds / cfg.rounds
    for r in range(cfg.rounds):
        order = configs if r % 2 == 0 else configs[::-1]  # alternate direction: no config always goes first
        for m in order:
            done += 1
            if progress:
                progress(f"[{done}/{total}] round {r + 1}/{cfg.rounds} {m.target.info.label}")
            _slice(m, min(3, cfg.warmup), 0.0, cfg, clock, record=False)  # re-warm after the switch
            _slice(m, per_count, per_seconds, cfg, clock)
    for m in configs:  # host<->device copies, timed on their own (device providers only)
        copies = getattr(m.target, "copies", None)
        for name, fn in (copies() if copies else {}).items():
            times = []
            for _ in range(max(20, cfg.min_count // 10)):
                t0 = clock()
                fn()
                times.append(clock() - t0)
            m.extra[name] = times
