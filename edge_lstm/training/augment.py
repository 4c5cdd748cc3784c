"""Train-time changes to the pictures that make MNIST look like what people send (`--augment writing`).

MNIST's digits come from one kind of pen, scanned and normalised one way; real writing differs in
slant and rotation, in its proportions after `predict` fits it into 20x20, in stroke width (a marker,
a finger on a phone, a thin pen), in blur and in contrast. A share of each batch (AUGMENTED_SHARE) gets
a random mix of those; the rest stays as it is, so MNIST's own test accuracy is not traded away.
Chosen by measurement: bench/train_writing.py, bench/results/train_writing.json (real-writing accuracy
per family, bench/writing.py's set, and MNIST's test accuracy over seeds on both precision paths).

Deterministic: batch `step` draws its changes from a generator seeded with (seed, step) alone, so a
run resumed from any epoch draws exactly what an uninterrupted run drew, on any thread count. The
changes are drawn for the whole batch, then each shard applies its slice's on its own thread
(shards.py), in fp32 on both precision paths: the result does not depend on the worker count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

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


# The output pixels' centres in grid units (align_corners=False), with a 1 for the shift: (784, 3).
_AXIS = (torch.arange(28, dtype=torch.float32) * 2 + 1) / 28 - 1
_BASE = torch.stack([_AXIS.repeat(28), _AXIS.repeat_interleave(28), torch.ones(784)], 1)


@dataclass(frozen=True)
class Changes:
    """One batch's drawn changes, per image: drawn once for the whole batch (draw), applied to any
    slice of it (apply), so each training shard changes its own slice on its own thread."""

    changed: torch.Tensor  # (B,) bool: this image is changed at all
    theta: torch.Tensor  # (B, 2, 3): where each output pixel samples the input
    amount: torch.Tensor  # (B,) how far strokes are made bolder or finer
    stroke: torch.Tensor  # (B,) picks bolder (< THICKEN), finer (< THICKEN + THIN), bolder still (< THICKER)
    blur: torch.Tensor  # (B,) picks blurred (< BLUR) and blurred twice (< BLUR_TWICE)
    gamma: torch.Tensor  # (B,) contrast exponent
    coarse: torch.Tensor  # (B,) picks a 14x14 scan scaled up (< LOWRES)

    def __getitem__(self, part: slice) -> Changes:
        return Changes(*(getattr(self, f.name)[part] for f in fields(self)))


def draw(b: int, gen: torch.Generator) -> Changes:
    """The changes of a batch of `b` images, all drawn from `gen` in a fixed order."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    changed = uniform(0, 1) < AUGMENTED_SHARE
    angle = uniform(-ROTATE_DEG, ROTATE_DEG) * (math.pi / 180)
    slant = uniform(-SLANT, SLANT)
    sx, sy = 1 + uniform(-STRETCH, STRETCH), 1 + uniform(-STRETCH, STRETCH)
    tx, ty = uniform(-SHIFT_PX, SHIFT_PX) / 14, uniform(-SHIFT_PX, SHIFT_PX) / 14  # grid units: 28 px = 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    # rotate(scale(shear(p))) + shift
    a11, a12 = sx, sx * slant
    a21, a22 = torch.zeros_like(sy), sy
    theta = torch.stack(
        [
            torch.stack([cos * a11 - sin * a21, cos * a12 - sin * a22, tx], 1),
            torch.stack([sin * a11 + cos * a21, sin * a12 + cos * a22, ty], 1),
        ],
        1,
    )
    amount = uniform(0.4, 1.0)
    stroke, blur, gamma = uniform(0, 1), uniform(0, 1), torch.exp(uniform(-GAMMA, GAMMA))
    return Changes(changed, theta, amount, stroke, blur, gamma, uniform(0, 1))


def apply(images: torch.Tensor, ch: Changes) -> torch.Tensor:
    """(B, 28, 28) float 0..1 -> the batch with `ch` applied (fp32; only the changed images computed).
    Every operation is per image, so a slice gives the slice of the whole batch's result."""
    idx = torch.nonzero(ch.changed).flatten()
    result = images.float().clone()
    if idx.numel() == 0:
        return result
    device = images.device
    ch = Changes(*(getattr(ch, f.name)[idx].to(device) for f in fields(ch)))
    x = result[idx][:, None]
    # affine_grid by hand: the same sampling grid, a quarter of its cost on such small batches
    grid = (_BASE.to(device) @ ch.theta.transpose(1, 2)).view(-1, 28, 28, 2)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def some(pick: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        """out[pick] = fn(out[pick], the picked images' indices): each change computed only for the
        images it picks (on batches this small, per-call cost is most of the cost)."""
        rows = torch.nonzero(pick).flatten()
        if rows.numel():
            out[rows] = fn(out[rows], rows)

    amount = ch.amount[:, None, None, None]
    some(ch.stroke < THICKEN, lambda o, r: o + amount[r] * (_around(o, torch.maximum) - o))
    some(ch.stroke < THICKER, lambda o, r: _around(o, torch.maximum))
    thin = (ch.stroke >= THICKEN) & (ch.stroke < THICKEN + THIN)
    some(thin, lambda o, r: o + 0.5 * amount[r] * (_around(o, torch.minimum) - o))
    some(ch.blur < BLUR, lambda o, r: _blur(o))
    some(ch.blur < BLUR_TWICE, lambda o, r: _blur(o))
    # a low-resolution scan or thumbnail scaled up: 14x14 and back
    some(
        ch.coarse < LOWRES,
        lambda o, r: F.interpolate(F.avg_pool2d(o, 2), size=(28, 28), mode="bilinear", align_corners=False),
    )
    out = out.clamp(0, 1) ** ch.gamma[:, None, None, None]
    peak = out.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)  # predict scales the ink to a peak of 255
    result[idx] = (out / peak)[:, 0]
    return result


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The whole batch changed at once: apply(images, draw(len(images), gen))."""
    return apply(images, draw(images.shape[0], gen))


class EpochChanges:
    """One epoch's batches, changed CHUNK batches at a time and split over the training's workers.

    Each image costs the same whatever the batch, but 128 at a time the calls are so small that two
    workers mostly wait for each other's Python (the GIL). Measured on 2 cores of an Intel Xeon (AMX),
    `train --epochs 2`, bf16: 6.4 s of training without augmentation, 9.0-9.7 s with it applied per
    batch in the shards, 7.4 s in chunks (bench/results/train_writing.json has whole runs).
    Batch k still draws its changes from batch_generator(seed, first_step + k) and every change is per
    image, so each batch gets its own changes (equal to float rounding to applying them batch by
    batch); the chunks and their parts are fixed by the epoch and the shard count, so the result is
    bit for bit the same on any number of workers."""

    CHUNK = 16  # batches changed at once

    def __init__(
        self,
        images: torch.Tensor,
        order: torch.Tensor,
        batch_size: int,
        seed: int,
        first_step: int,
        run: Callable[[Callable[[int], torch.Tensor], int], list[torch.Tensor]],
        parts: int,
    ) -> None:
        self.images, self.order, self.batch_size = images, order, batch_size
        self.seed, self.first_step, self.run, self.parts = seed, first_step, run, max(1, parts)
        self.n_batches = -(-len(order) // batch_size)
        self._chunk, self._done = -1, torch.empty(0)
        self.fresh = False

    def batch(self, k: int) -> torch.Tensor:
        """The changed images of batch k of the epoch."""
        c = k // self.CHUNK
        self.fresh = c != self._chunk  # this call made a chunk (the step after it runs slower)
        if self.fresh:
            self._chunk, self._done = c, self._compute(c)
        first = c * self.CHUNK * self.batch_size
        a = k * self.batch_size - first
        return self._done[a : a + len(self.order[k * self.batch_size : (k + 1) * self.batch_size])]

    def _compute(self, c: int) -> torch.Tensor:
        ks = range(c * self.CHUNK, min((c + 1) * self.CHUNK, self.n_batches))
        idx = self.order[ks[0] * self.batch_size : (ks[-1] + 1) * self.batch_size]
        parts = [
            draw(
                len(self.order[k * self.batch_size : (k + 1) * self.batch_size]),
                batch_generator(self.seed, self.first_step + k),
            )
            for k in ks
        ]
        changes = Changes(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Changes)))
        images = self.images[idx.to(self.images.device)]
        bounds = [len(idx) * i // self.parts for i in range(self.parts + 1)]
        done = self.run(
            lambda i: apply(images[bounds[i] : bounds[i + 1]], changes[bounds[i] : bounds[i + 1]]), self.parts
        )
        return torch.cat(done)


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
