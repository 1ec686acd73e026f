"""splice(2) and the pipes it moves bytes through.

splice moves data between a file descriptor and a pipe without copying it through user
space: from a TCP socket into a pipe the kernel hands over references to the received
pages, and from the pipe into another socket it queues those pages again. A relay of
socket -> pipe -> socket therefore costs two system calls per chunk and no copy. Python
has ``os.splice`` from 3.10; below that the C library's ``splice`` is called through
ctypes. Both retry on EINTR and raise ``OSError`` (``BlockingIOError`` for EAGAIN).
"""

from __future__ import annotations

import errno
import fcntl
import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Tuple

SPLICE_F_MOVE = 1  # a hint: move pages rather than copy them (what a relay wants)
SPLICE_F_NONBLOCK = 2  # the pipe end never blocks (the sockets are non-blocking themselves)
SPLICE_F_MORE = 4

# linux/fcntl.h (fcntl has them by name only from Python 3.10)
F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032

_splice = None


def _libc_splice():
    import ctypes
    from rootless.linux.libc import libc
    fn = libc().splice
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                   ctypes.c_uint]
    fn.restype = ctypes.c_ssize_t
    get_errno = ctypes.get_errno

    def splice(fd_in: int, fd_out: int, count: int, flags: int = 0) -> int:
        while True:
            moved = fn(fd_in, None, fd_out, None, count, flags)
            if moved >= 0:
                return moved
            err = get_errno()
            if err != errno.EINTR:
                raise OSError(err, "splice: %s" % os.strerror(err))
    return splice


def _os_splice():
    call = os.splice  # novermin (Python >= 3.10 only; guarded)

    def splice(fd_in: int, fd_out: int, count: int, flags: int = 0) -> int:
        return call(fd_in, fd_out, count, None, None, flags)
    return splice


def splicer():
    """The splice function, ``(fd_in, fd_out, count, flags) -> bytes moved``: os.splice
    where Python has it, else libc's through ctypes. Chosen once; call it before a fork
    whose child must not load anything (ctypes) after changing namespaces."""
    global _splice
    if _splice is None:
        _splice = _os_splice() if hasattr(os, "splice") else _libc_splice()
    return _splice


def splice(fd_in: int, fd_out: int, count: int, flags: int = 0) -> int:
    """Move up to ``count`` bytes from ``fd_in`` to ``fd_out``; one of them must be a pipe.
    0 means end of file on ``fd_in``."""
    return splicer()(fd_in, fd_out, count, flags)


def pipe() -> Tuple[int, int]:
    """(read end, write end) of a new pipe, non-blocking and close-on-exec."""
    return os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)


def set_pipe_size(fd: int, size: int) -> int:
    """Ask for a pipe buffer of ``size`` bytes (F_SETPIPE_SZ); returns the size the kernel
    gave (rounded up to a power of two pages). EPERM beyond /proc/sys/fs/pipe-max-size
    or once this user's pipes hold more than /proc/sys/fs/pipe-user-pages-soft."""
    try:
        return fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except OSError as e:
        raise OSError(e.errno, "fcntl(F_SETPIPE_SZ, %d): %s" % (size, os.strerror(e.errno))) from None


def pipe_size(fd: int) -> int:
    """The pipe's buffer size in bytes (F_GETPIPE_SZ)."""
    return fcntl.fcntl(fd, F_GETPIPE_SZ)
