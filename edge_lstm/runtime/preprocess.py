"""Turning real images into MNIST's convention, as MNIST itself was made.

MNIST digits are white on black, size-normalised to fit a 20x20 box (keeping the aspect ratio,
anti-aliased), then placed in a 28x28 image so that their centre of mass is at the centre.
A photo or drawing of a digit (dark ink on light paper, any size, off-centre) goes through the
same steps; an image that already is 28x28 white-on-black is passed through unchanged.
Needs numpy and Pillow only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import InputError
from edge_lstm.fileio import not_a_file
from edge_lstm.runtime import imageops

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
IDX_SUFFIXES = {".gz", ".idx", ".ubyte"}
INPUT_SUFFIXES = IMAGE_SUFFIXES | IDX_SUFFIXES | {".npy"}  # every file load_inputs reads
# Memory bound for one picture. A picture is decoded at full size only by formats that cannot decode
# reduced (PNG, BMP, TIFF, ...; JPEG decodes at 1/2..1/8 scale via draft()), then shrunk to WORK_SIDE
# before any conversion, so the peak is about one decoded copy: MAX_PIXELS x bytes per pixel (RGBA 4)
# = 256 MB at the limit (tests/runtime/test_preprocess.py measures an 8000x8000 picture). Larger
# pictures are refused before decoding: a 28x28 digit needs nothing of that size.
MAX_PIXELS = 64_000_000  # 8000 x 8000
WORK_SIDE = 1024  # longest side the picture is shrunk to before normalisation
BLANK_CONTRAST = 16  # grey levels (of 255) between the darkest and brightest pixel: less is a blank picture
# Background removal (see _remove_background). Chosen on edge_lstm/data/pictures.py's families with
# `python bench/pictures.py` (bench/results/pictures.json): no family below the flat-background
# normalisation of earlier versions, photographs of unevenly lit paper still read.
EVEN_LIGHT = 0.08  # the paper's level along the edge varies less than this share of the ink's contrast: evenly lit
# The paper estimate never rises above this share of the ink's contrast (bold strokes are not paper).
PAPER_CEILING = 0.25
# ... except where the light is broad: a shadow or a bright patch wider than BROAD_LIGHT pixels of the
# 32-pixel picture (over half of it) survives an opening that size, and no stroke does, so there the
# paper estimate follows it past the ceiling (a hand's or a phone's shadow across the page). Chosen on
# bench/writing.py's photographed digits (400: 79.5% right with it, 77% without; 81% at 15, which cost
# the bold close crops of data/pictures.py 0.4 points; 19 costs them nothing).
BROAD_LIGHT = 19
# A digit's strokes are solid: in MNIST (train and test) and every picture family, at least 55% of the
# normalised ink is in pixels brighter than half; noise and textures come out as faint haze (under 25%).
SOLID_SHARE = 0.5
# Marks fainter than this share of the peak are haze, not strokes (the bounding box ignores them too):
# dropped before the shrink. What a shadow's edge or a pencil's smudge leaves would otherwise count as
# faint ink against the solid-stroke rule: with it, 84.6% of 500 photographed digits are read instead
# of 79.4% (bench/writing.py's family), no picture family of data/pictures.py reads worse, every noise
# and texture picture is still refused, and 22% of smooth blotches instead of 51% (smooth shapes a
# digit could be).
HAZE = 0.2
# Strokes are widened to at least this many pixels of the 20-pixel box (see _bolden).
MIN_STROKE = 2.0
# ... when they are pen strokes. Marks under PEN_MIN pixels wide (by stroke_width: speckle and cloth
# measure 2-2.5, a 1-3 pixel brush on a canvas too) are widened only when they leave part of the
# picture blank: noise and textures fill the frame (their marks' box covers over FRAME_FILLED of the
# picture), a drawing does not. bench/writing.py's thin_pen family (a 1-4 pixel brush on a 200-800 pixel
# canvas): 99.9% read instead of 1.2-1.6%, every noise and texture picture still refused (docs/results.md).
PEN_MIN = 3.0
FRAME_FILLED = 0.9


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """(H, W) grayscale 0..255 -> (28, 28) uint8, white digit on black, MNIST-normalised.

    The browser page runs the same steps (edge_lstm/web/assets/preprocess.js, tested to give the same
    array for the same picture), so every operation is one of imageops' portable ones."""
    g = np.asarray(gray, dtype=np.float64)
    if float(g.max() - g.min()) < BLANK_CONTRAST:  # all black, all white or all grey
        raise InputError("the image is blank: no digit found")
    background = float(np.median(_border(g)))
    if background > 127:  # dark ink on light paper: invert to MNIST's light-on-dark
        g, background = 255.0 - g, 255.0 - background
    if g.shape == (28, 28) and background < 32 and _fits_mnist_box(g):
        return np.clip(g, 0, 255).astype(np.uint8)  # already MNIST-like: do not touch
    ink = _remove_background(g, background)
    peak = float(ink.max())
    if peak <= 0:
        raise InputError("the image is blank: no digit found")
    ink = ink * (255.0 / peak)
    # Bounding box of the strokes: a 3x3 median first, so sensor noise and JPEG speckle do not count.
    strokes = imageops.median3(ink)
    ys, xs = np.nonzero(strokes > 0.2 * strokes.max())
    if ys.size == 0:
        raise InputError("the image is blank: no digit found")
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    fills_frame = crop.size > FRAME_FILLED * ink.size
    crop = _bolden(np.where(crop > HAZE * 255.0, crop, 0.0), fills_frame)
    h, w = crop.shape
    scale = 20.0 / max(h, w)  # the longest side to 20 pixels, keeping the aspect ratio
    nh, nw = max(1, int(imageops.round_half_up(h * scale))), max(1, int(imageops.round_half_up(w * scale)))
    small = np.clip(imageops.resize(crop, nh, nw), 0, 255)
    rows, cols = imageops.seq_sum(small, axis=1), imageops.seq_sum(small, axis=0)
    mass = float(imageops.seq_sum(rows))
    cy = float(imageops.seq_sum(rows * np.arange(nh))) / mass
    cx = float(imageops.seq_sum(cols * np.arange(nw))) / mass
    top = int(np.clip(imageops.round_half_up(14 - cy), 0, 28 - nh))  # centre of mass to (14, 14), inside
    left = int(np.clip(imageops.round_half_up(14 - cx), 0, 28 - nw))
    out = np.zeros((28, 28))
    out[top : top + nh, left : left + nw] = small
    digit = np.clip(imageops.round_half_up(out), 0, 255).astype(np.uint8)
    total, solid = int(digit.sum(dtype=np.int64)), int(digit[digit > 127].sum(dtype=np.int64))
    if 2 * solid < total:  # exact in integers, as in the browser: solid / total < SOLID_SHARE
        raise InputError(
            f"no digit found: only {100 * solid / total:.0f}% of the marks are solid strokes (a handwritten "
            f"digit has over {100 * SOLID_SHARE:.0f}%); noise or a texture, not a digit"
        )
    return digit


def _bolden(crop: np.ndarray, fills_frame: bool = False) -> np.ndarray:
    """Strokes too fine to survive the shrink to 20x20 made bold enough first.

    A thin pen on a large picture (a photograph, a high-resolution drawing) shrinks to strokes a
    fraction of a pixel wide: faint grey that the model never saw (MNIST's strokes are 2-5 pixels
    wide in its 20-pixel box, 2.2 at the 10th percentile by stroke_width) and that the solid-stroke
    rule takes for haze. Such strokes are widened (a square dilation) to MIN_STROKE pixels after the
    shrink. Strokes already that wide are left alone, and so are marks under PEN_MIN pixels wide
    that fill the frame (`fills_frame`: speckle or a texture, not a drawing)."""
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    width = imageops.stroke_width(crop, 127.5)
    grow = int(imageops.round_half_up((MIN_STROKE / scale - width) / 2))  # pixels on each side
    if grow < 1 or (width < PEN_MIN and fills_frame):
        return crop
    padded = np.pad(crop, grow)  # room for the wider strokes (zeros: no ink)
    return imageops.dilate(padded, 2 * grow + 1)


def _fits_mnist_box(g: np.ndarray) -> bool:
    """Whether a 28x28 light-on-dark image is already in MNIST's convention: its marks (above the
    dark level 32) fit in 20x20, as every one of MNIST's 70,000 images does. A digit rendered at 28x28
    that fills the frame is not, and is normalised like any other picture."""
    ys, xs = np.nonzero(g > 32)
    return ys.size == 0 or (int(ys.max() - ys.min()) < 20 and int(xs.max() - xs.min()) < 20)


def _remove_background(g: np.ndarray, flat: float) -> np.ndarray:
    """Light-on-dark (H, W) image -> the ink alone.

    Photographs are unevenly lit, so the paper's level is estimated per pixel: the picture shrunk to
    32 pixels on its longest side, opened (min then max filter: removes strokes up to ~1/5 of the
    picture wide), blurred and scaled back. Two guards keep that from eating the digit: an evenly lit
    picture (the paper's level along the edge varies by less than EVEN_LIGHT of the ink's contrast)
    gets the flat level of its border instead, and the estimate never rises above PAPER_CEILING of
    the contrast, since bold strokes in a close crop survive the opening and would be taken for
    paper. Small pictures (28x28, digital drawings) have no light to correct: their border's median
    is used."""
    h, w = g.shape
    if max(h, w) < 64:
        return np.clip(g - flat, 0, None)
    scale = 32 / max(h, w)
    sh, sw = max(1, int(imageops.round_half_up(h * scale))), max(1, int(imageops.round_half_up(w * scale)))
    small = imageops.resize(g, sh, sw)
    contrast = float(small.max()) - flat
    edge = _border(imageops.blur5(small))
    if float(edge.max()) - float(edge.min()) < EVEN_LIGHT * contrast:
        return np.clip(g - flat, 0, None)
    opened = imageops.blur5(imageops.max_filter(imageops.min_filter(small, 7), 7))
    broad = imageops.blur5(imageops.max_filter(imageops.min_filter(small, BROAD_LIGHT), BROAD_LIGHT))
    paper = np.minimum(opened, np.maximum(broad, flat + PAPER_CEILING * contrast))
    level = imageops.resize(paper, h, w)
    return np.clip(g - np.maximum(level, 0), 0, None)


def load_image(path: Path | str | bytes, normalize: bool = True, name: str | None = None) -> np.ndarray:
    """A picture (a file, or its bytes as uploaded) -> (1, 28, 28) uint8, decoded with bounded memory
    (see MAX_PIXELS). `name` is what error messages call it (default: the path, or "the picture")."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    source = io.BytesIO(path) if isinstance(path, bytes) else path
    path = name or ("the picture" if isinstance(path, bytes) else str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # our limit is lower anyway
            with Image.open(source) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise InputError(
                        f"{path}: {w}x{h} picture ({w * h / 1e6:.0f} megapixels) is over the "
                        f"{MAX_PIXELS / 1e6:.0f}-megapixel limit; scale it down first"
                    )
                im.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced scale (no-op elsewhere)
                im.load()
                if max(im.size) > WORK_SIDE:  # shrink before any conversion multiplies the memory
                    im.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
                gray = _to_gray(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            f"{path}: picture over the {MAX_PIXELS / 1e6:.0f}-megapixel limit (Pillow refuses it as a "
            "decompression bomb); scale it down first"
        ) from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a readable image (unknown format)") from None
    except (OSError, ValueError, SyntaxError) as e:  # recognised, but truncated or corrupted
        raise InputError(f"{path}: not a readable image ({str(e)[:120]})") from None
    if not normalize:
        if gray.shape != (28, 28):
            raise InputError(f"{path}: {gray.shape[1]}x{gray.shape[0]} image; without normalisation it must be 28x28")
        return gray[None].copy()
    try:
        return to_mnist(gray)[None]
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def _to_gray(im: Any) -> np.ndarray:
    """Any Pillow mode -> (H, W) uint8 grayscale. Float and 16-bit pictures are read by their range
    (float in [0, 1] is 0..1, not 0..255); transparent pixels count as paper (white), so a PNG drawn
    on a transparent canvas works."""
    from PIL import Image

    if im.mode in ("F", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(im, dtype=np.float32)
        finite = a[np.isfinite(a)]
        hi = float(finite.max()) if finite.size else 0.0
        scale = 255.0 if hi <= 1.0 else (255.0 / 65535.0 if hi > 255.0 else 1.0)
        return np.clip(np.nan_to_num(a * scale), 0, 255).astype(np.uint8)
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("L"))


def load_array(path: Path) -> np.ndarray:
    """.npy -> (N, 28, 28) uint8 or float32 as stored (the runner validates the range)."""
    import zipfile

    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # a file starting "PK" is read as .npz
        raise InputError(f"{path}: not a readable .npy array ({str(e)[:100]})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive under a .npy name
        arr.close()
        raise InputError(f"{path}: an .npz archive of arrays, not one .npy array; save the images with np.save")
    if arr.shape == (28, 28):
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28):
        raise InputError(f"{path}: array of shape {arr.shape}; expected (28, 28) or (N, 28, 28)")
    if arr.shape[0] == 0:
        raise InputError(f"{path}: empty array")
    return arr


def load_inputs(path: Path, normalize: bool = True) -> np.ndarray:
    """Any supported input file -> (N, 28, 28) images. Raises InputError for anything else."""
    from edge_lstm.data import mnist
    from edge_lstm.errors import DataError

    path = Path(path)
    if (why := not_a_file(path)) is not None:
        raise InputError(f"{path}: {'file ' if why == 'not found' else ''}{why}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_array(path)
    if suffix in IMAGE_SUFFIXES:
        return load_image(path, normalize)
    if "idx" in path.name or suffix in IDX_SUFFIXES:
        try:
            arr = mnist.load_idx(path)
        except DataError as e:
            raise InputError(str(e)) from None
        if arr.ndim != 3 or arr.shape[1:] != (28, 28) or arr.dtype != np.uint8:
            raise InputError(f"{path}: IDX holds {arr.dtype} {arr.shape}; expected uint8 (N, 28, 28) images")
        return arr
    raise InputError(f"{path}: unsupported format {suffix or '(no suffix)'}; use PNG/JPEG, .npy or IDX")
