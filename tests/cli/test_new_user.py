"""The rough edges a new user met on a fresh clone, each pinned: a text file given as a checkpoint, a
checkpoint or a step model given to predict, a usage error, the server scenario's tables, help
metavars, the export summary's columns, README's workflow and its installs, predict's margin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from edge_lstm.bench.report import server_table
from edge_lstm.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "data" / "samples").glob("*_*.*[gp]"))


def test_a_short_text_file_is_not_a_checkpoint_at_all(tmp_path: Path) -> None:
    note = tmp_path / "model.pt"
    note.write_text("hello!!\n")  # 8 bytes
    for args in (["export", str(tmp_path / "m.onnx"), "--checkpoint", str(note)], ["eval", str(note)]):
        res = runner.invoke(app, args)
        assert res.exit_code == 1
        assert "not a checkpoint at all: it is a text file (8 bytes)" in res.output, res.output
        assert "could run code" not in res.output
    assert not (tmp_path / "m.onnx").exists()


def test_an_onnx_file_given_as_checkpoint_is_named(tmp_path: Path, exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(exported["fp32"])])
    assert res.exit_code == 1 and "looks like an ONNX model" in res.output, res.output


def test_predict_with_a_step_model_suggests_no_option_it_lacks(exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["predict", str(exported["step"]), str(SAMPLES[0])])
    assert res.exit_code == 1
    assert "streaming step model" in res.output and "export/model.onnx" in res.output, res.output
    assert " --streaming" not in res.output.replace("`eval --streaming`", "")


def test_predict_with_a_checkpoint_shows_the_export_command(trained: Path) -> None:
    res = runner.invoke(app, ["predict", str(trained), str(SAMPLES[0])])
    assert res.exit_code == 1
    assert "a PyTorch checkpoint" in res.output and f"edge-lstm export --checkpoint {trained}" in res.output
    assert "INVALID_PROTOBUF" not in res.output


def test_a_usage_error_is_one_line_with_clicks_exit_status() -> None:
    for args, fragment in (
        (["train", "--bogus"], "No such option: --bogus"),
        (["predict"], "Missing argument 'MODEL'"),
        (["trian"], "No such command 'trian'. Did you mean 'train'?"),
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], res.output
        assert "--help`" in lines[0]


def _run(rate: float, meets: bool | None) -> dict[str, Any]:
    return {
        "target": "http://127.0.0.1:8000/v2/models/edge_lstm",
        "via": "http",
        "rate": rate,
        "n": 100,
        "p50_ms": 1.0,
        "p50_ci_ms": [0.9, 1.1],
        "p90_ms": 2.0,
        "p99_ms": 3.0,
        "p99_ci_ms": [2.5, 3.5],
        "lag_p99_ms": 0.1,
        "generator_cpu": 0.2,
        "valid": True,
        "why": [],
        "meets_bound": meets,
    }


def _render(report: Any) -> str:
    console = Console(width=250, record=True)
    console.print(server_table(report))
    return console.export_text()


def test_the_server_table_keeps_validity_and_the_bound_apart() -> None:
    bounded = SimpleNamespace(
        server=[
            {
                "target": "http://127.0.0.1:8000/v2/models/edge_lstm",
                "latency_bound_ms": 10.0,
                "max_rate": 100.0,
                "trail": [_run(100, True), _run(200, False)],
            }
        ]
    )
    text = _render(bounded)
    assert "misses the bound" not in text and "yes, " not in text
    assert "p99 <= bound" in text
    rows = [ln for ln in text.splitlines() if "http" in ln and "max rate" not in ln]
    assert rows[0].rstrip(" │").endswith("yes") and rows[1].rstrip(" │").endswith("no"), text
    plain = _render(SimpleNamespace(server=[{"target": "x", "run": _run(60, None)}]))
    assert "p99 <= bound" not in plain


def test_help_uses_conventional_metavars() -> None:
    for command in ("predict", "bench", "serve", "eval"):
        out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
        assert "<list[" not in out and "{" not in out, out
    assert "edge-lstm predict [OPTIONS] MODEL INPUTS..." in runner.invoke(app, ["predict", "--help"]).stdout


def test_the_export_summary_lines_up(trained: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["export", str(tmp_path / "model.onnx"), "--checkpoint", str(trained), "--int8", "--fp16", "--ort", "--mobile"],
    )
    assert res.exit_code == 0, res.output
    rows = [ln for ln in res.output.splitlines() if " KiB" in ln]
    assert len(rows) == 6
    assert len({ln.index(" KiB") for ln in rows}) == 1 and len({ln.index(str(tmp_path)) for ln in rows}) == 1, rows


def test_predict_prints_the_margin(exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["predict", str(exported["fp32"]), *map(str, SAMPLES)])
    assert res.exit_code == 0, res.output
    for line in res.output.splitlines():
        assert re.search(r": \d \(\d+\.\d%, margin \d+\.\d points over \d\)$", line), line


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines() if ln.strip()]


def test_readme_first_command_installs_what_the_workflow_uses() -> None:
    from edge_lstm.cli.common import EXTRAS

    first = next(c for c in _readme_commands() if "edge-lstm train" in c and "pip install" in c)
    spec = next(w for w in shlex.split(first) if w.startswith(".["))
    extras = set(spec.split("[", 1)[1].rstrip("]").split(","))
    text = (REPO / "README.md").read_text()
    workflow = text.split("## The workflow", 1)[1].split("\n## ", 1)[0]
    serve_extra = re.search(r"\.\[(\w+)\]", EXTRAS["uvicorn"]).group(1)  # what a missing server names
    needs = {"torch"} | ({serve_extra} if re.search(r"edge-lstm (serve|web --serve)", workflow) else set())
    assert needs <= extras, (needs, extras)


def test_readme_names_devices_before_using_them() -> None:
    text = (REPO / "README.md").read_text()
    assert "`edge-lstm device` runs" not in text
    for name in re.findall(r"--on (\w+)", text):
        if name != "local":
            assert f"device add {name} " in text, name
