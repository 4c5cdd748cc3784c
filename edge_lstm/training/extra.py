"""Pictures MNIST lacks, appended to each batch (`--augment writing`): typeset and boxy digits with their
labels, and non-digits labelled -1, whose loss pulls the answer toward no confidence (setup.loss_fn).
The pictures are drawn once at the start (data/glyphs.py, a second); which of them go into batch `step`
depends on (seed, step) alone, so a resumed run draws what an uninterrupted one did, and they are
appended before the batch is cut into shards, so the worker count changes nothing.
"""

from __future__ import annotations

import torch

from edge_lstm.data.glyphs import extra_pictures
from edge_lstm.training.model import to_float
from edge_lstm.training.recipes import TrainConfig


class ExtraPictures:
    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu") -> None:
        images, labels = extra_pictures(config.seed)
        x, y = to_float(images).to(device), torch.from_numpy(labels).to(device)  # on the device once, not per step
        digit = y >= 0
        self.digits, self.digit_labels = x[digit], y[digit]
        self.others = x[~digit]
        self.typeset, self.outliers, self.seed = config.typeset, config.outliers, config.seed

    def add(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 7 + 3)  # not augment's stream
        d = torch.randint(len(self.digits), (self.typeset,), generator=g)
        o = torch.randint(len(self.others), (self.outliers,), generator=g)
        x = torch.cat([xb, self.digits[d], self.others[o]])
        y = torch.cat([yb, self.digit_labels[d], torch.full((self.outliers,), -1, device=yb.device)])
        return x, y


def extra_for(config: TrainConfig, device: torch.device | str = "cpu") -> ExtraPictures | None:
    wanted = config.augment == "writing" and config.data is None and (config.typeset or config.outliers)
    return ExtraPictures(config, device) if wanted else None
