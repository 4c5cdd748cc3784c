"""Hostile inputs a user can give, through the CLI as a user would: every one gets exit status 1 (130
for Ctrl-C), ONE line on stderr that names the file and says what is wrong, no traceback, and leaves
the files on disk as they were. Inputs are generated here; nothing large is committed."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import ctrl_c_reaches_python
from onnx import TensorProto, helper
from PIL import Image
from typer.testing import CliRunner

from edge_lstm import contract
from edge_lstm.cli import app
from edge_lstm.data import MnistSplit

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_clean_line(args: list[str], fragment: str, name: str, folder: Path) -> None:
    before = snapshot(folder)
    res = runner.invoke(app, args)
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 1, (args, res.output)
    assert len(err) == 1 and err[0].startswith("error: "), (args, res.stderr)
    assert name in err[0] and fragment in err[0], (args, err)
    assert "Traceback" not in res.output
    assert snapshot(folder) == before, args


def graph_model(
    inputs: list[tuple[str, int, list[int | str]]],
    outputs: list[tuple[str, int, list[int | str]]],
    meta: dict[str, str] | None = None,
) -> bytes:
    nodes = [helper.make_node("Identity", [inputs[0][0]], [o[0]]) for o in outputs]
    graph = helper.make_graph(
        nodes,
        "foreign",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    return model.SerializeToString()


META = {contract.META_KIND: "classifier"}
F = TensorProto.FLOAT


def bad_model_files(folder: Path, exported: dict[str, Path]) -> dict[str, tuple[bytes | None, str]]:
    """name -> (content, what the one line must say); None content: a folder."""
    real = exported["fp32"].read_bytes()
    bad_text = bytearray(real)
    bad_text[bad_text.rfind(b"fp32")] = 0xE6  # found by the fuzzer: invalid UTF-8 in the metadata
    no_meta = onnx.load_from_string(real)
    del no_meta.metadata_props[:]
    return {
        "truncated.onnx": (real[: len(real) // 3], "not a loadable"),
        "random.onnx": (np.random.default_rng(0).bytes(5000), "not a loadable"),
        "text.onnx": (b"hello, this is not a model\n", "not a loadable"),
        "empty.onnx": (b"", "empty file"),
        "cut.ort": (exported["ort"].read_bytes()[:3000], "not a loadable"),
        "folder.onnx": (None, "is a folder"),
        "other_names.onnx": (
            graph_model([("x", F, ["batch", 28, 28])], [("y", F, ["batch", 28, 28])], META),
            "inputs are ['x']",
        ),
        "identity_1x5.onnx": (
            graph_model([("images", F, [1, 5])], [("logits", F, [1, 5])], META),
            "input 'images' has shape (1, 5)",
        ),
        "logits_28x28.onnx": (
            graph_model([("images", F, ["batch", 28, 28])], [("logits", F, ["batch", 28, 28])], META),
            "output 'logits' has shape (batch, 28, 28)",
        ),
        "int_input.onnx": (
            graph_model(
                [("images", TensorProto.INT64, ["batch", 28, 28])], [("logits", TensorProto.INT64, ["batch", 10])], META
            ),
            "input 'images' is int64",
        ),
        "no_metadata.onnx": (no_meta.SerializeToString(), "no edge_lstm.kind metadata"),
        "bad_metadata.onnx": (bytes(bad_text), "metadata is not valid text"),
        "step_as_classifier.onnx": (exported["step"].read_bytes(), "streaming step model"),
    }


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "predict": lambda m, pic: ["predict", str(m), str(pic)],
    "eval": lambda m, pic: ["eval", str(m), "--limit", "10"],
    "inspect": lambda m, pic: ["inspect", str(m)],
    "bench": lambda m, pic: [
        "bench",
        str(m),
        "--scenario",
        "single-stream",
        "--min-time",
        "0",
        "--min-count",
        "2",
        "--rounds",
        "1",
        "--warmup",
        "0",
    ],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_checks_the_whole_model_contract(
    command: str, exported: dict[str, Path], tmp_path: Path, test_split: MnistSplit
) -> None:
    pic = tmp_path / "digit.png"
    Image.fromarray(test_split.images[0]).save(pic)
    for name, (content, fragment) in bad_model_files(tmp_path, exported).items():
        if command == "inspect" and name == "step_as_classifier.onnx":
            continue  # inspect describes either kind of edge-lstm model
        path = tmp_path / name
        if content is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(content)
        one_clean_line(COMMANDS[command](path, pic), fragment, name, tmp_path)
    one_clean_line(COMMANDS[command](tmp_path / "missing.onnx", pic), "not found", "missing.onnx", tmp_path)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for a huge picture with almost no data: opening it is cheap, decoding it is not."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    import struct
    import zlib

    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_pictures_and_arrays_each_get_one_line_and_the_others_are_answered(
    exported: dict[str, Path], tmp_path: Path, test_split: MnistSplit
) -> None:
    digit = test_split.images[0]
    good = tmp_path / "good.png"
    Image.fromarray(digit).save(good)
    files: dict[str, tuple[Callable[[Path], None], str]] = {
        "truncated.png": (lambda p: p.write_bytes(good.read_bytes()[:40]), "not a readable image"),
        "empty.png": (lambda p: p.write_bytes(b""), "empty file"),
        "bomb.png": (lambda p: p.write_bytes(png_claiming(20000, 20000)), "megapixel limit"),
        "white.png": (lambda p: Image.new("L", (60, 60), 255).save(p), "blank"),
        "black.png": (lambda p: Image.new("L", (28, 28), 0).save(p), "blank"),
        "grey.jpg": (lambda p: Image.new("RGB", (50, 40), (128, 128, 128)).save(p), "blank"),
        "nan.npy": (lambda p: np.save(p, np.full((28, 28), np.nan, np.float32)), "NaN"),
        "float64.npy": (lambda p: np.save(p, digit.astype(np.float64)), "got float64"),
        "range.npy": (lambda p: np.save(p, digit.astype(np.float32)), "must lie in [0, 1]"),
        "pickle.npy": (
            lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
            "not a readable .npy",
        ),
        "t10k-images-idx3-ubyte": (lambda p: p.write_bytes(b"\x12\x34\x08\x03" + bytes(20)), "not an IDX file"),
        "notes.txt": (lambda p: p.write_text("hi"), "unsupported format"),
    }
    for name, (make, _) in files.items():
        make(tmp_path / name)
    before = snapshot(tmp_path)
    res = runner.invoke(app, ["predict", str(exported["fp32"]), str(good), *(str(tmp_path / n) for n in files)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.stdout.splitlines()[0].startswith(f"{good}: ")  # the good file is still answered
    errors = res.stderr.strip().splitlines()
    assert len(errors) == len(files), errors
    for line, (name, (_, fragment)) in zip(errors, files.items(), strict=True):
        assert line.startswith(f"error: {tmp_path / name}") and fragment in line, (name, line)
    assert snapshot(tmp_path) == before


def test_pictures_that_work(exported: dict[str, Path], tmp_path: Path, test_split: MnistSplit) -> None:
    """Formats and modes that must be classified like the plain 8-bit PNG of the same digit."""
    digit = test_split.images[1]
    big = Image.fromarray(255 - digit).resize((112, 112))  # dark on light, as printed
    makers: dict[str, Callable[[Path], None]] = {
        "plain.png": lambda p: Image.fromarray(digit).save(p),
        "sixteen.png": lambda p: Image.fromarray(digit.astype(np.uint16) * 257).save(p),
        "rgba.png": lambda p: big.convert("RGBA").save(p),
        "palette.png": lambda p: big.convert("P").save(p),
        "cmyk.jpg": lambda p: big.convert("CMYK").save(p, quality=95),
        "picture.webp": lambda p: big.save(p, lossless=True),
        "picture.tif": lambda p: big.save(p),
        "float01.tif": lambda p: Image.fromarray(digit.astype(np.float32) / 255).save(p),
    }
    for name, make in makers.items():
        make(tmp_path / name)
    res = runner.invoke(app, ["predict", str(exported["fp32"]), "--json", *(str(tmp_path / n) for n in makers)])
    assert res.exit_code == 0, res.output
    import json

    labels = {Path(p["source"]).name: p["label"] for p in json.loads(res.stdout.splitlines()[-1])["predictions"]}
    assert len(set(labels.values())) == 1, labels  # every format: the same answer as the plain PNG


def test_export_and_train_fail_early_and_leave_nothing(trained: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    t0 = time.perf_counter()
    one_clean_line(
        ["export", str(blocker / "m.onnx"), "--checkpoint", str(tmp_path / "none.pt")], "not writable", "file", tmp_path
    )
    assert time.perf_counter() - t0 < 10  # the folder is checked before the checkpoint or the export
    t0 = time.perf_counter()
    one_clean_line(["train", "--out", str(tmp_path / "run"), "--resume"], "nothing to resume", "last.pt", tmp_path)
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "run").exists()


def test_a_killed_exports_temporaries_are_cleaned(trained: Path, tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.onnx.{int(dead.stdout)}.abc123.tmp"
    live = tmp_path / f".model.onnx.{os.getpid()}.def456.tmp"  # a writer that is still running
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    res = runner.invoke(app, ["export", str(tmp_path / "model.onnx"), "--checkpoint", str(trained), "--no-verify"])
    assert res.exit_code == 0, res.output
    assert not stale.exists() and live.exists()


def test_bench_concurrency_is_bounded(exported: dict[str, Path], tmp_path: Path) -> None:
    one_clean_line(
        ["bench", str(exported["fp32"]), "--concurrency", "1000"], "between 1 and 64", "--concurrency", tmp_path
    )


def test_ctrl_c_stops_every_bench_worker_at_once(exported: dict[str, Path]) -> None:
    cmd = [
        sys.executable,
        "-m",
        "edge_lstm",
        "bench",
        str(exported["fp32"]),
        "--scenario",
        "single-stream",
        "--concurrency",
        "64",
        "--min-time",
        "120",
        "--warmup-time",
        "0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=ctrl_c_reaches_python
    )
    time.sleep(6)  # import, session, data: then the 64 workers are running
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    t0 = time.perf_counter()
    _, err = proc.communicate(timeout=30)
    assert time.perf_counter() - t0 < 2.0
    # the phases it had announced (each a line: benchmarking: ...), then the one line saying why it stopped
    lines = err.splitlines()
    assert proc.returncode == 130 and lines[-1] == "error: interrupted", err
    assert all(ln.startswith("benchmarking: ") for ln in lines[:-1]), err


def test_a_huge_picture_is_decoded_with_bounded_memory(exported: dict[str, Path], tmp_path: Path) -> None:
    """8000x8000 (the 64-megapixel limit): the process peaks near one decoded copy (Pillow keeps RGB
    as 4 bytes per pixel: 256 MB) plus the runtime (~85 MB), not the 1.46 GB of full-size conversions."""
    from PIL import ImageDraw

    big = tmp_path / "big.png"
    im = Image.new("RGB", (8000, 8000), (240, 240, 235))
    ImageDraw.Draw(im).line([(3000, 1500), (5000, 1500), (3500, 6500)], fill=(20, 20, 20), width=400)  # a 7
    im.save(big, compress_level=1)
    del im
    # VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's (pytest's) peak; exec
    # gives the process a new address space, and VmHWM is that address space's own peak.
    script = (
        "import sys\nfrom edge_lstm.cli import main\nsys.argv = ['edge-lstm', 'predict', *sys.argv[1:]]\n"
        "try:\n    main()\nfinally:\n    hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
        "    print('peak_mb', int(hwm.split()[1]) / 1024, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(exported["fp32"]), str(big)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith(f"{big}: "), proc.stdout + proc.stderr
    peak = float(proc.stderr.split("peak_mb")[1])
    assert peak < 450, peak


@pytest.mark.parametrize(
    "args, fragment, name",
    [
        (["train", "--lr", "-1"], "learning rate must be > 0", "learning rate"),
        (["train", "--epochs", "0"], "epochs must be >= 1", "epochs"),
        (["train", "--threads", "0"], "threads must be >= 1", "threads"),
        (["train", "--precision", "fp8"], "precision must be auto, fp32 or bf16", "precision"),
        (["train", "--data-dir", "/nonexistent/mnist"], "does not hold the four MNIST IDX files", "/nonexistent/mnist"),
        (["export", "m.txt"], "must end in .onnx", "m.txt"),
        (["export", "--batch", "0"], "--batch must be between", "--batch"),
        (["eval", "x.onnx", "--limit", "0"], "--limit must be >= 1", "--limit"),
        (["bench", "--provider", "cuda"], "onnxruntime-gpu", "cuda"),
        (["bench", "--provider", "browser-wasm", "--scenario", "offline"], "single-stream", "browser-wasm"),
        (["bench", "--provider", "wasm"], "or browser-wasm, browser-webgpu", "wasm"),
        (["bench", "--provider", "cpu,cpu"], "more than once", "cpu"),
        (["bench", "--batch", "100000000"], "needs about", "100000000"),
        (["train", "--shards", "0"], "shards must be between", "shards"),
        (["predict", "m.onnx", "x.png", "--provider", "tpu"], "unknown provider 'tpu'", "tpu"),
    ],
)
def test_impossible_options_and_missing_providers(
    args: list[str],
    fragment: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exported: dict[str, Path],
) -> None:
    monkeypatch.chdir(tmp_path)
    if args[0] in ("bench", "predict"):
        (tmp_path / "export").mkdir()
        (tmp_path / "export" / "model.onnx").write_bytes(exported["fp32"].read_bytes())
        (tmp_path / "m.onnx").write_bytes(exported["fp32"].read_bytes())
    one_clean_line(args, fragment, name, tmp_path)


def test_corrupted_mnist_is_named_and_nothing_is_lost(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "mnist"
    shutil.copytree(data_dir, bad)
    victim = bad / "t10k-labels-idx1-ubyte.gz"
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte: gzip's CRC or MNIST's checksum catches it
    victim.write_bytes(bytes(data))
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"the previous checkpoint")
    one_clean_line(
        ["train", "--data-dir", str(bad), "--out", str(run), "--subset", "100"], "t10k-labels", "t10k-labels", tmp_path
    )
    one_clean_line(["eval", "--data-dir", str(bad), str(run / "model.pt")], "t10k-labels", "t10k-labels", tmp_path)
