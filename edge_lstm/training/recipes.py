"""Training recipes: one config dataclass for every data set, a preset per data set, CLI overrides.

Presets: `default` (MNIST: our recipe), `seed` (MNIST: the TensorFlow tutorial, exactly) and
`sequences` (a user's own labelled sequences, `train --data`: what a few hundred sequences need).
The loop (loop.py) is the same for all; a preset only sets numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from edge_lstm.arch import CELLS, MAX_LAYERS
from edge_lstm.errors import ConfigError

Preset = Literal["default", "seed", "sequences"]
Augment = Literal["writing", "sensor", "noise", "none"]
AUGMENTS: tuple[Augment, ...] = ("writing", "sensor", "noise", "none")
# Own data with `epochs` None: the training's length is set by its work, WORK time steps of the
# recurrent layers (batch x the steps they run per sequence: after a strided front-end's stride, per
# optimizer step), as optimizer steps between MIN_STEPS and MAX_STEPS, then rounded up to whole passes.
# Short sequences get MAX_STEPS (JapaneseVowels' 7-26 steps), long ones fewer (ArrowHead's 251: ~1,500;
# a set of 1,000 sequences of 500 steps 750, 24 passes), the longest MIN_STEPS (ACSF1's 1,460). Before,
# every set got 1,500 steps however long its sequences (up to 8 M time steps): a public smartwatch-gesture
# set of 132 sequences of 100-455 steps took 292 s on a busy machine. Chosen with
# bench/sequence_suite.py (docs/sequences.md): with 4 M the plain LSTM read 64.3% of Coffee (96.4% with 12 M).
WORK = 12_000_000
MIN_STEPS = 300
MAX_STEPS = 3000
# `--arch` (own sequences): what sits in front of the recurrent layers. lstm: the input projection
# alone (the tutorial's model); conv-lstm: CONV causal 1-D convolutions of KERNEL steps first, the first
# one STRIDE steps apart (conv_stride: long sequences run the recurrent layers over fewer steps).
ARCHS = ("lstm", "conv-lstm", "lstm-fcn")
CONV = (64, 64)
KERNEL = 8
# lstm-fcn: three convolutions (after LSTM-FCN's 128-256-128, narrower), their channels also averaged
# over the steps into the head (arch.Arch.pool)
FCN = (64, 128, 64)
# The peak learning rate of the convolutional presets (the plain LSTM's stays `sequences`' 3e-3): on
# ArrowHead, lstm-fcn at 2,000 steps reached 78.3% with 1e-3 and 75.4% with 3e-3 (seed 1).
CONV_LR = 1e-3
# ... and their augmentation: "sensor" (lstm-fcn on ArrowHead at 2,000 steps: 75.4% against 71.4% with
# "noise" and 62.9% with none). The plain LSTM keeps "noise": "sensor" cost it 30 points on ArrowHead
# (32.6% against 62.9-65.1%) and 3.6 on Coffee (bench/results/sequence_suite_lstm_sensor.json).
CONV_AUGMENT = "sensor"


# Own data whose sequences' peaks span this factor or more (10th to 90th percentile, any feature) is read
# on a log scale (training/datasets.py: log_scales). Of the suite's ten sets only PLAID's currents do
# (95,000x; BasicMotions' 44x is next): lstm-fcn read PLAID at 40.4% without it (seed 1).
LOG_SPAN = 1000.0


def conv_stride(mean_length: float) -> int:
    """1 up to ~140 steps, then the power of two that leaves the recurrent layers ~100 steps (at most 8)."""
    return int(min(8, 2 ** max(0, round(math.log2(max(1.0, mean_length / 100))))))


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "default"
    data: str | None = None  # a user's labelled sequences (.npz, .ts); None: MNIST
    test_data: str | None = None  # their test sequences; None: a stratified 20% of `data`
    # 8 passes at a one-cycle peak of 5e-3 (bench/train_speed.py, bench/results/train_speed.json).
    # None (own data): as many as WORK takes (see above).
    epochs: int | None = 8
    max_samples: int | None = None  # stop after this many samples (the tutorial: 100,000)
    batch_size: int = 128
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 5e-3  # peak learning rate of the one-cycle schedule
    # 0.1 with the "recurrent" initialisation: every seed of bench/train_speed.py above 99.1% on both
    # precision paths (0.01 left fp32 at 98.99-99.11%, a seed at 98.80% in bf16)
    weight_decay: float = 0.1
    schedule: Literal["onecycle", "constant"] = "onecycle"
    warmup_frac: float = 0.25  # share of steps spent ramping up to `lr` (one-cycle)
    grad_clip: float | None = 1.0  # max global gradient norm; recurrent nets occasionally spike
    # "recurrent": PyTorch's, then orthogonal recurrent weights and an LSTM's forget-gate bias 1
    # (model.init_recurrent_); "tutorial": the TensorFlow tutorial's; "pytorch": PyTorch's own.
    init: Literal["pytorch", "recurrent", "tutorial"] = "recurrent"
    # Weight of an extra loss on the logits after every earlier step (0: off). Makes the streaming
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
    # "writing" (MNIST): a share of each batch slanted, rotated, stretched, made bolder or finer, blurred
    # and re-contrasted as real writing differs from MNIST (augment.py); "sensor" (own data): time and
    # magnitude warps, window slicing and noise of std `noise` (sensor_augment.py); "noise" (own data):
    # Gaussian noise of std `noise` on the standardised inputs alone; "none": the data as it is.
    augment: Augment = "writing"
    # std of the "noise" augmentation. 0.3 is the most that kept BasicMotions at 100% on 3 seeds;
    # JapaneseVowels gains from more (bench/results/sequences_noise.json). The safe one is the default.
    noise: float = 0.3
    # With "writing" (MNIST), pictures MNIST lacks appended to each batch (data/glyphs.py, extra.py): `typeset`
    # digits set in type, boxy, bar-like 1s and open 4s, and `outliers` non-digits (shapes, faces, letters,
    # patterns) whose loss, times `outlier_weight`, pulls their answer toward no confidence (outlier
    # exposure): what lets a low top probability say "no digit" (NO_DIGIT_BELOW in contract.py).
    typeset: int = 8
    outliers: int = 16
    outlier_weight: float = 0.5
    label_smoothing: float = 0.0
    # Each class's loss weighted by N / (classes x its count): an imbalanced set's rare classes count as
    # much as its common ones (a balanced set is unchanged).
    class_weights: bool = False
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and kept (0: off)
    seed: int = 1
    log_every: int = 20  # steps between loss / batch-accuracy lines, like the tutorial
    subset: int | None = None  # train on the first N training cases (quick runs, tests)
    test_subset: int | None = None  # evaluate on the first N test cases (quick runs, tests)
    # The architecture's choices (edge_lstm/arch.py); steps, features and classes come from the data.
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    in_units: int = 64
    arch: str = "lstm"  # a key of ARCHS, or "auto" (training/choose.py picks one before training)
    work: int = WORK  # own data with epochs None: time steps of the recurrent layers the training runs

    def validate(self) -> None:
        checks = [
            (self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
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
            (self.augment in AUGMENTS, f"augment must be {', '.join(AUGMENTS)}, got {self.augment}"),
            (
                self.augment != "writing" or self.data is None,
                "--augment writing is for MNIST; own data: sensor, noise or none",
            ),
            (
                self.augment != "sensor" or self.data is not None,
                "--augment sensor is for own data (--data); MNIST: writing",
            ),
            (self.noise >= 0, f"noise must be >= 0, got {self.noise}"),
            (self.typeset >= 0 and self.outliers >= 0, "typeset and outliers must be >= 0"),
            (self.outlier_weight >= 0, f"outlier weight must be >= 0, got {self.outlier_weight}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 <= self.ema < 1, f"ema decay must be in [0, 1), got {self.ema}"),
            (self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}"),
            (1 <= self.layers <= MAX_LAYERS, f"layers must be between 1 and {MAX_LAYERS}, got {self.layers}"),
            (1 <= self.hidden <= 4096, f"hidden size must be between 1 and 4096, got {self.hidden}"),
            (1 <= self.in_units <= 4096, f"input units must be between 1 and 4096, got {self.in_units}"),
            (self.test_data is None or self.data is not None, "--test-data goes with --data (your own sequences)"),
            (self.arch in (*ARCHS, "auto"), f"arch must be auto or one of {', '.join(ARCHS)}, got {self.arch!r}"),
            (self.work >= 1, f"work must be >= 1 time step, got {self.work}"),
            (
                self.anytime == 0 or self.arch == "lstm",
                "--anytime trains a step model's early answers: --arch lstm only",
            ),
            (self.arch == "lstm" or self.data is not None, f"--arch {self.arch} is for own sequences (--data)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config a run recorded (unknown keys, from other versions, are dropped)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known.setdefault("augment", "none")  # runs recorded before augmentation existed had none
        known.setdefault("typeset", 0)  # ... nor pictures beside MNIST's
        known.setdefault("outliers", 0)
        known.setdefault("class_weights", False)  # ... nor class weights
        if known.get("init") == "lstm":  # the name of "recurrent" before there was more than one cell
            known["init"] = "recurrent"
        model = d.get("model") or {}  # earlier versions recorded the LSTM's sizes apart
        for old, new in (("n_hidden", "hidden"), ("n_in_units", "in_units")):
            if old in model:
                known.setdefault(new, int(model[old]))
        return cls(**known)


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
    if preset == "sequences":
        # Small data sets (tens to hundreds of sequences) are another regime than MNIST's 60,000
        # images: small batches, many passes (WORK), a short warm-up, noise on the standardised
        # inputs; fp32 as it was measured (bench/sequences.py; docs/sequences.md says what was tried).
        return TrainConfig(
            preset="sequences",
            epochs=None,
            batch_size=32,
            lr=3e-3,
            weight_decay=1e-2,
            warmup_frac=0.1,
            augment="noise",
            class_weights=True,
            precision="fp32",
            log_every=200,
        )
    raise ConfigError(f"unknown preset {preset!r}; choose default or seed (MNIST), or sequences (--data)")


def override(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Apply CLI overrides that were actually given (None means 'keep the preset's value'). A
    convolutional --arch on the sequences preset brings its own learning rate and augmentation (CONV_LR,
    CONV_AUGMENT) unless --lr or --augment is given."""
    given = {k: v for k, v in changes.items() if v is not None}
    if given.get("arch") == "auto" and ("lr" in given or "augment" in given):
        raise ConfigError(
            "--arch auto picks the augmentation and learning rate with the architecture; "
            "drop --lr and --augment, or give an --arch"
        )
    if config.preset == "sequences" and given.get("arch", config.arch) not in ("lstm", "auto"):
        given.setdefault("lr", CONV_LR)
        given.setdefault("augment", CONV_AUGMENT)
    return replace(config, **given)
