"""The CUDA-graph code path, on the CPU: per-shape buffers and graph ids, copies into bound buffers,
the fallback decisions. (The graphs themselves need a GPU: bench/gpu_check.sh.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_lstm import contract
from edge_lstm.data import MnistSplit
from edge_lstm.errors import InputError, ProviderError
from edge_lstm.runtime.device import MAX_GRAPHS, BoundRunner, graph_decision


def cpu_session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_bound_runner_matches_a_plain_run_and_keeps_one_buffer_set_per_shape(
    exported: dict[str, Path], test_split: MnistSplit
) -> None:
    session = cpu_session(exported["fp32"])
    runner = BoundRunner(session, contract.CLASSIFIER, "cpu", 0, graphs=True)
    x = test_split.images.astype(np.float32) / 255
    for batch, start in ((1, 0), (1, 5), (4, 10), (1, 20), (4, 30)):
        feeds = {"images": x[start : start + batch]}
        (got,) = runner.run(feeds)
        want = session.run(None, feeds)[0]
        assert np.array_equal(got, want)  # new data copied into the same buffers each time
    assert runner.captured_shapes == [((1, 28, 28),), ((4, 28, 28),)]
    ids = [runner.run_bound({"images": x[:b]}).graph_id for b in (1, 4)]
    assert ids == [1, 2]  # never 0 (onnxruntime's own), never reused for another shape


def test_graph_count_is_bounded(exported: dict[str, Path]) -> None:
    runner = BoundRunner(cpu_session(exported["fp32"]), contract.CLASSIFIER, "cpu", 0, graphs=True)
    for b in range(1, MAX_GRAPHS + 1):
        runner.run({"images": np.zeros((b, 28, 28), np.float32)})
    with pytest.raises(InputError, match="already captured"):
        runner.run({"images": np.zeros((MAX_GRAPHS + 1, 28, 28), np.float32)})
    plain = BoundRunner(cpu_session(exported["fp32"]), contract.CLASSIFIER, "cpu", 0, graphs=False)
    for b in range(1, MAX_GRAPHS + 3):  # without graphs, buffers are only a cache
        plain.run({"images": np.zeros((b, 28, 28), np.float32)})
    assert len(plain.captured_shapes) == MAX_GRAPHS + 2


def test_step_model_state_round_trips_through_bound_buffers(exported: dict[str, Path], test_split: MnistSplit) -> None:
    session = cpu_session(exported["step"])
    runner = BoundRunner(session, contract.STEP, "cpu", 0, graphs=False)
    x = test_split.images[:3].astype(np.float32) / 255
    h = c = np.zeros((1, 3, 128), np.float32)
    h2, c2 = h, c
    for t in range(28):
        logits, h, c = runner.run({"row": x[:, t], "h": h, "c": c})
        want, h2, c2 = session.run(None, {"row": x[:, t], "h": h2, "c": c2})
        assert np.array_equal(logits, want) and np.array_equal(h, h2)


def test_graph_decision() -> None:
    on_gpu = {"cuda": {"Transpose": 1, "LSTM": 1, "Squeeze": 1, "Gemm": 1}}
    assert graph_decision("cuda", on_gpu, None) == (True, "on (every node on the GPU; one graph per input shape)")
    assert graph_decision("cuda", on_gpu, False)[0] is False
    mixed = {"cuda": {"LSTM": 1}, "cpu": {"Gemm": 1}}
    used, why = graph_decision("cuda", mixed, None)
    assert not used and "Gemm" in why
    with pytest.raises(ProviderError, match="every node on the GPU"):
        graph_decision("cuda", mixed, True)
    assert graph_decision("cpu", None, None) == (False, "off (not available on cpu)")
    with pytest.raises(ProviderError, match="need --provider cuda"):
        graph_decision("cpu", None, True)
    assert graph_decision("cuda", None, None) == (False, "off (placement unknown)")
