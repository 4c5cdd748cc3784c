"""A board's UART as the host sees it: a serial port (USB CDC, a USB-UART bridge, QEMU's pty), raw
8N1 at the URL's baud rate, through termios (no pyserial: the port is opened, set raw and read with
select, which is all the protocol needs)."""

from __future__ import annotations

import os
import termios
import tty

from edge_lstm.mcu.link import ByteStream, McuError

BAUDS = {
    9600: termios.B9600,
    57600: termios.B57600,
    115200: termios.B115200,
    230400: termios.B230400,
    460800: termios.B460800,
    921600: termios.B921600,
}


def open_serial(path: str, baud: int = 115200) -> ByteStream:
    if baud not in BAUDS:
        raise McuError(f"baud {baud}: use one of {', '.join(map(str, BAUDS))}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise McuError(f"cannot open {path}: {e.strerror}; is the board plugged in, and is the port yours?") from None
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = BAUDS[baud]  # ispeed, ospeed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)  # nothing stale from before
    except termios.error as e:
        os.close(fd)
        raise McuError(f"{path} is not a serial port ({e.args[-1]})") from None
    return ByteStream(fd=fd, what=f"the board on {path}")
