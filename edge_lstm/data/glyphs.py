"""Pictures MNIST lacks, drawn at the start of a training run (`--augment writing`; training/extra.py
mixes them into each batch):

- **Typeset and boxy digits**: the digits of matplotlib's own fonts (DejaVu Sans, Serif and Mono in
  every weight and slant: installed wherever edge-lstm is), bolder, stretched toward their box,
  rotated and slanted, and digits MNIST's American writers rarely make: a 1 as one thick slanted bar
  (with or without a flag and a base) and an open 4. Forms, labels and European hands write like that;
  MNIST barely does.
- **Non-digits** (label -1): shapes filled and outlined, faces, letters that no digit resembles,
  about 550 symbols of DejaVu Sans (arrows, signs, dingbats), blobs, stripes and grids. The model
  learns to answer them with no confidence (outlier exposure, Hendrycks et al., ICLR 2019), so that a
  low top probability can say "no digit".

Each picture is drawn large and brought to MNIST's form by `mnist_form`: the steps of
runtime/preprocess.py's `to_mnist` that apply to a clean rendering (white ink on black, nothing to
remove): crop to the ink, the longest side to 20 pixels, the centre of mass to (14, 14). Written
here rather than imported: training does not import the deployment side, and a clean rendering needs
none of to_mnist's background, haze and stroke rules. The pictures the benchmark scores
(bench/writing.py) go through the real to_mnist, from fonts and shapes not used here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

SIDE = 64  # the drawing canvas
# Letters no digit resembles (none of O/o/D/Q for 0, l/I/i/j/L/T/J for 1, Z/z for 2, S/s for 5, b/G for 6,
# B for 8, g/q for 9)
LETTERS = "ACEFHKMNPRUVWXYacdefhkmnprtuvwxy"


# Unicode blocks of symbols (DejaVu Sans draws about 550 of them): arrows, technical signs, the angular
# geometric shapes, miscellaneous symbols (suns, hearts, faces, ...), dingbats. Left out: circles (a 0),
# lines and box drawing (a 1 or a 7), and the circled digits of the dingbats.
SYMBOL_BLOCKS = ((0x2190, 0x21FF), (0x2300, 0x23FF), (0x25A0, 0x25C9), (0x2600, 0x26FF), (0x2700, 0x27BF))
NOT_SYMBOLS = {*range(0x2776, 0x2794), 0x26AA, 0x26AB, 0x26AC}


def symbols(font: Path) -> list[str]:
    """The symbols of SYMBOL_BLOCKS that `font` draws (not its box for a missing glyph)."""
    face = ImageFont.truetype(str(font), 40)
    missing = bytes(face.getmask("\ue000"))  # a private-use code point: the font's missing-glyph box
    out = []
    for a, b in SYMBOL_BLOCKS:
        for code in range(a, b + 1):
            if code in NOT_SYMBOLS:
                continue
            mask = face.getmask(chr(code))
            if bytes(mask) != missing and min(mask.size) > 2:
                out.append(chr(code))
    return out


def fonts() -> list[Path]:
    """matplotlib's DejaVu faces (matplotlib is a core dependency: every installation has them)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(p for p in folder.glob("DejaVu*.ttf") if "Display" not in p.name)


def mnist_form(canvas: np.ndarray) -> np.ndarray | None:
    """A clean rendering (white ink on black, float 0..255) -> (28, 28) uint8 in MNIST's form; None if blank."""
    ys, xs = np.nonzero(canvas > 0.2 * max(float(canvas.max()), 1e-6))
    if ys.size == 0 or canvas.max() < 16:
        return None
    crop = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.float32)).resize((nw, nh), Image.Resampling.BILINEAR), np.float64)
    small = np.clip(small, 0, 255)
    mass = small.sum()
    if mass <= 0:
        return None
    cy = float((small.sum(1) * np.arange(nh)).sum() / mass)
    cx = float((small.sum(0) * np.arange(nw)).sum() / mass)
    top = int(np.clip(round(14 - cy), 0, 28 - nh))
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    out = np.zeros((28, 28))
    out[top : top + nh, left : left + nw] = small
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _finish(img: Image.Image, rng: np.random.Generator, bold: float = 0.5) -> np.ndarray:
    """Bolder strokes (sometimes), a small rotation and slant, as a float canvas."""
    if rng.random() < bold:
        img = img.filter(ImageFilter.MaxFilter(int(rng.choice([3, 5]))))
    shear = float(rng.uniform(-0.25, 0.25))
    img = img.transform(
        img.size, Image.Transform.AFFINE, (1, shear, -shear * SIDE / 2, 0, 1, 0), Image.Resampling.BILINEAR
    )
    img = img.rotate(float(rng.uniform(-10, 10)), Image.Resampling.BILINEAR)
    return np.asarray(img, np.float64)


def _stretch(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Toward the box: the ink made wider (digits written to fill a square on a form)."""
    ys, xs = np.nonzero(canvas > 20)
    if ys.size == 0:
        return canvas
    crop = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    aspect = min(1.1, w / h * float(rng.uniform(1.0, 1.8)))
    nw = max(1, min(SIDE - 2, round(h * aspect)))
    wide = np.asarray(Image.fromarray(crop.astype(np.float32)).resize((nw, h), Image.Resampling.BILINEAR), np.float64)
    out = np.zeros((max(SIDE, h), max(SIDE, nw)))
    out[:h, :nw] = wide
    return out


def typeset_digit(digit: int, font: Path, rng: np.random.Generator) -> np.ndarray | None:
    img = Image.new("L", (SIDE, SIDE), 0)
    face = ImageFont.truetype(str(font), int(rng.integers(36, 52)))
    ImageDraw.Draw(img).text((SIDE / 2, SIDE / 2), str(digit), fill=255, font=face, anchor="mm")
    canvas = _finish(img, rng)
    if rng.random() < 0.5:
        canvas = _stretch(canvas, rng)
    return mnist_form(canvas)


def bar_one(rng: np.random.Generator) -> np.ndarray | None:
    """A 1 as one thick slanted bar, sometimes with a flag and a base."""
    img = Image.new("L", (SIDE, SIDE), 0)
    d = ImageDraw.Draw(img)
    width, lean = int(rng.integers(5, 13)), float(rng.uniform(-4, 14))
    top, bottom = (SIDE / 2 + lean / 2, 6.0), (SIDE / 2 - lean / 2, SIDE - 6.0)
    d.line([top, bottom], fill=255, width=width)
    if rng.random() < 0.5:  # the flag
        d.line([top, (top[0] - rng.uniform(10, 20), top[1] + rng.uniform(8, 18))], fill=255, width=max(3, width - 2))
    if rng.random() < 0.2:  # the base
        half = rng.uniform(8, 14)
        d.line([(bottom[0] - half, bottom[1]), (bottom[0] + half, bottom[1])], fill=255, width=max(3, width - 2))
    return mnist_form(_finish(img, rng, bold=0.2))


def open_four(rng: np.random.Generator) -> np.ndarray | None:
    """A 4 open at the top: a stroke down and across, and a long one down on the right."""
    img = Image.new("L", (SIDE, SIDE), 0)
    d = ImageDraw.Draw(img)
    width = int(rng.integers(4, 10))
    x0, x1, mid = rng.uniform(10, 22), rng.uniform(40, 50), rng.uniform(30, 40)
    d.line([(x0 + rng.uniform(0, 8), 8), (x0, mid), (x1 + rng.uniform(4, 10), mid)], fill=255, width=width)
    d.line([(x1, 6 + rng.uniform(0, 8)), (x1 - rng.uniform(0, 6), SIDE - 6)], fill=255, width=width)
    return mnist_form(_finish(img, rng, bold=0.3))


def _shape(d: ImageDraw.ImageDraw, rng: np.random.Generator, fill: bool) -> None:
    kind = int(rng.integers(0, 5))
    a, b = rng.uniform(6, 24, 2), rng.uniform(40, 58, 2)
    width = int(rng.integers(3, 9))
    if kind == 0:
        d.rectangle([*a, *b], fill=255 if fill else None, outline=255, width=width)
    elif kind == 1 and fill:  # an outlined ellipse is a 0: filled only
        d.ellipse([*a, *b], fill=255)
    else:
        n = {1: 4, 2: 3, 3: 5, 4: 10}[kind]
        angles = np.sort(rng.uniform(0, 2 * math.pi, n)) if kind != 4 else np.linspace(0, 2 * math.pi, n, False)
        radii = np.where(np.arange(n) % 2 == 1, 10, 26) if kind == 4 else np.full(n, rng.uniform(18, 28))
        points = [(32 + r * math.cos(t), 32 + r * math.sin(t)) for r, t in zip(radii, angles, strict=True)]
        d.polygon(points, fill=255 if fill else None, outline=255, width=width)


def _face(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    r, w = rng.uniform(22, 29), int(rng.integers(2, 6))
    d.ellipse([32 - r, 32 - r, 32 + r, 32 + r], outline=255, width=w)
    for side in (-1, 1):
        ex, ey, er = 32 + side * rng.uniform(7, 12), rng.uniform(20, 27), rng.uniform(2, 5)
        d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=255)
    mouth = rng.uniform(8, 15)
    start, end = (20, 160) if rng.random() < 0.7 else (200, 340)
    top = 38 if start == 20 else 44
    d.arc([32 - mouth, top - mouth / 2, 32 + mouth, top + mouth / 2], start, end, fill=255, width=w)


def _pattern(rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    if kind == 0:  # stripes
        t = rng.uniform(0, math.pi)
        period = rng.uniform(6, 16)
        return 255.0 * (np.sin((xx * math.cos(t) + yy * math.sin(t)) * 2 * math.pi / period) > 0)
    if kind == 1:  # a grid
        period = int(rng.integers(8, 16))
        return 255.0 * ((xx % period < 3) | (yy % period < 3))
    if kind == 2:  # a blob with soft edges (a gradient, a stain)
        (cy, cx), r = rng.uniform(20, 44, 2), rng.uniform(14, 30)
        return 255.0 * np.clip(1.5 - np.hypot(yy - cy, xx - cx) / r, 0, 1)
    return 255.0 * (np.asarray(Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).resize((SIDE, SIDE))) > 150)


def non_digit(rng: np.random.Generator, letter_fonts: list[Path], signs: tuple[Path, list[str]]) -> np.ndarray | None:
    img = Image.new("L", (SIDE, SIDE), 0)
    d = ImageDraw.Draw(img)
    kind = int(rng.integers(0, 8))
    if kind >= 6:  # a symbol
        face = ImageFont.truetype(str(signs[0]), int(rng.integers(36, 56)))
        d.text((SIDE / 2, SIDE / 2), str(rng.choice(signs[1])), fill=255, font=face, anchor="mm")
        if rng.random() < 0.4:  # its outline only: a symbol drawn by hand is often just that
            img = ImageChops.subtract(img.filter(ImageFilter.MaxFilter(int(rng.choice([3, 5, 7])))), img)
        return mnist_form(_finish(img, rng, bold=0.3))
    if kind in (0, 1):
        _shape(d, rng, fill=kind == 0)
    elif kind == 2:
        _face(d, rng)
    elif kind == 3:
        face = ImageFont.truetype(str(letter_fonts[int(rng.integers(len(letter_fonts)))]), int(rng.integers(36, 52)))
        d.text((SIDE / 2, SIDE / 2), str(rng.choice(list(LETTERS))), fill=255, font=face, anchor="mm")
    else:
        return mnist_form(_pattern(rng))
    return mnist_form(_finish(img, rng, bold=0.3))


def extra_pictures(seed: int, digits: int = 1500, others: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64, -1 for a non-digit): the same for the same seed."""
    rng = np.random.default_rng([seed, 39])
    faces = fonts()
    sans = next(p for p in faces if p.name == "DejaVuSans.ttf")
    signs = (sans, symbols(sans))
    images: list[np.ndarray] = []
    labels: list[int] = []
    while len(images) < digits:
        k = len(images)
        if k % 10 == 8:
            pic, label = bar_one(rng), 1
        elif k % 10 == 9:
            pic, label = open_four(rng), 4
        else:
            label = int(rng.integers(0, 10))
            pic = typeset_digit(label, faces[int(rng.integers(len(faces)))], rng)
        if pic is not None:
            images.append(pic)
            labels.append(label)
    while len(images) < digits + others:
        pic = non_digit(rng, faces, signs)
        if pic is not None:
            images.append(pic)
            labels.append(-1)
    return np.stack(images), np.asarray(labels, np.int64)
