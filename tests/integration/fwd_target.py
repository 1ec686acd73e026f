"""A stand-in for a container, for the port forwarder's tests and its throughput script.

``python3 fwd_target.py [--host BASE]``: becomes root of a new user namespace (mapped to
the caller's uid and gid only) with a new network namespace, brings its loopback up, and
serves there on 127.0.0.1, then prints ``ready`` (with ``--host``: no namespaces, the
ports are BASE+n on the host's loopback, the baseline for throughput):

    80/tcp  echo: what comes is sent back as it comes; at EOF, a trailer
            b"\\n" + sha256 hex of all that came, then close
    82/tcp  sink: reads to EOF, answers with the byte count (decimal), closes
    83/tcp  source: reads a decimal count and a newline, sends that many bytes, closes
    84/tcp  peer: answers with the client's "ip port" and closes
    85/tcp  stall: accepts, never reads, closes when the client does not come back
    80/udp  echo: a datagram comes back as datagram + b" from " + the sender's port
    81      nothing listens (tcp and udp)
"""

import hashlib
import os
import socket
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHUNK = 1 << 20


def enter_namespaces() -> None:
    sys.path.insert(0, REPO)
    from rootless.linux import ns
    uid, gid = os.getuid(), os.getgid()
    ns.unshare(ns.CLONE_NEWUSER | ns.CLONE_NEWNET)
    for name, text in (("setgroups", "deny"), ("uid_map", "0 %d 1" % uid), ("gid_map", "0 %d 1" % gid)):
        with open("/proc/self/" + name, "w") as f:
            f.write(text)
    ns.loopback_up()


def tcp_server(port: int, handle) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(512)

    def serve():
        while True:
            conn, peer = server.accept()
            threading.Thread(target=_handle, args=(handle, conn, peer), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()


def _handle(handle, conn, peer) -> None:
    try:
        handle(conn, peer)
    except OSError:
        pass
    finally:
        conn.close()


def echo(conn, peer) -> None:
    digest = hashlib.sha256()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        digest.update(data)
        conn.sendall(data)
    conn.sendall(b"\n" + digest.hexdigest().encode())


def sink(conn, peer) -> None:
    buffer = bytearray(CHUNK)
    total = 0
    while True:
        got = conn.recv_into(buffer)
        if not got:
            break
        total += got
    conn.sendall(str(total).encode())


def source(conn, peer) -> None:
    asked = b""
    while not asked.endswith(b"\n"):
        more = conn.recv(32)
        if not more:
            return
        asked += more
    left = int(asked)
    block = memoryview(b"x" * CHUNK)
    while left > 0:
        left -= conn.send(block[:min(left, CHUNK)])


def peer_address(conn, peer) -> None:
    conn.sendall(("%s %d" % peer[:2]).encode())


def stall(conn, peer) -> None:
    threading.Event().wait(60)


def udp_echo(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))

    def serve():
        while True:
            data, peer = sock.recvfrom(65536)
            sock.sendto(data + b" from %d" % peer[1], peer)
    threading.Thread(target=serve, daemon=True).start()


def main(argv) -> int:
    base = 80
    if argv[:1] == ["--host"]:
        base = int(argv[1])
    else:
        enter_namespaces()
    tcp_server(base, echo)
    tcp_server(base + 2, sink)
    tcp_server(base + 3, source)
    tcp_server(base + 4, peer_address)
    tcp_server(base + 5, stall)
    udp_echo(base)
    print("ready", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
