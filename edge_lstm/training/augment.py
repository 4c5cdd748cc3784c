"""Train-time changes to the pictures that make MNIST look like what people send (`--augment writing`).

MNIST's digits come from one kind of pen, scanned and normalised one way; real writing differs in
slant and rotation, in its proportions after `predict` fits it into 20x20, in stroke width (a marker,
a finger on a phone, a thin pen), in blur and in contrast. A share of each batch (AUGMENTED_SHARE) gets
a random mix of those; the rest stays as it is, so MNIST's own test accuracy is not traded away.
Chosen by measurement: bench/train_writing.py, bench/results/train_writing.json (real-writing accuracy
per family, bench/writing.py's set, and MNIST's test accuracy over seeds on both precision paths).

Deterministic: batch `step` draws its changes from a generator seeded with (seed, step) alone, so a
run resumed from any epoch draws exactly what an uninterrupted run drew, on any thread count. The
changes are made in fp32 before the batch is cut into shards, on both precision paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

AUGMENTED_SHARE = 0.5  # of each batch; the rest is MNIST as it is
ROTATE_DEG = 12.0  # +- degrees
SLANT = 0.3  # +- horizontal shear (x moves by SLANT * y)
STRETCH = 0.15  # +- per-axis scale
SHIFT_PX = 1.5  # +- pixels, after predict's centring by mass a digit is rarely off by more
THICKEN = 0.35  # share of changed images whose strokes get bolder (a marker, a finger)
THIN = 0.15  # share whose strokes get thinner (a fine pen)
THICKER = 0.1  # share (among the bolder ones) dilated once more, fully: a marker, a thick brush
BLUR = 0.2  # share blurred a little (focus, a low-resolution scan scaled up)
BLUR_TWICE = 0.08  # share (among the blurred ones) blurred again
LOWRES = 0.15  # share brought down to 14x14 and back up (a thumbnail, a coarse scan)
GAMMA = 0.6  # contrast: ink levels ** exp(U(-GAMMA, GAMMA))


def batch_generator(seed: int, step: int) -> torch.Generator:
    """The generator of batch `step`'s changes: depends on (seed, step) only."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 28, 28) float 0..1 -> the same batch with AUGMENTED_SHARE of it changed (fp32, CPU generator;
    the result is on the images' device)."""
    b = images.shape[0]
    device = images.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, generator=gen)).to(device)

    changed = uniform(0, 1) < AUGMENTED_SHARE
    angle = uniform(-ROTATE_DEG, ROTATE_DEG) * (math.pi / 180)
    slant = uniform(-SLANT, SLANT)
    sx, sy = 1 + uniform(-STRETCH, STRETCH), 1 + uniform(-STRETCH, STRETCH)
    tx, ty = uniform(-SHIFT_PX, SHIFT_PX) / 14, uniform(-SHIFT_PX, SHIFT_PX) / 14  # grid units: 28 px = 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    # where each output pixel samples the input: rotate(scale(shear(p))) + shift
    a11, a12 = sx, sx * slant
    a21, a22 = torch.zeros_like(sy), sy
    theta = torch.stack([
        torch.stack([cos * a11 - sin * a21, cos * a12 - sin * a22, tx], 1),
        torch.stack([sin * a11 + cos * a21, sin * a12 + cos * a22, ty], 1),
    ], 1)  # fmt: skip
    # Every parameter is drawn for every image (the draws do not depend on which are changed); only
    # the changed images are computed.
    idx = torch.nonzero(changed).flatten()
    theta, amount_all = theta[idx], uniform(0.4, 1.0)[idx]
    stroke, blur, gamma = uniform(0, 1)[idx], uniform(0, 1)[idx], torch.exp(uniform(-GAMMA, GAMMA))[idx]
    coarse = uniform(0, 1)[idx]
    x = images.float()[idx][:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    amount = amount_all[:, None, None, None]
    thick = (stroke < THICKEN)[:, None, None, None]
    thin = ((stroke >= THICKEN) & (stroke < THICKEN + THIN))[:, None, None, None]
    out = torch.where(thick, out + amount * (_around(out, torch.maximum) - out), out)
    out = torch.where((stroke < THICKER)[:, None, None, None], _around(out, torch.maximum), out)
    out = torch.where(thin, out + 0.5 * amount * (_around(out, torch.minimum) - out), out)
    out = torch.where((blur < BLUR)[:, None, None, None], _blur(out), out)
    out = torch.where((blur < BLUR_TWICE)[:, None, None, None], _blur(out), out)
    # a low-resolution scan or thumbnail scaled up: 14x14 and back
    low = F.interpolate(F.avg_pool2d(out, 2), size=(28, 28), mode="bilinear", align_corners=False)
    out = torch.where((coarse < LOWRES)[:, None, None, None], low, out)
    out = out.clamp(0, 1) ** gamma[:, None, None, None]
    peak = out.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)  # predict scales the ink to a peak of 255
    out = out / peak
    result = images.float().clone()
    result[idx] = out[:, 0]
    return result


# 3x3 neighbourhoods as shifted slices: PyTorch's CPU max_pool2d and conv2d take 2.5 and 0.7 ms on a
# (128, 1, 28, 28) batch, these a few hundredths of that (measured with one thread).
def _around(x: torch.Tensor, op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The max (dilation: bolder strokes) or min (erosion: finer) over each pixel's 3x3 neighbourhood."""
    p = F.pad(x, (1, 1, 1, 1))
    h = op(op(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])
    return op(op(h[..., :-2, :], h[..., 1:-1, :]), h[..., 2:, :])


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial blur ([1 2 1] / 4 each way)."""
    p = F.pad(x, (1, 1, 1, 1))
    h = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    return (h[..., :-2, :] + 2 * h[..., 1:-1, :] + h[..., 2:, :]) / 16
