"""The onnxruntime-web levers tried for the page, in headless Chromium: threads, graph optimisation
level, the ORT-format file (batch-1 p50 of the page's own benchmark, two page loads each).

    python bench/web_levers.py     # -> bench/results/web_levers.json; needs export/model.onnx, .ort

(SIMD is not a lever: onnxruntime-web 1.30 ships only SIMD builds. The int8 and the unrolled
phone-NPU files are compared in `bench/results/web_bench.json`.)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.web import SiteConfig, build_site
from edge_lstm.web.browser import open_page
from edge_lstm.web.ortweb import VERSION

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "export/model.onnx": ("threads=2", "threads=1", "threads=2&opt=basic", "threads=2&opt=disabled"),
    "export/model.ort": ("threads=2", "threads=1"),
}


def main() -> None:
    image = [int(v) for v in mnist.load_split(mnist.BUNDLED_DIR, "test").images[0].ravel()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, queries in VARIANTS.items():
            site = build_site(SiteConfig(out=Path(tmp) / Path(model).suffix[1:], model=ROOT / model))
            for query in queries:
                p50s, agent = [], ""
                for _ in range(2):
                    with open_page(site, query + "&rowdelay=0") as page:
                        r = page.evaluate("([s, px]) => window.edgeLstm.bench(s, px)", [{"minTime": 2}, image])
                        p50s.append(r["summary"]["p50_ms"])
                        agent = r["userAgent"]
                results.append({"file": Path(model).name, "settings": query, "p50_ms": p50s})
                print(Path(model).name, query, [f"{1000 * v:.1f} us" for v in p50s])
    out = ROOT / "bench" / "results" / "web_levers.json"
    report = {
        "command": "python bench/web_levers.py",
        "onnxruntime_web": VERSION,
        "browser": agent,
        "results": results,
        "environment": describe(),
    }
    out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
