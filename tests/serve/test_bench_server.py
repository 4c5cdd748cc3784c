"""`bench` against servers: a URL measured like a model file, and MLPerf's Server scenario (Poisson
arrivals from a load generator process) against a real server and the in-process runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving import Server
from typer.testing import CliRunner

from edge_lstm.bench.server import ServerRun, max_rate
from edge_lstm.cli import app

runner = CliRunner()


def test_a_url_is_benchmarked_like_a_file(server: Server, exported: dict, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    url = f"{server.url}/v2/models/edge_lstm"
    res = runner.invoke(
        app,
        [
            "bench",
            url,
            str(exported["fp32"]),
            "--scenario",
            "single-stream,offline",
            "--batch",
            "64",
            "--min-time",
            "0.2",
            "--min-count",
            "30",
            "--rounds",
            "1",
            "--json-file",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = {(r["provider"], r["scenario"]): r for r in json.loads(out.read_text())["results"]}
    http = rows[("http", "single-stream")]
    assert http["model"] == url and http["n"] >= 30 and http["p50_ms"] > 0
    assert rows[("http", "offline")]["throughput"] > 0 and rows[("cpu", "offline")]["throughput"] > 0


def test_the_server_scenario_runs_against_a_url_and_the_runner(server: Server, exported: dict, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    url = f"{server.url}/v2/models/edge_lstm"
    res = runner.invoke(
        app,
        [
            "bench",
            url,
            str(exported["fp32"]),
            "--scenario",
            "server",
            "--rate",
            "60",
            "--min-time",
            "2",
            "--min-count",
            "100",
            "--json-file",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    runs = {e["target"]: e["run"] for e in json.loads(out.read_text())["server"]}
    http, local = runs[url], runs[str(exported["fp32"])]
    assert http["via"] == "http" and local["via"] == "in-process"
    for r in (http, local):
        assert r["n"] == 120 and r["failed"] == 0 and r["p99_ms"] is not None and r["lag_p99_ms"] is not None
    assert 0 < http["generator_cpu"] < 1  # the generator's own cost, reported
    assert "server scenario" in res.stdout


def test_no_rate_meeting_the_bound_says_why_and_fails(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    url = f"{server.url}/v2/models/edge_lstm"
    args = ["bench", url, "--scenario", "server", "--latency-bound", "0.001", "--min-time", "0.3"]
    res = runner.invoke(app, [*args, "--min-count", "20", "--json-file", str(out)])
    assert res.exit_code == 1, res.output
    assert f"{url}: no rate met the bound: at " in res.output and "Traceback" not in res.output
    (entry,) = [e for e in json.loads(out.read_text())["server"] if "max_rate" in e]  # written all the same
    assert entry["max_rate"] is None and entry["none_because"].startswith("no rate met the bound")


def test_the_latency_bound_search_finds_the_highest_passing_rate() -> None:
    def measure(rate: float) -> ServerRun:
        ok = rate <= 700
        return ServerRun(
            "t",
            "fake",
            rate,
            1,
            200,
            0,
            1.0,
            1.0,
            5.0 if ok else 50.0,
            [None, None],
            [None, None],
            0.1,
            None,
            True,
            [],
            ok,
        )

    best, trail = max_rate(measure, 100)
    assert best is not None and 650 <= best.rate <= 700
    assert [r.rate for r in trail][:4] == [100, 200, 400, 800]
    nothing, _ = max_rate(lambda rate: measure(1e9), 100)
    assert nothing is None


@pytest.mark.parametrize(
    "target, fragment",
    [
        ("http://127.0.0.1:9/v2/models/edge_lstm", "cannot reach the server"),
        ("http://127.0.0.1:9/models/edge_lstm", "expected http://HOST:PORT/v2/models/NAME"),
        ("STEP", "not an edge-lstm classifier"),
    ],
)
def test_bad_servers_are_one_line(server: Server, target: str, fragment: str) -> None:
    url = f"{server.url}/v2/models/edge_lstm_step" if target == "STEP" else target
    res = runner.invoke(app, ["bench", url, "--scenario", "single-stream", "--min-count", "5", "--min-time", "0"])
    assert res.exit_code == 1 and fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output


def test_streams_are_driven_over_the_websocket(server: Server, exported: dict) -> None:
    url = f"{server.url}/v2/models/edge_lstm_step"
    res = runner.invoke(app, ["bench", url, "--streams", "6", "--min-time", "1", "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.output.strip().splitlines()[-1])["streams"][0]
    assert run["streams"] == 6 and run["rows"] > 6 * 28 and run["errors"] == 0 and run["rows_per_s"] > 0
    assert run["row_p99_ms"] is not None and run["clients"] == 2
    for target, message in (
        (f"{server.url}/v2/models/edge_lstm", "drives a step model"),
        (str(exported["step"]), "give the URL of a step model"),
    ):
        res = runner.invoke(app, ["bench", target, "--streams", "2", "--min-time", "1"])
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output
