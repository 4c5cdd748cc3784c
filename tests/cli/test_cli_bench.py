from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.environment import usable_cores

runner = CliRunner()


def test_cli_bench_with_torch_writes_every_output(
    tmp_path: Path, exported: dict[str, Path], trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_lstm.cli.progress import PhasePrinter

    monkeypatch.setattr(PhasePrinter, "QUIET_S", 0.0)  # every phase said (a real run says those over 1 s)
    out = tmp_path / "r"
    args = [
        "bench",
        str(exported["fp32"]),
        str(exported["int8"]),
        "--torch",
        "--torch-checkpoint",
        str(trained),
        "--batch",
        "1,64",
        "--min-time",
        "0.1",
        "--min-count",
        "20",
        "--rounds",
        "2",
        "--warmup",
        "2",
        "--streaming",
        str(exported["step"]),
        "--json-file",
        f"{out}.json",
        "--csv",
        f"{out}.csv",
        "--plot",
        f"{out}.png",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "edge-lstm bench" in res.stdout and "nearest-rank" in res.stdout
    # not a terminal: a phase is a line on stderr, with the time since the start (PyTorch's too)
    phases = [ln for ln in res.stderr.splitlines() if ln.startswith("benchmarking: ")]
    assert "opening the models (and PyTorch's)" in phases[0] and "s elapsed)" in phases[0]
    assert any("warm-up" in p and "torch" in p for p in phases) and any("round 1/" in p for p in phases), phases
    report = json.loads(Path(f"{out}.json").read_text())
    rows = report["results"]
    for r in rows:
        assert {
            "model",
            "provider",
            "scenario",
            "batch",
            "threads",
            "n",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "mean_ms",
            "throughput",
        } <= r.keys()
    assert {r["provider"] for r in rows} == {"torch", "cpu"}
    assert {(r["scenario"], r["batch"]) for r in rows} == {
        ("single-stream", 1),
        ("offline", 1),
        ("offline", 64),
        ("streaming-step", 1),
    }
    ort_rows = [r for r in rows if r["provider"] == "cpu" and r["scenario"] != "streaming-step"]
    assert all(r["p50_vs_torch"] > 0 and r["throughput_vs_torch"] > 0 for r in ort_rows)
    stream = next(r for r in rows if r["scenario"] == "streaming-step")
    assert stream["answer_vs_full_sequence"] > 0 and stream["last_row_to_answer_p50_ms"] > 0
    env = report["environment"]
    assert env["cores"] >= 1 and env["onnxruntime"] and env["peak_rss_mb"] > 0 and "cpu" in env
    assert all(len(r["model_sha256"]) == 64 for r in rows)
    assert "raw_ms" not in rows[0]
    best = report["best"]
    assert set(best) == {"single-stream b1", "offline b1", "offline b64", "streaming-step b1"}
    off = best["offline b64"]
    assert off["value"] == max(r["throughput"] for r in rows if (r["scenario"], r["batch"]) == ("offline", 64))
    assert "fastest  single-stream b1:" in res.stdout
    assert "threads  single-stream b1: auto: 1 intra-op thread\n" in res.stdout  # no chunk talk at batch 1
    assert "threads  offline b64: auto: 1 intra-op thread\n" in res.stdout  # 64 images: one chunk
    assert all(len(line) <= 200 for line in res.stdout.splitlines())  # a pipe gets a 200-column table
    with open(f"{out}.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert Path(f"{out}.png").read_bytes()[:4] == b"\x89PNG"


def test_concurrency_and_interval(exported: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--scenario",
            "single-stream",
            "--concurrency",
            "2",
            "--interval-ms",
            "1",
            "--min-time",
            "0.1",
            "--min-count",
            "10",
            "--rounds",
            "1",
            "--json-file",
            str(tmp_path / "c.json"),
            "--raw",
        ],
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads((tmp_path / "c.json").read_text())["results"]
    assert row["concurrency"] == 2 and row["interval_ms"] == 1 and len(row["raw_ms"]) == row["n"] >= 20


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--provider", "cuda"], "onnxruntime-gpu"),
        (["--batch", "0"], "batch sizes must be >= 1"),
        (["--batch", "x"], "comma-separated whole numbers"),
        (["--threads", str(usable_cores() + 1)], "--force"),
        (["--scenario", "warp"], "unknown scenario"),
        (["--scenario", "server"], "needs --rate R"),
        (["--scenario", "server", "--rate", "-5"], "--rate must be positive"),
        (["--min-count", "0"], "--min-count"),
    ],
)
def test_bench_bad_options(exported: dict[str, Path], args: list[str], fragment: str) -> None:
    res = runner.invoke(app, ["bench", str(exported["fp32"]), *args])
    assert res.exit_code == 1 and fragment in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_bench_missing_model(tmp_path: Path) -> None:
    res = runner.invoke(app, ["bench", str(tmp_path / "none.onnx")])
    assert res.exit_code == 1 and "not found" in res.stderr


def test_bench_unwritable_output_fails_before_measuring(exported: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["bench", str(exported["fp32"]), "--min-time", "30", "--plot", str(blocker / "p.png")])
    assert res.exit_code == 1 and "--plot" in res.stderr and "not writable" in res.stderr
    assert "edge-lstm bench" not in res.stdout  # nothing was measured


def test_profile_and_memory_are_reported(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    res = runner.invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--streaming",
            str(exported["step"]),
            "--scenario",
            "single-stream",
            "--min-count",
            "20",
            "--min-time",
            "0",
            "--rounds",
            "1",
            "--warmup",
            "2",
            "--profile",
            "--json-file",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["results"]
    for r in rows:
        ops = r["profile"]["operators"]
        assert "LSTM" in ops and abs(sum(v["share"] for v in ops.values()) - 1) < 0.01
        assert r["model_size_bytes"] > 100_000 and r["session_growth_mb"] is not None and r["peak_rss_mb"] > 0
    assert "profile  " in res.stdout and "memory   " in res.stdout
