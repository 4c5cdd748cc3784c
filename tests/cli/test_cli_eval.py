from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edge_lstm.cli import app

runner = CliRunner()


def test_eval_streaming_curve(exported: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "curve.png"
    res = runner.invoke(
        app, ["eval", str(exported["step"]), "--streaming", "--limit", "500", "--plot", str(png), "--json"]
    )
    assert res.exit_code == 0, res.output
    curve = json.loads(res.stdout.splitlines()[-1])
    assert curve["rows"] == list(range(1, 29)) and len(curve["accuracy_after_rows"]) == 28
    full = json.loads(
        runner.invoke(app, ["eval", str(exported["fp32"]), "--limit", "500", "--json"]).stdout.splitlines()[-1]
    )
    assert curve["accuracy_after_rows"][-1] == full["accuracy"]
    assert curve["accuracy_after_rows"][-1] > curve["accuracy_after_rows"][0]
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows, accuracy = [ln.split() for ln in res.stdout.splitlines() if ln.startswith(("  rows ", "  accuracy "))]
    assert rows == ["rows", "3", "6", "8", "11", "14", "17", "20", "22", "25", "28"]  # a tenth at a time
    assert accuracy[-1] == f"{100 * full['accuracy']:.2f}%"


def test_eval_streaming_on_a_classifier_is_refused(exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["eval", str(exported["fp32"]), "--streaming"])
    assert res.exit_code == 1 and "not an edge-lstm streaming model" in res.stderr
