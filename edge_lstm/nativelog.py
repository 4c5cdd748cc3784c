"""What native libraries write straight to a file descriptor, kept off the terminal.

TensorFlow and LiteRT log from C++ to descriptor 2 (absl's "I0000 ... Could not find cuda drivers",
oneDNN notices) before any setting of theirs is read: TF_CPP_MIN_LOG_LEVEL does not stop them. The
QNN plugin's libraries print a "LIBNATIVE: No alternate configuration ..." line to descriptor 1 when
a session is made. Python's redirect_stdout/redirect_stderr cannot catch either, so the descriptor
itself points at /dev/null for the duration. It is process-wide: use it around the one native call.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["native_output_silenced"]


@contextlib.contextmanager
def native_output_silenced(fd: int = 2) -> Iterator[None]:
    stream = sys.stdout if fd == 1 else sys.stderr
    stream.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        stream.flush()
        os.dup2(saved, fd)
        os.close(saved)
