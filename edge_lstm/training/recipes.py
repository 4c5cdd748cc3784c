"""Training recipes: the config dataclass, its two presets and CLI overrides."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from edge_lstm.errors import ConfigError
from edge_lstm.training.model import ModelConfig

Preset = Literal["default", "seed"]


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "default"
    # 8 passes at a one-cycle peak of 5e-3 (bench/train_speed.py, bench/results/train_speed.json).
    epochs: int = 8  # full passes over the 60,000 training images (default recipe)
    max_samples: int | None = None  # stop after this many samples (the tutorial: 100,000)
    batch_size: int = 128
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 5e-3  # peak learning rate of the one-cycle schedule
    # 0.1 with the "lstm" initialisation: every seed of bench/train_speed.py above 99.1% on both
    # precision paths (0.01 left fp32 at 98.99-99.11%, a seed at 98.80% in bf16)
    weight_decay: float = 0.1
    schedule: Literal["onecycle", "constant"] = "onecycle"
    warmup_frac: float = 0.25  # share of steps spent ramping up to `lr` (one-cycle)
    grad_clip: float | None = 1.0  # max global gradient norm; LSTMs occasionally spike
    # "lstm": PyTorch's, then forget-gate bias 1 and orthogonal recurrent weights (model.init_lstm_);
    # "tutorial": the TensorFlow tutorial's; "pytorch": PyTorch's own.
    init: Literal["pytorch", "lstm", "tutorial"] = "lstm"
    # Weight of an extra loss on the logits after every earlier row (0: off). Makes the streaming
    # model's early answers meaningful ("anytime" prediction) at a small cost in final accuracy.
    anytime: float = 0.0
    # bf16 autocast for the forward pass where the CPU computes bf16 natively ("auto"); weights,
    # optimizer and evaluation stay fp32. 1.7x faster per step on an AVX512-BF16 CPU (training/threads.py).
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Worker threads for the batch's shards; None: follow the machine's load. Never changes the weights.
    threads: int | None = None
    # Fixed slices of each batch, each computed on one thread, gradients summed in order (shards.py).
    # The weights depend on this, not on the threads; None: one per core, at most 4 (recorded in the run).
    shards: int | None = None
    # "writing": a share of each batch slanted, rotated, stretched, made bolder or finer, blurred and
    # re-contrasted as real writing differs from MNIST (augment.py); "none": MNIST as it is.
    augment: Literal["writing", "none"] = "writing"
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and kept (0: off)
    seed: int = 1
    log_every: int = 20  # steps between loss / batch-accuracy lines, like the tutorial
    subset: int | None = None  # train on the first N training images (quick runs, tests)
    test_subset: int | None = None  # evaluate on the first N test images (quick runs, tests)
    model: ModelConfig = field(default_factory=ModelConfig)

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.max_samples is None or self.max_samples >= 1, "max samples must be >= 1"),
            (self.log_every >= 1, f"log interval must be >= 1, got {self.log_every}"),
            (self.subset is None or self.subset >= 1, f"subset must be >= 1, got {self.subset}"),
            (self.test_subset is None or self.test_subset >= 1, "test subset must be >= 1"),
            (self.grad_clip is None or self.grad_clip > 0, "gradient clip must be > 0"),
            (0 < self.warmup_frac < 1, "warm-up fraction must be in (0, 1)"),
            (self.anytime >= 0, f"anytime loss weight must be >= 0, got {self.anytime}"),
            (self.precision in ("auto", "fp32", "bf16"), f"precision must be auto, fp32 or bf16, got {self.precision}"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"),
            (
                self.shards is None or 1 <= self.shards <= min(64, self.batch_size),
                f"shards must be between 1 and min(64, batch size), got {self.shards}",
            ),
            (self.augment in ("writing", "none"), f"augment must be writing or none, got {self.augment}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 <= self.ema < 1, f"ema decay must be in [0, 1), got {self.ema}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config a run recorded (unknown keys, from other versions, are dropped)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "model"}
        known.setdefault("augment", "none")  # runs recorded before augmentation existed had none
        return cls(**known, model=ModelConfig.from_dict(d["model"]) if "model" in d else ModelConfig())


# Options that never change the weights: a run may be resumed with other values.
FREE_ON_RESUME = ("log_every", "threads")


def preset_config(preset: Preset) -> TrainConfig:
    if preset == "default":
        return TrainConfig()
    if preset == "seed":
        # The TensorFlow tutorial, exactly: Adam 1e-3, batch 128, 100,000 samples (782 steps), seed 1,
        # its initialisation, no schedule, no clipping, no weight decay.
        return TrainConfig(
            preset="seed",
            epochs=2,
            max_samples=100_000,
            optimizer="adam",
            lr=1e-3,
            weight_decay=0.0,
            schedule="constant",
            grad_clip=None,
            init="tutorial",
            seed=1,
            precision="fp32",
            augment="none",
        )
    raise ConfigError(f"unknown preset {preset!r}; choose default or seed")


def override(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Apply CLI overrides that were actually given (None means 'keep the preset's value')."""
    given = {k: v for k, v in changes.items() if v is not None}
    return replace(config, **given)
