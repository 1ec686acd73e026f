"""The client's side of an attached container: ``attach``, and ``run -it`` / ``start -ai``.

``attach`` joins a container the monitor runs; ``run_attached`` asks the monitor to start
one with this connection attached from the start (so no output is lost in between), which
is why a ``run -it`` container can be detached from and outlive its CLI. Both then run one
``Session``: the protocol drawn in ``runtime.attach``, one poll loop, no threads.

* With a tty and stdin, the terminal is raw for the session (``terminal.RawMode``), its
  window size goes to the container's pty at the start and on each SIGWINCH, and stdin is
  scanned for the detach keys (``terminal.DetachScanner``; Docker scans only with a tty).
* Detaching stops the relay and leaves the container running: ``attach`` then prints
  Docker's ``read escape sequence`` and exits 1 (Docker's CLI returns the escape as its
  error), ``run -it`` and ``start -ai`` exit 0 and print nothing (they take it as success).
* Signals: ``run -it``/``start -ai`` pass on what a foreground run does (init.FORWARDED,
  held until the pid is known); ``attach --sig-proxy`` (the default) only without a tty,
  as Docker. Without a proxy, SIGTERM and SIGHUP end the session (terminal restored).
* The exit code is the container's, from the monitor's last message; the session then
  waits for the end of file that follows the ``--rm`` removal. If the connection ends
  without it (the monitor was killed), the record has the truth (``lifecycle.wait_exit``).
"""

import errno
import os
import select
import sys
import time
from collections import deque
from typing import List, Optional, Tuple

from rootless import jsonfast
from rootless.errors import Conflict
from rootless.linux import signals
from rootless.runtime import attach as proto
from rootless.runtime import state, terminal

DETACH_FLUSH = 1.0  # seconds the input typed before the detach keys may take to leave


def attach(paths, record: dict, stdin: bool, detach_keys: bytes, sig_proxy: bool) -> int:
    """``attach``: relay until the container ends (its exit code) or the user detaches."""
    from rootless.runtime import monitor_client
    containers = state.Containers(paths)
    record = containers.settle(containers.read(record["id"]) or record) or record
    refuse_stopped(record)
    tty = _tty(containers, record)
    if stdin and tty:
        terminal.require_stdin_tty()
    session = Session(tty, stdin and bool(record.get("interactive")), detach_keys if tty else None,
                      forward=_forwarded() if sig_proxy and not tty else (), stdin_once=False)
    with session.signals():
        rows, cols = session.size() or (0, 0)
        sock, reply = monitor_client.converse(paths, "attach", id=record["id"], stdin=session.stdin,
                                              rows=rows + 1 if rows else 0, cols=cols + 1 if cols else 0)
        if rows:
            # Docker's nudge: one size change more, so that a shell sitting at its prompt
            # redraws it for someone who attaches a second time.
            session.queue_resize()
        code, detached = session.run(sock, reply["pid"])
    if detached:
        sys.stderr.write("read escape sequence\n")
        return 1
    return _code(paths, record, code)


def run_attached(paths, record: dict, stdin: bool, detach_keys: bytes) -> int:
    """``run -it`` / ``start -ai``: the monitor starts the container with this connection
    attached; its exit code, or 0 when the user detached. A set-up error is raised as
    the monitor reports it (the same exception and message as a foreground run)."""
    from rootless.runtime import monitor_client
    containers = state.Containers(paths)
    tty = _tty(containers, record)
    session = Session(tty, stdin, detach_keys if tty else None, forward=_forwarded(), stdin_once=True)
    with session.signals():
        rows, cols = session.size() or (0, 0)
        try:
            sock, reply = monitor_client.converse(paths, "start", id=record["id"],
                                                  attach={"stdin": stdin, "rows": rows, "cols": cols})
        except BaseException:
            current = containers.read(record["id"])
            if current is not None and current.get("auto_remove") and current["status"] not in state.ACTIVE:
                from rootless.runtime.start import remove  # it never ran: nobody else would
                remove(paths, current)
            raise
        code, detached = session.run(sock, reply["pid"])
    if detached:
        return 0
    return _code(paths, record, code)


def refuse_stopped(record: dict) -> None:
    """Docker's refusals to attach, with its client's exit code (1)."""
    if record["status"] == state.PAUSED:
        message = "You cannot attach to a paused container, unpause it first"
    elif record["status"] == state.RESTARTING:
        message = "You cannot attach to a restarting container, wait until it is running"
    elif record["status"] != state.RUNNING:
        message = "You cannot attach to a stopped container, start it first"
    else:
        return
    error = Conflict(message)
    error.exit_code = 1
    raise error


def has_tty(paths, record: dict) -> bool:
    """Whether the container was created with a tty (``-t``: its bundle says)."""
    return _tty(state.Containers(paths), record)


def _tty(containers, record: dict) -> bool:
    from rootless.runtime.config import Bundle
    return Bundle.load(containers.dir(record["id"])).tty




def _forwarded() -> Tuple[int, ...]:
    from rootless.runtime.init import FORWARDED
    return tuple(getattr(signals, name) for name in FORWARDED if hasattr(signals, name))


def _code(paths, record: dict, code: Optional[int]) -> int:
    if code is not None:
        return code
    from rootless.runtime import lifecycle  # the connection ended without the exit message
    return lifecycle.wait_exit(paths, record)


class Session:
    """One attached client's relay: terminal <-> the monitor's socket."""

    def __init__(self, tty: bool, stdin: bool, detach_keys: Optional[bytes], forward, stdin_once: bool):
        self.tty, self.stdin, self.forward, self.stdin_once = tty, stdin, tuple(forward), stdin_once
        self.scanner = terminal.DetachScanner(detach_keys) if detach_keys and stdin else None
        self.size_from = 0 if os.isatty(0) else 1
        self.outgoing: deque = deque()  # messages for the monitor, oldest first
        self.held: List[int] = []  # signals to pass on
        self.winch = False
        self.ended_by = 0  # a signal that ends the session
        self.wake_r = self.wake_w = -1
        self.pid: Optional[int] = None
        self.pid_start: Optional[int] = None

    # -- set-up ------------------------------------------------------------------------------

    def signals(self):
        """``with session.signals():`` handlers (and a wake-up pipe) for the session."""
        return _Signals(self)

    def size(self) -> Optional[Tuple[int, int]]:
        return terminal.get_winsize(self.size_from) if self.tty else None

    def queue_resize(self) -> None:
        size = self.size()
        if size and all(size):
            self.outgoing.append(jsonfast.dumps({"op": "resize", "rows": size[0], "cols": size[1]}).encode())

    # -- the relay ---------------------------------------------------------------------------

    def run(self, sock, pid: int) -> Tuple[Optional[int], bool]:
        """(the exit code, or None if the connection ended without one; whether detached)."""
        self.pid, self.pid_start = pid, state.process_start_time(pid)
        sock.setblocking(False)
        raw = terminal.RawMode(0) if self.tty and self.stdin else None
        try:
            if raw is not None:
                raw.__enter__()
            return self._loop(sock)
        finally:
            if raw is not None:
                raw.__exit__(None, None, None)
            sock.close()

    def _loop(self, sock) -> Tuple[Optional[int], bool]:
        code: Optional[int] = None
        reading = self.stdin
        detached_at: Optional[float] = None
        out_fds = {proto.OUT: 1, proto.ERR: 1 if self.tty else 2}
        while True:
            self._pass_signals()
            if self.ended_by:
                return 128 + self.ended_by, False
            if detached_at is not None and (not self.outgoing or time.monotonic() - detached_at > DETACH_FLUSH):
                return None, True
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN | (select.POLLOUT if self.outgoing else 0))
            if reading and not self.outgoing:
                poller.register(0, select.POLLIN)
            poller.register(self.wake_r, select.POLLIN)
            ready = dict(poller.poll(None if detached_at is None else 100))
            if ready.get(self.wake_r):
                _drain(self.wake_r)
            if ready.get(sock.fileno(), 0) & select.POLLOUT:
                self._send(sock)
            if reading and ready.get(0):
                reading, detached = self._read_stdin()
                if detached:
                    detached_at = time.monotonic()
                    self._send(sock)
            if ready.get(sock.fileno(), 0) & (select.POLLIN | select.POLLHUP | select.POLLERR):
                message = _recv(sock)
                if message is None:
                    continue
                if not message:
                    return code, False  # end of file: after the exit (and --rm), or the monitor died
                tag = message[:1]
                if tag in out_fds:
                    out_fds[tag] = _write_all(out_fds[tag], message[1:])
                elif tag == b"{":
                    reply = jsonfast.loads(message.decode())
                    if reply.get("op") == "exit":
                        code, reading = int(reply.get("code", 0)), False

    def _read_stdin(self) -> Tuple[bool, bool]:
        """Read what was typed; (whether to read on, whether the user detached)."""
        try:
            data = os.read(0, terminal.CHUNK)
        except BlockingIOError:
            return True, False
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EBADF):  # EIO: the terminal hung up
                raise
            data = b""
        if not data:
            held = self.scanner.flush() if self.scanner is not None else b""
            if held:
                self.outgoing.append(proto.IN + held)
            if self.stdin_once:
                self.outgoing.append(b'{"op": "eof"}')
            return False, False
        detached = False
        if self.scanner is not None:
            data, detached = self.scanner.feed(data)
        if data:
            self.outgoing.append(proto.IN + data)
        return not detached, detached

    def _send(self, sock) -> None:
        while self.outgoing:
            try:
                sock.send(self.outgoing[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the monitor went away: its end of file is read next
                self.outgoing.clear()
                return
            self.outgoing.popleft()

    def _pass_signals(self) -> None:
        if self.winch:
            self.winch = False
            self.queue_resize()
        while self.held and self.pid is not None:
            sig = self.held.pop(0)
            if state.living_since(self.pid, self.pid_start):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass


class _Signals:
    """The session's signal handlers and wake-up pipe, restored on the way out."""

    def __init__(self, session: Session):
        self.session = session
        self.old: dict = {}
        self.old_wake = -1

    def __enter__(self):
        s = self.session
        s.wake_r, s.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.old_wake = signals.set_wakeup_fd(s.wake_w)
        self._handle(signals.SIGWINCH, lambda sig, frame: setattr(s, "winch", True))
        for sig in s.forward:
            self._handle(sig, lambda sig, frame: s.held.append(sig))
        for sig in (signals.SIGTERM, signals.SIGHUP):
            if sig not in s.forward:
                self._handle(sig, lambda sig, frame: setattr(s, "ended_by", sig))
        return self

    def _handle(self, sig: int, handler) -> None:
        self.old.setdefault(sig, signals.signal(sig, handler))

    def __exit__(self, *exc_info) -> None:
        s = self.session
        for sig, handler in self.old.items():
            signals.signal(sig, handler)
        signals.set_wakeup_fd(self.old_wake)
        os.close(s.wake_r)
        os.close(s.wake_w)


def _recv(sock) -> Optional[bytes]:
    """The next message; b"" at end of file, None when there is none yet."""
    try:
        return sock.recv(proto.RECV)
    except (BlockingIOError, InterruptedError):
        return None
    except (ConnectionResetError, BrokenPipeError):
        return b""


def _write_all(fd: Optional[int], data: bytes) -> Optional[int]:
    """Write everything (waiting while a non-blocking fd is full); the fd, or None once
    nobody reads it any more (the rest of the output is then discarded)."""
    while fd is not None and data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.EIO):
                raise
            return None
    return fd


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
