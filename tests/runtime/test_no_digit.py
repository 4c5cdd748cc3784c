"""The model's own "no digit": a file trained with non-digits (--augment writing) carries its threshold,
and `predict` and `serve`'s /predict refuse a picture whose best class is under it, in one line; arrays
(.npy, tensors) are data and always answered. The pictures MNIST lacks that training adds are the same
for the same seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edge_lstm import contract
from edge_lstm.cli import app
from edge_lstm.data.glyphs import extra_pictures
from edge_lstm.data.nondigits import face
from edge_lstm.runtime import Classifier

runner = CliRunner()


def test_the_pictures_training_adds_are_the_same_for_a_seed() -> None:
    x, y = extra_pictures(3, digits=60, others=40)
    again, labels = extra_pictures(3, digits=60, others=40)
    assert np.array_equal(x, again) and np.array_equal(y, labels)
    assert x.shape == (100, 28, 28) and x.dtype == np.uint8
    assert sorted(set(y[:60].tolist())) == list(range(10)) and (y[60:] == -1).all()
    assert not np.array_equal(x, extra_pictures(4, digits=60, others=40)[0])


def faces(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        paths.append(folder / f"face_{i}.png")
        Image.fromarray(face(rng)).save(paths[-1])
    return paths


@pytest.mark.slow
def test_faces_are_no_digit_but_arrays_are_answered(exported: dict[str, Path], tmp_path: Path) -> None:
    clf = Classifier(exported["fp32"])
    assert clf.no_digit_below == contract.NO_DIGIT_BELOW
    assert clf.metadata[contract.META_NO_DIGIT] == str(contract.NO_DIGIT_BELOW)
    paths = faces(tmp_path, 10)
    res = runner.invoke(app, ["predict", str(exported["fp32"]), *map(str, paths), "--json"])
    preds = json.loads(res.stdout.splitlines()[-1])["predictions"]
    refused = [p for p in preds if p["error"] and "no digit found: the model is not sure" in p["error"]]
    assert len(refused) >= 8 and res.exit_code == 1, res.output  # a face is not a digit
    assert all(p["error"].startswith(p["source"]) and "\n" not in p["error"] for p in refused)
    from edge_lstm.runtime.preprocess import load_inputs

    arrays = np.stack([load_inputs(p)[0] for p in paths])  # the same pictures as data: answered
    np.save(tmp_path / "faces.npy", arrays)
    res = runner.invoke(app, ["predict", str(exported["fp32"]), str(tmp_path / "faces.npy"), "--json"])
    assert res.exit_code == 0 and all(
        p["label"] is not None for p in json.loads(res.stdout.splitlines()[-1])["predictions"]
    )


@pytest.mark.slow
def test_a_model_without_non_digits_has_no_threshold(trained: Path, tmp_path: Path) -> None:
    import torch

    from edge_lstm.export import ExportConfig, export

    payload = torch.load(trained, weights_only=False)
    payload["train_config"] = {**payload["train_config"], "outliers": 0}  # as `--augment none` records it
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    (art,) = export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=old))
    clf = Classifier(art.path)
    assert clf.no_digit_below is None and contract.META_NO_DIGIT not in clf.metadata
