"""The C library (export --mcu) on this machine, from random weights of every shape the architecture
allows: fp32 equals onnxruntime on the same ONNX graph, int8 stays close, the step API ends where
classify does, the int8 layout is the one SXTB16 unpacks, and bad inputs are one line each. No
training and no Arm toolchain: these run wherever a C compiler does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from edge_lstm.arch import Arch
from edge_lstm.cli import app
from edge_lstm.errors import ConfigError
from edge_lstm.export.graph import set_metadata
from edge_lstm.export.graph_build import classifier_graph
from edge_lstm.mcu import board, check_fits, codegen, load, write_library
from edge_lstm.mcu.firmware import library_size
from edge_lstm.mcu.host import HostLibrary

runner = CliRunner()
SHAPES = [  # (cell, layers, steps, features, hidden, in_units, fuse)
    ("lstm", 1, 28, 28, 32, 64, True),
    ("gru", 2, 12, 6, 16, 8, True),
    ("lstm", 3, 10, 3, 8, 16, False),
    ("gru", 1, None, 40, 12, 8, False),  # more features than input units: the input layer stays apart
]


def random_model(
    tmp: Path, cell: str, layers: int, steps: int | None, features: int, hidden: int, units: int, fuse: bool
) -> Path:
    arch = Arch(
        steps=steps, features=features, classes=("a", "b", "c"), cell=cell, layers=layers, hidden=hidden, in_units=units
    )
    rng = np.random.default_rng(7)
    g = arch.gates * hidden
    state = {"fc_in.weight": rng.normal(0, 0.3, (units, features)), "fc_in.bias": rng.normal(0, 0.1, units)}
    for k in range(layers):
        state[f"rnn.weight_ih_l{k}"] = rng.normal(0, 0.3, (g, units if k == 0 else hidden))
        state[f"rnn.weight_hh_l{k}"] = rng.normal(0, 0.3, (g, hidden))
        state[f"rnn.bias_ih_l{k}"] = rng.normal(0, 0.1, g)
        state[f"rnn.bias_hh_l{k}"] = rng.normal(0, 0.1, g)
    state["fc_out.weight"], state["fc_out.bias"] = rng.normal(0, 0.5, (3, hidden)), rng.normal(0, 0.1, 3)
    graph = classifier_graph({k: v.astype(np.float32) for k, v in state.items()}, arch, fuse)
    set_metadata(graph, {"edge_lstm.arch": arch.to_json(), "edge_lstm.variant": "fp32"})
    path = tmp / "model.onnx"
    onnx.save(graph, str(path))
    return path


def ort_logits(path: Path, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"sequences": x} | ({"lengths": lengths.astype(np.int32)} if lengths is not None else {})
    return np.asarray(session.run(None, feeds)[0])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}{s[1]}-{'fused' if s[6] else 'apart'}")
def test_the_c_library_computes_the_onnx_graph(shape: tuple, tmp_path: Path) -> None:
    path = random_model(tmp_path, *shape)
    model = load(path)
    steps = model.arch.steps or 15
    x = np.random.default_rng(1).normal(0, 1, (24, steps, model.arch.features)).astype(np.float32)
    lengths = None if model.arch.steps else np.random.default_rng(2).integers(1, steps + 1, 24)
    expected = ort_logits(path, x, lengths)
    for variant in codegen.VARIANTS:
        write_library(model, tmp_path / variant, variant)
        lib = HostLibrary(tmp_path / variant, model.arch.features, model.arch.n_classes)
        got = lib.classify(x, lengths)
        if variant == "fp32":
            np.testing.assert_allclose(got, expected, atol=1e-4)
        else:  # int8 weights, int16 activations: close, not equal
            assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max() + 0.05
        n0 = int(lengths[0]) if lengths is not None else steps
        np.testing.assert_array_equal(lib.steps(x[0, :n0])[-1], got[0])  # row by row, exactly
        lib.close()


def test_the_int8_layout_is_the_one_sxtb16_unpacks() -> None:
    w = np.arange(-30, 30, dtype=np.float64).reshape(6, 10)  # 6 rows (padded to 8), 10 columns (padded to 12)
    q, scale = codegen.quantize_rows(w)
    assert q.shape == (8, 12) and scale.shape == (6,)
    blocks = q.reshape(2, 3, 4, 4)  # (block, group, row in block, word)
    rows = np.zeros((8, 12), np.int8)
    for b in range(2):
        for g in range(3):
            for r in range(4):
                word = blocks[b, g, r]
                lo, hi = word[[0, 2]], word[[1, 3]]  # SXTB16: bytes 0, 2; rotated by 8: bytes 1, 3
                rows[4 * b + r, 4 * g : 4 * g + 4] = [lo[0], lo[1], hi[0], hi[1]]
    expected = np.clip(np.rint(w / scale[:, None]), -127, 127)
    np.testing.assert_array_equal(rows[:6, :10], expected)
    assert not rows[6:].any() and not rows[:, 10:].any()


def test_a_model_over_a_board_s_budget_is_one_line(tmp_path: Path) -> None:
    model = load(random_model(tmp_path, "lstm", 1, 28, 28, 256, 64, True))
    write_library(model, tmp_path / "fp32", "fp32")
    flash, ram, _ = library_size(tmp_path / "fp32", board("nucleo-l432kc"))
    assert flash > 256 * 1024
    with pytest.raises(ConfigError, match=r"does not fit the board nucleo-l432kc: it needs flash \d"):
        check_fits(board("nucleo-l432kc"), flash, ram, "the fp32 C library")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["device", "add", "x", "qemu:mps2-an999"], "unknown board 'mps2-an999'"),
        (["device", "add", "x", "serial:///dev/ttyACM0"], "needs ?board=NAME"),
        (["export", "--board", "m4"], "--board checks the C libraries of --mcu DIR"),
        (["export", "--mcu", "out", "--board", "esp32"], "unknown board 'esp32'"),
        (["eval", "--on", "qemu:mps2-an386", "nope.onnx"], "no such model file"),
    ],
)
def test_bad_microcontroller_options_are_one_line(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and says in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_file_that_is_not_an_edge_lstm_graph_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ConfigError, match="not an ONNX file"):
        load(tmp_path / "junk.onnx")


def test_the_example_program_streams_a_sequence_from_stdin(tmp_path: Path) -> None:
    """The folder builds as a program with the host's compiler, and its example answers as the library."""
    import subprocess

    from edge_lstm.mcu.host import host_compiler

    model = load(random_model(tmp_path, "gru", 2, 12, 6, 16, 8, True))
    write_library(model, tmp_path / "int8", "int8")
    assert sorted(p.name for p in (tmp_path / "int8").iterdir()) == sorted(codegen.FILES)
    exe = tmp_path / "classify"
    sources = [str(tmp_path / "int8" / f) for f in ("example.c", "edge_lstm.c", "edge_lstm_model.c")]
    subprocess.run([host_compiler(), "-O2", "-std=c99", "-Wall", "-Werror", "-o", str(exe), *sources], check=True)
    x = np.random.default_rng(3).normal(0, 1, (12, 6)).astype(np.float32)
    out = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True).stdout.decode()
    lib = HostLibrary(tmp_path / "int8", 6, 3)
    expected = ["abc"[k] for k in lib.steps(x).argmax(1)]
    lib.close()
    assert out.splitlines() == [f"row {t + 1}: {c}" for t, c in enumerate(expected)] + [f"class: {expected[-1]}"]
    empty = subprocess.run([str(exe)], input=b"", capture_output=True)
    assert empty.returncode == 1 and b"no rows on stdin" in empty.stderr
