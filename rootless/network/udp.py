"""UDP relay of the port forwarder: one container-side socket per client address.

A datagram from a client goes out on a socket made inside the container's network
namespace and connected to 127.0.0.1:PORT (one per client address, so the container's
server sees each client as its own peer and answers it); what comes back on that socket
is sent to the client from the host's socket. A flow with no datagram either way for
``idle`` seconds (60) is closed by a timer of the loop.
"""

from __future__ import annotations

import _socket as socket  # not socket.py: its enum classes cost ~2 ms to build
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict

from rootless.network.loop import EPOLLIN, Loop

CONTAINER_ADDRESS = "127.0.0.1"
DATAGRAMS = 64  # datagrams relayed per wake-up of a UDP socket
UDP_IDLE = 60.0


class UdpPort:
    """A host UDP socket: one ``Flow`` per client address, into the container's port."""

    def __init__(self, loop: Loop, sock, port: int, idle: float = UDP_IDLE) -> None:
        self.loop, self.sock, self.port, self.idle = loop, sock, port, idle
        self.flows: Dict[object, Flow] = {}
        self.buffer = bytearray(65536)
        self.view = memoryview(self.buffer)
        self.sweeping = False
        loop.watch(sock.fileno(), EPOLLIN, self)

    def ready(self, fd: int, events: int) -> None:
        now = time.monotonic()
        for _ in range(DATAGRAMS):
            try:
                size, address = self.sock.recvfrom_into(self.buffer)
            except BlockingIOError:
                return
            except OSError:
                continue  # an error queued on the socket: reported once, then cleared
            flow = self.flows.get(address) or self._open(address)
            if flow is None:
                continue  # no socket for it now (out of fds?): this datagram is lost
            flow.last = now
            try:
                flow.sock.send(self.view[:size])
            except OSError:
                pass  # datagrams may be lost: a full queue, an ICMP error from before

    def _open(self, address):
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the container's
        except OSError:
            return None
        try:
            sock.setblocking(False)
            sock.connect((CONTAINER_ADDRESS, self.port))
        except OSError:
            sock.close()
            return None
        flow = self.flows[address] = Flow(self, address, sock)
        if not self.sweeping:
            self.sweeping = True
            self.loop.later(self.idle, self.sweep)
        return flow

    def sweep(self) -> None:
        """Close the flows idle for ``idle`` seconds; come back when the next one will be."""
        now = time.monotonic()
        for flow in [f for f in self.flows.values() if now - f.last >= self.idle]:
            flow.close()
        if self.flows:
            oldest = min(f.last for f in self.flows.values())
            self.loop.later(max(0.0, oldest + self.idle - now), self.sweep)
        else:
            self.sweeping = False


class Flow:
    """The container-side socket of one UDP client address."""

    __slots__ = ("port", "address", "sock", "fd", "last")

    def __init__(self, port: UdpPort, address, sock) -> None:
        self.port, self.address, self.sock, self.fd = port, address, sock, sock.fileno()
        self.last = time.monotonic()
        port.loop.watch(self.fd, EPOLLIN, self)

    def ready(self, fd: int, events: int) -> None:
        port, view = self.port, self.port.view
        for _ in range(DATAGRAMS):
            try:
                size = self.sock.recv_into(port.buffer)
            except BlockingIOError:
                break
            except OSError:
                continue  # ECONNREFUSED: nothing listened when a datagram arrived
            try:
                port.sock.sendto(view[:size], self.address)
            except OSError:
                pass
        self.last = time.monotonic()

    def close(self) -> None:
        self.port.loop.forget(self.fd)
        self.sock.close()
        del self.port.flows[self.address]
