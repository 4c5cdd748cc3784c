"""The model's architecture, declared once: what every stage reads to build, export, run and serve it.

    input (batch, steps, features) -> [causal convolutions: `conv` channels, `kernel` wide, the first
    `stride` apart, ReLU] -> Linear -> in_units -> `layers` stacked `cell`s of `hidden` units ->
    Linear hidden [+ with `pool`, the last convolution's channels averaged over the steps] -> classes
    on the top layer's state after the last (real) step

Training writes it into the checkpoint, export into every file's metadata (`edge_lstm.arch`), and
every reader takes it from there: the runner and the step model's state tensors, the server's stream
table, Triton's sequence-batcher state, the browser page, devices, bench's synthetic inputs. A new
cell is added here (CELLS, its gates and state) and in the two places that turn weights into
computation: training/model.py (PyTorch) and export/graph_build.py (ONNX).

The step model carries the recurrent state between calls as one tensor per entry of `state_names`
(LSTM: h and c; GRU: h), each (layers, batch, hidden): ONNX's and PyTorch's own layout. A model with a
convolutional front-end adds `front` (1, batch, front_size): the rows seen, each convolution's last
kernel - 1 input rows and, with `pool`, the pooled channels' running sum (FRONT_STATE). Servers keep a
stream's state packed as one float32 vector of `state_size` values (pack_state / unpack_state); zeros
are a stream's start for every tensor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edge_lstm.errors import ConfigError

if TYPE_CHECKING:  # numpy is imported where states are made: `edge-lstm --help` stays instant
    import numpy as np

# cell -> (ONNX operator, gates per unit, state tensors of the step model)
CELLS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "lstm": ("LSTM", 4, ("h", "c")),
    "gru": ("GRU", 3, ("h",)),
}
MAX_LAYERS = 3
MAX_CONV = 3  # convolution layers in front of the recurrent ones
FRONT_STATE = "front"  # the step model's state tensor of a convolutional front-end


@dataclass(frozen=True)
class Arch:
    """A model's whole shape: sizes from the data (steps, features, classes) and the choices of the
    recipe (cell, layers, hidden, in_units)."""

    steps: int | None  # time steps of every sequence; None: any length (a `time` axis, a `lengths` input)
    features: int  # values per time step
    classes: tuple[str, ...]  # class names, in the order of the logits
    cell: str = "lstm"  # a key of CELLS
    layers: int = 1  # stacked recurrent layers
    hidden: int = 128  # units per recurrent layer
    in_units: int = 64  # width of the input projection in front of the first layer
    image: bool = False  # MNIST-style pictures (pixel / 255): pictures, the page and the writing set apply
    # A convolutional front-end (own sequences, `train --arch conv-lstm`): channels of each causal 1-D
    # convolution (each step sees itself and the kernel - 1 before it; the sequence's first value repeats
    # before its start), ReLU after each; the first one's `stride` cuts the steps the recurrent layers run
    # to ceil(steps / stride). () : none, the tutorial's model.
    conv: tuple[int, ...] = ()
    kernel: int = 1
    stride: int = 1
    # Batch normalisation after each convolution, before its ReLU, while training; every file has it
    # folded into the convolution's weights (export/graph_parts.py: conv_weights), so none computes it.
    norm: bool = False
    # Inputs spanning several orders of magnitude (device currents: PLAID's from 1e-4 to 460 A): each
    # value x of feature f is read as sign(x) log(1 + |x| / log_scale[f]) before anything else, in
    # PyTorch and in every file. (): read as they are.
    log_scale: tuple[float, ...] = ()
    # `train --arch lstm-fcn` (after Karim et al.'s LSTM-FCN): the last convolution's channels, averaged
    # over each sequence's steps, beside the top layer's state into the head (a shape anywhere in the
    # series counts alike, where the recurrent state weighs the end most).
    pool: bool = False

    def validate(self) -> None:
        checks = [
            (self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}"),
            (1 <= self.layers <= MAX_LAYERS, f"layers must be between 1 and {MAX_LAYERS}, got {self.layers}"),
            (1 <= self.hidden <= 4096, f"hidden size must be between 1 and 4096, got {self.hidden}"),
            (1 <= self.in_units <= 4096, f"input units must be between 1 and 4096, got {self.in_units}"),
            (self.features >= 1, f"features must be >= 1, got {self.features}"),
            (self.n_classes >= 2, f"a classifier needs two classes or more, got {self.n_classes}"),
            (self.steps is None or self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (len(self.conv) <= MAX_CONV, f"at most {MAX_CONV} convolution layers, got {len(self.conv)}"),
            (all(1 <= c <= 1024 for c in self.conv), f"convolution channels must be 1-1024, got {list(self.conv)}"),
            (1 <= self.kernel <= 64 and 1 <= self.stride <= 16, "kernel must be 1-64 and stride 1-16"),
            (not self.pool or bool(self.conv), "pooling averages convolution channels: it needs a convolution"),
            (not self.norm or bool(self.conv), "batch normalisation follows convolutions: it needs one"),
            (
                not self.log_scale or (len(self.log_scale) == self.features and min(self.log_scale) > 0),
                f"log_scale needs one positive scale per feature ({self.features}), got {list(self.log_scale)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def front_state(self) -> list[tuple[str, int, int]]:
        """The parts of the `front` state tensor of one stream, in order: (what, rows, values per row).
        `seen` the rows pushed so far (0: the stream's start, when the first row is also the padding
        before it), `in{k}` convolution k's last kernel - 1 input rows (oldest first), `pool_sum` the
        last convolution's outputs summed over the recurrent steps run."""
        if not self.conv:
            return []
        widths = (self.features, *self.conv)
        rows = self.kernel - 1
        parts = [("seen", 1, 1)] + [(f"in{k}", rows, widths[k]) for k in range(len(self.conv)) if rows]
        return parts + ([("pool_sum", 1, self.conv[-1])] if self.pool else [])

    @property
    def front_size(self) -> int:
        return sum(rows * width for _, rows, width in self.front_state())

    @property
    def recurrent_inputs(self) -> int:
        """Values per step that the input projection reads: the features, or the last convolution's channels."""
        return self.conv[-1] if self.conv else self.features

    @property
    def head_inputs(self) -> int:
        """Values the head reads: the top layer's state, and the pooled channels with `pool`."""
        return self.hidden + (self.conv[-1] if self.pool else 0)

    @property
    def input_name(self) -> str:
        return "images" if self.image else "sequences"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def op(self) -> str:
        """The ONNX operator of one layer."""
        return CELLS[self.cell][0]

    @property
    def gates(self) -> int:
        return CELLS[self.cell][1]

    @property
    def cell_states(self) -> tuple[str, ...]:
        """The recurrent layers' state tensors (LSTM: h, c; GRU: h)."""
        return CELLS[self.cell][2]

    @property
    def state_names(self) -> tuple[str, ...]:
        """The step model's state inputs, in order; each output is the name + "_out"."""
        return self.cell_states + ((FRONT_STATE,) if self.conv else ())

    @property
    def state_outputs(self) -> tuple[str, ...]:
        return tuple(f"{n}_out" for n in self.state_names)

    def state_dims(self, name: str) -> tuple[int, int]:
        """(leading, values) of a state tensor (leading, batch, values): (layers, hidden) for the cell's,
        (1, front_size) for `front`."""
        return (1, self.front_size) if name == FRONT_STATE else (self.layers, self.hidden)

    def state_shape(self, name: str, batch: int) -> tuple[int, int, int]:
        lead, values = self.state_dims(name)
        return (lead, batch, values)

    @property
    def state_size(self) -> int:
        """float32 values of one stream's state, all tensors and layers."""
        return sum(lead * values for lead, values in map(self.state_dims, self.state_names))

    @property
    def parameters(self) -> int:
        """Trainable weights: input projection, each layer's input and recurrent matrices and both biases, head."""
        g, h = self.gates, self.hidden
        layers = sum(g * h * ((self.in_units if k == 0 else h) + h + 2) for k in range(self.layers))
        widths = (self.features, *self.conv)
        conv = sum(widths[k] * c * self.kernel + c + (2 * c if self.norm else 0) for k, c in enumerate(self.conv))
        head = (self.head_inputs + 1) * self.n_classes
        return conv + (self.recurrent_inputs + 1) * self.in_units + layers + head

    def describe(self) -> str:
        """For people: 'LSTM 128', '2 x GRU 96'."""
        cell = f"{self.op} {self.hidden}"
        cell = cell if self.layers == 1 else f"{self.layers} x {cell}"
        scaled = "log-scaled inputs + " if self.log_scale else ""
        if not self.conv:
            return scaled + cell
        every = ("" if self.stride == 1 else f", stride {self.stride}") + (", batch norm" if self.norm else "")
        pooled = " + average pool" if self.pool else ""
        return f"{scaled}causal conv {'-'.join(map(str, self.conv))} (kernel {self.kernel}{every}) + {cell}{pooled}"

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        import numpy as np

        return tuple(np.zeros(self.state_shape(n, batch), np.float32) for n in self.state_names)

    def pack_state(self, tensors: Sequence[np.ndarray]) -> np.ndarray:
        """The step model's state tensors, each (leading, n, values) -> (n, state_size), one row a stream."""
        import numpy as np

        n = tensors[0].shape[1]
        return np.concatenate([np.asarray(t).transpose(1, 0, 2).reshape(n, -1) for t in tensors], axis=1)

    def unpack_state(self, packed: np.ndarray) -> tuple[np.ndarray, ...]:
        """(n, state_size) -> the step model's state tensors, each (leading, n, values), contiguous."""
        import numpy as np

        n, start, out = packed.shape[0], 0, []
        for lead, values in map(self.state_dims, self.state_names):
            part = packed[:, start : start + lead * values].reshape(n, lead, values)
            out.append(np.ascontiguousarray(part.transpose(1, 0, 2)))
            start += lead * values
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        if self.log_scale:
            d["log_scale"] = list(self.log_scale)
        else:  # the files of models without one read as before
            del d["log_scale"]
        if not self.conv:  # the files of models without one read as before
            del d["conv"], d["kernel"], d["stride"], d["pool"], d["norm"]
        else:
            d["conv"] = list(self.conv)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Arch:
        """From a checkpoint or a file's metadata; ConfigError if it is not a possible architecture.
        Entries missing in files of earlier versions (the `edge_lstm.sizes` of one-layer LSTMs) take
        those versions' values."""
        try:
            steps = d["steps"]
            arch = cls(
                steps=None if steps is None else int(steps),
                features=int(d["features"]),
                classes=tuple(str(c) for c in d["classes"]),
                cell=str(d.get("cell", "lstm")),
                layers=int(d.get("layers", 1)),
                hidden=int(d["hidden"]),
                in_units=int(d.get("in_units", 64)),
                image=bool(d.get("image", False)),
                conv=tuple(int(c) for c in d.get("conv", ())),
                kernel=int(d.get("kernel", 1)),
                stride=int(d.get("stride", 1)),
                pool=bool(d.get("pool", False)),
                norm=bool(d.get("norm", False)),
                log_scale=tuple(float(c) for c in d.get("log_scale", ())),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"not a model architecture ({type(e).__name__}: {e})") from None
        arch.validate()
        return arch

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            d = json.loads(text)
        except ValueError:
            raise ConfigError("not a model architecture (unreadable JSON)") from None
        if not isinstance(d, dict):
            raise ConfigError("not a model architecture (not a JSON object)")
        return cls.from_dict(d)


# The tutorial's model: 28 rows of 28 pixels, LSTM 128, ten digits.
MNIST = Arch(steps=28, features=28, classes=tuple(str(d) for d in range(10)), image=True)
