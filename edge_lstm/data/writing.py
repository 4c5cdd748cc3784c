"""Digits as people write them: pen strokes, each digit in the shapes people actually use (open and
closed 4s, crossed and plain 7s, a 1 with and without its flag, ...), slanted, stretched and wobbled
as a hand does, at many pen widths and speeds. Nothing here comes from MNIST: that is the point of a
real-writing test (bench/writing.py draws these strokes with a mouse in the page and photographs them
on unevenly lit paper; `train` reports the model's accuracy on the committed result).

A drawing is a list of strokes in pixel coordinates (`Drawing.strokes`): what a mouse drags, one
stroke per button press. `photograph` renders one with Pillow as a pen on paper under uneven light.
Everything is seeded: the same seed gives the same drawings and pictures, byte for byte.
Needs numpy and Pillow only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from edge_lstm.data.pictures import jpeg

Point = tuple[float, float]
# A stroke is pieces joined at sharp corners; each piece is a smooth curve through its points.
Template = list[list[list[Point]]]


def _oval(cw: bool, start_deg: float = -80.0, rx: float = 0.32, ry: float = 0.48, turn: float = 1.08) -> list[Point]:
    sign = 1.0 if cw else -1.0
    angles = np.radians(start_deg + sign * 360.0 * turn * np.linspace(0, 1, 14))
    return [(0.5 + rx * float(np.cos(a)), 0.5 + ry * float(np.sin(a))) for a in angles]


# Unit box, x to the right and y down; the digit's shapes as people write them.
TEMPLATES: dict[int, dict[str, Template]] = {
    0: {
        "oval_ccw": [[_oval(cw=False)]],
        "oval_cw": [[_oval(cw=True)]],
        "round": [[_oval(cw=False, rx=0.42, ry=0.46)]],
    },
    1: {
        "bar": [[[(0.52, 0.0), (0.5, 1.0)]]],
        "flag": [[[(0.25, 0.22), (0.52, 0.0)], [(0.52, 0.0), (0.5, 1.0)]]],
        "flag_base": [[[(0.25, 0.22), (0.52, 0.0)], [(0.52, 0.0), (0.5, 1.0)]], [[(0.25, 1.0), (0.75, 1.0)]]],
    },
    2: {
        "plain": [
            [
                [(0.15, 0.25), (0.32, 0.04), (0.58, 0.01), (0.8, 0.18), (0.75, 0.42), (0.45, 0.7), (0.15, 0.98)],
                [(0.15, 0.98), (0.88, 0.97)],
            ]
        ],
        "curly": [
            [
                [
                    (0.15, 0.22),
                    (0.4, 0.01),
                    (0.75, 0.08),
                    (0.78, 0.35),
                    (0.5, 0.68),
                    (0.22, 0.92),
                    (0.18, 1.0),
                    (0.3, 0.9),
                    (0.55, 0.93),
                    (0.9, 1.0),
                ]
            ]
        ],
    },
    3: {
        "round": [
            [
                [(0.18, 0.14), (0.48, 0.0), (0.78, 0.12), (0.76, 0.34), (0.45, 0.48)],
                [(0.45, 0.48), (0.8, 0.62), (0.8, 0.88), (0.5, 1.0), (0.15, 0.88)],
            ]
        ],
        "flat_top": [
            [
                [(0.18, 0.02), (0.82, 0.02)],
                [(0.82, 0.02), (0.42, 0.42)],
                [(0.42, 0.42), (0.78, 0.55), (0.82, 0.82), (0.52, 1.0), (0.15, 0.9)],
            ]
        ],
    },
    4: {
        "open": [[[(0.22, 0.0), (0.15, 0.6)], [(0.15, 0.6), (0.9, 0.6)]], [[(0.68, 0.02), (0.68, 1.0)]]],
        "closed": [[[(0.62, 0.0), (0.08, 0.66)], [(0.08, 0.66), (0.9, 0.66)]], [[(0.64, 0.0), (0.64, 1.0)]]],
        "one_stroke": [
            [
                [(0.3, 0.0), (0.12, 0.62)],
                [(0.12, 0.62), (0.85, 0.6)],
                [(0.85, 0.6), (0.68, 0.3)],
                [(0.68, 0.3), (0.7, 1.0)],
            ]
        ],
    },
    5: {
        "two_strokes": [
            [
                [(0.3, 0.02), (0.25, 0.45)],
                [(0.25, 0.45), (0.52, 0.38), (0.8, 0.52), (0.8, 0.8), (0.55, 0.99), (0.18, 0.9)],
            ],
            [[(0.3, 0.02), (0.82, 0.02)]],
        ],
        "one_stroke": [
            [
                [(0.82, 0.02), (0.3, 0.02)],
                [(0.3, 0.02), (0.25, 0.45)],
                [(0.25, 0.45), (0.52, 0.38), (0.8, 0.52), (0.8, 0.8), (0.55, 0.99), (0.18, 0.9)],
            ]
        ],
    },
    6: {
        "loop": [
            [
                [
                    (0.74, 0.03),
                    (0.42, 0.2),
                    (0.2, 0.55),
                    (0.22, 0.86),
                    (0.5, 1.0),
                    (0.77, 0.84),
                    (0.72, 0.6),
                    (0.45, 0.52),
                    (0.2, 0.7),
                ]
            ]
        ],
        "straight": [
            [
                [
                    (0.6, 0.0),
                    (0.25, 0.55),
                    (0.25, 0.86),
                    (0.5, 1.0),
                    (0.76, 0.85),
                    (0.74, 0.62),
                    (0.48, 0.55),
                    (0.25, 0.7),
                ]
            ]
        ],
    },
    7: {
        "plain": [[[(0.12, 0.03), (0.86, 0.03)], [(0.86, 0.03), (0.38, 1.0)]]],
        "crossed": [[[(0.12, 0.03), (0.86, 0.03)], [(0.86, 0.03), (0.4, 1.0)]], [[(0.35, 0.52), (0.82, 0.5)]]],
        "serif": [[[(0.12, 0.18), (0.12, 0.03)], [(0.12, 0.03), (0.86, 0.03)], [(0.86, 0.03), (0.45, 1.0)]]],
    },
    8: {
        "one_stroke": [
            [
                [
                    (0.72, 0.12),
                    (0.5, 0.0),
                    (0.25, 0.12),
                    (0.3, 0.34),
                    (0.5, 0.48),
                    (0.76, 0.66),
                    (0.72, 0.92),
                    (0.5, 1.0),
                    (0.26, 0.9),
                    (0.26, 0.66),
                    (0.5, 0.48),
                    (0.7, 0.32),
                    (0.73, 0.14),
                    (0.52, 0.0),
                ]
            ]
        ],
        "two_loops": [
            [[(0.5, 0.45), (0.28, 0.32), (0.3, 0.08), (0.5, 0.0), (0.7, 0.08), (0.72, 0.32), (0.5, 0.45)]],
            [[(0.5, 0.45), (0.24, 0.62), (0.24, 0.9), (0.5, 1.0), (0.76, 0.9), (0.76, 0.62), (0.5, 0.45)]],
        ],
    },
    9: {
        "straight": [
            [
                [(0.76, 0.18), (0.5, 0.01), (0.24, 0.14), (0.24, 0.38), (0.5, 0.5), (0.76, 0.36), (0.76, 0.18)],
                [(0.76, 0.18), (0.74, 1.0)],
            ]
        ],
        "curved": [
            [
                [(0.76, 0.18), (0.5, 0.01), (0.24, 0.14), (0.24, 0.38), (0.5, 0.5), (0.76, 0.36), (0.76, 0.18)],
                [(0.76, 0.18), (0.74, 0.7), (0.58, 0.98), (0.3, 0.92)],
            ]
        ],
    },
}


@dataclass(frozen=True)
class Drawing:
    digit: int
    shape: str  # the template's name ("open", "crossed", ...)
    strokes: list[np.ndarray]  # each (n, 2) float: x, y in pixels of the canvas
    pen: float  # stroke width in pixels
    canvas: int  # square canvas side in pixels


def _smooth(points: list[Point], per_segment: int) -> np.ndarray:
    """A Catmull-Rom curve through the points (a straight line for two)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) == 2:
        t = np.linspace(0, 1, per_segment + 1)[:, None]
        return p[0] + t * (p[1] - p[0])
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    out.append(p[-1:])
    return np.vstack(out)


def _resample(path: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` pixels along the path: what a mouse reports at a given speed."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    if dist[-1] <= spacing:
        return path[[0, -1]]
    at = np.append(np.arange(0.0, dist[-1], spacing), dist[-1])
    return np.stack([np.interp(at, dist, path[:, 0]), np.interp(at, dist, path[:, 1])], axis=1)


def make_drawing(
    digit: int,
    rng: np.random.Generator,
    canvas: int = 280,
    pen: tuple[float, float] = (6, 32),
    speed: tuple[float, float] = (2, 22),
) -> Drawing:
    """One handwritten `digit`: a random shape of it, slanted, rotated, stretched, wobbled, placed on a
    `canvas`-pixel square, with a pen width and a mouse speed (pixels between reported points)."""
    shapes = TEMPLATES[digit]
    name = sorted(shapes)[int(rng.integers(len(shapes)))]
    slant = rng.uniform(-0.12, 0.38)  # most people lean right; some lean left
    angle = np.radians(rng.uniform(-9, 9))
    aspect = rng.uniform(0.7, 1.25)
    height = rng.uniform(0.42, 0.82) * canvas
    cos, sin = np.cos(angle), np.sin(angle)
    wobble = rng.normal(0, 0.025, (64, 2))  # one smooth error per template point, as a hand makes
    k = 0
    pieces = []
    for stroke in shapes[name]:
        path = []
        for piece in stroke:
            pts = np.asarray(piece, dtype=np.float64)
            pts = pts + wobble[k : k + len(pts)]
            k = (k + len(pts)) % 48
            path.append(_smooth([tuple(p) for p in pts], per_segment=12))
        xy = np.vstack(path) - 0.5
        x = xy[:, 0] * aspect * 0.62 + slant * (-xy[:, 1])  # a digit is ~0.6 as wide as tall
        y = xy[:, 1]
        pieces.append(np.stack([x * cos - y * sin, x * sin + y * cos], axis=1) * height)
    allpts = np.vstack(pieces)
    lo, hi = allpts.min(0), allpts.max(0)
    width = float(rng.uniform(*pen))
    margin = width / 2 + 4
    room = canvas - 2 * margin - (hi - lo)
    offset = margin - lo + rng.uniform(0, 1, 2) * np.maximum(room, 0)
    spacing = float(rng.uniform(*speed))
    strokes = [_resample(p + offset, spacing) for p in pieces]
    return Drawing(digit, name, strokes, width, canvas)


def rasterise(drawing: Drawing, supersample: int = 4) -> np.ndarray:
    """The drawing's ink, (canvas, canvas) float 0..1, drawn as a round pen on a canvas does."""
    side = drawing.canvas * supersample
    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    w = max(1, round(drawing.pen * supersample))
    for s in drawing.strokes:
        pts = [(float(x) * supersample, float(y) * supersample) for x, y in s]
        draw.line(pts, fill=255, width=w, joint="curve")
        for x, y in (pts[0], pts[-1]):  # round caps
            draw.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=255)
    small = img.resize((drawing.canvas, drawing.canvas), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255


def photograph(digit: int, rng: np.random.Generator) -> Image.Image:
    """A handwritten digit in pen, pencil or marker on paper, photographed with a phone: the paper
    grey and unevenly lit (light falling off, a shadow across it), the page a little tilted, sensor
    noise, focus blur and JPEG. Returns a grayscale picture of its own size."""
    side = int(rng.integers(120, 260))
    drawing = make_drawing(digit, rng, canvas=side, pen=(0.025 * side, 0.09 * side), speed=(1.5, 3))
    ink = rasterise(drawing)
    h = w = side
    yy, xx = np.mgrid[0:h, 0:w] / side
    paper = rng.uniform(150, 220) + rng.uniform(-45, 45) * xx + rng.uniform(-45, 45) * yy
    # a shadow (a hand or a phone) across part of the page
    if rng.random() < 0.5:
        nx, ny = rng.normal(size=2)
        edge = (nx * (xx - 0.5) + ny * (yy - 0.5)) / max(1e-6, float(np.hypot(nx, ny)))
        paper = paper * (1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-(edge - rng.uniform(-0.4, 0.4)) * 25)))
    paper += rng.normal(0, 3, (h, w))  # the paper's grain
    darkness = rng.uniform(0.45, 0.85)  # a pencil is light, a marker dark
    page = paper * (1 - darkness * ink)
    img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    tilt = side * rng.uniform(0, 0.08, 8)  # a page not quite square to the camera
    quad = (tilt[0], tilt[1], tilt[2], h - tilt[3], w - tilt[4], h - tilt[5], w - tilt[6], tilt[7])
    img = img.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR, fillcolor=int(paper.mean()))
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.6))))
    a = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(2, 8), (h, w))
    return jpeg(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), int(rng.integers(60, 92)))
