"""The host side of ``run -t`` / ``run -i``: raw mode, window size and the byte relay.

The container allocates its pty inside its own devpts (so the slave's name and ownership
make sense in there), makes the slave its controlling tty (``linux.pty``) and hands the
master to the host with its set-up messages (``linux.sync``). The host
puts its own terminal in raw mode (``RawMode``), copies its window size onto the master
(``copy_winsize``, and again from a SIGWINCH handler through ``on_winch``) and runs
``relay`` until the container is gone. Without ``-t`` the container's stdin is the read end
of a pipe whose write end the host feeds the same way.

Relay protocol (``relay``):

* stdin -> the container side (a pty master, or the write end of a stdin pipe), and the
  container side (the same master, or the read end of an output pipe) -> stdout, one
  poll() loop, one buffer per direction: nothing is read until the previous chunk is
  written, so a slow reader on one side throttles the writer on the other and memory
  stays bounded. The container-side fds are made non-blocking (they belong to the host
  alone); stdin/stdout are left as they are, since their flags are shared with the shell.
* stdin EOF: on a pty, the terminal's VEOF character (^D) is written once, after any
  pending input; on a pipe, the write end is closed (the relay owns it). If the container
  stops taking input (pipe reader closed, pty slave closed) pending input is dropped.
  Either way a stdin pipe's write end is closed by the time ``relay`` returns or raises.
* The container's output is read until EOF, or EIO, which is what a pty master returns
  once every slave fd is closed. Data the container wrote just before exiting is still
  queued in the master at that point, so it is drained, not lost.
* The relay returns when the output is finished (or there is none), everything read has
  been written to stdout, and ``child_done()`` is true. ``child_done`` is called once per
  wake-up, so it must be cheap and idempotent (waitpid WNOHANG that keeps the status).
  Wake-ups come from the fds, from ``wake_fd`` (the read end of a pipe given to
  ``signal.set_wakeup_fd``; SIGCHLD then needs a Python handler, even a no-op one, to be
  written there), or, without a ``wake_fd``, every 0.1 s.
* It also returns at once when a container-side fd is found closed (POLLNVAL): that is how
  a caller aborts it. And once ``child_done()`` is true it waits at most ``linger`` seconds
  of silence for the output to end: a process outside the container that still holds the
  slave open must not hang ``run`` forever.
* With ``detach_keys`` (bytes, from ``detach_keys()``), stdin is scanned for that sequence
  (``DetachScanner``): the bytes typed before it still reach the container, the sequence
  itself does not, and ``relay`` returns True at once, leaving the container running and
  any output not yet written unwritten. Otherwise it returns False.

Detach keys are Docker's: ``ctrl-p,ctrl-q`` by default, ``--detach-keys`` a comma-separated
list of ``ctrl-<c>`` (``c`` one of ``a``-``z @ [ \\ ] ^ _``) or single characters. A prefix
of the sequence is held back until it completes (detach) or breaks (the held bytes are
sent, in order, with what broke it): there is no timeout, as in Docker.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Optional, Tuple

_WINSIZE = struct.Struct("HHHH")  # rows, cols, xpixel, ypixel
CHUNK = 65536
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q
_CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_"  # ctrl-<c> is the byte at c's index (0..31)


def require_stdin_tty() -> None:
    """Docker's refusal of ``-it`` (run, start -ai, exec, attach) when stdin is no terminal."""
    try:
        ok = os.isatty(0)
    except OSError:
        ok = False
    if not ok:
        from rootless.errors import UsageError
        raise UsageError("the input device is not a TTY")


def detach_keys(text: Optional[str]) -> bytes:
    """The bytes of a ``--detach-keys`` value (Docker's format; None or "" is the default).

    Each comma-separated item is ``ctrl-<c>`` with ``c`` in ``a-z @ [ \\ ] ^ _`` (lower
    case, as Docker), or one character standing for itself. Anything else is Docker's
    error, a UsageError."""
    if not text:
        return DEFAULT_DETACH_KEYS
    codes = bytearray()
    for item in text.split(","):
        raw = item.encode("utf-8", "surrogateescape")
        if len(raw) == 1:
            codes += raw
        elif item.startswith("ctrl-") and len(item) == 6 and item[5] in _CTRL:
            codes.append(_CTRL.index(item[5]))
        else:
            from rootless.errors import UsageError
            raise UsageError("Invalid detach keys (%s) provided" % text)
    return bytes(codes)


class DetachScanner:
    """Finds a detach sequence in a stream of input, chunk by chunk (pure: no I/O).

    ``feed(chunk)`` returns ``(to_send, detached)``: the bytes to pass on now, and whether
    the sequence is complete (then the bytes after it in the chunk are dropped, since
    nothing more is relayed). A trailing prefix of the sequence is held back until the
    next chunk tells whether it completes; ``flush()`` gives it up (at end of input).
    """

    def __init__(self, keys: bytes):
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> Tuple[bytes, bool]:
        keys = self.keys
        if not keys or (not self.held and keys[0] not in data):
            return data, False  # the common case: typing that cannot start the sequence
        out = bytearray()
        held = self.held
        for i in range(len(data)):
            held += data[i:i + 1]
            # Keep the longest tail that may still become the sequence; send the rest.
            while held and not keys.startswith(held):
                out += held[:1]
                held = held[1:]
            if held == keys:
                self.held = b""
                return bytes(out), True
        self.held = held
        return bytes(out), False

    def flush(self) -> bytes:
        held, self.held = self.held, b""
        return held


class RawMode:
    """``with RawMode(fd):`` the terminal on ``fd`` is raw inside, as it was outside.

    Raw as cfmakeraw(3) and Docker make it: no line editing, echo, signals from keys, or
    input/output translation (so the container's own pty does the ONLCR, not ours as
    well). A no-op when ``fd`` is not a tty, e.g. when stdin is a pipe or a file.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self) -> "RawMode":
        if not os.isatty(self.fd):
            return self
        self.saved = termios.tcgetattr(self.fd)
        iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(self.fd)
        iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                   | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        oflag &= ~termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        cc[termios.VMIN], cc[termios.VTIME] = 1, 0
        termios.tcsetattr(self.fd, termios.TCSANOW,
                          [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])
        return self

    def __exit__(self, *exc_info) -> None:
        if self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
            except termios.error:
                pass  # the terminal hung up or was closed: nothing is left to restore
            self.saved = None


def get_winsize(fd: int) -> Optional[Tuple[int, int]]:
    """(rows, cols) of the terminal on ``fd``, or None when it is not a terminal."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(_WINSIZE.size))
    except OSError:
        return None
    return _WINSIZE.unpack(packed)[:2]


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """Set the window size on a terminal (on a pty master: the slave sees it + SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def copy_winsize(src_fd: int, dst_fd: int) -> bool:
    """Give ``dst_fd`` the window size of ``src_fd``; False (nothing done) if src is no tty."""
    try:
        packed = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, bytes(_WINSIZE.size))
    except OSError:
        return False
    fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, packed)
    return True


def on_winch(master_fd: int, tty_fd: int) -> None:
    """For a SIGWINCH handler: pass the host terminal's new size on. Never raises, since
    the signal may arrive after the master was closed or the terminal went away."""
    try:
        copy_winsize(tty_fd, master_fd)
    except OSError:
        pass


def veof(master_fd: int) -> bytes:
    """The slave's EOF character (on Linux tcgetattr on a master reads the slave's termios)."""
    try:
        char = termios.tcgetattr(master_fd)[6][termios.VEOF]
    except termios.error:
        return b"\x04"
    return bytes([char]) if isinstance(char, int) else char


class _Relay:
    """The state of one ``relay``; an fd attribute becomes None when that side is finished."""

    def __init__(self, stdin_fd, to_container, from_container, stdout_fd, wake_fd, detach_keys=None):
        self.stdin_fd = stdin_fd if to_container is not None else None
        self.scanner = DetachScanner(detach_keys) if detach_keys else None
        self.detached = False
        self.to_container = to_container
        self.from_container = from_container
        self.stdout_fd = stdout_fd
        self.wake_fd = wake_fd
        self.is_pty = to_container is not None and os.isatty(to_container)
        self.inbuf = b""   # read from stdin, not yet taken by the container
        self.outbuf = b""  # read from the container, not yet written to stdout
        self.busy = time.monotonic()  # when the output side last made progress
        self.eof_after = False  # a stdin pipe: close it once inbuf is written

    def interests(self) -> dict:
        want = {}

        def add(fd, events):
            want[fd] = want.get(fd, 0) | events

        if self.stdin_fd is not None and not self.inbuf:
            add(self.stdin_fd, select.POLLIN)
        if self.to_container is not None:  # 0 still reports POLLERR/POLLHUP: reader gone
            add(self.to_container, select.POLLOUT if self.inbuf else 0)
        if self.from_container is not None and not self.outbuf:
            add(self.from_container, select.POLLIN)
        if self.outbuf:
            add(self.stdout_fd, select.POLLOUT)
        if self.wake_fd is not None:
            add(self.wake_fd, select.POLLIN)
        return want

    def read_stdin(self) -> None:
        data = _read(self.stdin_fd)
        if data is None:
            return
        if data:
            if self.scanner is not None:
                data, self.detached = self.scanner.feed(data)
                if self.detached:
                    self.stdin_fd = None  # what came before the keys is still written
            self.inbuf = data
            return
        self.stdin_fd = None
        held = self.scanner.flush() if self.scanner is not None else b""
        if self.is_pty:
            self.inbuf = held + veof(self.to_container)
        elif held:
            self.inbuf = held  # then the pipe is closed: see write_container
            self.eof_after = True
        else:
            self.input_gone()

    def write_container(self, events: int) -> None:
        if self.inbuf:
            written = _write(self.to_container, self.inbuf)
            if written is None:
                self.input_gone()
            else:
                self.inbuf = self.inbuf[written:]
                if not self.inbuf and self.eof_after:
                    self.input_gone()
        elif events & (select.POLLERR | select.POLLHUP):
            self.input_gone()

    def input_gone(self) -> None:
        """The container takes no more input: drop what is pending, close our pipe end."""
        if not self.is_pty and self.to_container is not None:
            os.close(self.to_container)
        self.to_container = self.stdin_fd = None
        self.inbuf = b""

    def read_container(self) -> None:
        data = _read(self.from_container)
        if data is None:
            return
        if data:
            self.busy = time.monotonic()
            if self.stdout_fd is not None:
                self.outbuf = data
            return
        if self.from_container == self.to_container:  # the pty slave is closed
            self.input_gone()
        self.from_container = None

    def write_stdout(self) -> None:
        written = _write(self.stdout_fd, self.outbuf)
        if written is None:  # nobody reads our stdout any more: discard the rest
            self.stdout_fd, self.outbuf = None, b""
        else:
            self.outbuf = self.outbuf[written:]
        self.busy = time.monotonic()

    def drain_wake(self) -> None:
        try:
            while os.read(self.wake_fd, 512):
                pass
            self.wake_fd = None  # the writer closed it
        except BlockingIOError:
            pass


def _read(fd: int) -> Optional[bytes]:
    """A chunk, b"" at EOF (EIO too: a pty master whose slave closed), None if none yet."""
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return None
    except OSError as e:
        if e.errno == errno.EIO:
            return b""
        raise


def _write(fd: int, data: bytes) -> Optional[int]:
    """Bytes written (maybe 0), or None when the reader is gone (EPIPE, EIO)."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError as e:
        if e.errno in (errno.EPIPE, errno.EIO):
            return None
        raise


def relay(stdin_fd: Optional[int], to_container: Optional[int],
          from_container: Optional[int], stdout_fd: Optional[int],
          child_done: Callable[[], bool], *, wake_fd: Optional[int] = None,
          linger: float = 1.0, detach_keys: Optional[bytes] = None) -> bool:
    """Copy stdin_fd -> to_container and from_container -> stdout_fd until the container
    is done (see the module docstring for exactly when); whether the user detached.

    With ``-t`` both container fds are the pty master; with ``-i`` alone, ``to_container``
    is a stdin pipe's write end (closed by the relay) and ``from_container`` None or an
    output pipe's read end. None for ``stdin_fd``/``to_container`` means no input is
    relayed, for ``stdout_fd`` that the output is read and discarded. ``detach_keys``
    (None: off) is the sequence that ends the relay early, returning True: the caller
    then leaves the container running (Docker scans for it only with a tty).
    """
    for fd in (to_container, from_container, wake_fd):
        if fd is not None:
            os.set_blocking(fd, False)
    state = _Relay(stdin_fd, to_container, from_container, stdout_fd, wake_fd, detach_keys)
    try:
        _loop(state, child_done, 0.1 if wake_fd is None else 1.0, linger)
    finally:
        state.input_gone()
    return state.detached


_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR
_WRITABLE = select.POLLOUT | select.POLLHUP | select.POLLERR


def _loop(state: _Relay, child_done: Callable[[], bool], tick: float, linger: float) -> None:
    while True:
        timeout = tick
        if state.detached and (not state.inbuf or state.to_container is None):
            return
        if child_done() and not state.outbuf:
            quiet = time.monotonic() - state.busy
            if state.from_container is None or quiet >= linger:
                return
            timeout = min(timeout, linger - quiet)
        poller = select.poll()
        for fd, events in state.interests().items():
            poller.register(fd, events)
        ready = dict(poller.poll(int(timeout * 1000) + 1))
        if ready.get(state.to_container, 0) & select.POLLNVAL:
            state.to_container = None  # closed under us: not ours to close any more
            return
        if ready.get(state.from_container, 0) & select.POLLNVAL:
            return
        if ready.get(state.wake_fd, 0) & _READABLE:
            state.drain_wake()
        # One fd can have two roles (the pty master; a terminal as stdin and stdout) and
        # POLLHUP comes unasked, so each step checks that its buffer is free or full.
        if not state.inbuf and ready.get(state.stdin_fd, 0) & _READABLE:
            state.read_stdin()
        if ready.get(state.to_container, 0) & _WRITABLE:
            state.write_container(ready[state.to_container])
        if not state.outbuf and ready.get(state.from_container, 0) & _READABLE:
            state.read_container()
        if state.outbuf and ready.get(state.stdout_fd, 0) & _WRITABLE:
            state.write_stdout()
