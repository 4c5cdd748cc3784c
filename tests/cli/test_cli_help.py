"""--help says what each option is, and only that."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app

runner = CliRunner()
COMMANDS = ["train", "eval", "export", "inspect", "predict", "providers", "bench", "serve", "web", "device"]


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_placeholder(command: str) -> None:
    out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
    assert "<bool>" not in out, out


def test_help_texts_keep_their_brackets_and_name_every_provider() -> None:
    export = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "200"}).stdout
    assert "needs the [tflite] extra" in export
    train = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    assert "Images per training step" in train
    bench = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "200"}).stdout
    assert "browser-wasm" in bench and "browser-webgpu" in bench
    providers = runner.invoke(app, ["providers"]).stdout
    assert "browser-wasm" in providers and "browser-webgpu" in providers
