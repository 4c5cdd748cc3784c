// The single-stream method of `edge-lstm bench`, in the browser (edge_lstm/bench/stats.py and
// harness.py): warm-up by count AND time, measurement until a minimum count AND a minimum time,
// nearest-rank percentiles (missing when n(1-p) < 1), 95% CIs for p50 and p90 from binomial order
// statistics. edge-lstm bench recomputes the statistics from the raw latencies with stats.py.
"use strict";

function nearestRank(sorted, p) {
  const n = sorted.length;
  if (n === 0 || n * (1 - p) < 1 - 1e-12) return null;
  return sorted[Math.max(1, Math.ceil(p * n - 1e-9)) - 1];
}

function logFactorials(n) {
  const lf = new Float64Array(n + 1);
  for (let k = 1; k <= n; k++) lf[k] = lf[k - 1] + Math.log(k);
  return lf;
}

function quantileCi(sorted, p, confidence = 0.95) {
  const n = sorted.length, alpha = (1 - confidence) / 2;
  if (n === 0) return [null, null];
  const lf = logFactorials(n), cdf = new Float64Array(n + 1);
  let acc = 0;
  for (let k = 0; k <= n; k++) {  // P(Binomial(n, p) <= k)
    acc += Math.exp(lf[n] - lf[k] - lf[n - k] + k * Math.log(p) + (n - k) * Math.log1p(-p));
    cdf[k] = Math.min(1, acc);
  }
  const F = (k) => (k < 0 ? 0 : cdf[Math.min(k, n)]);
  let lower = null, upper = null;
  for (let r = 1; r <= n; r++) if (F(r - 1) <= alpha) lower = sorted[r - 1];
  for (let r = n; r >= 1; r--) if (F(r - 1) >= 1 - alpha) upper = sorted[r - 1];
  return [lower, upper];
}

function summarize(latencies) {
  const s = Float64Array.from(latencies).sort();
  return {
    n: s.length, min_ms: s[0], max_ms: s[s.length - 1],
    p50_ms: nearestRank(s, 0.5), p90_ms: nearestRank(s, 0.9), p99_ms: nearestRank(s, 0.99),
    p50_ci_ms: quantileCi(s, 0.5), p90_ci_ms: quantileCi(s, 0.9),
  };
}

// run(): one request (awaited). Returns the raw latencies in ms and their summary.
async function singleStream(run, { warmup = 20, warmupTime = 0.2, minCount = 200, minTime = 5 } = {}) {
  const loop = async (count, seconds, out) => {
    const start = performance.now();
    let done = 0;
    while (done < count || (performance.now() - start) < seconds * 1000) {
      const t0 = performance.now();
      await run();
      if (out) out.push(performance.now() - t0);
      done++;
    }
  };
  await loop(warmup, warmupTime, null);
  const raw = [];
  await loop(minCount, minTime, raw);
  return { raw_ms: raw, summary: summarize(raw) };
}

window.edgeLstmStats = { nearestRank, quantileCi, summarize, singleStream };
