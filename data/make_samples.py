"""Make the sample pictures in this folder from MNIST test images (run from the repository root):

    python data/make_samples.py

mnist_*.png: MNIST's own convention (28x28, white digit on black). drawn_*.png: as drawn in a paint
program (dark strokes on a white or transparent canvas, large, off-centre). photo_*.jpg: as
photographed (grey paper, uneven light, sensor noise, blur, JPEG). The file name ends with the digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from edge_lstm.data import mnist

HERE = Path(__file__).resolve().parent / "samples"


def first_index(labels: np.ndarray, digit: int, skip: int = 0) -> int:
    return int(np.flatnonzero(labels == digit)[skip])


def drawn(digit: np.ndarray, transparent: bool) -> Image.Image:
    big = Image.fromarray(digit).resize((160, 160), Image.Resampling.BICUBIC).filter(ImageFilter.MaxFilter(5))
    canvas = np.zeros((240, 240), np.uint8)
    canvas[20:180, 60:220] = np.asarray(big)  # off-centre
    ink = Image.fromarray(canvas)
    if transparent:  # black strokes whose alpha is the ink, on a transparent canvas
        rgba = Image.new("RGBA", ink.size, (0, 0, 0, 0))
        rgba.putalpha(ink)
        return rgba
    return Image.fromarray(255 - canvas)


def photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    big = np.asarray(Image.fromarray(digit).resize((120, 120), Image.Resampling.BICUBIC), np.float32) / 255
    h, w = 180, 220
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 205 + 30 * (xx / w) - 15 * (yy / h)  # uneven light
    page = paper.copy()
    page[35:155, 70:190] = paper[35:155, 70:190] * (1 - 0.8 * big)  # dark ink
    page += rng.normal(0, 6, page.shape)  # sensor noise
    img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    return img.convert("RGB")


def main() -> None:
    test = mnist.load_split(mnist.BUNDLED_DIR, "test")
    rng = np.random.default_rng(7)
    for d in (7, 2):
        Image.fromarray(test.images[first_index(test.labels, d)]).save(HERE / f"mnist_{d}.png")
    drawn(test.images[first_index(test.labels, 3)], transparent=False).save(HERE / "drawn_3.png")
    drawn(test.images[first_index(test.labels, 5, skip=2)], transparent=True).save(HERE / "drawn_5.png")
    for d in (4, 9):
        photo(test.images[first_index(test.labels, d, skip=1)], rng).save(HERE / f"photo_{d}.jpg", quality=85)


if __name__ == "__main__":
    main()
