"""Pictures that hold no digit, as people send them (bench/writing.py builds the committed set
data/writing/nondigits.npz from these): what `predict`, `serve`'s /predict and the page must answer
with "no digit".

Families: `shapes` (hearts, arrows, crosses, moons, stars, squares, discs, houses, bolts: dark on paper
or in colour), `faces` (smileys drawn as people draw them, and emoji-like filled ones), `letters` (the
letters of the Liberation fonts, Debian's fonts-liberation, that no digit resembles: an O is a 0 to
anyone), `gradients` (linear and radial colour gradients), `textures` (wood, cloth, bricks, noise),
`photos` (crops of the two photographs scikit-learn ships) and `paper` (photographs of empty paper:
uneven light, a shadow, sensor noise, JPEG).

Nothing here is what training draws (data/glyphs.py: matplotlib's DejaVu fonts, other shapes, no
photographs, no colour): the benchmark measures pictures the model never saw the like of.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from edge_lstm.errors import DataError

FAMILIES = ("shapes", "faces", "letters", "gradients", "textures", "photos", "paper")
LIBERATION = Path("/usr/share/fonts/truetype/liberation")
LETTERS = "ACEFHKMNPRUVWXYacdefhkmnprtuvwxy"  # as data/glyphs.py: none that a digit resembles


def _gray(img: Image.Image) -> np.ndarray:
    """As `predict` reads a picture: JPEG-compressed like a phone's, then luminance."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def _paper(rng: np.random.Generator, side: int) -> Image.Image:
    level = rng.uniform(190, 250)
    tint = rng.uniform(-12, 12, 3)
    base = np.clip(level + tint + rng.normal(0, 3, (side, side, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(base, "RGB")


def _ink(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.6:
        v = int(rng.integers(0, 70))
        return (v, v, v)
    return tuple(int(c) for c in rng.integers(0, 200, 3))  # type: ignore[return-value]


def shape(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(120, 320))
    img = _paper(rng, side)
    d = ImageDraw.Draw(img)
    c, r = side / 2 + rng.uniform(-side / 10, side / 10, 2), side * rng.uniform(0.2, 0.4)
    ink, width = _ink(rng), max(2, int(side * rng.uniform(0.02, 0.08)))
    kind = int(rng.integers(0, 9))
    fill = ink if rng.random() < 0.5 else None
    if kind == 0:  # heart
        t = np.linspace(0, 2 * math.pi, 80)
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        d.polygon(
            [(c[0] + r * a / 17, c[1] + r * b / 17) for a, b in zip(x, y, strict=True)],
            fill=fill,
            outline=ink,
            width=width,
        )
    elif kind == 1:  # arrow
        w = r * 0.25
        pts = [(-r, -w), (r * 0.3, -w), (r * 0.3, -2 * w), (r, 0), (r * 0.3, 2 * w), (r * 0.3, w), (-r, w)]
        a = rng.uniform(0, 2 * math.pi)
        rot = [(c[0] + x * math.cos(a) - y * math.sin(a), c[1] + x * math.sin(a) + y * math.cos(a)) for x, y in pts]
        d.polygon(rot, fill=fill, outline=ink, width=width)
    elif kind == 2:  # cross
        d.line([(c[0] - r, c[1]), (c[0] + r, c[1])], fill=ink, width=width * 2)
        d.line([(c[0], c[1] - r), (c[0], c[1] + r)], fill=ink, width=width * 2)
    elif kind == 3:  # moon
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=ink)
        off = r * rng.uniform(0.4, 0.7)
        d.ellipse([c[0] - r + off, c[1] - r, c[0] + r + off, c[1] + r], fill=img.getpixel((1, 1)))
    elif kind == 4:  # star
        n = int(rng.integers(5, 8))
        pts = [
            (
                c[0] + (r if k % 2 == 0 else r * 0.45) * math.cos(math.pi * k / n),
                c[1] + (r if k % 2 == 0 else r * 0.45) * math.sin(math.pi * k / n),
            )
            for k in range(2 * n)
        ]
        d.polygon(pts, fill=fill, outline=ink, width=width)
    elif kind == 5:  # square or rectangle
        a = rng.uniform(0.5, 1.0)
        d.rectangle([c[0] - r, c[1] - r * a, c[0] + r, c[1] + r * a], fill=fill, outline=ink, width=width)
    elif kind == 6:  # disc
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=ink)
    elif kind == 7:  # house
        d.rectangle([c[0] - r * 0.7, c[1], c[0] + r * 0.7, c[1] + r], fill=fill, outline=ink, width=width)
        d.polygon([(c[0] - r, c[1]), (c[0], c[1] - r), (c[0] + r, c[1])], fill=fill, outline=ink, width=width)
    else:  # lightning bolt
        pts = [(0.1, -1), (-0.5, 0.1), (0, 0.1), (-0.2, 1), (0.5, -0.2), (0, -0.2), (0.3, -1)]
        d.polygon([(c[0] + r * x, c[1] + r * y) for x, y in pts], fill=ink)
    return _gray(img)


def face(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(120, 320))
    img = _paper(rng, side)
    d = ImageDraw.Draw(img)
    c, r = side / 2, side * rng.uniform(0.3, 0.42)
    ink, width = _ink(rng), max(2, int(side * rng.uniform(0.015, 0.05)))
    filled = rng.random() < 0.4
    if filled:  # emoji-like: a yellow disc with dark features
        d.ellipse([c - r, c - r, c + r, c + r], fill=(240, 200, 40), outline=(120, 90, 0), width=width)
        ink = (60, 40, 10)
    else:
        d.ellipse([c - r, c - r, c + r, c + r], outline=ink, width=width)
    for side_ in (-1, 1):
        ex, ey, er = c + side_ * r * 0.38, c - r * 0.25, r * rng.uniform(0.06, 0.14)
        d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=ink)
    m = r * rng.uniform(0.35, 0.6)
    if rng.random() < 0.75:
        d.arc([c - m, c - m * 0.2, c + m, c + m * 0.9], 15, 165, fill=ink, width=width)
    else:
        d.line([(c - m, c + r * 0.4), (c + m, c + r * 0.4)], fill=ink, width=width)
    return _gray(img)


def letter(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(100, 260))
    img = _paper(rng, side)
    fonts = sorted(LIBERATION.glob("*.ttf"))
    if not fonts:
        raise DataError(f"no Liberation fonts under {LIBERATION}: apt install fonts-liberation")
    font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(side * rng.uniform(0.5, 0.8)))
    ImageDraw.Draw(img).text(
        (side / 2, side / 2), str(rng.choice(list(LETTERS))), fill=_ink(rng), font=font, anchor="mm"
    )
    return _gray(img.rotate(float(rng.uniform(-12, 12)), fillcolor=img.getpixel((0, 0))))


def gradient(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(100, 300))
    yy, xx = np.mgrid[0:side, 0:side] / side
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    if rng.random() < 0.5:
        t = rng.uniform(0, 2 * math.pi)
        f = (xx * math.cos(t) + yy * math.sin(t)) / (abs(math.cos(t)) + abs(math.sin(t)))
        f = (f - f.min()) / max(1e-9, float(f.max() - f.min()))
    else:
        cy, cx = rng.uniform(0, 1, 2)
        f = np.clip(np.hypot(yy - cy, xx - cx) / rng.uniform(0.5, 1.2), 0, 1)
    rgb = a[None, None] * (1 - f[..., None]) + b[None, None] * f[..., None]
    return _gray(Image.fromarray(rgb.astype(np.uint8), "RGB"))


def texture(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(100, 300))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    kind = int(rng.integers(0, 4))
    if kind == 0:  # wood grain
        v = np.sin((xx + 8 * np.sin(yy / rng.uniform(10, 30))) / rng.uniform(2, 6)) * 40 + 140
    elif kind == 1:  # cloth: a crosshatch
        p = rng.uniform(3, 8)
        v = 150 + 40 * np.sin(xx / p) * np.sin(yy / p)
    elif kind == 2:  # bricks
        h, w = rng.integers(10, 25), rng.integers(25, 50)
        row = (yy // h).astype(int)
        mortar = (yy % h < 2) | (((xx + (row % 2) * w / 2) % w) < 2)
        v = np.where(mortar, 220, 120 + 20 * rng.random((side, side)))
    else:  # noise
        v = rng.uniform(0, 255, (side, side))
    v = v + rng.normal(0, 8, v.shape)
    return _gray(Image.fromarray(np.clip(v, 0, 255).astype(np.uint8)))


def photo(rng: np.random.Generator, images: list[np.ndarray]) -> np.ndarray:
    pic = images[int(rng.integers(len(images)))]
    side = int(rng.integers(60, min(pic.shape[:2])))
    y, x = rng.integers(0, pic.shape[0] - side), rng.integers(0, pic.shape[1] - side)
    return _gray(Image.fromarray(pic[y : y + side, x : x + side]))


def paper(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.integers(120, 320))
    yy, xx = np.mgrid[0:side, 0:side] / side
    light = rng.uniform(150, 235) + rng.uniform(-40, 40) * (xx - 0.5) + rng.uniform(-40, 40) * (yy - 0.5)
    if rng.random() < 0.6:  # a hand's or a phone's shadow across part of the page
        t, off = rng.uniform(0, 2 * math.pi), rng.uniform(-0.3, 0.3)
        edge = (xx - 0.5) * math.cos(t) + (yy - 0.5) * math.sin(t) - off
        light = light - rng.uniform(30, 90) / (1 + np.exp(-edge * rng.uniform(10, 40)))
    v = light + rng.normal(0, rng.uniform(1, 6), light.shape)
    img = Image.fromarray(np.clip(v, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))
    return _gray(img)


def make(family: str, rng: np.random.Generator, photos: list[np.ndarray]) -> np.ndarray:
    makers: dict[str, Callable[[], np.ndarray]] = {
        "shapes": lambda: shape(rng),
        "faces": lambda: face(rng),
        "letters": lambda: letter(rng),
        "gradients": lambda: gradient(rng),
        "textures": lambda: texture(rng),
        "photos": lambda: photo(rng, photos),
        "paper": lambda: paper(rng),
    }
    return makers[family]()
