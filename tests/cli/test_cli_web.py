from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.web import ortweb

runner = CliRunner()


def test_web_builds_a_self_contained_folder(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "site"
    res = runner.invoke(
        app, ["web", str(out), "--model", str(exported["fp32"]), "--step", str(exported["step"]), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["folder"] == str(out)
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "app.js", "preprocess.js", "stats.js", "model.onnx", "step.onnx", "config.json"} <= names
    assert set(ortweb.FILES) <= names  # onnxruntime-web's own files travel with the page
    assert json.loads((out / "config.json").read_text())["onnxruntime_web"] == ortweb.VERSION


def test_web_bad_inputs(exported: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        (["--model", str(tmp_path / "none.onnx")], "not found"),
        (["--model", str(exported["step"])], "streaming step model"),
        (["--model", str(exported["fp32"]), "--step", str(exported["fp32"])], "not an edge-lstm streaming model"),
        (["--model", str(exported["fp32"]), "--no-step", "--ort-web", str(tmp_path)], "missing ort.wasm.min.js"),
    ]
    for args, fragment in cases:
        res = runner.invoke(app, ["web", str(tmp_path / "site"), *args])
        assert res.exit_code == 1 and "Traceback" not in res.output, res.output
        (line,) = res.stderr.strip().splitlines()
        assert fragment in line, line


def test_serve_on_a_taken_port_is_one_clean_line(exported: dict[str, Path], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = runner.invoke(app, ["web", str(tmp_path / "site"), "--model", str(exported["fp32"]), "--no-step",
                                  "--serve", "--port", str(port)])  # fmt: skip
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    (line,) = res.stderr.strip().splitlines()
    assert f"cannot serve on 127.0.0.1:{port}" in line and "--port" in line
