"""Microcontrollers: the model as a C library (`export --mcu`), built into firmware for Cortex-M and run
on QEMU's boards or a real one over serial (`device add m4 qemu:mps2-an386`, `eval --on m4`).

weights.py (the weights from an ONNX file) -> codegen.py (the C library, fp32 or int8; c/edge_lstm.c is
its runtime) -> host.py (the same C built here: export's check, the int8 reference) -> boards.py (CPUs,
flash and RAM) -> firmware.py (the firmware image, its footprint) -> link.py (the UART protocol),
qemu.py and serial.py (where it runs) -> run.py (eval and bench on a board). No torch anywhere.
"""

from edge_lstm.mcu.boards import BOARDS, Board, board, check_fits
from edge_lstm.mcu.codegen import VARIANTS, Sizes, write_library
from edge_lstm.mcu.weights import McuModel, load

__all__ = ["BOARDS", "VARIANTS", "Board", "McuModel", "Sizes", "board", "check_fits", "load", "write_library"]
