from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edge_lstm import contract
from edge_lstm.cli import app
from edge_lstm.training.checkpoint import load_model, save

runner = CliRunner()


def _fails_cleanly(args: list[str], fragment: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code != 0
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.output


def test_eval_onnx_matches_checkpoint(exported: dict[str, Path], trained: Path) -> None:
    a = runner.invoke(app, ["eval", str(trained), "--json"])
    b = runner.invoke(app, ["eval", str(exported["fp32"]), "--json"])
    assert a.exit_code == 0 and b.exit_code == 0, b.output
    ra, rb = json.loads(a.stdout.splitlines()[-1]), json.loads(b.stdout.splitlines()[-1])
    assert ra["accuracy"] == rb["accuracy"] and rb["backend"] == "cpu"


def test_inspect(exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["inspect", str(exported["int8"]), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout.splitlines()[-1])
    assert info["inputs"] == [{"name": "images", "dtype": "float32", "shape": ["batch", 28, 28]}]
    assert info["operators"]["DynamicQuantizeLSTM"] == 1 and info["parameters"] > 0
    assert info["metadata"][contract.META_VARIANT] == "int8"
    assert "DynamicQuantizeLSTM" in info["placement"]["cpu"]
    assert "placement  cpu:" in res.stdout
    res = runner.invoke(app, ["inspect", str(exported["ort"])])
    assert res.exit_code == 0 and "images" in res.stdout


def test_export_bad_inputs(tmp_path: Path, trained: Path) -> None:
    _fails_cleanly(["export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "none.pt")], "not found")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    _fails_cleanly(
        ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "bad.pt")],
        "not a checkpoint at all: it is a text file",
    )
    save(
        tmp_path / "arch.pt",
        {
            "model_config": {"n_inputs": 28, "n_steps": 28, "n_in_units": 32, "n_hidden": 128, "n_classes": 10},
            "state_dict": load_model(trained)[1]["state_dict"],
        },
    )
    _fails_cleanly(["export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "arch.pt")], "do not fit")
    (tmp_path / "file").write_text("x")
    _fails_cleanly(
        ["export", str(tmp_path / "file" / "m.onnx"), "--checkpoint", str(trained), "--no-verify"], "not writable"
    )
    _fails_cleanly(["export", str(tmp_path / "m.txt"), "--checkpoint", str(trained)], "must end in .onnx")


def test_eval_and_inspect_reject_bad_files(tmp_path: Path, exported: dict[str, Path]) -> None:
    data = exported["fp32"].read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.onnx").write_text("hello, not a model")
    for name in ("cut.onnx", "text.onnx"):
        _fails_cleanly(["eval", str(tmp_path / name), "--limit", "10"], name)
        _fails_cleanly(["inspect", str(tmp_path / name)], name)
    _fails_cleanly(["inspect", str(tmp_path / "missing.onnx")], "not found")


def test_folders_given_as_files_are_named_as_such(tmp_path: Path) -> None:
    _fails_cleanly(["eval", str(tmp_path)], "is a folder, not a file")
    _fails_cleanly(["inspect", str(tmp_path)], "is a folder, not a file")
    _fails_cleanly(["export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path)], "is a folder, not a file")
