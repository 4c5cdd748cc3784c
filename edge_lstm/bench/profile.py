"""What a device user asks of bench beyond latency: where the time of each file goes (per operator,
from onnxruntime's own profiler) and what memory it costs (as TFLite's benchmark_model reports init
and overall memory).

The profile is a separate run from the timed one, on a session of its own: profiling writes an event
per node per run, which inflates latency. Memory is the process's resident set (Linux /proc): its
growth while the session was created and during the first inference, and the process's peak.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.runtime.inputs import as_float
from edge_lstm.runtime.session import SessionConfig, create_session, read_model_bytes

PROFILE_RUNS = 50


def rss_mb() -> float | None:
    """This process's resident memory now (MB), from /proc/self/statm; None where there is no /proc."""
    import os

    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def operator_profile(
    model: Path,
    session: SessionConfig,
    batch: int,
    images: np.ndarray,
    streaming: bool = False,
    runs: int = PROFILE_RUNS,
) -> dict[str, Any]:
    """{op_type: {"us": mean microseconds per request, "share": of the operators' total}} plus
    the nodes' total per request, from onnxruntime's profile of `runs` requests."""
    data, name = read_model_bytes(model)
    config = dataclasses.replace(session, threads=session.threads or 1)
    sess = create_session(data, name, config, profile=True)
    x = as_float(images[:batch])
    fixed = sess.get_inputs()[0].shape[0]
    n = fixed if isinstance(fixed, int) else (1 if streaming else batch)
    if streaming:
        # the state inputs as the file declares them: (layers, batch, hidden) each
        states = {i.name: np.zeros((i.shape[0], n, i.shape[2]), np.float32) for i in sess.get_inputs()[1:]}
        feeds = {"row": x[:n, 0], **states}
    else:
        feeds = {contract.INPUT: np.resize(x, (n, *x.shape[1:]))}
    for _ in range(runs + 1):
        sess.run(None, feeds)
    path = Path(sess.end_profiling())
    try:
        events = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()
    # The first run (memory planning, first touches) is left out: node events from before its end.
    first_end = min((ev["ts"] + ev["dur"] for ev in events if ev.get("name") == "model_run"), default=0)
    per_op: dict[str, float] = defaultdict(float)
    for ev in events:
        args = ev.get("args", {})
        if (
            ev.get("cat") == "Node"
            and "op_name" in args
            and ev.get("name", "").endswith("_kernel_time")
            and ev.get("ts", 0) >= first_end
        ):
            per_op[args["op_name"]] += float(ev.get("dur", 0))
    total = sum(per_op.values()) or 1.0
    ops = {
        op: {"us": round(us / runs, 2), "share": round(us / total, 4)}
        for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])
    }
    return {"runs": runs, "batch": n, "nodes_us_per_request": round(total / runs, 2), "operators": ops}
