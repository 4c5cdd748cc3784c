"""Where a session's nodes ran, read from onnxruntime's profile of one run, and the check that the
recurrent node (the model's whole cost) ran on the provider asked for."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from edge_lstm.errors import ProviderError
from edge_lstm.runtime import providers

# The recurrent nodes of every cell the model description allows, float and int8
RECURRENT_OPS = {"LSTM", "DynamicQuantizeLSTM", "GRU"}


def discard_profile(session: Any) -> None:
    with contextlib.suppress(Exception):  # ends profiling and removes the file, as a placement read does
        placement_from_profile(session)


def placement_from_profile(session: Any) -> dict[str, dict[str, int]]:
    """provider -> {op_type: count}, from onnxruntime's profile of the run just made."""
    path = session.end_profiling()  # also stops profiling: later runs are not slowed
    try:
        events = json.loads(Path(path).read_text())
    finally:
        Path(path).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(path).parent.rmdir()
    seen: dict[str, dict[str, int]] = {}
    nodes: set[str] = set()
    for ev in events:
        args = ev.get("args", {})
        if ev.get("cat") == "Node" and "provider" in args and "op_name" in args:
            node = ev["name"].rsplit("_kernel_time", 1)[0]
            if node.endswith(("_fence_before", "_fence_after")) or node in nodes:
                continue
            nodes.add(node)
            ops = seen.setdefault(providers.short_name(args["provider"]), Counter())
            ops[args["op_name"]] += 1
    return {p: dict(c) for p, c in seen.items()}


NPU_PROVIDERS = ("qnn", "coreml")  # they take the recurrence only as the unrolled graph of export --mobile


def check_placement(placement: dict[str, dict[str, int]], wanted: str, allow_fallback: bool) -> None:
    where = [p for p, ops in placement.items() if RECURRENT_OPS & set(ops)]
    if not where:  # a graph without a recurrent node (the unrolled mobile variant): every node counts
        where = list(placement)
    if wanted not in where and not allow_fallback:
        other = "the phone-NPU variant (export --mobile)" if wanted in NPU_PROVIDERS else "another model variant"
        raise ProviderError(
            f"the recurrent node ran on {', '.join(where) or 'no provider'}, not on {wanted} "
            f"(this variant is not supported there; use {other} or --allow-fallback)"
        )
