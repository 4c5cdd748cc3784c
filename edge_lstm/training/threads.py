"""Training's CPU policy: bf16 where the CPU computes it natively, and a worker count that follows
the machine's load.

The batch's fixed shards (shards.py) run on 1..shards worker threads; the weights do not depend on
how many, so the count is free to follow the load on both precision paths. Measured on 2 cores
(`python bench/train_step.py`, bench/results/train_step.json): two workers beat one alone, but beside
a busy process the balance can tip (a worker the scheduler parks holds up the step's end). No fixed
choice is best in both cases, so the tuner measures: every PROBE_EVERY steps (or at once when steps
slow down by half) it times a few steps at the other worker count and keeps the faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_lstm.environment import usable_cores

PROBE_EVERY = 300  # steps between probes of the other worker count
PROBE_STEPS = 6  # steps timed per probe
SLOWDOWN = 1.5  # probe at once when recent steps take this much longer than the count's best


def native_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic (AVX512-BF16, AMX or Arm's BF16): only then is bf16 faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16", "bf16"))


def resolve_precision(precision: str, device: str) -> str:
    """auto -> bf16 on a CPU with native bf16, else fp32 (CUDA trains in fp32)."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cpu" and native_bf16() else "fp32"


class ThreadTuner:
    """Chooses the number of worker threads step by step (see the module docstring); `apply(n)` puts
    a count into effect. A fixed `threads` (the user's --threads) is never changed."""

    def __init__(
        self,
        threads: int | None,
        limit: int,
        apply: Callable[[int], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.max = max(1, min(usable_cores(), limit))
        self.adaptive = threads is None and self.max > 1
        self.current = min(threads, limit) if threads else self.max
        self.apply = apply
        self.clock = clock
        self.best: dict[int, float] = {}  # thread count -> best median step time seen
        self.recent: list[float] = []
        self.since_probe = 0
        self.probing: int | None = None  # the count being probed
        self.probe_times: list[float] = []
        self.switches = 0
        apply(self.current)

    def _other(self) -> int:
        return 1 if self.current != 1 else self.max

    def start(self) -> float:
        return self.clock()

    def done(self, started: float) -> None:
        """Record one step's time and decide the next step's thread count."""
        if not self.adaptive:
            return
        took = self.clock() - started
        if self.probing is not None:
            self.probe_times.append(took)
            if len(self.probe_times) >= PROBE_STEPS:
                self._finish_probe()
            return
        self.recent = [*self.recent[-(PROBE_STEPS - 1) :], took]
        self.since_probe += 1
        if len(self.recent) == PROBE_STEPS:
            median = statistics.median(self.recent)
            self.best[self.current] = min(self.best.get(self.current, median), median)
            # A slowdown must outlast a few probe lengths: one slow step (a page fault, a log line) is noise.
            slowed = median > SLOWDOWN * self.best[self.current] and self.since_probe >= 4 * PROBE_STEPS
            if self.since_probe >= PROBE_EVERY or slowed:
                self.probing, self.probe_times = self._other(), []
                self.apply(self.probing)

    def _finish_probe(self) -> None:
        assert self.probing is not None
        probed = statistics.median(self.probe_times)
        current = statistics.median(self.recent)
        if probed < current:
            self.current = self.probing
            self.switches += 1
            self.recent = list(self.probe_times)
        else:
            self.best[self.current] = current  # slower now, but still the faster: compare with now from here
        self.best[self.probing] = min(self.best.get(self.probing, probed), probed)
        self.probing, self.since_probe = None, 0
        self.apply(self.current)


def policy_line(config: Any, device: str, tuner: ThreadTuner) -> str:
    """What the run computes with and why, for its first line of output."""
    if device != "cpu":
        return f"precision {config.precision} on {device}"
    if config.precision == "bf16":
        why = "this CPU computes bf16 natively" if native_bf16() else "asked for; this CPU has no native bf16: slow"
    else:
        why = "this CPU has no native bf16" if not native_bf16() else "set by --precision or the preset"
    if tuner.adaptive:
        workers = f"1-{tuner.max} worker threads, following the machine's load"
    else:
        workers = f"{tuner.current} worker thread(s)" + (" (--threads)" if config.threads else "")
    return (
        f"precision {config.precision} ({why}); each batch in {config.shards} fixed shard(s) on {workers} "
        "(the weights depend on the shard count, never on the threads)"
    )
