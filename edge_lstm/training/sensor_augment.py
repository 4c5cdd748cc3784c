"""`--augment sensor` (own sequences): what sensor and time-series work varies to make a few hundred
sequences teach more (Um et al. 2017, "Data augmentation of wearable sensor data"; Le Guennec et al.
2016, window slicing; Iwana and Uchida 2021's survey), on a padded batch of standardised sequences:

- time: half the sequences are read through a smooth, monotone time map of their own length, a random
  speed at TIME_KNOTS points (time warping) over a random window of WINDOW..100% of the sequence,
  stretched back to the sequence's length (window slicing);
- magnitude: half are multiplied, per channel, by a random scale and a smooth random curve over time
  (scaling, magnitude warping);
- jitter: every one gets Gaussian noise of std `noise` (the `noise` augmentation's).

Every draw comes from the batch's own generator (augment.batch_generator(seed, step)), so a resumed
run sees the same batches. Steps past a sequence's length stay 0 (padding).
"""

from __future__ import annotations

import torch

TIME_KNOTS = 4  # speed changes over a sequence: a few, so the warp is smooth
SPEED = 0.2  # std of the speed at each knot (clamped to 0.5..1.5)
WINDOW = 0.85  # shortest window kept by slicing, as a share of the sequence
SCALE = 0.1  # std of the per-channel scale
MAGNITUDE_KNOTS = 4
MAGNITUDE = 0.1  # std of the magnitude curve at each knot


def _curve(knots: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear curve through `knots` (b, K) spread over [0, 1], at positions r (b, t) in [0, 1]."""
    k = knots.shape[1] - 1
    at = (r * k).clamp(0, k)
    lo = at.floor().long().clamp(max=k - 1)
    frac = at - lo
    return knots.gather(1, lo) * (1 - frac) + knots.gather(1, lo + 1) * frac


def _time_map(r: torch.Tensor, span: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(b, t) positions, in steps of each sequence, to read output step j from (j < its length); r: where
    step j is in its own sequence (0..1), span: each sequence's length - 1, (b, 1)."""
    b = r.shape[0]
    speed = (1 + SPEED * torch.randn(b, TIME_KNOTS, generator=gen)).clamp(0.5, 1.5)
    # the warped position is the integral of the speed, normalised to end at 1
    grid = torch.linspace(0, 1, 65)[None, :].expand(b, -1)
    covered = torch.cumsum(_curve(speed, grid), 1)
    covered = (covered - covered[:, :1]) / (covered[:, -1:] - covered[:, :1])
    warped = _curve(covered, r)
    window = WINDOW + (1 - WINDOW) * torch.rand(b, 1, generator=gen)
    start = (1 - window) * torch.rand(b, 1, generator=gen)
    return (start + window * warped) * span


def _resample(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """x (b, t, f) read at fractional positions pos (b, t), linearly."""
    t = x.shape[1]
    lo = pos.floor().long().clamp(0, t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (pos - lo).clamp(0, 1)[..., None]
    idx = lo[..., None].expand(-1, -1, x.shape[2])
    return x.gather(1, idx) * (1 - w) + x.gather(1, hi[..., None].expand(-1, -1, x.shape[2])) * w


def sensor_augment(x: torch.Tensor, lengths: torch.Tensor | None, gen: torch.Generator, noise: float) -> torch.Tensor:
    """A changed copy of the batch x (b, t, f) whose sequences have `lengths` (None: all t)."""
    b, t, f = x.shape
    x = x.float().cpu()
    n = torch.full((b,), t, dtype=torch.float32) if lengths is None else lengths.float().cpu()
    span = (n - 1).clamp(min=1)[:, None]
    r = (torch.arange(t, dtype=torch.float32)[None, :] / span).clamp(0, 1)  # where each step is in its sequence
    timed = torch.rand(b, generator=gen) < 0.5
    pos = _time_map(r, span, gen)
    warped = _resample(x, pos)
    x = torch.where(timed[:, None, None], warped, x)
    scaled = torch.rand(b, generator=gen) < 0.5
    scale = 1 + SCALE * torch.randn(b, 1, f, generator=gen)
    curve = _curve(1 + MAGNITUDE * torch.randn(b, MAGNITUDE_KNOTS, generator=gen), r)[..., None]
    x = torch.where(scaled[:, None, None], x * scale * curve, x)
    x = x + noise * torch.randn(x.shape, generator=gen)
    valid = torch.arange(t)[None, :] < n[:, None]
    return torch.where(valid[..., None], x, torch.zeros(()))
