"""edge-lstm's firmware on QEMU's Cortex-M4F (mps2-an386) and Cortex-M7 (mps2-an500), and over a serial
port (QEMU's UART on a pty: what a board's USB serial looks like): the firmware answers as onnxruntime
(fp32, within 1e-4) and as the int8 C built here (bit for bit) on MNIST and BasicMotions, its step API
row by row ends where classify does, bench reports instructions, flash and RAM, and a missing
toolchain, a board that does not answer, a board running another model and a model over a board's
budget are one line each. Tiny models: the full one is bench/mcu.py's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.data import sequences
from edge_lstm.devices.fleet import eval_on
from edge_lstm.export import ExportConfig, export
from edge_lstm.mcu import board
from edge_lstm.mcu.firmware import build
from edge_lstm.mcu.qemu import QemuBoard
from edge_lstm.training import TrainConfig, override, preset_config, train

REPO = Path(__file__).resolve().parents[2]
SERIES = REPO / "data" / "series"
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def toolchain() -> None:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        if os.environ.get("EDGE_LSTM_REQUIRE_MCU"):
            raise AssertionError(f"{', '.join(missing)} not installed")
        pytest.skip("needs apt-get install gcc-arm-none-eabi qemu-system-arm")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """A tiny MNIST LSTM and a two-layer GRU on BasicMotions (6 features x 100 steps), with their C libraries."""
    out = tmp_path_factory.mktemp("mcu")
    mnist = train(TrainConfig(subset=3000, test_subset=300, epochs=1, hidden=24), out / "mnist")
    given = dict(
        data=str(SERIES / "BasicMotions_TRAIN.ts"), test_data=str(SERIES / "BasicMotions_TEST.ts"), epochs=25, hidden=16
    )
    motions = train(override(preset_config("sequences"), **given, cell="gru", layers=2), out / "motions")
    files = {}
    for name, run in (("mnist", mnist), ("motions", motions)):
        export(ExportConfig(output=out / f"{name}.onnx", checkpoint=run.checkpoint, mcu=out / f"{name}-mcu"))
        files[name] = {
            "onnx": out / f"{name}.onnx",
            "int8": out / f"{name}-mcu" / "int8",
            "fp32": out / f"{name}-mcu" / "fp32",
        }
    return files


@pytest.mark.parametrize("machine", ["mps2-an386", "mps2-an500"])
@pytest.mark.parametrize("name", ["mnist", "motions"])
def test_the_firmware_answers_as_onnxruntime_and_the_int8_c_here(models: dict, name: str, machine: str) -> None:
    data = None if name == "mnist" else SERIES / "BasicMotions_TEST.ts"
    r = eval_on(f"qemu:{machine}", models[name]["onnx"], limit=120, data=data, progress=lambda m: None)
    assert r["device_info"]["emulated"] and r["device_info"]["cpu"] == board(machine).cpu
    by = {v["variant"]: v for v in r["variants"]}
    assert set(by) == {"fp32", "int8"}
    assert by["fp32"]["reference"] == "onnxruntime" and by["fp32"]["max_abs_diff"] <= 1e-4
    assert by["int8"]["max_abs_diff"] == 0.0  # the same C, the same float rounding: bit for bit
    for v in by.values():
        assert v["same_class"] == v["n"] == (120 if name == "mnist" else 40)
        assert v["accuracy_there"] == v["accuracy_here"]
        assert (
            v["instructions_per_inference"] > 10_000 and v["footprint"]["library_flash"] > v["footprint"]["library_ram"]
        )
    assert by["int8"]["footprint"]["library_flash"] < by["fp32"]["footprint"]["library_flash"]


@pytest.mark.parametrize("name", ["m4", "m7"])
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_the_step_api_on_the_board_ends_where_classify_does(
    models: dict, variant: str, name: str, tmp_path: Path
) -> None:
    seqs = sequences.load(SERIES / "BasicMotions_TEST.ts")
    elf, _ = build(models["motions"][variant], board(name), tmp_path, 100)
    with QemuBoard(elf, board(name)) as fw:
        for seq in seqs.x[:3]:
            whole, _ = fw.classify(seq)
            fw.reset()
            rows = [fw.step(row)[0] for row in seq]
            np.testing.assert_array_equal(rows[-1], whole)
        assert fw.refresh().stack_peak < 2048


def test_bench_on_a_qemu_board_reports_instructions_flash_and_ram(models: dict, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app, ["bench", str(models["mnist"]["onnx"]), "--on", "qemu:mps2-an386", "--json-file", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "edge-lstm bench, microcontrollers" in result.output and "M instr." in result.output
    rows = {r["variant"]: r for r in json.loads(out.read_text())["mcu"]}
    for r in rows.values():
        assert r["unit"] == "instructions" and r["per_inference"] > 27 * r["per_step"] * 0.9 > 0
        assert 0 < r["ram"] < 8192
    assert rows["int8"]["flash"] < rows["fp32"]["flash"] / 2


def test_a_board_over_serial_answers_as_on_qemu(models: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real board's path (serial://, termios), with QEMU's UART on a pty standing in for the board."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    library = models["mnist"]["int8"]
    elf, _ = build(library, board("m4"), tmp_path / "fw", 28)
    log = tmp_path / "qemu.log"
    with log.open("wb") as sink:
        qemu = subprocess.Popen(
            [
                "qemu-system-arm",
                "-M",
                "mps2-an386",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "pty",
                "-kernel",
                str(elf),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        pty = None
        for _ in range(200):
            if m := re.search(r"(/dev/pts/\d+)", log.read_text()):
                pty = m.group(1)
                break
            time.sleep(0.05)
        assert pty is not None, log.read_text()
        url = f"serial://{pty}?board=m4&timeout=20"
        result = runner.invoke(app, ["eval", "--on", url, str(library), "--limit", "30"])
        assert result.exit_code == 0, result.output
        assert re.search(r"int8: accuracy [\d.]+% on 30 test cases.*same class for 30 of 30", result.output), (
            result.output
        )
        assert "cycles an inference" in result.output  # a board's SysTick counts cycles, not instructions
        other = runner.invoke(app, ["eval", "--on", url, str(models["mnist"]["fp32"]), "--limit", "5"])
        assert other.exit_code == 1 and "runs another model; flash " in other.output, other.output
        elf = Path(re.search(r"flash (\S+fw\.elf) first", other.output).group(1))  # type: ignore[union-attr]
        assert elf.is_file() and elf.parent.name == "fp32"  # kept for the user to flash
    finally:
        qemu.kill()
        qemu.wait()


def test_a_board_that_does_not_answer_is_one_line(
    models: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    master, slave = os.openpty()  # a port nobody answers on
    try:
        url = f"serial://{os.ttyname(slave)}?board=m4&timeout=1"
        result = runner.invoke(app, ["eval", "--on", url, str(models["mnist"]["int8"]), "--limit", "5"])
    finally:
        os.close(master)
        os.close(slave)
    assert result.exit_code == 1 and "did not answer within 1 s" in result.output, result.output
    assert "if it has no edge-lstm firmware yet, flash " in result.output and "Traceback" not in result.output
    assert list(tmp_path.glob("edge-lstm/firmware/*/int8/fw.elf"))  # what to flash, kept


def test_a_missing_toolchain_is_one_line(models: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    result = runner.invoke(app, ["eval", "--on", "qemu:mps2-an386", str(models["mnist"]["onnx"]), "--limit", "5"])
    assert result.exit_code == 1 and "arm-none-eabi-gcc not found" in result.output, result.output
    assert "apt-get install gcc-arm-none-eabi" in result.output


def test_export_refuses_a_model_over_the_board_s_budget_and_keeps_what_fits(tmp_path: Path) -> None:
    run = train(TrainConfig(subset=256, test_subset=100, epochs=1, hidden=160), tmp_path / "run")
    result = runner.invoke(
        app,
        [
            "export",
            str(tmp_path / "m.onnx"),
            "--checkpoint",
            str(run.checkpoint),
            "--mcu",
            str(tmp_path / "mcu"),
            "--board",
            "nucleo-l432kc",
            "--no-verify",
        ],
    )
    assert result.exit_code == 1, result.output
    assert (
        "mcu-fp32: the fp32 C library (LSTM 160) does not fit the board nucleo-l432kc: it needs flash" in result.output
    )
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "mcu" / "int8" / "edge_lstm.h").is_file()
    assert not (tmp_path / "mcu" / "fp32").exists()


def test_device_info_and_setup_of_a_microcontroller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert runner.invoke(app, ["device", "add", "m7", "qemu:mps2-an500"]).exit_code == 0
    info = runner.invoke(app, ["device", "info", "m7", "--json"])
    assert info.exit_code == 0 and "cortex-m7" in info.output and "QEMU counts instructions" in info.output
    found = json.loads(info.output.strip().splitlines()[-1])
    assert found["board"] == "m7" and found["flash_kb"] == 1024 and found["arm_gcc"]
    assert runner.invoke(app, ["device", "setup", "m7"]).exit_code == 0
