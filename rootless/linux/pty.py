"""Pseudo-terminals inside a container: a pair from its own devpts, and the controlling tty."""

import fcntl
import os
import struct
import termios

TIOCSPTLCK = getattr(termios, "TIOCSPTLCK", 0x40045431)
TIOCGPTN = getattr(termios, "TIOCGPTN", 0x80045430)


def open_pty():
    """(master, slave) from the devpts mounted at /dev/pts (so the tty is /dev/pts/0)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
    slave = os.open("/dev/pts/%d" % number, os.O_RDWR | os.O_NOCTTY)
    return master, slave


def make_controlling_tty(slave_fd: int) -> None:
    """In the container's process: a new session whose controlling tty is ``slave_fd``,
    which becomes fds 0, 1 and 2 (and is closed under its old number).

    Job control in the container (a shell's ^C, ^Z) needs the pty as its controlling tty,
    and a process can only acquire one as the leader of a session without one.
    """
    if os.getsid(0) != os.getpid():
        os.setsid()
    fcntl.ioctl(slave_fd, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        if fd != slave_fd:
            os.dup2(slave_fd, fd)
    if slave_fd > 2:
        os.close(slave_fd)
