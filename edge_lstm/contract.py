"""The model files' I/O contract, declared once as objects: export builds and checks graphs against
it, the runtime checks every file it opens against it, and bench and the CLI read names from it.
Every size and name comes from the model's architecture (edge_lstm/arch.py), recorded in every
file's `edge_lstm.arch` metadata.

Full-sequence model ("classifier"): `images` float32 (batch, 28, 28), pixel/255, rows as time steps
                                    -> `logits` float32 (batch, 10)   (MNIST's; other data: below).
Streaming step model ("streaming-step"): `row` float32 (batch, features) and the state tensors of the
    cell (LSTM: `h`, `c`; GRU: `h`), each (layers, batch, hidden) -> `logits` (batch, classes) and
    each state tensor's next value (`h_out`, `c_out`).
`batch` is symbolic in the files `edge-lstm export` writes; a file exported for one fixed batch
size (a consumer that needs static shapes) has that number in its place, the same everywhere.

A model trained on a user's own sequences (`train --data`) reads `sequences` float32 (batch, T, F) raw
feature values -> `logits` (batch, classes); where the sequences differ in length, T is the symbolic
`time` axis and a second input, `lengths` int32 (batch,), says how many steps of each padded
sequence are real. Files of earlier versions carry `edge_lstm.sizes` (one-layer LSTMs) or nothing
(MNIST's); both are read as the architecture they had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lstm.arch import CELLS, FRONT_STATE, MNIST, Arch

BATCH = "batch"  # the symbolic batch axis's name in every exported model
TIME = "time"  # the symbolic time axis of a model for sequences of any length
CLASS_LABELS = list(MNIST.classes)

PREPROCESSING = (
    "float32 pixels scaled to [0, 1] (uint8 / 255); each 28x28 image is read row by row, "
    "28 time steps of 28 pixels; white digit on black background, centred by centre of mass (MNIST)"
)

# Default locations, here (torch-free) so that every command and script names them the same way.
DEFAULT_RUN_DIR = Path("runs/latest")
DEFAULT_CHECKPOINT = DEFAULT_RUN_DIR / "model.pt"
DEFAULT_MODEL = Path("export/model.onnx")
DEFAULT_STEP_MODEL = Path("export/step.onnx")

# metadata_props keys written at export and shown by `inspect`
META_KIND = "edge_lstm.kind"  # ModelSpec.kind: "classifier" or "streaming-step"
META_VARIANT = "edge_lstm.variant"  # fp32, int8, fp16, mobile, mobile-int8
META_INT8_SCHEME = "edge_lstm.int8_scheme"  # a sequence model's int8 file: which layers are int8 (export/targets.py)
META_VERSION = "edge_lstm.version"
META_LAYOUT = "edge_lstm.input_layout"
META_PREPROCESSING = "edge_lstm.preprocessing"
META_LABELS = "edge_lstm.class_labels"
META_ACCURACY = "edge_lstm.checkpoint_test_accuracy"
META_TRAIN_CONFIG = "edge_lstm.train_config"
META_CHECKPOINT_SHA = "edge_lstm.checkpoint_sha256"
META_FUSED = "edge_lstm.input_layer_fused"
META_ARCH = "edge_lstm.arch"  # JSON of the Arch, in every file
# A picture whose best class has a lower probability than this holds no digit (image models trained with
# non-digits, --augment writing; absent otherwise). Chosen on bench/writing.py's real writing and
# non-digit sets (docs/results.md): predict, serve's /predict and the page refuse below it.
META_NO_DIGIT = "edge_lstm.no_digit_below"
NO_DIGIT_BELOW = 0.5
META_SIZES = "edge_lstm.sizes"  # earlier versions' files of own data: one-layer LSTM sizes (read, never written)


Dim = int | str | None  # a fixed size, a symbolic name, or unknown (as a file declares it)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple[int | str, ...]  # BATCH marks the batch axis
    dtype: str = "float32"


@dataclass(frozen=True)
class Declared:
    """A tensor as a model file declares it (from an ONNX proto or an onnxruntime session)."""

    name: str
    dtype: str
    dims: tuple[Dim, ...] | None  # None: no shape declared


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # the value of the META_KIND metadata
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    layout: str  # for people, and the META_LAYOUT metadata
    arch: Arch = MNIST  # what it was built from

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def shape(self, name: str, batch: int, steps: int = 1) -> tuple[int, ...]:
        """The concrete shape of input/output `name` at this batch size (and length, on a time axis)."""
        spec = next(t for t in (*self.inputs, *self.outputs) if t.name == name)
        return tuple(batch if d == BATCH else steps if d == TIME else int(d) for d in spec.dims)

    def mismatches(
        self, inputs: Sequence[Declared], outputs: Sequence[Declared], batch: int | str | None = None
    ) -> list[str]:
        """Every way the declared tensors differ from this contract, for people (empty: they match).

        batch: what the batch axis must be: BATCH (symbolic, as export writes it), a number (a
        fixed-batch file), or None (any symbolic name or positive number, the same in every tensor).
        """
        problems: list[str] = []
        seen_batch: set[int | str] = set()
        for kind, got, want in (("input", inputs, self.inputs), ("output", outputs, self.outputs)):
            names = [d.name for d in got]
            if names != [t.name for t in want]:
                problems.append(f"{kind}s are {names}, expected {[t.name for t in want]}")
                continue
            for d, t in zip(got, want, strict=True):
                if d.dtype != t.dtype:
                    problems.append(f"{kind} {d.name!r} is {d.dtype}, expected {t.dtype}")
                if d.dims is None:
                    continue  # no shape declared: the runtime will find out at the first run
                if len(d.dims) != len(t.dims):
                    problems.append(f"{kind} {d.name!r} has shape {_show(d.dims)}, expected {_show(t.dims)}")
                    continue
                for got_dim, want_dim in zip(d.dims, t.dims, strict=True):
                    if want_dim == BATCH:
                        if got_dim is not None:
                            seen_batch.add(got_dim)
                        ok = (
                            (got_dim is None or isinstance(got_dim, str) or got_dim >= 1)
                            if batch is None
                            else got_dim == batch
                        )
                    elif want_dim == TIME:
                        ok = got_dim is None or isinstance(got_dim, str)
                    else:
                        ok = got_dim == want_dim
                    if not ok:
                        problems.append(f"{kind} {d.name!r} has shape {_show(d.dims)}, expected {_show(t.dims, batch)}")
                        break
        if len(seen_batch) > 1:
            problems.append(f"the batch axis differs between tensors ({sorted(map(str, seen_batch))})")
        return problems


def _show(dims: Sequence[Dim], batch: int | str | None = None) -> str:
    shown = [batch if (d == BATCH and batch is not None) else d for d in dims]
    return "(" + ", ".join("?" if d is None else str(d) for d in shown) + ")"


def classifier_spec(arch: Arch) -> ModelSpec:
    steps: int | str = TIME if arch.steps is None else arch.steps
    inputs = [TensorSpec(arch.input_name, (BATCH, steps, arch.features))]
    if arch.steps is None:
        inputs.append(TensorSpec("lengths", (BATCH,), "int32"))
    what = "rows are time steps" if arch.image else "time steps of raw feature values"
    if arch.steps is None:
        what += "; lengths (batch,) int32: the real steps of each padded sequence"
    return ModelSpec(
        kind="classifier",
        inputs=tuple(inputs),
        outputs=(TensorSpec("logits", (BATCH, arch.n_classes)),),
        layout=f"({BATCH}, {steps}, {arch.features}): {what}",
        arch=arch,
    )


def step_spec(arch: Arch) -> ModelSpec:
    shapes = {
        n: (lead, BATCH, values)
        for n, (lead, values) in zip(arch.state_names, map(arch.state_dims, arch.state_names), strict=True)
    }
    cells = ", ".join(n for n in arch.state_names if n != FRONT_STATE)
    layout = f"row ({BATCH}, {arch.features}); {cells} ({arch.layers}, {BATCH}, {arch.hidden})"
    if arch.conv:
        layout += f"; {FRONT_STATE} (1, {BATCH}, {arch.front_size})"
    return ModelSpec(
        kind="streaming-step",
        inputs=(TensorSpec("row", (BATCH, arch.features)), *(TensorSpec(n, s) for n, s in shapes.items())),
        outputs=(
            TensorSpec("logits", (BATCH, arch.n_classes)),
            *(TensorSpec(f"{n}_out", s) for n, s in shapes.items()),
        ),
        layout=layout,
        arch=arch,
    )


def spec(kind: str, arch: Arch) -> ModelSpec:
    return step_spec(arch) if kind == "streaming-step" else classifier_spec(arch)


def arch_from_metadata(metadata: dict[str, str]) -> Arch:
    """The architecture a file declares (earlier versions' files: their one-layer LSTM; no metadata:
    MNIST's); ConfigError if unreadable."""
    if (text := metadata.get(META_ARCH)) is not None:
        return Arch.from_json(text)
    text = metadata.get(META_SIZES)
    return MNIST if text is None else Arch.from_json(text)


# Every state tensor name a step model may have, whatever its cell
STATE_NAMES = tuple(sorted({name for _, _, names in CELLS.values() for name in names} | {FRONT_STATE}))
CLASSIFIER = classifier_spec(MNIST)
STEP = step_spec(MNIST)
SPECS = {s.kind: s for s in (CLASSIFIER, STEP)}
INPUT = CLASSIFIER.inputs[0].name
OUTPUT = CLASSIFIER.outputs[0].name
# The models' names where a server names them: `edge-lstm serve`'s defaults and `export --triton`'s
# repository folders, the same so that a client works against either.
SERVED_NAMES = {CLASSIFIER.kind: "edge_lstm", STEP.kind: "edge_lstm_step"}


# ONNX TensorProto element types -> the dtype names used here (and by onnxruntime, minus "tensor(...)")
ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    10: "float16",
    11: "float64",
    16: "bfloat16",
}


def declared_in_graph(graph: Any) -> tuple[list[Declared], list[Declared]]:
    """(inputs, outputs) as an onnx GraphProto declares them; initializers listed as inputs are skipped."""
    inits = {t.name for t in graph.initializer}

    def one(v: Any) -> Declared:
        t = v.type.tensor_type
        dims = tuple((d.dim_param or None) if not d.HasField("dim_value") else d.dim_value for d in t.shape.dim)
        return Declared(
            v.name, ONNX_DTYPES.get(t.elem_type, f"type {t.elem_type}"), dims if t.HasField("shape") else None
        )

    return [one(v) for v in graph.input if v.name not in inits], [one(v) for v in graph.output]


def kind_for(input_names: Sequence[str]) -> str | None:
    """The kind of model ("classifier" or "streaming-step") whose inputs these are (None: neither)."""
    names = tuple(input_names)
    if names in (CLASSIFIER.input_names, ("sequences",), ("sequences", "lengths")):
        return CLASSIFIER.kind
    states = {names + front for _, _, names in CELLS.values() for front in ((), (FRONT_STATE,))}
    return STEP.kind if names[:1] == ("row",) and names[1:] in states else None


@dataclass(frozen=True)
class Tolerance:
    """How far a variant may drift from the PyTorch model and still pass verification."""

    max_abs_logit: float  # max |logit difference| at the probe batch sizes
    min_agreement: float  # share of the test set whose predicted class must match PyTorch's
    max_accuracy_drop: float  # accuracy points (0..100) below PyTorch's that are tolerated

    def logit_limit(self, steps: int) -> float:
        """max_abs_logit for sequences of `steps`. The float engines' bounds (1e-3 and under: fp32, TFLite,
        the fp32 C library) hold for MNIST's 28 steps; rounding differences between two fp32 LSTMs add up
        step by step, so they grow in proportion beyond that (a 324-step gesture model: 2.5e-4 between
        onnxruntime and PyTorch). Lossy variants' bounds are set by their rounding, not the length."""
        if self.max_abs_logit > 1e-3 or steps <= 28:
            return self.max_abs_logit
        return self.max_abs_logit * steps / 28


TOLERANCES = {
    "fp32": Tolerance(max_abs_logit=1e-4, min_agreement=1.0, max_accuracy_drop=0.0),
    "fp16": Tolerance(max_abs_logit=2e-2, min_agreement=0.998, max_accuracy_drop=0.1),
    "int8": Tolerance(max_abs_logit=1.0, min_agreement=0.99, max_accuracy_drop=0.3),
    # static int8 (QDQ) of the unrolled phone-NPU graph: activations quantized too, so looser
    "mobile-int8": Tolerance(max_abs_logit=3.0, min_agreement=0.98, max_accuracy_drop=0.5),
    # LiteRT's kernels are not onnxruntime's: the class must still match on >= 99.9% of the test set
    "tflite": Tolerance(max_abs_logit=1e-3, min_agreement=0.999, max_accuracy_drop=0.1),
    "int8-tflite": Tolerance(max_abs_logit=1.0, min_agreement=0.99, max_accuracy_drop=0.3),
    # the C library for microcontrollers (export --mcu), run here: fp32 as onnxruntime; int8 with
    # int8 weights and int16 activations (8x16), so tighter than onnxruntime's dynamic int8
    "mcu-fp32": Tolerance(max_abs_logit=1e-4, min_agreement=1.0, max_accuracy_drop=0.0),
    "mcu-int8": Tolerance(max_abs_logit=1.0, min_agreement=0.99, max_accuracy_drop=0.3),
    # TFLite Micro's full-integer LSTM (int8 activations, int16 cell state): the class must match on >= 99.9%
    "tflite-micro": Tolerance(max_abs_logit=2.0, min_agreement=0.999, max_accuracy_drop=0.2),
}
PROBE_BATCHES = (1, 3, 7, 128)


def no_digit_below(metadata: dict[str, str]) -> float | None:
    """The file's "no digit" threshold (META_NO_DIGIT), None where it has none."""
    text = metadata.get(META_NO_DIGIT)
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def no_digit_reason(label: int, probability: float, below: float | None) -> str | None:
    """Why a picture whose best class is `label` at `probability` holds no digit for a file whose
    threshold is `below` (None: the file has none); None when it is answered. predict, serve's /predict
    (and the page, in JavaScript) decide it so."""
    if below is None or probability >= below:
        return None
    return (
        f"no digit found: the model is not sure this is a digit (its best guess, {label}, at "
        f"{100 * probability:.0f}%, is under the {100 * below:.0f}% a digit gets)"
    )
