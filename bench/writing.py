"""Real-writing accuracy: digits that are not MNIST's test set, per family and per digit with the confusion.

    python bench/writing.py build [--model export/model.onnx] [--canvases FILE]   # -> data/writing/writing.npz
    python bench/writing.py MODEL [MODEL ...] [--name NAME ...]  # -> bench/results/writing.json

`build` makes the set (edge_lstm/data/writing_set.py says what each family is): 100 digits of each
class drawn with the mouse in the page (`edge-lstm web`) in headless Chromium through Playwright (its
pointer events, the page's own pen of 6-32 pixels, mouse speeds of 2-22 pixels between reported
points), 50 of each drawn with a 1-4 pixel brush on a 200-800 pixel canvas, 100 of each photographed,
the 1,797 UCI digits of 43 people that scikit-learn ships, 200 MNIST test digits in each of
data/pictures.py's families, and 50 boxy digits of each class (data/boxy.py: Debian's
fonts-comic-neue, fonts-urw-base35 and fonts-dseg). Every picture is normalised as `predict`
normalises it, and for the drawn ones the page's own answer and pixels are checked against `predict`'s
(the page runs MODEL). The drawn canvases are kept in data/writing/drawn_canvases.npz and reused
(a minute); drawing them anew takes ~10 minutes and needs Chromium and Playwright (`.[web]`).
scikit-learn is needed for the 'people' family and the photographs of the non-digit set, which
`build` also makes (data/nondigits.py: 100 pictures of each family; Debian's fonts-liberation).

Scoring runs each MODEL (an exported .onnx, or a checkpoint .pt) on the set, in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_lstm import contract
from edge_lstm.data import mnist
from edge_lstm.data.boxy import boxy
from edge_lstm.data.nondigits import FAMILIES as NON_DIGIT_FAMILIES
from edge_lstm.data.nondigits import make as make_nondigit
from edge_lstm.data.pictures import FAMILIES as PICTURE_FAMILIES
from edge_lstm.data.pictures import render
from edge_lstm.data.writing import Drawing, make_drawing, photograph, rasterise
from edge_lstm.data.writing_set import (
    FAMILIES,
    NONDIGITS_FILE,
    WRITING_FILE,
    load_nondigits,
    load_writing_set,
    refusals,
    score,
)
from edge_lstm.environment import describe
from edge_lstm.errors import EdgeLstmError, InputError
from edge_lstm.runtime.preprocess import to_mnist

ROOT = Path(__file__).resolve().parent.parent
PER_DIGIT = 100  # drawn and photographed digits of each class (thin_pen: half)
PER_PICTURE_FAMILY = 200
NON_DIGITS_PER_FAMILY = 100
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The pictures drawn in the page, as its canvas held them (1.4 MB): the one part of the set that needs
# a browser to make, committed so that a change to the normalisation rebuilds the set without one.
CANVASES = ROOT / "data" / "writing" / "drawn_canvases.npz"


def normalise(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    try:
        return to_mnist(gray), False
    except InputError:
        return np.zeros((28, 28), np.uint8), True


def drawn(model: Path, seed: int = 0) -> tuple[list[np.ndarray], list[int], dict[str, Any]]:
    """Each drawing made with the mouse in the page; (pictures as the canvas holds them, labels, checks)."""
    from edge_lstm.web import SiteConfig, build_site
    from edge_lstm.web.browser import open_page, pad_picture, write_with_mouse

    rng = np.random.default_rng([seed, 1])
    plan: list[Drawing] = [make_drawing(d, rng) for _ in range(PER_DIGIT) for d in range(10)]
    pictures, labels, page_labels, same_pixels = [], [], [], 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        site = build_site(SiteConfig(out=Path(tmp) / "site", model=model, step=None))
        with open_page(site, "rowdelay=0") as page:
            for k, d in enumerate(plan):
                page.evaluate("w => { window.edgeLstm.clearPad(); window.edgeLstm.setPen(w); }", d.pen)
                write_with_mouse(page, d.strokes)
                gray = pad_picture(page)
                pictures.append(gray)
                labels.append(d.digit)
                last = page.evaluate("window.edgeLstm.last")
                page_labels.append(-1 if last is None else int(last["label"]))
                if last is not None and np.array_equal(
                    np.asarray(last["pixels"], np.uint8), normalise(gray)[0].ravel()
                ):
                    same_pixels += 1
                if (k + 1) % 100 == 0:
                    print(f"drawn {k + 1}/{len(plan)}", flush=True)
    checks = {"page_labels": page_labels, "page_pixels_equal_predict": same_pixels}
    return pictures, labels, checks


def thin_pen(seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """The stroke shapes drawn with a thin brush (1-4 pixels) on a large canvas (200-800 pixels), dark
    on white, as a paint program saves them."""
    rng = np.random.default_rng([seed, 3])
    labels = [d for _ in range(PER_DIGIT // 2) for d in range(10)]
    pictures = []
    for d in labels:
        canvas = int(rng.integers(200, 801))
        ink = rasterise(make_drawing(d, rng, canvas=canvas, pen=(1, 4), speed=(2, 4)), supersample=2)
        pictures.append(np.round(255 - 255 * ink).astype(np.uint8))
    return pictures, labels


def photographed(seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng([seed, 2])
    labels = [d for _ in range(PER_DIGIT) for d in range(10)]
    return [np.asarray(photograph(d, rng)) for d in labels], labels


def people() -> tuple[list[np.ndarray], list[int]]:
    """The UCI optical-recognition digits (43 writers, 8x8 counts 0..16) as pictures: dark ink on white,
    scaled up smoothly as a viewer would show them."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise EdgeLstmError("the 'people' family needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    pictures = []
    for img in d.images:
        a = (255 - img * (255 / 16)).astype(np.uint8)
        pictures.append(np.asarray(Image.fromarray(a).resize((64, 64), Image.Resampling.BICUBIC)))
    return pictures, [int(t) for t in d.target]


def mnist_pictures() -> tuple[list[np.ndarray], list[int]]:
    test = mnist.load_split(mnist.locate(None), "test")
    pictures, labels = [], []
    for k, family in enumerate(PICTURE_FAMILIES):
        sl = slice(k * PER_PICTURE_FAMILY, (k + 1) * PER_PICTURE_FAMILY)  # other digits for each family
        pictures += render(family, test.images[sl])
        labels += [int(v) for v in test.labels[sl]]
    return pictures, labels


def drawn_cached(model: Path | None, cache: Path | None) -> tuple[list[np.ndarray], list[int], dict[str, Any]]:
    """drawn(), or the canvases a previous build drew (`--canvases FILE`: a change to the normalisation
    then needs no new drawing; the page's answers were those of the model it ran then)."""
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            return list(z["canvases"]), [int(v) for v in z["labels"]], json.loads(str(z["checks"]))
    if model is None:
        raise EdgeLstmError(f"{cache}: no drawn canvases; make them with `python bench/writing.py build --model MODEL`")
    pics, labs, checks = drawn(model)
    checks["drawn_in_this_run"] = True  # the page's answers are those of this run's MODEL
    if cache is not None:
        np.savez_compressed(cache, canvases=np.stack(pics), labels=np.asarray(labs), checks=json.dumps(checks))
    return pics, labs, checks


def raw_pictures(
    model: Path | None, canvases: Path | None
) -> tuple[list[np.ndarray], list[int], list[int], dict[str, Any]]:
    """Every picture of the set as a user would give it to `predict`: (pictures, labels, family
    indices, the drawing's checks). The drawn ones come from `canvases` when that file exists."""
    parts: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    pics, labs, checks = drawn_cached(model, canvases)
    parts["drawn"] = (pics, labs)
    parts["thin_pen"] = thin_pen()
    parts["photographed"] = photographed()
    parts["people"] = people()
    parts["mnist_pictures"] = mnist_pictures()
    parts["boxy"] = boxy(PER_DIGIT // 2)
    pictures, labels, family = [], [], []
    for k, name in enumerate(FAMILIES):
        pictures += parts[name][0]
        labels += parts[name][1]
        family += [k] * len(parts[name][1])
    return pictures, labels, family, checks


def build(model: Path, out: Path, cache: Path | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    pictures, labels, family, checks = raw_pictures(model, cache)
    images, refused = [], []
    for pic in pictures:
        img, no = normalise(pic)
        images.append(img)
        refused.append(no)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        images=np.stack(images),
        labels=np.asarray(labels, np.uint8),
        family=np.asarray(family, np.uint8),
        refused=np.asarray(refused),
        families=np.asarray(FAMILIES),
    )
    tmp.replace(out)
    # The page ran `model`: its answers must be predict's answers on the same pictures.
    from edge_lstm.runtime import Classifier

    ws = load_writing_set(out)
    m = ws.family == FAMILIES.index("drawn")
    ours = Classifier(model).predict_labels(ws.images[m])
    page = np.asarray(checks["page_labels"])
    info = {
        "n": len(ws),
        "per_family": {f: int((ws.family == k).sum()) for k, f in enumerate(FAMILIES)},
        "drawn_page_equals_predict": int((page == ours).sum()),
        "drawn_page_pixels_equal_predict": checks["page_pixels_equal_predict"],
        "page_checks_from_this_run": bool(checks.get("drawn_in_this_run")),  # else from when the canvases were drawn
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(info))
    return info


def build_nondigits(out: Path, per_family: int = NON_DIGITS_PER_FAMILY, seed: int = 2026) -> None:
    """data/writing/nondigits.npz: `per_family` pictures of each non-digit family, normalised as `predict`
    normalises them (the Liberation fonts: Debian's fonts-liberation; the photographs: scikit-learn's)."""
    from sklearn.datasets import load_sample_images

    photos = list(load_sample_images().images)
    rng = np.random.default_rng(seed)
    images, family, refused = [], [], []
    for k, name in enumerate(NON_DIGIT_FAMILIES):
        for _ in range(per_family):
            img, no = normalise(make_nondigit(name, rng, photos))
            images.append(img)
            refused.append(no)
            family.append(k)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        images=np.stack(images),
        family=np.asarray(family, np.uint8),
        refused=np.asarray(refused),
        families=np.asarray(NON_DIGIT_FAMILIES),
    )
    tmp.replace(out)


def probabilities(model: Path, images: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(the model's probabilities, its "no digit" threshold from the file; None for a checkpoint)."""
    if model.suffix == ".pt":
        import torch

        from edge_lstm.training.checkpoint import load_model
        from edge_lstm.training.model import logits_of

        net, _ = load_model(model)
        return torch.softmax(logits_of(net, images), 1).numpy(), None
    from edge_lstm.runtime import Classifier

    clf = Classifier(model)
    return clf.predict(images)[1], clf.no_digit_below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=[str(contract.DEFAULT_MODEL)])
    parser.add_argument("--name", action="append", default=[], help="a name for each model, in order")
    parser.add_argument("--model", type=Path, default=contract.DEFAULT_MODEL, help="build: the model the page runs")
    parser.add_argument("--set", type=Path, default=WRITING_FILE)
    parser.add_argument(
        "--canvases",
        type=Path,
        default=CANVASES,
        help="build: the drawn canvases, reused if the file exists (delete it, or name another, to draw anew)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "writing.json")
    args = parser.parse_args()
    try:
        if args.models == ["build"]:
            build(args.model, args.set, args.canvases)
            build_nondigits(NONDIGITS_FILE)
            return
        ws, nd = load_writing_set(args.set), load_nondigits()
        names = args.name + [str(m) for m in args.models[len(args.name) :]]
        results = {}
        for name, model in zip(names, args.models, strict=True):
            probs, below = probabilities(Path(model), ws.images)
            others, _ = probabilities(Path(model), nd.images)
            results[name] = {"model": model, **score(ws, probs.argmax(1))}
            results[name]["no_digit"] = refusals(ws, nd, probs, others, below)
            # the trade-off the threshold was chosen on (contract.NO_DIGIT_BELOW)
            results[name]["no_digit_sweep"] = [refusals(ws, nd, probs, others, t) for t in SWEEP]
            fams = "  ".join(f"{f} {100 * r['accuracy']:.1f}%" for f, r in results[name]["families"].items())
            print(f"{name}: {100 * results[name]['accuracy']:.1f}%  {fams}", flush=True)
            no = results[name]["no_digit"]
            print(
                f"  no digit (below {below}): {100 * no['non_digits_refused']:.1f}% of non-digits refused, "
                f"{100 * no['digits_wrongly_refused']:.2f}% of digits; "
                + "  ".join(f"{f} {100 * v:.0f}%" for f, v in no["per_family"].items()),
                flush=True,
            )
    except EdgeLstmError as e:
        sys.exit(f"error: {e}")
    report = {
        "command": "python bench/writing.py " + " ".join(sys.argv[1:]),
        "set": str(args.set),
        "models": results,
        "environment": describe(),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
