"""`export --mcu`: the C library of a model, fp32 or int8, written from its weights (weights.py).

Why the project's own generator and not emx-onnx-cgen or onnx2c (both tried, ../shared/notes/mcu.md):
they write one C function per ONNX graph, fp32 only, with the classifier's whole sequence as one
call; a sensor loop needs the step API (state held inside, a row at a time), and int8 needs the
recurrence itself quantized, which no ONNX-to-C generator does for an LSTM. The runtime here is one
fixed C file (c/edge_lstm.c, ~200 lines, every cell and depth); what differs per model is data:
sizes and const arrays, written below.

Files written into the folder: edge_lstm.h (the API, the model's sizes, classes, flash and RAM),
edge_lstm_model.h (the runtime's view of the model), edge_lstm_model.c (the weights), edge_lstm.c,
example.c (the API in a program), CMakeLists.txt, and model.json (the architecture, variant and sizes:
what `eval --on` and the firmware build read).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.fileio import atomic_write_text
from edge_lstm.mcu.weights import McuModel

VARIANTS = ("fp32", "int8")
INT32_MAX = 2**31 - 1
FILES = (
    "edge_lstm.h",
    "edge_lstm_model.h",
    "edge_lstm_model.c",
    "edge_lstm.c",
    "example.c",
    "CMakeLists.txt",
    "model.json",
)
# For CMake projects (Zephyr, ESP-IDF, the Pico SDK, STM32CubeIDE's CMake): add_subdirectory(DIR), then
# target_link_libraries(app PRIVATE edge_lstm).
CMAKE = """cmake_minimum_required(VERSION 3.13)
project(edge_lstm C)
add_library(edge_lstm STATIC edge_lstm.c edge_lstm_model.c)
target_include_directories(edge_lstm PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
set_target_properties(edge_lstm PROPERTIES C_STANDARD 99)
"""


@dataclass(frozen=True)
class Sizes:
    """What the library needs, in bytes: const data (flash) and static state and scratch (RAM).
    Code (the runtime's text) is a few KB more, measured per board by the firmware build."""

    flash_data: int
    ram: int


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) float -> int8 in the runtime's layout, and one scale per row (symmetric, 127 levels
    each side). Layout (c/edge_lstm.c, el_dot4): blocks of 4 rows (the last padded with zero rows),
    in each block a word (4 columns, zero-padded) of each row in turn, each word's columns as 0, 2, 1, 3."""
    rows, cols = w.shape
    m = np.abs(w).max(axis=1)
    scale = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None].astype(np.float64)), -127, 127).astype(np.int8)
    padded = np.zeros((_pad4(rows), _pad4(cols)), np.int8)
    padded[:rows, :cols] = q
    words = padded.reshape(_pad4(rows) // 4, 4, -1, 4)[..., [0, 2, 1, 3]]  # (block, row, group, column)
    return words.transpose(0, 2, 1, 3).reshape(_pad4(rows), -1), scale


def interleave_rows(w: np.ndarray) -> np.ndarray:
    """fp32's layout: blocks of 4 rows (the last padded with zero rows), each column's 4 weights together."""
    rows, cols = w.shape
    padded = np.zeros((_pad4(rows), cols), np.float32)
    padded[:rows] = w
    return padded.reshape(-1, 4, cols).transpose(0, 2, 1).reshape(_pad4(rows), cols)


def _qmax(cols_pad: int) -> float:
    """The int16 range of the multiplied vector such that no dot product can overflow int32."""
    return float(min(32767, INT32_MAX // (127 * cols_pad)))


def _float(v: float) -> str:
    text = f"{v:.9g}"  # 9 significant digits: every float32 reads back exactly
    return text + ("f" if any(c in text for c in ".e") else ".0f")


def _floats(values: np.ndarray) -> str:
    return ",".join(_float(float(v)) for v in np.asarray(values, np.float32).ravel())


def _ints(values: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in np.asarray(values).ravel())


class _Writer:
    def __init__(self, variant: str) -> None:
        self.int8 = variant == "int8"
        self.arrays: list[str] = []
        self.flash = 0

    def array(self, name: str, ctype: str, body: str, count: int, size: int) -> str:
        align = " __attribute__((aligned(4)))" if ctype == "int8_t" else ""
        self.arrays.append(f"static const {ctype} {name}[{count}]{align} = {{{body}}};")
        self.flash += count * size
        return name

    def matrix(self, name: str, w: np.ndarray) -> str:
        rows, cols = w.shape
        if self.int8:
            q, scale = quantize_rows(w)
            data = self.array(f"{name}_q", "int8_t", _ints(q), q.size, 1)
            scales = self.array(f"{name}_scale", "float", _floats(scale), rows, 4)
            return f"{{{data}, {scales}, {rows}, {cols}, {q.shape[1]}, {_qmax(q.shape[1]):.1f}f}}"
        laid = interleave_rows(w)
        data = self.array(f"{name}_w", "float", _floats(laid), laid.size, 4)
        return f"{{{data}, 0, {rows}, {cols}, {cols}, 0.0f}}"

    def vector(self, name: str, v: np.ndarray) -> str:
        return self.array(name, "float", _floats(v), v.size, 4)


def _ram(model: McuModel, int8: bool) -> int:
    a = model.arch
    floats = a.layers * a.hidden * len(a.state_names) + a.gates * a.hidden * (2 if a.cell == "gru" else 1)
    if model.input_layer is not None:
        floats += a.in_units
    return 4 * floats + (2 * _max_cols_pad(model) if int8 else 0)


def _max_cols_pad(model: McuModel) -> int:
    cols = [x.w.shape[1] for x in model.layers] + [model.arch.hidden]
    if model.input_layer is not None:
        cols.append(model.input_layer[0].shape[1])
    return max(_pad4(c) for c in cols)


def write_library(model: McuModel, folder: Path, variant: str) -> dict[str, Any]:
    """The library of `model` in `variant` (fp32 or int8) into `folder` (FILES); its model.json's entries."""
    a = model.arch
    int8 = variant == "int8"
    w = _Writer(variant)
    layers = []
    for k, layer in enumerate(model.layers):
        wm, rm = w.matrix(f"el_l{k}_w", layer.w), w.matrix(f"el_l{k}_r", layer.r)
        bias = w.vector(f"el_l{k}_bias", layer.bias)
        rn = w.vector(f"el_l{k}_bias_rn", layer.bias_rn) if layer.bias_rn is not None else "0"
        layers.append(f"{{{wm}, {rm}, {bias}, {rn}}}")
    head = f"{{{w.matrix('el_out_w', model.head[0])}, {w.vector('el_out_bias', model.head[1])}}}"
    dense_in = ""
    if model.input_layer is not None:
        dense_in = (
            f"const el_dense el_input = {{{w.matrix('el_in_w', model.input_layer[0])}, "
            f"{w.vector('el_in_bias', model.input_layer[1])}}};\n"
        )
    classes = ", ".join(json.dumps(c) for c in a.classes)
    sizes = Sizes(flash_data=w.flash, ram=_ram(model, int8))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "edge_lstm.h", _public_header(model, variant, sizes))
    atomic_write_text(folder / "edge_lstm_model.h", _model_header(model, int8))
    atomic_write_text(
        folder / "edge_lstm_model.c",
        '/* Generated by edge-lstm export --mcu: the weights (const, in flash). */\n#include "edge_lstm.h"\n'
        '#include "edge_lstm_model.h"\n\n'
        + "\n".join(w.arrays)
        + f"\n\nconst el_layer el_layers[EL_LAYERS] = {{{', '.join(layers)}}};\nconst el_dense el_output = {head};\n"
        + dense_in
        + f"const char *const edge_lstm_classes[EDGE_LSTM_CLASSES] = {{{classes}}};\n",
    )
    for name in ("edge_lstm.c", "example.c"):  # the runtime, and how to call it
        atomic_write_text(folder / name, resources.files("edge_lstm.mcu").joinpath(f"c/{name}").read_text())
    atomic_write_text(folder / "CMakeLists.txt", CMAKE)
    about = {
        "variant": variant,
        "int8": int8,
        "arch": a.to_dict(),
        "source": model.source,
        "flash_data_bytes": sizes.flash_data,
        "ram_bytes": sizes.ram,
        "macs_per_step": model.macs_per_step,
    }
    atomic_write_text(folder / "model.json", json.dumps(about, indent=1) + "\n")
    return about


def _model_header(model: McuModel, int8: bool) -> str:
    a = model.arch
    lines = [
        "/* Generated by edge-lstm export --mcu: the model as the runtime (edge_lstm.c) sees it. */",
        "#ifndef EDGE_LSTM_MODEL_H",
        "#define EDGE_LSTM_MODEL_H",
        "#include <stdint.h>",
        f"#define EL_INT8 {int(int8)}",
        f"#define EL_CELL_LSTM {int(a.cell == 'lstm')}",
        f"#define EL_CELL_GRU {int(a.cell == 'gru')}",
        f"#define EL_LAYERS {a.layers}",
        f"#define EL_HIDDEN {a.hidden}",
        f"#define EL_GATES {a.gates}",
        f"#define EL_INPUT_LAYER {int(model.input_layer is not None)}",
        f"#define EL_IN_UNITS {a.in_units}",
        f"#define EL_MAX_COLS_PAD {_max_cols_pad(model)}",
        "typedef struct {",
        f"    const {'int8_t' if int8 else 'float'} *w; /* blocks of 4 rows interleaved (codegen.py: quantize_rows) */",
        "    const float *scale; /* int8: one per row */",
        "    int rows, cols, cols_pad;",
        "    float qmax; /* int8: the multiplied vector's int16 range (no int32 overflow) */",
        "} el_matrix;",
        "typedef struct { el_matrix w, r; const float *bias, *bias_rn; } el_layer;",
        "typedef struct { el_matrix w; const float *bias; } el_dense;",
        "extern const el_layer el_layers[EL_LAYERS];",
        "extern const el_dense el_output;",
        "extern const el_dense el_input;",
        "#endif",
    ]
    return "\n".join(lines) + "\n"


_INT8_NOTE = ", int8 with a float scale per row"
_PREPARED = {
    True: "a 28x28 picture's rows, pixel / 255 (0..1), white digit on black as MNIST",
    False: "raw feature values as in the training data (the standardisation is folded into the weights)",
}


def _public_header(model: McuModel, variant: str, sizes: Sizes) -> str:
    a = model.arch
    steps = a.steps or 0
    return f"""/* edge-lstm: {a.describe()} classifier of {a.features} features x {a.steps or "any number of"} steps,
 * {a.n_classes} classes, {variant} (generated by `edge-lstm export --mcu` from {model.source}).
 *
 * Flash: {sizes.flash_data} bytes of const data (weights{_INT8_NOTE if variant == "int8" else ""}),
 *        plus the runtime's code (1.5 KB on a Cortex-M4 at -O2; `export --mcu --board` measures it).
 * RAM:   {sizes.ram} bytes of static state and scratch; no heap. The stack stays small (no arrays on it).
 *
 * Whole sequences:  float logits[EDGE_LSTM_CLASSES]; edge_lstm_classify(rows, n, logits);
 *   rows: n x EDGE_LSTM_FEATURES floats, row-major, as the ONNX file's input "{a.input_name}":
 *   {_PREPARED[a.image]}.
 * Streaming:        edge_lstm_reset(); then per row: edge_lstm_step(row, logits) (the logits after the
 *   rows so far; pass NULL to skip the output layer). classify() resets the state itself.
 * One model per program: the state is held inside (not reentrant).
 */
#ifndef EDGE_LSTM_H
#define EDGE_LSTM_H
#ifdef __cplusplus
extern "C" {{
#endif
#define EDGE_LSTM_FEATURES {a.features}
#define EDGE_LSTM_CLASSES {a.n_classes}
#define EDGE_LSTM_STEPS {steps} /* the steps it was trained on; 0: any length */
#define EDGE_LSTM_INT8 {int(variant == "int8")}
#define EDGE_LSTM_FLASH_DATA_BYTES {sizes.flash_data}
#define EDGE_LSTM_RAM_BYTES {sizes.ram}
extern const char *const edge_lstm_classes[EDGE_LSTM_CLASSES];
void edge_lstm_reset(void);
void edge_lstm_step(const float *row, float *logits);
void edge_lstm_classify(const float *rows, int n, float *logits);
#ifdef __cplusplus
}}
#endif
#endif
"""
