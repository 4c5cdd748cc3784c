"""Digits in the boxy, heavy hand of forms and labels, for the real-writing set's `boxy` family
(bench/writing.py builds it): strokes as thick as a marker's, each digit stretched to fill the box it
was written in, the 1 as a bar (seven-segment, sans-serif) or with a long flag, the 4 open at the top
(Comic Neue's), on photographed paper.

From fonts no one here drew and training never sees (training's typeset digits are matplotlib's
DejaVu, data/glyphs.py): Debian's fonts-comic-neue (a hand-lettered face), fonts-urw-base35 (Nimbus
Sans and its narrow cut, URW Gothic, Bookman, Zapf Chancery) and fonts-dseg (seven-segment and
fourteen-segment displays). Building the set needs them (`apt install fonts-comic-neue
fonts-urw-base35 fonts-dseg`); reading the committed set needs nothing.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from edge_lstm.errors import DataError

FONT_FILES = (
    "opentype/comic-neue/ComicNeue-Bold.otf",
    "opentype/comic-neue/ComicNeue-BoldItalic.otf",
    "opentype/comic-neue/ComicNeue-Regular.otf",
    "opentype/urw-base35/NimbusSans-Bold.otf",
    "opentype/urw-base35/NimbusSansNarrow-Bold.otf",
    "opentype/urw-base35/URWGothic-Demi.otf",
    "opentype/urw-base35/URWBookman-Demi.otf",
    "opentype/urw-base35/Z003-MediumItalic.otf",
    "truetype/dseg/DSEG7Classic-Bold.ttf",
    "truetype/dseg/DSEG14Classic-Bold.ttf",
)


def boxy_fonts(root: Path = Path("/usr/share/fonts")) -> list[Path]:
    found = [root / f for f in FONT_FILES if (root / f).is_file()]
    if not found:
        raise DataError(
            f"none of the boxy family's fonts under {root}: apt install fonts-comic-neue fonts-urw-base35 fonts-dseg"
        )
    return found


def boxy_digit(digit: int, font: Path, rng: np.random.Generator) -> np.ndarray:
    """One digit, heavy and filling its box, photographed on paper: a grayscale picture (H, W) uint8."""
    big = Image.new("L", (160, 160), 0)
    face = ImageFont.truetype(str(font), int(rng.integers(90, 120)))
    ImageDraw.Draw(big).text((80, 80), str(digit), fill=255, font=face, anchor="mm")
    big = big.filter(ImageFilter.MaxFilter(int(rng.choice([3, 5, 7, 9]))))  # a marker's stroke
    box = big.getbbox()
    glyph = big.crop(box) if box else big
    h = int(rng.integers(70, 110))
    w = max(glyph.width, int(h * rng.uniform(0.75, 1.0))) if digit != 1 else glyph.width * h // glyph.height
    glyph = glyph.resize((max(4, w), h), Image.Resampling.BILINEAR)  # stretched toward its box
    side = int(max(w, h) * rng.uniform(1.3, 1.8))
    ink = Image.new("L", (side, side), 0)
    ink.paste(glyph, ((side - glyph.width) // 2, (side - h) // 2))
    ink = ink.rotate(float(rng.uniform(-6, 6)), Image.Resampling.BILINEAR)
    yy, xx = np.mgrid[0:side, 0:side] / side
    paper = rng.uniform(170, 235) + rng.uniform(-30, 30) * xx + rng.uniform(-30, 30) * yy
    level = rng.uniform(10, 70)  # the ink: marker black to worn felt-tip grey
    a = np.asarray(ink, np.float64) / 255
    picture = paper * (1 - a) + level * a + rng.normal(0, 3, a.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(70, 92)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def boxy(per_digit: int, seed: int = 40) -> tuple[list[np.ndarray], list[int]]:
    """`per_digit` pictures of each digit, the fonts taken in turn."""
    rng, fonts = np.random.default_rng(seed), boxy_fonts()
    pictures, labels = [], []
    for digit in range(10):
        for k in range(per_digit):
            pictures.append(boxy_digit(digit, fonts[k % len(fonts)], rng))
            labels.append(digit)
    return pictures, labels
