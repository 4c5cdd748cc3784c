"""The highest rate a server keeps under a latency bound, like perf_analyzer's `--latency-threshold
--binary-search`: doubling from a start rate, then halving the interval between the last rate that
passed and the first that failed; and one server run's result (server.py measures the runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

BISECTIONS = 4
START_RATE = 100.0  # requests per second the search starts from


@dataclass
class ServerRun:
    target: str  # a URL, or a model file run in-process
    via: str  # "http" or "in-process"
    rate: float  # offered requests per second
    seconds: float
    n: int  # requests answered with 200
    failed: int  # answered otherwise, reset, or never
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p50_ci_ms: list[float | None]
    p99_ci_ms: list[float | None]
    lag_p99_ms: float | None  # how late requests left against their schedule (included in the latency)
    generator_cpu: float | None  # cores the load generator itself used (http)
    valid: bool
    why: list[str] = field(default_factory=list)
    meets_bound: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def max_rate(
    measure: Callable[[float], ServerRun], start: float, limit: float = 100_000.0
) -> tuple[ServerRun | None, list[ServerRun]]:
    """The highest rate whose run meets the bound (valid, p99 under it), and every run tried."""
    trail: list[ServerRun] = []

    def passes(rate: float) -> bool:
        trail.append(measure(rate))
        return bool(trail[-1].meets_bound)

    rate = start
    if passes(rate):
        while rate < limit and passes(rate * 2):
            rate *= 2
        low, high = rate, rate * 2
    else:
        while rate > 1 and not passes(rate / 2):
            rate /= 2
        low, high = rate / 2, rate
        if not trail[-1].meets_bound:
            return None, trail
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        if passes(mid):
            low = mid
        else:
            high = mid
    best = max((r for r in trail if r.meets_bound), key=lambda r: r.rate, default=None)
    return best, trail


def unmet(lowest: ServerRun, bound_ms: float) -> str:
    """Why even the lowest rate tried did not meet the bound, in one line."""
    reasons = lowest.why or [f"p99 {lowest.p99_ms:.2f} ms is over the {bound_ms:g} ms bound"]
    return f"no rate met the bound: at {lowest.rate:g} requests/s, {'; '.join(reasons)}"
