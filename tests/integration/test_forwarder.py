"""The port forwarder (rootless.network.forwarder) against a real target: a process in a
user and network namespace of its own, made by the unprivileged test user
(fwd_target.py), with the forwarder forked by this process or by a helper process.

Everything is on loopback: the listeners on the host's 127.0.0.1, the target's servers on
its own 127.0.0.1. Waits are deadlines around a probe, never a fixed sleep.
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import PYZ, REPO, need, until
from rootless.errors import RootlessError
from rootless.network import forwarder

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fwd_target.py")
ECHO, REFUSED, SOURCE, PEER, STALL = 80, 81, 83, 84, 85


def start_target():
    proc = subprocess.Popen([sys.executable, TARGET], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise AssertionError("the target did not start: %s" % proc.stderr.read().decode(errors="replace"))
    return proc


@pytest.fixture
def target():
    need(os.getuid() != 0, "the forwarder must be tested as an unprivileged user (bash .ci/run does)")
    proc = start_target()
    yield proc
    proc.kill()
    proc.wait()


def listener(proto="tcp"):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    if proto == "tcp":
        sock.listen(512)
    sock.setblocking(False)
    return sock


class Forwarded:
    """start() on listeners for (container port, proto); .port[(cport, proto)] -> host port."""

    def __init__(self, target_pid, specs, **options):
        socks = [(listener(proto), cport, proto) for cport, proto in specs]
        self.port = {(cport, proto): s.getsockname()[1] for s, cport, proto in socks}
        self.pid = forwarder.start(socks, target_pid, **options)

    def alive(self):
        return os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def wait(self, timeout=10.0):
        """Its exit code, once it has ended by itself."""
        def ended():
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            return pid == self.pid and [os.waitstatus_to_exitcode(status)]
        code = until(ended, timeout, "the forwarder's end")[0]
        self.pid = None
        return code

    def stop(self):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


@pytest.fixture
def forward(target):
    made = []

    def make(specs, **options):
        made.append(Forwarded(target.pid, specs, **options))
        return made[-1]
    yield make
    for f in made:
        f.stop()


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def read_all(sock):
    chunks = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def echo_through(port, payload):
    """Send payload (from a thread, while reading), shut down writing, read to EOF."""
    sock = connect(port)
    sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
    sender.start()
    try:
        got = read_all(sock)
    finally:
        sender.join()
        sock.close()
    return got


def listening(port, proto="tcp"):
    """Whether something still holds this host port: a bind with SO_REUSEADDR fails only
    then (for UDP: any socket bound to it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        sock.close()


@pytest.mark.parametrize("copy", [False, True], ids=["splice", "copy"])
def test_8_mib_each_way_through_one_connection_with_half_close(forward, copy):
    f = forward([(ECHO, "tcp")], copy=copy)
    payload = os.urandom(8 << 20)
    got = echo_through(f.port[(ECHO, "tcp")], payload)
    # The reply after our shutdown(SHUT_WR) came through: the server saw EOF, then answered.
    assert len(got) == len(payload) + 65
    assert hashlib.sha256(got[:-65]).digest() == hashlib.sha256(payload).digest()
    assert got[-65:] == b"\n" + hashlib.sha256(payload).hexdigest().encode()
    assert f.alive()


def test_a_server_that_answers_and_closes_while_the_client_is_slow_loses_nothing(forward):
    """Both ends shut on the container side (a hang-up there) while the reply still waits
    for a client that is not reading yet: the rest must follow once it reads."""
    f = forward([(SOURCE, "tcp")])
    sock = connect(f.port[(SOURCE, "tcp")])
    sock.sendall(b"%d\n" % (8 << 20))
    sock.shutdown(socket.SHUT_WR)
    time.sleep(1.0)  # the server has sent what fits and closed; the forwarder holds the rest
    assert f.alive()
    assert read_all(sock) == b"x" * (8 << 20)
    sock.close()


def test_50_concurrent_connections_each_get_their_own_data(forward):
    f = forward([(ECHO, "tcp")])
    port = f.port[(ECHO, "tcp")]
    socks = [connect(port) for _ in range(50)]  # all open at once before any data moves
    payloads = [os.urandom(100000 + i * 997) for i in range(50)]
    results = [None] * 50

    def one(i):
        sock = socks[i]
        sender = threading.Thread(target=lambda: (sock.sendall(payloads[i]), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        results[i] = read_all(sock)
        sender.join()
        sock.close()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(50):
        assert results[i] == payloads[i] + b"\n" + hashlib.sha256(payloads[i]).hexdigest().encode(), i


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_server_that_does_not_read_stops_the_reading_without_a_busy_loop(forward):
    f = forward([(STALL, "tcp"), (ECHO, "tcp")])
    sock = connect(f.port[(STALL, "tcp")])
    sock.setblocking(False)
    sent, block = 0, b"z" * 65536
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until every buffer on the way is full
        try:
            sent += sock.send(block)
        except BlockingIOError:
            time.sleep(0.1)
            try:
                sent += sock.send(block)
            except BlockingIOError:
                break
    assert 0 < sent < 1 << 30  # it stopped taking: the forwarder stopped reading
    before = cpu_seconds(f.pid)
    time.sleep(1.0)
    assert cpu_seconds(f.pid) - before < 0.1  # waiting for EPOLLOUT, not spinning
    assert echo_through(f.port[(ECHO, "tcp")], b"others still move")[:17] == b"others still move"
    sock.close()


def test_a_refused_container_port_closes_the_client_and_the_forwarder_stays_up(forward):
    f = forward([(REFUSED, "tcp"), (ECHO, "tcp")])
    for _ in range(3):
        sock = connect(f.port[(REFUSED, "tcp")])
        try:
            sock.sendall(b"anyone?")
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass  # closed with a reset: as good
        sock.close()
    assert f.alive()
    assert echo_through(f.port[(ECHO, "tcp")], b"still here")[:10] == b"still here"


def test_the_container_sees_its_clients_as_its_own_loopback(forward):
    f = forward([(PEER, "tcp")])
    sock = connect(f.port[(PEER, "tcp")])
    assert read_all(sock).split()[0] == b"127.0.0.1"
    sock.close()


def test_udp_datagrams_both_ways_one_flow_per_client(forward):
    f = forward([(ECHO, "udp")])
    port = f.port[(ECHO, "udp")]
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    seen = []
    for i, c in enumerate(clients):
        c.settimeout(10)
        c.sendto(b"hello %d" % i, ("127.0.0.1", port))
    for i, c in enumerate(clients):
        data, source = c.recvfrom(65536)
        assert source == ("127.0.0.1", port)
        text, _, inside = data.partition(b" from ")
        assert text == b"hello %d" % i
        seen.append(int(inside))
    for i, c in enumerate(clients):  # the same client keeps its flow (the same source port inside)
        c.sendto(b"again %d" % i, ("127.0.0.1", port))
        data, _ = c.recvfrom(65536)
        assert data == b"again %d from %d" % (i, seen[i])
    assert seen[0] != seen[1]
    big = os.urandom(60000)
    clients[0].sendto(big, ("127.0.0.1", port))
    assert clients[0].recvfrom(65536)[0] == big + b" from %d" % seen[0]
    for c in clients:
        c.close()


def test_an_idle_udp_flow_expires_and_a_new_one_is_made(forward):
    f = forward([(ECHO, "udp")], udp_idle=0.3)
    port = f.port[(ECHO, "udp")]
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(10)
    c.sendto(b"one", ("127.0.0.1", port))
    first = c.recvfrom(100)[0].split()[-1]
    c.sendto(b"two", ("127.0.0.1", port))
    assert c.recvfrom(100)[0].split()[-1] == first
    time.sleep(0.8)  # past the idle time: the flow's socket has been closed
    c.sendto(b"three", ("127.0.0.1", port))
    assert c.recvfrom(100)[0].split()[-1] != first
    c.close()


def test_the_forwarder_exits_by_itself_when_the_target_ends(target, forward):
    f = forward([(ECHO, "tcp"), (ECHO, "udp")])
    tcp, udp = f.port[(ECHO, "tcp")], f.port[(ECHO, "udp")]
    held = connect(tcp)  # a connection still open does not keep it
    held.sendall(b"x")
    assert held.recv(1) == b"x"
    target.kill()  # not reaped yet: it has ended all the same
    pid = f.pid
    assert f.wait() == 0
    assert not os.path.exists("/proc/%d" % pid)
    assert not listening(tcp) and not listening(udp, "udp")
    try:
        assert held.recv(100) == b""  # the connection ended with the forwarder
    except ConnectionResetError:
        pass
    held.close()


HELPER = r"""
import os, socket, sys, time
pyz = os.environ.get("FWD_PYZ")
if pyz:  # import rootless from the zipapp's module table, as the CLI and monitor do
    import zipimport
    z = zipimport.zipimporter(pyz)
    main = z.get_source("__main__").replace("exit_now(main())", "")
    exec(compile(main, "__main__", "exec"), {"__loader__": z, "__name__": "helper"})
else:
    sys.path.insert(0, os.environ["FWD_REPO"])
from rootless.network import forwarder
assert not pyz or forwarder.__file__.startswith(pyz), forwarder.__file__
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0))
l.listen(64)
port = l.getsockname()[1]
pid = forwarder.start([(l, 80, "tcp")], int(sys.argv[1]))
print(pid, port, flush=True)
time.sleep(600)
"""


def gone(pid):
    """Ended (and reaped by whoever adopted it), or a zombie waiting for that."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_when_its_parent_is_killed_the_forwarder_goes_and_the_port_is_free(target):
    env = dict(os.environ, FWD_REPO=REPO)
    if os.path.exists(PYZ):
        env["FWD_PYZ"] = PYZ
    helper = subprocess.Popen([sys.executable, "-c", HELPER, str(target.pid)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
    try:
        line = helper.stdout.readline().split()
        assert len(line) == 2, helper.stderr.read().decode(errors="replace")
        pid, port = int(line[0]), int(line[1])
        with open("/proc/%d/comm" % pid) as f:
            assert f.read().strip() == "rootless-fwd"
        assert echo_through(port, b"through the helper's forwarder")[:30] == b"through the helper's forwarder"
    finally:
        helper.kill()
        helper.wait()
    until(lambda: gone(pid), what="the forwarder's death with its parent")
    until(lambda: not listening(port), what="the port to be free")


def our_forwarders():
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            if comm == "rootless-fwd" and int(rest[1]) == os.getpid():
                found.append(int(name))
    return found


def gone_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("which", ["init", "gone", "ours"])
def test_a_target_it_cannot_join_raises_and_leaves_nothing_listening(which, unprivileged):
    pid = {"init": lambda: 1, "gone": gone_pid, "ours": os.getpid}[which]()
    tcp, udp = listener("tcp"), listener("udp")
    ports = tcp.getsockname()[1], udp.getsockname()[1]
    with pytest.raises(RootlessError) as raised:
        forwarder.start([(tcp, 80, "tcp"), (udp, 80, "udp")], pid)
    assert "process %d" % pid in str(raised.value)
    assert tcp.fileno() == -1 and udp.fileno() == -1  # ours are closed too
    assert not listening(ports[0]) and not listening(ports[1], "udp")
    assert our_forwarders() == []


def test_a_log_file_it_cannot_open_raises(target, tmp_path):
    sock = listener()
    with pytest.raises(RootlessError):
        forwarder.start([(sock, 80, "tcp")], target.pid, log_path=str(tmp_path / "no" / "such" / "log"))
    assert our_forwarders() == []
