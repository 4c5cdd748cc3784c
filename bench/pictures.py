"""Picture normalisation, family by family: today's `predict` normalisation against the one of the
first release (flat background, Pillow's Lanczos), on the same model file, in ONE run.

    python bench/pictures.py [MODEL] [--n 1000]   # -> bench/results/pictures.json (about 2 minutes)

Families: edge_lstm/data/pictures.py (MNIST test digits rendered as close crops with bold strokes,
scans scaled up, drawings, photographs of unevenly lit paper, ...), plus the sample pictures in
data/samples and pictures that hold no digit (noise, blotches, a woven texture), which today's
normalisation must report as such. A picture either normalisation refuses counts as wrong.
The bar: today's accuracy is no lower than the first release's on any family.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_lstm import contract
from edge_lstm.data import mnist
from edge_lstm.data.pictures import FAMILIES, noise_pictures, render
from edge_lstm.environment import describe
from edge_lstm.errors import EdgeLstmError
from edge_lstm.runtime import Classifier
from edge_lstm.runtime.preprocess import load_inputs, to_mnist

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def first_release_to_mnist(gray: np.ndarray) -> np.ndarray:
    """The normalisation of the first release (edge_lstm/preprocess.py at commit 4b5049a), verbatim
    but for names: the border's median as a flat background, a 10% bounding box, Pillow's Lanczos."""
    g = gray.astype(np.float32)
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    background = float(np.median(border))
    if background > 127:
        g, background = 255.0 - g, 255.0 - background
    if g.shape == (28, 28) and background < 32:
        return np.clip(g, 0, 255).astype(np.uint8)
    ink = np.clip(g - background, 0, None)
    if ink.max() <= 0:
        raise EdgeLstmError("the image is blank: no digit found")
    ink *= 255.0 / ink.max()
    ys, xs = np.nonzero(ink > 0.1 * 255)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.clip(small, 0, 255)
    mass = small.sum()
    cy = float((small.sum(axis=1) * np.arange(nh)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(nw)).sum() / mass)
    top = int(np.clip(round(14 - cy), 0, 28 - nh))
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    out = np.zeros((28, 28), np.float32)
    out[top : top + nh, left : left + nw] = small
    return out.round().astype(np.uint8)


NORMALISATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "first_release": first_release_to_mnist,
    "today": to_mnist,
}


def accuracy(
    clf: Classifier, normalise: Callable[[np.ndarray], np.ndarray], pictures: list[np.ndarray], labels: np.ndarray
) -> tuple[float, int]:
    """(accuracy, refused): a refused picture counts as wrong."""
    arrays, ok = [], []
    for p in pictures:
        try:
            arrays.append(normalise(p))
            ok.append(True)
        except EdgeLstmError:
            arrays.append(np.zeros((28, 28), np.uint8))
            ok.append(False)
    predicted = clf.predict_labels(np.stack(arrays))
    return float(((predicted == labels) & np.asarray(ok)).mean()), ok.count(False)


def compare(model: Path, n: int) -> dict[str, Any]:
    clf = Classifier(model)
    test = mnist.load_split(mnist.locate(None), "test")
    images, labels = test.images[:n], test.labels[:n]
    families: dict[str, Any] = {}
    for family in FAMILIES:
        pictures = render(family, images)
        row: dict[str, Any] = {"n": len(pictures)}
        for name, fn in NORMALISATIONS.items():
            row[name], row[f"{name}_refused"] = accuracy(clf, fn, pictures, labels)
        row["today_not_lower"] = row["today"] >= row["first_release"]
        families[family] = row
        print(
            f"{family:20s} first release {100 * row['first_release']:5.1f}%  today {100 * row['today']:5.1f}%",
            flush=True,
        )
    samples = {}
    for path in sorted(SAMPLES.glob("*_*.*[gp]")):
        truth = int(path.stem[-1])
        (today,) = clf.predict_labels(load_inputs(path))
        with Image.open(path) as im:
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            gray = np.asarray(Image.alpha_composite(white, im.convert("RGBA")).convert("L"))
        (first,) = clf.predict_labels(first_release_to_mnist(gray)[None])
        samples[path.name] = {"truth": truth, "first_release": int(first), "today": int(today)}
    noise = noise_pictures(300)
    flagged = 0
    for p in noise:
        try:
            to_mnist(p)
        except EdgeLstmError:
            flagged += 1
    return {
        "families": families,
        "samples": samples,
        "no_digit": {"pictures": len(noise), "reported_as_no_digit": flagged, "share": flagged / len(noise)},
        "every_family_not_lower": all(r["today_not_lower"] for r in families.values()),
        "samples_right": {k: sum(v[k] == v["truth"] for v in samples.values()) for k in NORMALISATIONS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=contract.DEFAULT_MODEL)
    parser.add_argument("--n", type=int, default=1000, help="test digits per family")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pictures.json")
    args = parser.parse_args()
    try:
        t0 = time.perf_counter()
        result = compare(args.model, args.n)
    except EdgeLstmError as e:
        sys.exit(f"error: {e}")
    report = {
        "command": "python bench/pictures.py" + (f" --n {args.n}" if args.n != 1000 else ""),
        "model": str(args.model),
        "seconds": round(time.perf_counter() - t0, 1),
        **result,
        "environment": describe(),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("every_family_not_lower", "samples_right", "no_digit")}))


if __name__ == "__main__":
    main()
