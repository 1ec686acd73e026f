"""Attached clients of the monitor: ``attach``, ``run -it``, ``start -ai`` (the monitor's side).

A client asks on the monitor's socket (``runtime.monitor``) and its connection then stays
in the monitor's poll loop. The first two messages are ``linux.sync`` JSON; after them each
message (SOCK_SEQPACKET keeps the boundaries) is either JSON (its first byte is ``{``) or
one tag byte followed by raw bytes::

  client (runtime.attached)               monitor                             container
  attach {id, stdin, rows, cols} -------> registered (the container runs)
    or start {id, attach: {...}} -------> launch; registered before its first poll
        <-------- attached/started {pid} | error {type, errno, message}
  IN + bytes -----------------------------> queued -> pty master / stdin pipe ----> stdin
  {"op": "resize", rows, cols} ----------> TIOCSWINSZ on the master ------------> SIGWINCH
  {"op": "eof"} -------------------------> ^D on a pty, the pipe closed (``run -i``'s end)
        <-------------------------- OUT/ERR + bytes  (each chunk that goes to the log) <-
  close (detach, or gone) ---------------> unregistered; the container runs on
                                          the container exits: record written
        <------------------------------- {"op": "exit", "code": N}
                                          --rm removal, then
        <------------------------------- end of file

What it costs the monitor: nothing while nobody is attached (one dict lookup per chunk of
output); per client, a socket, a small object and at most ``MAX_QUEUED`` bytes of output.

Bounds, so that a client can never block the monitor, the log or another client:

* Output: sent without blocking. What the client's socket does not take is queued, up to
  ``MAX_QUEUED`` bytes; beyond that the **oldest queued output is dropped** (the client
  stays attached and sees a gap, as a terminal that could not keep up; the log has it
  all). The exit message is never dropped.
* Input: queued per container, up to ``MAX_INPUT`` bytes; while that is full the monitor
  stops reading its clients (their own sends then wait: input is throttled, not lost).
* After the exit, a client that has not taken everything gets ``LINGER`` seconds more,
  then its connection is closed anyway (it then reads the exit from the record).
"""

import errno
import os
import select
import socket
import time
from collections import deque
from typing import Dict, List, Optional

from rootless import jsonfast
from rootless.runtime import terminal  # at start-up: a monitor outlives rebuilds of its zipapp

IN, OUT, ERR = b"\x00", b"\x01", b"\x02"
TAGS = {"stdout": OUT, "stderr": ERR}
MAX_QUEUED = 256 * 1024
MAX_INPUT = 64 * 1024
LINGER = 5.0
RECV = 65536 + 1  # a tag and a chunk: both sides read and write at most this
_READ = select.POLLIN | select.POLLHUP | select.POLLERR


class Client:
    """One attached connection."""

    __slots__ = ("sock", "fd", "cid", "stdin", "queue", "queued", "mask", "deadline")

    def __init__(self, sock: socket.socket, cid: str, stdin: bool):
        self.sock, self.fd, self.cid, self.stdin = sock, sock.fileno(), cid, stdin
        self.queue: deque = deque()  # messages not yet taken by the socket
        self.queued = 0  # bytes of output in queue
        self.mask = 0
        self.deadline: Optional[float] = None  # set once the container ended


class Input:
    """Input for one container from its clients, on its way to the pty master or stdin pipe."""

    __slots__ = ("fd", "owned", "pending", "eof")

    def __init__(self, fd: int, owned: bool):
        self.fd, self.owned = fd, owned  # owned: our dup of the master, closed with us
        self.pending = b""
        self.eof = False


class Attachments:
    """Every attached client of one monitor, and the input they send."""

    def __init__(self, poll):
        self.poll = poll
        self.clients: Dict[int, Client] = {}  # socket fd -> client
        self.by_cid: Dict[str, List[Client]] = {}
        self.inputs: Dict[str, Input] = {}  # cid -> its input
        self.input_fds: Dict[int, str] = {}  # input fd -> cid
        self.watched: Dict[str, object] = {}  # cid -> the monitor's Watched, while attached

    # -- from the monitor --------------------------------------------------------------------

    def add(self, w, conn: socket.socket, stdin: bool, size=None) -> None:
        """Register ``conn`` for the running container ``w`` (a monitor.Watched)."""
        conn.setblocking(False)
        client = Client(conn, w.cid, stdin)
        self.clients[client.fd] = client
        self.by_cid.setdefault(w.cid, []).append(client)
        self.watched[w.cid] = w
        self.poll.register(client.fd, 0)
        self._arm(client)
        if size:
            self.resize(w, size)

    def owns(self, fd: int) -> bool:
        return fd in self.clients or fd in self.input_fds

    def output(self, cid: str, stream: str, data: bytes) -> None:
        """A chunk the monitor read from the container (and logged): to every client."""
        clients = self.by_cid.get(cid)
        if not clients:
            return
        message = TAGS.get(stream, OUT) + data
        for client in clients:
            if client.deadline is None:
                self._send(client, message, data=True)

    def ended(self, cid: str, code: int) -> None:
        """The container exited and its record says so: each client gets the code."""
        message = jsonfast.dumps({"op": "exit", "code": code}).encode()
        for client in self.by_cid.get(cid, ()):
            self._send(client, message, data=False)
        self._drop_input(cid)
        self.watched.pop(cid, None)

    def finish(self, cid: str) -> None:
        """After the --rm removal: close each client once it has taken what is queued."""
        deadline = time.monotonic() + LINGER
        for client in list(self.by_cid.get(cid, ())):
            client.deadline = deadline
            if not client.queue:
                self._close(client)
            else:
                self._arm(client)

    def lingering(self) -> bool:
        """Whether a client of an ended container is still being served (the monitor stays)."""
        return any(c.deadline is not None for c in self.clients.values())

    def tick(self) -> None:
        now = time.monotonic()
        for client in list(self.clients.values()):
            if client.deadline is not None and now > client.deadline:
                self._close(client)

    def event(self, fd: int, mask: int) -> None:
        if fd in self.input_fds:
            self._write_input(self.input_fds[fd])
            return
        client = self.clients.get(fd)
        if client is None:
            return
        if mask & select.POLLOUT:
            self._flush(client)
        if fd in self.clients and mask & _READ:
            self._receive(client)

    def resize(self, w, size) -> None:
        master = _master(w)
        rows, cols = size
        if master is None or not (0 < rows < 65536 and 0 < cols < 65536):
            return
        try:
            terminal.set_winsize(master, rows, cols)
        except OSError:
            pass  # the pty is closing: the container is on its way out

    # -- clients -------------------------------------------------------------------------------

    def _receive(self, client: Client) -> None:
        try:
            message = client.sock.recv(RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message = b""
        if not message:  # the client went away (detached, or ended)
            self._close(client)
            return
        if client.deadline is not None:
            return  # the container has ended: nothing more to do with input
        w = self.watched.get(client.cid)
        if w is None:
            return
        if message[:1] == IN:
            if client.stdin:
                self._queue_input(w, message[1:])
        elif message[:1] == b"{":
            try:
                request = jsonfast.loads(message.decode())
            except ValueError:
                return
            if request.get("op") == "resize":
                self.resize(w, (int(request.get("rows") or 0), int(request.get("cols") or 0)))
            elif request.get("op") == "eof" and client.stdin:
                self._queue_input(w, b"", eof=True)

    def _send(self, client: Client, message: bytes, data: bool) -> None:
        if not client.queue:
            try:
                client.sock.send(message)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # gone: its hang-up is read from the poll
                return
        client.queue.append(message)
        if data:
            client.queued += len(message)
            # The oldest output goes first; the exit message (not data) is never dropped.
            while client.queued > MAX_QUEUED and client.queue and client.queue[0][:1] in (OUT, ERR):
                client.queued -= len(client.queue.popleft())
        self._arm(client)

    def _flush(self, client: Client) -> None:
        while client.queue:
            message = client.queue[0]
            try:
                client.sock.send(message)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                client.queue.clear()
                break
            client.queue.popleft()
            if message[:1] in (OUT, ERR):
                client.queued -= len(message)
        if not client.queue and client.deadline is not None:
            self._close(client)
            return
        self._arm(client)

    def _arm(self, client: Client) -> None:
        """Poll for what the client needs: its input (unless its container's is full), room
        for its queue."""
        mask = 0
        if client.queue:
            mask |= select.POLLOUT
        full = len(getattr(self.inputs.get(client.cid), "pending", b"")) >= MAX_INPUT
        if client.deadline is None and not full:
            mask |= select.POLLIN
        if mask != client.mask:
            self.poll.modify(client.fd, mask)
            client.mask = mask

    def _close(self, client: Client) -> None:
        if self.clients.pop(client.fd, None) is None:
            return
        self.poll.unregister(client.fd)
        client.sock.close()
        others = self.by_cid.get(client.cid, [])
        if client in others:
            others.remove(client)
        if not others:
            # Its input (what it typed just before it left) stays until the container ends.
            self.by_cid.pop(client.cid, None)

    # -- input ---------------------------------------------------------------------------------

    def _queue_input(self, w, data: bytes, eof: bool = False) -> None:
        entry = self.inputs.get(w.cid) or self._open_input(w)
        if entry is None or entry.eof:
            return
        entry.pending += data
        entry.eof = eof
        if eof and entry.owned:
            entry.pending += terminal.veof(entry.fd)
        self._write_input(w.cid)

    def _open_input(self, w) -> Optional[Input]:
        """Where input goes: a dup of the pty master (the monitor polls the master itself for
        output, so writing has an fd of its own), or the write end of ``run -i``'s pipe."""
        if w.started is None:
            return None
        master = _master(w)
        if master is not None:
            entry = Input(os.dup(master), owned=True)
        elif w.started.master is None and w.stdin_w is not None:
            os.set_blocking(w.stdin_w, False)
            entry = Input(w.stdin_w, owned=False)
        else:
            return None  # created without -i: no stdin to write to
        self.inputs[w.cid] = entry
        self.input_fds[entry.fd] = w.cid
        self.poll.register(entry.fd, 0)
        return entry

    def _write_input(self, cid: str) -> None:
        entry = self.inputs.get(cid)
        if entry is None:
            return
        while entry.pending:
            try:
                written = os.write(entry.fd, entry.pending[:RECV])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.EIO):
                    raise
                entry.pending = b""  # the container takes no more input
                break
            entry.pending = entry.pending[written:]
        if entry.eof and not entry.pending and not entry.owned:
            self._close_pipe(cid, entry)
            return
        self.poll.modify(entry.fd, select.POLLOUT if entry.pending else 0)
        for client in self.by_cid.get(cid, ()):
            self._arm(client)  # room again (or none): read the clients' input or leave it

    def _close_pipe(self, cid: str, entry: Input) -> None:
        """``eof`` on a stdin pipe: the container reads end of file (the monitor's end too)."""
        self._drop_input(cid)
        w = self.watched.get(cid)
        if w is not None and w.stdin_w == entry.fd:
            w.stdin_w = None
        os.close(entry.fd)

    def _drop_input(self, cid: str) -> None:
        entry = self.inputs.pop(cid, None)
        if entry is None:
            return
        self.input_fds.pop(entry.fd, None)
        try:
            self.poll.unregister(entry.fd)
        except KeyError:
            pass
        if entry.owned:
            os.close(entry.fd)


def attachable(w, cid: str) -> int:
    """The pid of the container ``w`` (the monitor's Watched for ``cid``, or None) for an
    ``attach``; Docker's refusal when it is between two runs."""
    from rootless.errors import Conflict
    if w is None or w.started is None:
        if w is not None and w.restart_at is not None:
            raise Conflict("You cannot attach to a restarting container, wait until it is running")
        raise Conflict("container %s is not run by this monitor (a foreground run, or a monitor "
                       "of another rootless build): it cannot be attached" % cid[:12])
    return w.started.pid


def _master(w) -> Optional[int]:
    """The container's pty master while the monitor still has it open (it closes it at end
    of output, maybe before the exit is reaped: the number may be reused by then)."""
    master = w.started.master if w.started is not None else None
    return master if master is not None and master in w.streams else None
