from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import hand_drawn
from PIL import Image
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.data import mnist
from edge_lstm.runtime import Classifier

runner = CliRunner()


def test_png_files_match_eval_on_arrays(
    tmp_path: Path, test_split: mnist.MnistSplit, exported: dict[str, Path]
) -> None:
    n = 40
    paths = []
    for i in range(n):
        path = tmp_path / f"digit_{i:03d}.png"
        Image.fromarray(test_split.images[i]).save(path)
        paths.append(str(path))
    res = runner.invoke(app, ["predict", str(exported["fp32"]), *paths, "--json", "--top-k", "3"])
    preds = json.loads(res.stdout.splitlines()[-1])["predictions"]
    clf = Classifier(exported["fp32"])
    labels, probs = clf.predict(test_split.images[:n])
    # a picture whose best class is under the file's "no digit" threshold is refused, the others answered
    below = clf.no_digit_below
    assert below is not None  # the fixture is trained with non-digits (--augment writing)
    sure = probs.max(1) >= below
    assert res.exit_code == (0 if sure.all() else 1), res.output
    assert [p["label"] for p in preds] == [int(v) if ok else None for v, ok in zip(labels, sure, strict=True)]
    assert all(
        "no digit found: the model is not sure" in p["error"] for p, ok in zip(preds, sure, strict=True) if not ok
    )
    assert all(len(p["top"]) == 3 for p, ok in zip(preds, sure, strict=True) if ok)


def test_hand_drawn_pngs_are_classified(
    tmp_path: Path, test_split: mnist.MnistSplit, exported: dict[str, Path]
) -> None:
    clf = Classifier(exported["fp32"])
    idx = [i for i in range(60) if clf.predict_labels(test_split.images[i : i + 1])[0] == test_split.labels[i]][:20]
    paths = []
    for i in idx:
        path = tmp_path / f"photo_{i}.jpg"
        Image.fromarray(hand_drawn(test_split.images[i])).convert("RGB").save(path, quality=92)
        paths.append(str(path))
    res = runner.invoke(app, ["predict", str(exported["fp32"]), *paths, "--json"])
    preds = json.loads(res.stdout.splitlines()[-1])["predictions"]
    unsure = [p for p in preds if p["error"]]  # the small test model's "no digit", counted as wrong
    assert all("the model is not sure" in p["error"] for p in unsure), res.output
    assert res.exit_code == (1 if unsure else 0)
    got = [p["label"] for p in preds]
    agree = np.mean(np.array(got) == test_split.labels[idx])
    assert agree >= 0.8, (got, test_split.labels[idx].tolist())


def test_npy_and_idx_inputs(tmp_path: Path, test_split: mnist.MnistSplit, exported: dict[str, Path]) -> None:
    np.save(tmp_path / "batch.npy", test_split.images[:5])
    idx = tmp_path / "t10k-images-idx3-ubyte.gz"
    idx.write_bytes((mnist.BUNDLED_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())
    res = runner.invoke(app, ["predict", str(exported["fp32"]), str(tmp_path / "batch.npy"), "--json"])
    assert res.exit_code == 0, res.output
    preds = json.loads(res.stdout.splitlines()[-1])["predictions"]
    assert [p["source"].rsplit("[", 1)[1] for p in preds] == ["0]", "1]", "2]", "3]", "4]"]
    res = runner.invoke(app, ["predict", str(exported["fp32"]), str(idx)])
    assert res.exit_code == 0 and len(res.stdout.strip().splitlines()) == 10000


def test_bad_files_are_reported_and_others_go_on(
    tmp_path: Path, test_split: mnist.MnistSplit, exported: dict[str, Path]
) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(test_split.images[0]).save(good)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 784), np.uint8))
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(blank)
    files = [
        good,
        tmp_path / "broken.png",
        tmp_path / "notes.txt",
        tmp_path / "empty.npy",
        tmp_path / "wrong.npy",
        blank,
        tmp_path / "missing.png",
    ]
    res = runner.invoke(app, ["predict", str(exported["fp32"]), *map(str, files)])
    assert res.exit_code == 1
    assert res.stdout.startswith(f"{good}: ")
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 6 and all(line.startswith("error: ") for line in errors)
    for fragment in ("not a readable image", "unsupported format", "empty file", "(3, 784)", "blank", "not found"):
        assert any(fragment in line for line in errors), (fragment, errors)
    assert "Traceback" not in res.output


def test_predict_bad_model_and_options(tmp_path: Path, exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["predict", str(tmp_path / "none.onnx"), "x.png"])
    assert res.exit_code == 1 and "not found" in res.stderr
    res = runner.invoke(app, ["predict", str(exported["fp32"]), "x.png", "--top-k", "0"])
    assert res.exit_code == 1 and "--top-k" in res.stderr
    res = runner.invoke(app, ["predict", str(exported["fp32"]), "x.png", "--provider", "cuda"])
    assert res.exit_code == 1 and "onnxruntime-gpu" in res.stderr


def test_noise_is_not_a_digit(exported: dict[str, Path], tmp_path: Path) -> None:
    """A 3000x3000 picture of random noise: reported as holding no digit, not answered with a class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (3000, 3000), dtype=np.uint8)).save(noise)
    res = runner.invoke(app, ["predict", str(exported["fp32"]), str(noise)])
    assert res.exit_code == 1, res.output
    assert "no digit found" in res.stderr and res.stdout.strip() == ""
