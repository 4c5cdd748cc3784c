"""Turning real images into MNIST's convention, as MNIST itself was made.

MNIST digits are white on black, size-normalised to fit a 20x20 box (keeping the aspect ratio,
anti-aliased), then placed in a 28x28 image so that their centre of mass is at the centre.
A photo or drawing of a digit (dark ink on light paper, any size, off-centre) goes through the
same steps; an image that already is 28x28 white-on-black is passed through unchanged.
Needs numpy and Pillow only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_lstm.errors import InputError
from edge_lstm.fileio import not_a_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """(H, W) grayscale 0..255 -> (28, 28) uint8, white digit on black, MNIST-normalised."""
    from PIL import Image

    g = gray.astype(np.float32)
    background = float(np.median(_border(g)))
    if background > 127:  # dark ink on light paper: invert to MNIST's light-on-dark
        g, background = 255.0 - g, 255.0 - background
    if g.shape == (28, 28) and background < 32:
        return np.clip(g, 0, 255).astype(np.uint8)  # already MNIST-like: do not touch
    ink = np.clip(g - background, 0, None)
    if ink.max() <= 0:
        raise InputError("the image is blank: no digit found")
    ink *= 255.0 / ink.max()
    ys, xs = np.nonzero(ink > 0.1 * 255)  # bounding box of the strokes, ignoring faint noise
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.clip(small, 0, 255)
    mass = small.sum()
    cy = float((small.sum(axis=1) * np.arange(nh)).sum() / mass)
    cx = float((small.sum(axis=0) * np.arange(nw)).sum() / mass)
    top = int(np.clip(round(14 - cy), 0, 28 - nh))  # centre of mass to (14, 14), staying inside
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    out = np.zeros((28, 28), np.float32)
    out[top : top + nh, left : left + nw] = small
    return out.round().astype(np.uint8)


def load_image(path: Path, normalize: bool = True) -> np.ndarray:
    """A picture file -> (1, 28, 28) uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            rgba = im.convert("RGBA")
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a readable image (unknown format)") from None
    except OSError as e:  # recognised, but truncated or corrupted
        raise InputError(f"{path}: not a readable image ({e})") from None
    # Transparent pixels count as paper (white), so a PNG drawn on a transparent canvas works.
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    gray = np.asarray(Image.alpha_composite(white, rgba).convert("L"))
    if not normalize:
        if gray.shape != (28, 28):
            raise InputError(f"{path}: {gray.shape[1]}x{gray.shape[0]} image; without normalisation it must be 28x28")
        return gray[None].copy()
    return to_mnist(gray)[None]


def load_array(path: Path) -> np.ndarray:
    """.npy -> (N, 28, 28) uint8 or float32 as stored (the runner validates the range)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{path}: not a readable .npy array ({str(e)[:100]})") from None
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
    if "idx" in path.name or suffix in (".gz", ".idx", ".ubyte"):
        try:
            arr = mnist.load_idx(path)
        except DataError as e:
            raise InputError(str(e)) from None
        if arr.ndim != 3 or arr.shape[1:] != (28, 28) or arr.dtype != np.uint8:
            raise InputError(f"{path}: IDX holds {arr.dtype} {arr.shape}; expected uint8 (N, 28, 28) images")
        return arr
    raise InputError(f"{path}: unsupported format {suffix or '(no suffix)'}; use PNG/JPEG, .npy or IDX")
