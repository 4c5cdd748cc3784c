"""The model's I/O contract, declared once: export, verification, the runner and inspect read it.

Full-sequence model: `images` float32 (batch, 28, 28), pixel/255, rows as time steps
                     -> `logits` float32 (batch, 10).
Streaming step model: `row` float32 (batch, 28), `h`, `c` float32 (1, batch, 128)
                     -> `logits` (batch, 10), `h_out`, `c_out` (1, batch, 128).
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH = "batch"  # the symbolic batch axis's name in every exported model
N_STEPS = 28
N_INPUTS = 28
N_HIDDEN = 128
N_CLASSES = 10
CLASS_LABELS = [str(d) for d in range(N_CLASSES)]

INPUT = "images"
OUTPUT = "logits"
STEP_INPUTS = ("row", "h", "c")
STEP_OUTPUTS = ("logits", "h_out", "c_out")

PREPROCESSING = (
    "float32 pixels scaled to [0, 1] (uint8 / 255); each 28x28 image is read row by row, "
    "28 time steps of 28 pixels; white digit on black background, centred by centre of mass (MNIST)"
)

# metadata_props keys written at export and shown by `inspect`
META_KIND = "edge_lstm.kind"  # "classifier" or "streaming-step"
META_VARIANT = "edge_lstm.variant"  # fp32, int8, fp16
META_VERSION = "edge_lstm.version"
META_LAYOUT = "edge_lstm.input_layout"
META_PREPROCESSING = "edge_lstm.preprocessing"
META_LABELS = "edge_lstm.class_labels"
META_ACCURACY = "edge_lstm.checkpoint_test_accuracy"
META_TRAIN_CONFIG = "edge_lstm.train_config"
META_CHECKPOINT_SHA = "edge_lstm.checkpoint_sha256"
META_FUSED = "edge_lstm.input_layer_fused"


@dataclass(frozen=True)
class Tolerance:
    """How far a variant may drift from the PyTorch model and still pass verification."""

    max_abs_logit: float  # max |logit difference| at the probe batch sizes
    min_agreement: float  # share of the test set whose predicted class must match PyTorch's
    max_accuracy_drop: float  # accuracy points (0..100) below PyTorch's that are tolerated


TOLERANCES = {
    "fp32": Tolerance(max_abs_logit=1e-4, min_agreement=1.0, max_accuracy_drop=0.0),
    "fp16": Tolerance(max_abs_logit=2e-2, min_agreement=0.998, max_accuracy_drop=0.1),
    "int8": Tolerance(max_abs_logit=1.0, min_agreement=0.99, max_accuracy_drop=0.3),
}
PROBE_BATCHES = (1, 3, 7, 128)
