"""Networking end to end, as an unprivileged user, traffic on loopback only: published
ports fetched from the host, with the network helpers hidden, two containers on one
container port, -P, a port in use, a privileged port, and what is left after stop, rm and
kill -9 (nothing). UDP is echoed by a perl server in the Debian image (busybox's nc has
no -u): datagrams of two clients at once kept apart, a large one, a port range, and
nothing bound after stop and rm.

The forwarder is the same in every mode (``rootless.network.forwarder``); the modes differ
in what else the namespace has, so the publishing tests run once per mode.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import Rootless, have, loaded_root, need

# The private modes: with a network helper (slirp4netns, pasta), and --network none, a
# network namespace with only loopback.
MODES = ["slirp4netns", "pasta", "none"]


@pytest.fixture(scope="module")
def nrl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "net")


@pytest.fixture(scope="module")
def drl(tmp_path_factory, test_images):
    """A root with the Debian image: its perl-base has IO::Socket::INET, a UDP server."""
    yield from loaded_root(tmp_path_factory, test_images, "netudp", ("debian-docker.tar",))


def mode_needs(mode):
    if mode != "none":
        need(have(mode), "%s on PATH (Debian: apt install %s)" % (mode, "passt" if mode == "pasta" else mode))


def served(rl, mode, *extra, name=None, page=b"hello from the container\n"):
    """A detached busybox httpd on container port 80, published with ``extra``; its id."""
    mode_needs(mode)
    script = "mkdir -p /www && printf '%s' > /www/index.html && exec httpd -f -p 80 -h /www" % page.decode()
    args = ["run", "-d", "--network", mode] + list(extra)
    if name:
        args += ["--name", name]
    return rl.out(*(args + ["busybox", "sh", "-c", script])).strip()


def host_port(rl, cid, private="80/tcp"):
    out = rl.out("port", cid, private).split()
    assert out, "no published port for %s" % private
    ip, port = out[0].rsplit(":", 1)
    return ip, int(port)


def fetch(port, host="127.0.0.1", path="/", tries=50):
    last = None
    for _ in range(tries):  # httpd may not listen yet right after run -d
        try:
            with urllib.request.urlopen("http://%s:%d%s" % (host, port, path), timeout=10) as r:
                return r.read()
        except (OSError, ValueError) as e:
            last = e
            time.sleep(0.1)
    raise AssertionError("nothing served on %s:%d: %s" % (host, port, last))


def listening(port, proto="tcp"):
    """Whether anything of this user's network namespace holds ``port`` (bind test)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if proto == "tcp":  # past TIME_WAIT, not a listener; for UDP it would share a port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gone(rl, cid):
    rl("rm", "-f", cid, check=False)


@pytest.mark.parametrize("mode", MODES)
def test_published_httpd_is_fetched_from_the_host(nrl, mode):
    port = free_port()
    cid = served(nrl, mode, "-p", "127.0.0.1:%d:80" % port)
    try:
        assert fetch(port) == b"hello from the container\n"
        assert host_port(nrl, cid) == ("127.0.0.1", port)
        ports = nrl.out("ps", "--filter", "id=" + cid, "--format", "{{.Ports}}").strip()
        assert ports == "127.0.0.1:%d->80/tcp" % port
        doc = json.loads(nrl.out("inspect", cid))[0]
        assert doc["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert doc["HostConfig"]["NetworkMode"] == mode
    finally:
        gone(nrl, cid)
    assert not listening(port), "port %d still held after rm -f" % port


@pytest.mark.parametrize("mode", MODES)
def test_two_containers_listen_on_port_80(nrl, mode):
    a, b = free_port(), free_port()
    one = served(nrl, mode, "-p", "%d:80" % a, page=b"one\n")
    two = served(nrl, mode, "-p", "%d:80" % b, page=b"two\n")
    try:
        assert fetch(a) == b"one\n" and fetch(b) == b"two\n"
        assert "0.0.0.0:%d->80/tcp" % a in nrl.out("ps", "--format", "{{.ID}} {{.Ports}}")
    finally:
        gone(nrl, one)
        gone(nrl, two)


@pytest.mark.parametrize("mode", MODES)
def test_publish_all_takes_free_ports_for_what_is_exposed(nrl, mode):
    cid = served(nrl, mode, "--expose", "80", "-P")
    try:
        ip, port = host_port(nrl, cid)
        assert ip == "0.0.0.0" and port > 0
        assert fetch(port) == b"hello from the container\n"
    finally:
        gone(nrl, cid)


def test_port_in_use_fails_before_the_container_starts(nrl):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        p = nrl("run", "-d", "--name", "inuse", "--network", "none", "-p", "127.0.0.1:%d:80" % port,
                "busybox", "sleep", "100", check=False)
        assert p.returncode == 125, p.stderr
        err = p.stderr.decode()
        assert len(err.strip().splitlines()) == 1 and str(port) in err and "in use" in err, err
    status = nrl.out("ps", "-a", "--filter", "name=inuse", "--format", "{{.Status}}").strip()
    assert not status.startswith("Up"), status
    nrl("rm", "-f", "inuse", check=False)


def test_privileged_host_port_names_the_sysctl(nrl):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        start = int(f.read())
    need(start > 1, "ip_unprivileged_port_start above 1 (Debian's default is 1024)")
    p = nrl("run", "--rm", "--network", "none", "-p", "%d:80" % (start - 1), "busybox", "true", check=False)
    assert p.returncode == 125 and b"net.ipv4.ip_unprivileged_port_start" in p.stderr, p.stderr


def hidden_helpers_env(tmp_path):
    """A PATH with what rootless may use but the network helpers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("newuidmap", "newgidmap", "fuse-overlayfs"):
        where = shutil.which(tool)
        if where:
            os.symlink(where, str(bin_dir / tool))
    return str(bin_dir)


class HiddenHelpers(Rootless):
    def __init__(self, root, path):
        super().__init__(root)
        self.path = path

    def env(self):
        env = super().env()
        env["PATH"] = self.path
        return env


def test_none_with_publish_works_with_the_helpers_hidden(tmp_path, test_images):
    need(os.getuid() != 0, "containers must be run as an unprivileged user")
    hrl = HiddenHelpers(str(tmp_path / "root"), hidden_helpers_env(tmp_path))
    hrl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    port = free_port()
    cid = served(hrl, "none", "-p", "127.0.0.1:%d:80" % port)
    try:
        assert fetch(port) == b"hello from the container\n"
    finally:
        gone(hrl, cid)
    hrl("system", "reset", "--force", check=False)


@pytest.mark.parametrize("mode", MODES)
def test_hostname_is_in_etc_hosts(nrl, mode):
    mode_needs(mode)
    out = nrl.out("run", "--rm", "--network", mode, "--hostname", "webby", "busybox", "sh", "-c",
                  "hostname; grep -w webby /etc/hosts")
    lines = out.split("\n")
    assert lines[0] == "webby" and "webby" in lines[1], out


def test_stop_and_kill_leave_no_listener(nrl):
    port = free_port()
    cid = served(nrl, "none", "-p", "127.0.0.1:%d:80" % port)
    fetch(port)
    nrl("stop", "-t", "1", cid)
    assert not listening(port), "listening after stop"
    assert nrl.out("ps", "-a", "--filter", "id=" + cid, "--format", "{{.Ports}}").strip() == ""
    nrl("start", cid)
    assert fetch(port) == b"hello from the container\n"
    nrl("kill", cid)
    for _ in range(100):
        if not listening(port):
            break
        time.sleep(0.05)
    assert not listening(port), "listening after kill"
    gone(nrl, cid)


def holder_of(port):
    """The pid of this user's process that holds the TCP listener on ``port`` (the port
    forwarder), found from the socket's inode in /proc/net/tcp: None when nobody does."""
    inode = None
    with open("/proc/self/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inode = fields[9]
    if inode is None:
        return None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                    return int(pid)
            except OSError:
                continue
    return None


def test_a_killed_forwarder_shows_in_ps_and_inspect_and_frees_the_port(nrl):
    port = free_port()
    cid = served(nrl, "none", "-p", "127.0.0.1:%d:80" % port)
    try:
        fetch(port)
        pid = holder_of(port)
        assert pid, "nobody holds the listener of port %d" % port
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            status = nrl.out("ps", "--filter", "id=" + cid, "--format", "{{.Status}}")
            if "forwarder" in status:
                break
            time.sleep(0.05)
        assert "forwarder" in status and "SIGKILL" in status, status
        doc = json.loads(nrl.out("inspect", cid))[0]
        assert "forwarder" in doc["State"]["Error"], doc["State"]
        assert not listening(port)
    finally:
        gone(nrl, cid)


def test_kill_9_of_the_monitor_leaves_no_listener(nrl):
    port = free_port()
    cid = served(nrl, "none", "-p", "127.0.0.1:%d:80" % port)
    fetch(port)
    record = json.loads(nrl.out("inspect", cid))[0]
    monitor = None
    with open("/proc/%d/stat" % record["State"]["Pid"]) as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])  # the container's parent
    os.kill(monitor, signal.SIGKILL)
    for _ in range(100):
        if not listening(port):
            break
        time.sleep(0.05)
    assert not listening(port) and holder_of(port) is None
    gone(nrl, cid)


def test_foreground_run_publishes_while_it_runs(nrl):
    port = free_port()
    proc = nrl.popen("run", "--rm", "--network", "none", "-p", "127.0.0.1:%d:80" % port, "busybox", "sh", "-c",
                     "mkdir /www; echo fg > /www/index.html; httpd -p 80 -h /www; sleep 3",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fetch(port) == b"fg\n"
    finally:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not listening(port)


def test_host_network_discards_published_ports_with_a_warning(nrl):
    p = nrl("run", "--rm", "--network", "host", "-p", "8080:80", "busybox", "true")
    assert re.search(rb"Published ports are discarded when using host network mode", p.stderr), p.stderr


# A UDP echo server for the Debian image: one process per port given (forked), each
# answering a datagram with itself + " from SOURCE_PORT on PORT", so a test sees which
# container port it reached and which client address the server saw.
UDP_ECHO = r"""
use IO::Socket::INET;
use Socket qw(unpack_sockaddr_in);
my $port = $ARGV[0];
for my $other (@ARGV[1 .. $#ARGV]) {
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if (!$pid) { $port = $other; last }
}
my $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $port, Proto => "udp")
    or die "udp port $port: $@\n";
while (1) {
    my $peer = $s->recv(my $data, 65536);
    next unless defined $peer;
    my ($from) = unpack_sockaddr_in($peer);
    $s->send("$data from $from on $port", 0, $peer);
}
"""


def udp_echoed(rl, publish, *container_ports):
    """A detached perl UDP echo server on ``container_ports``, published with ``-p
    publish``; its id."""
    return rl.out("run", "-d", "--network", "none", "-p", publish, "debian",
                  "perl", "-e", UDP_ECHO, *map(str, container_ports)).strip()


def free_udp_ports(count):
    """``count`` consecutive UDP ports free on 127.0.0.1 (a range to publish)."""
    for _ in range(100):
        first = free_port()
        socks = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no %d consecutive free UDP ports" % count)


def udp_client(timeout=10.0):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", 0))
    c.settimeout(timeout)
    return c


def udp_ready(port, timeout=30.0):
    """Wait until a datagram to ``port`` is echoed, resending every 0.1 s (the server may
    not have bound yet after run -d: the forwarder's datagrams are refused until then).
    The probing socket is closed, so its late echoes reach no test's client."""
    deadline = time.monotonic() + timeout
    with udp_client(0.1) as c:
        while time.monotonic() < deadline:
            c.sendto(b"ready?", ("127.0.0.1", port))
            try:
                data, _ = c.recvfrom(65536)
            except socket.timeout:
                continue
            if data.startswith(b"ready? from "):
                return
    raise AssertionError("no UDP echo from 127.0.0.1:%d within %.0f s" % (port, timeout))


def echoes(client, count):
    """``count`` echoes read by ``client``: [(payload, the client port the server saw,
    the container port)], each checked to come from the published port."""
    got = []
    for _ in range(count):
        data, source = client.recvfrom(65536)
        got.append((data, source))
    result = []
    for data, source in got:
        payload, _, tail = data.rpartition(b" from ")
        seen, _, cport = tail.partition(b" on ")
        result.append((payload, int(seen), int(cport), source))
    return result


def test_udp_echo_through_a_published_port_two_clients_kept_apart(drl):
    port = free_udp_ports(1)
    cid = udp_echoed(drl, "127.0.0.1:%d:7/udp" % port, 7)
    try:
        udp_ready(port)
        assert drl.out("port", cid).strip() == "7/udp -> 127.0.0.1:%d" % port
        assert drl.out("port", cid, "7/udp").strip() == "127.0.0.1:%d" % port
        assert drl("port", cid, "7", check=False).returncode == 1  # 7/tcp is not published
        assert drl.out("ps", "--filter", "id=" + cid, "--format", "{{.Ports}}").strip() == \
            "127.0.0.1:%d->7/udp" % port
        doc = json.loads(drl.out("inspect", cid))[0]
        assert doc["NetworkSettings"]["Ports"] == {"7/udp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}

        a, b = udp_client(), udp_client()
        with a, b:
            sent = {a: [], b: []}
            for i in range(10):  # interleaved: both flows are open at once
                for name, c in ((b"a", a), (b"b", b)):
                    payload = b"%s %d" % (name, i)
                    c.sendto(payload, ("127.0.0.1", port))
                    sent[c].append(payload)
            big = os.urandom(8192)
            a.sendto(big, ("127.0.0.1", port))
            sent[a].append(big)
            inside = {}
            for c in (a, b):
                got = echoes(c, len(sent[c]))
                assert sorted(p for p, _, _, _ in got) == sorted(sent[c])  # its own, all of them
                assert {(cport, source) for _, _, cport, source in got} == {(7, ("127.0.0.1", port))}
                seen = {s for _, s, _, _ in got}
                assert len(seen) == 1, "one client, one flow: %s" % seen
                inside[c] = seen.pop()
            assert inside[a] != inside[b], "two clients, two flows"
            a.sendto(b"again", ("127.0.0.1", port))  # the same client keeps its flow
            assert echoes(a, 1)[0][:2] == (b"again", inside[a])
    finally:
        gone(drl, cid)
    assert not listening(port, "udp"), "UDP port %d still bound after rm -f" % port


def test_udp_port_range_reaches_each_container_port(drl):
    first = free_udp_ports(2)
    cid = udp_echoed(drl, "127.0.0.1:%d-%d:7-8/udp" % (first, first + 1), 7, 8)
    try:
        udp_ready(first)
        udp_ready(first + 1)
        assert drl.out("port", cid).splitlines() == [
            "7/udp -> 127.0.0.1:%d" % first, "8/udp -> 127.0.0.1:%d" % (first + 1)]
        with udp_client() as c:
            for host_port, container_port in ((first, 7), (first + 1, 8)):
                c.sendto(b"which", ("127.0.0.1", host_port))
                payload, _, cport, source = echoes(c, 1)[0]
                assert (payload, cport, source) == (b"which", container_port, ("127.0.0.1", host_port))
    finally:
        gone(drl, cid)
    assert not listening(first, "udp") and not listening(first + 1, "udp")


def test_udp_stop_unbinds_and_start_binds_again(drl):
    port = free_udp_ports(1)
    cid = udp_echoed(drl, "127.0.0.1:%d:7/udp" % port, 7)
    try:
        udp_ready(port)
        drl("stop", "-t", "1", cid)
        assert not listening(port, "udp"), "UDP port %d still bound after stop" % port
        assert drl.out("port", cid) == ""
        drl("start", cid)
        udp_ready(port)
        with udp_client() as c:
            c.sendto(b"back", ("127.0.0.1", port))
            assert echoes(c, 1)[0][0] == b"back"
        drl("stop", "-t", "1", cid)
        drl("rm", cid)
        assert not listening(port, "udp"), "UDP port %d still bound after stop and rm" % port
    finally:
        gone(drl, cid)
