"""Published TCP ports without a relay (``rootless.network.bypass``), as an unprivileged
user, traffic on loopback only: the container's server holds the host's listener itself;
clients inside the container still reach it on localhost (exec, a container sharing the
network); a server that starts again gets the port again; the relay comes back with
ROOTLESS_PORT_BYPASS=0 and stays for --network none; and the rule that makes it safe: a
host socket in the container's hands (the listener, an accepted connection, one taken
with pidfd_getfd by an exec'd process) can never be disconnected or connected anywhere,
so the host's loopback stays out of reach. The container's own connects (blocking, and
non-blocking with a timeout) still work under the filter.
"""

import os
import socket
import time

import pytest

from conftest import Rootless, loaded_root
from test_network import fetch, free_port, gone, listening, mode_needs, served

MODES = ["slirp4netns", "pasta"]

EPERM = 1

# The container's server: a TCP listener on port 80 (handed the host's), a listener of
# the container's own on 127.0.0.1:81 reached by a blocking and a non-blocking connect,
# then for each client the three ways a host socket could become a client of the host.
SERVER = r"""
use strict; use Socket; use IO::Socket::INET;
$| = 1;
my $probe = $ARGV[0];
my $l = IO::Socket::INET->new(LocalPort => 80, Listen => 5, ReuseAddr => 1, Proto => "tcp") or die "listen: $!";
my $own = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 81, Listen => 5, ReuseAddr => 1) or die "own: $!";
my $b = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => 81) ? "ok" : "fail:$!";
my $n = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => 81, Timeout => 5) ? "ok" : "fail:$!";
open(my $f, ">", "/tmp/fd") or die; print $f fileno($l); close $f;
while (my $c = $l->accept) {
  my $unspec = connect($c, pack("S x14", AF_UNSPEC)) ? "ok" : $!+0;
  my $shut = shutdown($l, 0) ? "ok" : $!+0;
  my $conn = connect($l, sockaddr_in($probe, inet_aton("127.0.0.1"))) ? "ok" : $!+0;
  print $c "blocking=$b nonblocking=$n unspec=$unspec shutdown=$shut connect=$conn\n";
  close $c;
}
"""

# An exec'd process: the server's listener through pidfd_getfd, then the same attempts.
THIEF = r"""
use strict; use Socket;
my ($fd, $probe) = @ARGV;
my $pidfd = syscall(434, 1, 0); die "pidfd_open: $!" if $pidfd < 0;
my $got = syscall(438, $pidfd, $fd + 0, 0); die "pidfd_getfd: $!" if $got < 0;
open(my $s, "+<&=", $got) or die "fdopen: $!";
my $shut = shutdown($s, 0) ? "ok" : $!+0;
my $unspec = connect($s, pack("S x14", AF_UNSPEC)) ? "ok" : $!+0;
my $conn = connect($s, sockaddr_in($probe, inet_aton("127.0.0.1"))) ? "ok" : $!+0;
print "shutdown=$shut unspec=$unspec connect=$conn\n";
"""


@pytest.fixture(scope="module")
def brl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "bypass", ("busybox-docker.tar", "debian-docker.tar"))


class Relayed(Rootless):
    """The same root with the bypass turned off."""

    def env(self):
        env = super().env()
        env["ROOTLESS_PORT_BYPASS"] = "0"
        return env


def holders(port):
    """The comm of every process of ours holding the TCP listener on 127.0.0.1/0.0.0.0 ``port``."""
    inodes = set()
    with open("/proc/self/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add("socket:[%s]" % fields[9])
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink("/proc/%s/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%s/fd" % pid)]
            if inodes & set(links):
                with open("/proc/%s/comm" % pid) as f:
                    found.add(f.read().strip())
        except OSError:
            continue
    return found


def probe_listener():
    """A host loopback listener the container must never reach."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    probe.listen(5)
    probe.setblocking(False)
    return probe


def never_reached(probe):
    try:
        probe.accept()
    except BlockingIOError:
        return True
    return False


def read_line(port, tries=100):
    last = None
    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                data = c.makefile("rb").readline()
                if data:
                    return data.decode().strip()
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("no answer on port %d: %s" % (port, last))


@pytest.mark.parametrize("mode", MODES)
def test_the_server_holds_the_host_listener(brl, mode):
    port = free_port()
    cid = served(brl, mode, "-p", "127.0.0.1:%d:80" % port)
    try:
        assert fetch(port) == b"hello from the container\n"
        assert "httpd" in holders(port), holders(port)
        for url in ("http://localhost/", "http://127.0.0.1:80/"):  # inside: nothing listens on 80 any more
            assert brl.out("exec", cid, "wget", "-q", "-O", "-", url) == "hello from the container\n"
        joined = brl.out("run", "--rm", "--network", "container:" + cid, "busybox",
                         "wget", "-q", "-O", "-", "http://127.0.0.1/")
        assert joined == "hello from the container\n"
    finally:
        gone(brl, cid)
    assert not listening(port)


def test_a_restarted_server_gets_the_port_again(brl):
    port = free_port()
    script = ("mkdir -p /www && echo again > /www/index.html && "
              "while true; do httpd -f -p 80 -h /www; done")
    mode_needs("slirp4netns")
    cid = brl.out("run", "-d", "--network", "slirp4netns", "-p", "127.0.0.1:%d:80" % port,
                  "busybox", "sh", "-c", script).strip()
    try:
        assert fetch(port) == b"again\n"
        brl("exec", cid, "killall", "httpd")
        time.sleep(0.3)
        assert fetch(port) == b"again\n"
        assert "httpd" in holders(port)
    finally:
        gone(brl, cid)


def test_turned_off_and_with_network_none_the_port_is_relayed(brl):
    relayed = Relayed(brl.root)
    for rl, mode in ((relayed, "slirp4netns"), (brl, "none")):
        port = free_port()
        cid = served(rl, mode, "-p", "127.0.0.1:%d:80" % port)
        try:
            assert fetch(port) == b"hello from the container\n"
            assert holders(port) == {"rootless-fwd"}, (mode, holders(port))
            assert not os.path.exists(os.path.join(brl.root, "containers", cid, "ports.sock"))
        finally:
            gone(rl, cid)


@pytest.mark.parametrize("mode", MODES)
def test_host_sockets_in_the_container_never_become_clients(brl, mode):
    mode_needs(mode)
    port, probe = free_port(), probe_listener()
    try:
        cid = brl.out("run", "-d", "--network", mode, "-p", "127.0.0.1:%d:80" % port, "debian",
                      "perl", "-e", SERVER, str(probe.getsockname()[1])).strip()
        try:
            line = read_line(port)
            assert line == "blocking=ok nonblocking=ok unspec=%d shutdown=%d connect=%d" % (EPERM, EPERM, EPERM), \
                line + "\n" + brl.out("logs", cid)
            assert "perl" in holders(port)
            fd = brl.out("exec", cid, "cat", "/tmp/fd").strip()
            stolen = brl.out("exec", cid, "perl", "-e", THIEF, fd, str(probe.getsockname()[1])).strip()
            assert stolen == "shutdown=%d unspec=%d connect=%d" % (EPERM, EPERM, EPERM), stolen
            assert read_line(port).endswith("connect=%d" % EPERM)  # the listener still serves
        finally:
            gone(brl, cid)
        assert never_reached(probe)
    finally:
        probe.close()
