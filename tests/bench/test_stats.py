from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edge_lstm.bench.stats import percentile, quantile_ci, summarize


def test_exact_nearest_rank_percentiles() -> None:
    s = summarize(np.arange(1, 101, dtype=float))
    assert (s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms) == (50, 90, 95, 99)
    assert s.p99_9_ms is None  # 100 samples cannot support p99.9
    assert (s.min_ms, s.max_ms, s.mean_ms, s.n) == (1, 100, 50.5, 100)
    big = summarize(np.arange(1, 1001, dtype=float))
    assert big.p99_9_ms == 999 and big.p99_ms == 990


def test_missing_percentile_is_never_the_max() -> None:
    s = summarize(np.arange(1, 11, dtype=float))  # 10 runs: the classic P90 = P99 = max trap
    assert s.p90_ms == 9 and s.p95_ms is None and s.p99_ms is None and s.p99_9_ms is None
    x = np.arange(1, 21, dtype=float)
    assert percentile(x, Fraction(95, 100)) == 19  # n*(1-p) = 1: supported, and not the max
    assert percentile(x[:19], Fraction(95, 100)) is None
    assert summarize(np.array([3.0])).p50_ms is None  # one sample has nothing above its median


def test_unsorted_input_and_stdev() -> None:
    s = summarize(np.array([5.0, 1.0, 3.0, 2.0, 4.0]))
    assert s.p50_ms == 3 and s.stdev_ms == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))
    assert s.cv == pytest.approx(s.stdev_ms / 3)


def test_ci_brackets_the_estimate_and_is_missing_for_tiny_samples() -> None:
    x = np.sort(np.random.default_rng(0).exponential(size=500))
    lo, hi = quantile_ci(x, Fraction(1, 2))
    assert lo is not None and hi is not None and lo < percentile(x, Fraction(1, 2)) < hi  # type: ignore[operator]
    assert quantile_ci(np.arange(5.0), Fraction(1, 2)) == (None, None)  # 5 samples cannot give 95%
    lo, hi = quantile_ci(np.arange(30.0), Fraction(9, 10))
    assert lo is not None and hi is None  # p90 of 30 samples: no upper bound at 95%


@pytest.mark.parametrize("p, true_q", [(Fraction(1, 2), np.log(2)), (Fraction(9, 10), np.log(10))])
def test_ci_coverage_on_synthetic_data(p: Fraction, true_q: float) -> None:
    rng = np.random.default_rng(1)
    trials, covered = 400, 0
    for _ in range(trials):
        x = np.sort(rng.exponential(size=200))  # known quantiles: -ln(1 - p)
        lo, hi = quantile_ci(x, p)
        assert lo is not None and hi is not None
        covered += lo <= true_q <= hi
    # Order-statistic intervals are conservative: coverage at or a little above 95%.
    assert 0.93 <= covered / trials <= 0.995, covered / trials
