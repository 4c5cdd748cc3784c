from __future__ import annotations

from edge_lstm.bench.results import ResultRow, add_ratios, best_per_scenario
from edge_lstm.bench.targets import TargetInfo


def row(provider: str, scenario: str, batch: int, threads: int, p50: float, thr: float) -> ResultRow:
    info = TargetInfo(model="m.onnx", provider=provider, scenario=scenario, batch=batch, threads=threads)
    return ResultRow(info, 100, p50, p50, p50, 0.0, 0.0, p50, p50, p50, p50, None, [None, None], [None, None], thr)


def test_gpu_rows_compare_with_the_fastest_pytorch_on_cuda_whatever_the_threads() -> None:
    # The H100 run's offline cuda row (threads 1) had no ratio: PyTorch CUDA ran with 16 threads.
    rows = [
        row("torch", "offline", 1024, 16, 15.6, 64_800),
        row("torch-cuda", "offline", 1024, 16, 0.97, 1_011_298),
        row("torch-cuda-graph", "offline", 1024, 16, 0.80, 1_200_000),
        row("cuda", "offline", 1024, 1, 0.53, 1_833_518),
        row("cpu", "offline", 1024, 16, 8.0, 128_787),
        row("torch-cuda", "single-stream", 1, 1, 0.231, 3784),
        row("torch-cuda-graph", "single-stream", 1, 1, 0.108, 9000),
        row("cuda", "single-stream", 1, 1, 0.138, 7000),
    ]
    add_ratios(rows)
    cuda_off, cpu_off, cuda_ss = rows[3], rows[4], rows[7]
    assert cuda_off.throughput_vs_torch is not None
    assert abs(cuda_off.throughput_vs_torch - 1_833_518 / 1_200_000) < 1e-9  # vs the CUDA graph, the faster
    assert abs(cpu_off.throughput_vs_torch - 128_787 / 64_800) < 1e-9  # CPU rows: PyTorch on the CPU
    assert abs(cuda_ss.p50_vs_torch - 0.138 / 0.108) < 1e-9


def test_best_and_optional_keys() -> None:
    rows = [row("cpu", "single-stream", 1, 1, 0.2, 5000), row("cpu", "single-stream", 1, 2, 0.3, 3000)]
    assert best_per_scenario(rows)["single-stream b1"]["threads"] == 1
    d = rows[0].to_dict()
    assert d["provider"] == "cpu" and "raw_ms" not in d  # absent when it does not apply
    # The ratios the table shows are always keys of a JSON row (null where nothing compares).
    assert d["p50_vs_torch"] is None and d["throughput_vs_torch"] is None


def test_openvino_rows_compare_with_the_fastest_pytorch_on_the_cpu() -> None:
    # OpenVINO keeps its own thread pool: its offline row (threads 1, as onnxruntime was told) had no
    # ratio on the Xeon because PyTorch ran with 16 threads (bench/results/h100/openvino_bench.json).
    rows = [
        row("torch", "offline", 1024, 16, 17.6, 58_854),
        row("openvino", "offline", 1024, 1, 8.7, 115_018),
        row("torch", "single-stream", 1, 1, 0.417, 2385),
        row("openvino", "single-stream", 1, 1, 0.347, 2660),
    ]
    add_ratios(rows)
    assert rows[1].throughput_vs_torch is not None and abs(rows[1].throughput_vs_torch - 115_018 / 58_854) < 1e-9
    assert rows[3].p50_vs_torch is not None and abs(rows[3].p50_vs_torch - 0.347 / 0.417) < 1e-9
