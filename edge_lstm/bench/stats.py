"""Latency statistics with their method stated, and honest about what a sample can support.

- Percentiles use the nearest-rank method: the p-th percentile of n sorted samples is the
  ceil(p * n)-th smallest (1-based). No interpolation: every reported value was observed.
- A percentile is reported only when at least one sample lies above its rank, i.e. when
  n * (1 - p) >= 1 (p99 needs 100 samples, p99.9 needs 1,000). Otherwise it is None (missing),
  never silently the maximum, the classic failure of floor/ceil-index tools with few runs.
- Confidence intervals for a percentile come from order statistics: the number of samples below
  the true p-quantile is Binomial(n, p), so [x_(l), x_(u)] covers it with probability
  F(u-1) - F(l-1). This needs no assumption about the latency distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

METHOD = "nearest-rank (ceil(p*n)-th smallest); missing when n*(1-p) < 1; 95% CI from binomial order statistics"
PERCENTILES = {
    "p50": Fraction(1, 2),
    "p90": Fraction(9, 10),
    "p95": Fraction(95, 100),
    "p99": Fraction(99, 100),
    "p99_9": Fraction(999, 1000),
}


def supported(n: int, p: Fraction) -> bool:
    return n * (1 - p) >= 1


def percentile(sorted_samples: np.ndarray, p: Fraction) -> float | None:
    """Nearest-rank percentile of already sorted samples; None when n cannot support it."""
    n = len(sorted_samples)
    if n == 0 or not supported(n, p):
        return None
    rank = max(1, math.ceil(p * n))  # exact: Fraction arithmetic, no float rounding at the boundary
    return float(sorted_samples[rank - 1])


def _binom_cdf(n: int, p: float) -> tuple[int, np.ndarray]:
    """(k0, cdf) with cdf[i] = P(Binomial(n, p) <= k0 + i), over the window that holds its mass."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    lo, hi = max(0, int(mean - 12 * sd) - 2), min(n, int(mean + 12 * sd) + 2)  # tails beyond are < 1e-30
    k = np.arange(lo, hi + 1)
    lgamma = np.vectorize(math.lgamma)
    logpmf = lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
    return lo, np.minimum(1.0, np.cumsum(np.exp(logpmf)))


def quantile_ci(sorted_samples: np.ndarray, p: Fraction, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Distribution-free CI for the p-quantile: (lower, upper); a side is None when n is too small."""
    n = len(sorted_samples)
    if n == 0:
        return None, None
    alpha = (1 - confidence) / 2
    k0, cdf = _binom_cdf(n, float(p))

    def F(k: int) -> float:
        if k < k0:
            return 0.0
        if k - k0 >= len(cdf):
            return 1.0
        return float(cdf[k - k0])

    # lower rank l: the largest with P(#below < l) = F(l-1) <= alpha; upper rank u: the smallest with F(u-1) >= 1-alpha
    ranks = range(max(1, k0), min(n, k0 + len(cdf)) + 1)
    lows = [r for r in ranks if F(r - 1) <= alpha]
    highs = [r for r in ranks if F(r - 1) >= 1 - alpha]
    lower = float(sorted_samples[max(lows) - 1]) if lows else None
    upper = float(sorted_samples[min(highs) - 1]) if highs else None
    return lower, upper


@dataclass(frozen=True)
class Summary:
    n: int
    min_ms: float
    max_ms: float
    mean_ms: float
    stdev_ms: float
    cv: float  # stdev / mean
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None
    p50_ci_ms: tuple[float | None, float | None]
    p90_ci_ms: tuple[float | None, float | None]


def summarize(latencies_ms: np.ndarray) -> Summary:
    x = np.sort(np.asarray(latencies_ms, dtype=np.float64))
    if x.size == 0:
        raise ValueError("no samples")
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    pct = {name: percentile(x, p) for name, p in PERCENTILES.items()}
    return Summary(
        n=int(x.size),
        min_ms=float(x[0]),
        max_ms=float(x[-1]),
        mean_ms=mean,
        stdev_ms=sd,
        cv=sd / mean if mean > 0 else 0.0,
        p50_ms=pct["p50"],
        p90_ms=pct["p90"],
        p95_ms=pct["p95"],
        p99_ms=pct["p99"],
        p99_9_ms=pct["p99_9"],
        p50_ci_ms=quantile_ci(x, PERCENTILES["p50"]),
        p90_ci_ms=quantile_ci(x, PERCENTILES["p90"]),
    )
