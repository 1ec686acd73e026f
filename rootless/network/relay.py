"""The port forwarder's relays: TCP here, UDP in ``udp``, on the epoll loop of ``loop``.

The loop runs after the forwarder has joined the container's network namespace, so each
socket made here is the container's, while the listeners (and what they accept) stay on
the host (see ``rootless.network.forwarder``).

TCP, per accepted connection: a non-blocking connect to 127.0.0.1:PORT; refused -> the
client's connection is closed. Both sockets get TCP_NODELAY (a relay must not hold back
a small write), and Reno where the path is loopback (LOOPBACK_CONGESTION). Then two
independent directions (client -> server, server -> client), each a ``Pump``:

    state      waits for            moves to
    READING    src readable         WRITING (dst full) | DONE (EOF: shutdown(dst, SHUT_WR))
    WRITING    dst writable         READING (drained)
    DONE       -                    the connection closes once both directions are DONE

A pump moves bytes with splice through a pipe of its own (``rootless.linux.splice``):
src -> pipe, then pipe -> dst until the pipe is empty, before it reads again, so a socket
that cannot take more stops the reading of its direction (EPOLLOUT instead of EPOLLIN:
no busy loop, no unbounded buffer). A pipe starts at the kernel's default size and grows
towards 1 MiB once its direction moves bulk data (F_SETPIPE_SZ), so a thousand idle
connections do not push the user past pipe-user-pages-soft, where every new pipe of the
user (not only ours) would shrink to two pages. Where splice fails with EINVAL the pump
copies through a buffer instead (recv_into/send). An error on either socket closes both.
"""

from __future__ import annotations

import _socket as socket  # not socket.py: its enum classes cost ~2 ms to build
import errno
import os
import select

from rootless.linux import splice as _splice
from rootless.network.loop import Loop, ProcessEnd, ProcessPoll
from rootless.network.udp import UDP_IDLE, UdpPort

EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
EPOLLERR, EPOLLHUP = select.EPOLLERR, select.EPOLLHUP

CONTAINER_ADDRESS = "127.0.0.1"
PIPE_DEFAULT = 65536  # what a new pipe has (16 pages) unless the user is past the soft limit
PIPE_MAX = 1 << 20
SPLICE = _splice.splicer()  # chosen (and ctypes loaded, below 3.10) before any namespace change
SPLICE_FLAGS = _splice.SPLICE_F_MOVE | _splice.SPLICE_F_NONBLOCK
ROUNDS = 16  # chunks one direction moves per wake-up before the others get their turn
ACCEPTS = 64  # connections accepted per wake-up of a listener
COPY_BUFFER = 1 << 18
RETRY_ACCEPT = 0.1  # seconds a listener rests when we are out of file descriptors
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
# Loopback has no bottleneck to probe: the system's default congestion control (often
# BBR, which paces every send with a timer) only costs CPU there. Reno is built into every
# kernel and allowed to every user. Measured here (default BBR): the forwarder's CPU time
# for 2 GiB went from 658 to 231 ms, the rate from 1410 to 2465 MB/s. A client from
# another host keeps the default: its path may well have a bottleneck.
LOOPBACK_CONGESTION = b"reno"
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)

READING, WRITING, DONE = 0, 1, 2


class TcpListener:
    """Accepts on a host socket; each connection becomes a ``Connection`` to ``port``."""

    def __init__(self, loop: Loop, sock, port: int, copy: bool) -> None:
        self.loop, self.sock, self.port, self.copy = loop, sock, port, copy
        self.fd = sock.fileno()
        loop.watch(self.fd, EPOLLIN, self)

    def ready(self, fd: int, events: int) -> None:
        for _ in range(ACCEPTS):
            try:
                conn, peer = self.sock._accept()  # the C method: a bare fd, no socket.py object
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in OUT_OF_FDS:  # rest, rather than be woken for it at once again
                    self.loop.change(self.fd, 0)
                    self.loop.later(RETRY_ACCEPT, lambda: self.loop.change(self.fd, EPOLLIN))
                    return
                continue  # that one connection is gone already (ECONNABORTED...)
            Connection(self.loop, socket.socket(self.sock.family, socket.SOCK_STREAM, 0, conn),
                       self.port, self.copy, _is_loopback(peer))


class Connection:
    """One client connection and the connection made for it inside the container."""

    __slots__ = ("loop", "client", "server", "cfd", "sfd", "up", "down", "connecting", "closed")

    def __init__(self, loop: Loop, client, port: int, copy: bool, local_client: bool = False) -> None:
        self.loop, self.client, self.cfd = loop, client, client.fileno()
        self.server, self.sfd, self.up, self.down = None, -1, None, None
        self.connecting, self.closed = False, False
        try:
            client.setblocking(False)
            server = self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the container's
            self.sfd = server.fileno()
            server.setblocking(False)
            for sock in (client, server):  # a relay must not add Nagle's delay to small writes
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _loopback_congestion(server)  # the container's loopback, always
            if local_client:
                _loopback_congestion(client)
            err = server.connect_ex((CONTAINER_ADDRESS, port))
        except OSError:
            return self.close()
        if err not in (0, errno.EINPROGRESS):
            return self.close()  # refused: the client sees its connection closed
        self.up = Pump(self, client, server, copy)
        self.down = Pump(self, server, client, copy)
        if err == 0:
            loop.watch(self.cfd, EPOLLIN, self)
            loop.watch(self.sfd, EPOLLIN, self)
        else:  # the client is not read from until the container has answered
            self.connecting = True
            loop.watch(self.cfd, 0, self)
            loop.watch(self.sfd, EPOLLOUT, self)

    def ready(self, fd: int, events: int) -> None:
        if self.closed:
            return
        if self.connecting:
            return self._connected(fd, events)
        up, down = self.up, self.down
        if fd == self.cfd:
            reader, writer = up, down
        elif fd == self.sfd:
            reader, writer = down, up
        else:
            return
        acted = False
        try:
            if events & (EPOLLIN | EPOLLERR | EPOLLHUP) and reader.state == READING:
                acted = True
                reader.run()
            if events & (EPOLLOUT | EPOLLERR | EPOLLHUP) and writer.state == WRITING and not self.closed:
                acted = True
                writer.run()
        except OSError:  # reset, broken pipe...: nothing more can be delivered either way
            return self.close()
        if not acted and events & EPOLLERR:
            self.close()  # an error on a socket no direction is using right now
        # A hang-up nobody acted on is not an end: the peer closed, and what it sent
        # before is read once the other side has drained (the fd leaves the set meanwhile).

    def _connected(self, fd: int, events: int) -> None:
        if fd != self.sfd:
            if events & (EPOLLERR | EPOLLHUP):
                self.close()  # the client left before the container answered
            return
        if not events & (EPOLLOUT | EPOLLERR | EPOLLHUP):
            return
        if self.server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return self.close()  # refused (or reset): close the client's connection
        try:
            self.server.getpeername()
        except OSError:
            return  # not connected yet (the wake-up was for something else)
        self.connecting = False
        self.update()

    def update(self) -> None:
        """Ask epoll for what each direction waits for (no call when nothing changed)."""
        up, down = self.up, self.down
        self.loop.change(self.cfd, (EPOLLIN if up.state == READING else 0)
                         | (EPOLLOUT if down.state == WRITING else 0))
        self.loop.change(self.sfd, (EPOLLIN if down.state == READING else 0)
                         | (EPOLLOUT if up.state == WRITING else 0))

    def finished(self) -> None:
        """A direction is done: the connection ends when both are."""
        if self.up.state == DONE and self.down.state == DONE:
            self.close()
        else:
            self.update()

    def close(self) -> None:
        self.closed = True
        for fd in (self.cfd, self.sfd):
            self.loop.forget(fd)
        for pump in (self.up, self.down):
            if pump is not None:
                pump.release()
        self.client.close()
        if self.server is not None:
            self.server.close()


def _is_loopback(peer) -> bool:
    """Whether an accepted client's address is this host's loopback (v4, v6, v4-mapped)."""
    host = peer[0] if isinstance(peer, tuple) else ""
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


def _loopback_congestion(sock) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, LOOPBACK_CONGESTION)
    except OSError:
        pass  # a kernel without it: the default works, at some cost


class Pump:
    """One direction of a connection: src -> pipe -> dst (or through a buffer)."""

    __slots__ = ("conn", "src", "dst", "sfd", "dfd", "rp", "wp", "size", "limit", "pending", "state",
                 "buffer", "start", "fill", "flush")

    def __init__(self, conn: Connection, src, dst, copy: bool) -> None:
        self.conn, self.src, self.dst = conn, src, dst
        self.sfd, self.dfd = src.fileno(), dst.fileno()
        self.rp = self.wp = -1
        self.size, self.limit, self.pending, self.state = PIPE_DEFAULT, PIPE_MAX, 0, READING
        self.buffer, self.start = None, 0
        if copy:
            self._copying()
        else:
            self.fill, self.flush = self._splice_in, self._splice_out

    def run(self) -> None:
        """Move what there is: drain the pipe into dst, read src again, up to ROUNDS times;
        stop at the first would-block, and say which side we now wait for."""
        rounds = ROUNDS
        while True:
            if self.pending and not self.flush():
                return self._wait(WRITING)
            if rounds == 0:
                return self._wait(READING)
            size = self.size
            moved = self.fill()
            if moved is None:
                return self._wait(READING)
            if moved == 0:
                return self._eof()
            # Well under what the pipe holds: src is most likely drained, and epoll will
            # say when it is not, which costs less than a read that would block.
            rounds = rounds - 1 if moved * 2 > size else 0

    def _wait(self, state: int) -> None:
        if self.state != state:
            self.state = state
            self.conn.update()

    def _eof(self) -> None:
        try:
            self.dst.shutdown(socket.SHUT_WR)  # half-close: the peer reads its EOF, may answer
        except OSError:
            pass  # the peer has gone: the other direction finds out on its own
        self.state = DONE
        self.release()
        self.conn.finished()

    def _splice_in(self):
        if self.rp < 0:
            self.rp, self.wp = _splice.pipe()
        try:
            moved = SPLICE(self.sfd, self.wp, self.size, SPLICE_FLAGS)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            self._copying()  # this socket cannot splice: copy from now on
            return self.fill()
        self.pending = moved
        if moved * 2 > self.size and self.size < self.limit:
            self._grow()
        return moved

    def _splice_out(self) -> bool:
        try:
            moved = SPLICE(self.rp, self.dfd, self.pending, SPLICE_FLAGS)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            self._copying()
            return self.flush()
        self.pending -= moved
        return self.pending == 0

    def _grow(self) -> None:
        """Bulk data: a bigger pipe, fewer calls per byte. Refused (EPERM: past the user's
        soft limit or pipe-max-size): stay at this size and never ask again."""
        try:
            self.size = _splice.set_pipe_size(self.wp, min(self.size * 4, self.limit))
        except OSError:
            self.limit = self.size

    def _copying(self) -> None:
        """Switch to recv_into/send through a buffer, keeping what the pipe holds."""
        self.buffer = memoryview(bytearray(COPY_BUFFER))
        self.start = 0
        if self.pending:
            held = b""
            while len(held) < self.pending:
                held += os.read(self.rp, self.pending - len(held))
            self.buffer[:len(held)] = held
        self.release()
        self.fill, self.flush = self._recv, self._send

    def _recv(self):
        try:
            moved = self.src.recv_into(self.buffer)
        except BlockingIOError:
            return None
        self.start, self.pending = 0, moved
        return moved

    def _send(self) -> bool:
        try:
            moved = self.dst.send(self.buffer[self.start:self.start + self.pending])
        except BlockingIOError:
            return False
        self.start += moved
        self.pending -= moved
        return self.pending == 0

    def release(self) -> None:
        """Close the pipe (it counts against the user's pipe pages while it exists)."""
        if self.rp >= 0:
            os.close(self.rp)
            os.close(self.wp)
            self.rp = self.wp = -1


def serve(listeners, pidfd: int = -1, pid: int = 0, copy: bool = False, udp_idle: float = UDP_IDLE) -> Loop:
    """A loop relaying each of ``listeners`` ((socket, container port, "tcp"|"udp")) until
    the process ends (its ``pidfd``, else ``pid`` polled); ``run()`` it."""
    loop = Loop()
    for sock, port, proto in listeners:
        sock.setblocking(False)
        if proto == "udp":
            UdpPort(loop, sock, port, udp_idle)
        else:
            TcpListener(loop, sock, port, copy)
    if pidfd >= 0:
        ProcessEnd(loop, pidfd)
    elif pid:
        ProcessPoll(loop, pid)
    return loop
