"""Browser rows for `edge-lstm bench --provider browser-wasm|browser-webgpu`: the model in onnxruntime-web inside a
headless Chromium, timed by the page's own single-stream loop (the same warm-up and stop rules,
edge_lstm/web/assets/stats.js), its raw latencies turned into rows here by the same statistics.

The browser runs as one block after the native configurations (a page cannot be interleaved
request by request with them); compare it with the native rows of the same run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edge_lstm.bench.harness import Measured
from edge_lstm.bench.settings import BenchSettings
from edge_lstm.bench.targets import TargetInfo
from edge_lstm.fileio import sha256_file
from edge_lstm.web import SiteConfig, build_site
from edge_lstm.web.browser import BROWSER_PROVIDERS, bench_in_browser
from edge_lstm.web.ortweb import VERSION


class Recorded:
    """A target already measured elsewhere (the page): the harness only reads its info."""

    def __init__(self, info: TargetInfo) -> None:
        self.info = info

    def run(self) -> None:  # pragma: no cover - never called: the samples come from the page
        raise RuntimeError("measured in the browser")


def measure_in_browser(cfg: BenchSettings, image: np.ndarray) -> list[Measured]:
    settings = {"warmup": cfg.warmup, "warmupTime": cfg.warmup_s, "minCount": cfg.min_count, "minTime": cfg.min_seconds}
    out = []
    for provider in (p for p in cfg.providers if p in BROWSER_PROVIDERS):
        for model in cfg.models:
            with tempfile.TemporaryDirectory() as tmp:
                site = build_site(SiteConfig(out=Path(tmp) / "site", model=model, step=None))
                result = bench_in_browser(site, provider, settings, [int(v) for v in image.ravel()])
            ran = result["ep"] + (" (WebGPU unavailable: fell back)" if result["fell_back"] else "")
            info = TargetInfo(
                model=str(model),
                provider=provider,
                scenario="single-stream",
                batch=1,
                threads=int(result["threads"]),
                model_sha256=sha256_file(Path(model)),
                provider_options={
                    "engine": f"onnxruntime-web {VERSION} in headless Chromium",
                    "ran_on": ran,
                    "cross_origin_isolated": result["crossOriginIsolated"],
                    "user_agent": result["userAgent"],
                },
                session_ms=result["ready_ms"],
                first_inference_ms=None,
                cold_start_ms=result["ready_ms"],
            )
            samples = [round(v * 1e6) for v in result["raw_ms"]]
            out.append(Measured(Recorded(info), samples_ns=samples, busy_ns=sum(samples)))
    return out
