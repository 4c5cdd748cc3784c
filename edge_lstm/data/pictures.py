"""Pictures of MNIST test digits as people make them: a test set for `predict`'s picture normalisation.

MNIST's own images are already normalised; what users send is not. Each family below renders the
same test digits the way one kind of real picture looks, so that a change to the normalisation can
be measured family by family (bench/pictures.py) and held to "no family gets worse" (tests):

- tight_thick_dark / tight_thick_light: the digit fills the frame (a close crop) and its strokes
  are bold (a marker, a low-resolution scan scaled up): the pictures a per-pixel paper estimate
  mistakes for paper. Dark on light and light on dark.
- tight_thin_dark: a close crop with the pen's own stroke width.
- lowres_dark: a 28-pixel scan scaled up 4x, blocky (nearest neighbour), with a margin.
- drawn_dark: drawn in a paint program, large, off-centre, on a white canvas.
- photo_uneven: photographed: grey paper, light falling off across the page, sensor noise, blur, JPEG.
- photo_tight_marker: the marker digit photographed close: bold strokes, tight crop, uneven light, JPEG.

Everything is seeded: the same call gives the same pictures, byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

FAMILIES = (
    "tight_thick_dark",
    "tight_thick_light",
    "tight_thin_dark",
    "lowres_dark",
    "drawn_dark",
    "photo_uneven",
    "photo_tight_marker",
)


def _tight(digit: np.ndarray, margin: int = 1) -> np.ndarray:
    ys, xs = np.nonzero(digit > 40)
    y0, y1 = max(0, ys.min() - margin), min(28, ys.max() + 1 + margin)
    x0, x1 = max(0, xs.min() - margin), min(28, xs.max() + 1 + margin)
    return digit[y0:y1, x0:x1]


def _thicken(img: Image.Image, size: int) -> Image.Image:
    return img.filter(ImageFilter.MaxFilter(size))


def _square(ink: np.ndarray) -> np.ndarray:
    """Pad the shorter side with paper so that the picture is square (as a crop tool would)."""
    h, w = ink.shape
    side = max(h, w)
    out = np.zeros((side, side), ink.dtype)
    out[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = ink
    return out


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """The picture as a JPEG of this quality would decode it (grayscale)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("L")


def tight_thick(digit: np.ndarray, rng: np.random.Generator, dark: bool) -> Image.Image:
    ink = Image.fromarray(_square(_tight(digit)))
    big = _thicken(ink.resize((64, 64), Image.Resampling.BILINEAR), int(rng.choice([5, 7])))
    a = np.asarray(big)
    return Image.fromarray(255 - a if dark else a)


def tight_thin(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    ink = Image.fromarray(_square(_tight(digit, margin=2))).resize((64, 64), Image.Resampling.BICUBIC)
    return Image.fromarray(255 - np.asarray(ink))


def lowres(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.NEAREST)


def drawn(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    big = _thicken(Image.fromarray(digit).resize((160, 160), Image.Resampling.BICUBIC), 5)
    canvas = np.zeros((240, 240), np.uint8)
    top, left = int(rng.integers(0, 80)), int(rng.integers(0, 80))
    canvas[top : top + 160, left : left + 160] = np.asarray(big)
    return Image.fromarray(255 - canvas)


def _photograph(ink: np.ndarray, shape: tuple[int, int], at: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Dark ink (0..1, (h, w)) on grey, unevenly lit paper of `shape`, with noise, blur and JPEG."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    tilt_x, tilt_y = rng.uniform(15, 40), rng.uniform(-20, 20)
    paper = 200 + tilt_x * (xx / w) - tilt_y * (yy / h)
    page = paper.copy()
    y, x = at
    ih, iw = ink.shape
    page[y : y + ih, x : x + iw] = paper[y : y + ih, x : x + iw] * (1 - 0.8 * ink)
    page += rng.normal(0, 6, page.shape)
    img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    return jpeg(img, 85)


def photo_uneven(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    big = np.asarray(Image.fromarray(digit).resize((120, 120), Image.Resampling.BICUBIC), np.float32) / 255
    return _photograph(big, (180, 220), (int(rng.integers(20, 50)), int(rng.integers(40, 90))), rng)


def photo_tight_marker(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    ink = Image.fromarray(_square(_tight(digit)))
    big = np.asarray(_thicken(ink.resize((96, 96), Image.Resampling.BILINEAR), 7), np.float32) / 255
    return _photograph(big, (104, 104), (4, 4), rng)


RENDER: dict[str, Callable[[np.ndarray, np.random.Generator], Image.Image]] = {
    "tight_thick_dark": lambda d, r: tight_thick(d, r, dark=True),
    "tight_thick_light": lambda d, r: tight_thick(d, r, dark=False),
    "tight_thin_dark": tight_thin,
    "lowres_dark": lowres,
    "drawn_dark": drawn,
    "photo_uneven": photo_uneven,
    "photo_tight_marker": photo_tight_marker,
}


def render(family: str, images: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """The (H, W) uint8 grayscale pictures of `images` ((N, 28, 28) MNIST digits) in one family."""
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    return [np.asarray(RENDER[family](digit, rng).convert("L")) for digit in images]


def noise_pictures(n: int, seed: int = 0) -> list[np.ndarray]:
    """Pictures that hold no digit: uniform noise, smooth blotches and a woven texture (a photo of
    cloth), each its own size."""
    rng = np.random.default_rng([seed, 99])
    out = []
    for i in range(n):
        side = int(rng.integers(48, 400))
        kind = i % 3
        if kind == 0:
            a = rng.integers(0, 256, (side, side))
        elif kind == 1:
            small = rng.integers(0, 256, (6, 6)).astype(np.uint8)
            a = np.asarray(Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC))
        else:
            yy, xx = np.mgrid[0:side, 0:side]
            period = rng.uniform(4, 12)
            a = 128 + 60 * np.sin(xx / period) * np.sin(yy / period) + rng.normal(0, 20, (side, side))
        out.append(np.clip(a, 0, 255).astype(np.uint8))
    return out
