"""Throughput of the port forwarder beside the host loopback (a measurement, not a test).

    python3 tests/integration/fwd_throughput.py [--mib 1024] [--runs 3] [--copy]

Starts fwd_target.py twice: in namespaces of its own (reached through the forwarder, as
a published port is) and on the host's loopback (the floor, reached directly), then moves
MiB mebibytes through one TCP connection each way: "up" to the sink, which answers with
the count, "down" from the source, read to EOF. Runs alternate between the two; the best
and the median run of each are reported, as MB/s, with the ratios forwarder / loopback
(the best is the one to compare on a machine others share: the median moves with them).
"""

import argparse
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from rootless.network import forwarder  # noqa: E402

TARGET = os.path.join(HERE, "fwd_target.py")
HOST_BASE = 47180
CHUNK = 1 << 20


def start(*args):
    proc = subprocess.Popen([sys.executable, TARGET] + list(args), stdout=subprocess.PIPE)
    if proc.stdout.readline().strip() != b"ready":
        raise SystemExit("the target did not start")
    return proc


def up(port: int, size: int) -> float:
    block = memoryview(b"\0" * CHUNK)
    sock = socket.create_connection(("127.0.0.1", port))
    began = time.perf_counter()
    left = size
    while left > 0:
        left -= sock.send(block[:min(left, CHUNK)])
    sock.shutdown(socket.SHUT_WR)
    answer = sock.recv(64)
    took = time.perf_counter() - began
    sock.close()
    assert int(answer) == size, answer
    return took


def down(port: int, size: int) -> float:
    buffer = bytearray(CHUNK)
    sock = socket.create_connection(("127.0.0.1", port))
    began = time.perf_counter()
    sock.sendall(b"%d\n" % size)
    got = 0
    while True:
        n = sock.recv_into(buffer)
        if not n:
            break
        got += n
    took = time.perf_counter() - began
    sock.close()
    assert got == size, got
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--copy", action="store_true", help="relay by recv/send, not splice")
    options = parser.parse_args()
    size = options.mib << 20
    contained, host = start(), start("--host", str(HOST_BASE))
    listeners = []
    for cport in (82, 83):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        listeners.append((sock, cport, "tcp"))
    sink_port, source_port = (s.getsockname()[1] for s, _, _ in listeners)
    pid = forwarder.start(listeners, contained.pid, copy=options.copy)
    took = {}
    try:
        for _ in range(options.runs):
            for name, fn, direct, forwarded in (("up", up, HOST_BASE + 2, sink_port),
                                                ("down", down, HOST_BASE + 3, source_port)):
                for way, port in (("loopback", direct), ("forwarder", forwarded)):
                    took.setdefault((name, way), []).append(fn(port, size))
    finally:
        for proc in (contained, host):
            proc.kill()
            proc.wait()
        os.waitpid(pid, 0)
    for name in ("up", "down"):
        for pick in ("best", "median"):
            rates = {}
            for way in ("loopback", "forwarder"):
                runs = sorted(took[(name, way)])
                rates[way] = size / (runs[0] if pick == "best" else runs[len(runs) // 2]) / 1e6
            print("%-4s %d MiB, %-6s of %d: loopback %5.0f MB/s  forwarder%s %5.0f MB/s  ratio %.2f" % (
                name, options.mib, pick, options.runs, rates["loopback"], " (copy)" if options.copy else "",
                rates["forwarder"], rates["forwarder"] / rates["loopback"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
