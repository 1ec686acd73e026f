"""The network helpers (rootless.network.helper) against real targets: processes in user
and network namespaces of their own, made by the unprivileged test user as a container's
first process is, with slirp4netns or pasta started for them by this process or by an
owner process (helper_owner.py).

What is asserted is seen from inside the target (``nsenter -U -n``): the interface, its
address and MTU, the default route, what answers at the helper's gateway and resolver.
pasta needs a host interface with a default route: .ci/run's namespace has one (a veth
pair closed on itself); the tests that need a resolver, or a host without a route, make
that host themselves (fake_host.py, in namespaces of their own). Waits are deadlines
around a probe, never a fixed sleep.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import have, need, until
from rootless.errors import RootlessError, UsageError
from rootless.network import helper

HERE = os.path.dirname(os.path.abspath(__file__))
OWNER = os.path.join(HERE, "helper_owner.py")
FAKE_HOST = os.path.join(HERE, "fake_host.py")
MODES = ["slirp4netns", "pasta"]


def default_route():
    out = subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True).stdout
    return (json.loads(out or b"[]") or [None])[0]


def needs(mode):
    need(os.getuid() != 0, "the helpers must be tested as an unprivileged user (bash .ci/run does)")
    need(have("ip") and have("nsenter") and have("unshare"), "iproute2 and util-linux are not installed")
    need(have(mode), "%s is not installed" % mode)
    if mode == "pasta":
        need(default_route() is not None, "pasta needs an interface with a default route (bash .ci/run makes one)")


class Target:
    """A stand-in for a container's first process: ``sh -c SETUP; exec sleep`` as root of
    new user and network namespaces."""

    def __init__(self, setup=""):
        self.proc = subprocess.Popen(["unshare", "--user", "--map-root-user", "--net", "sh", "-c",
                                      (setup + " && " if setup else "") + "exec sleep 600"])
        self.pid = self.proc.pid
        until(lambda: self.comm() == "sleep" or self.proc.poll() is not None, what="the target's namespaces")
        assert self.proc.poll() is None, "the target ended: exit %s" % self.proc.returncode

    def comm(self):
        try:
            with open("/proc/%d/comm" % self.pid) as f:
                return f.read().strip()
        except OSError:
            return ""

    def inside(self, *cmd, check=True):
        proc = subprocess.run(["nsenter", "--preserve-credentials", "-U", "-n", "-t", str(self.pid)] + list(cmd),
                              capture_output=True, timeout=60)
        if check and proc.returncode:
            raise AssertionError("%s in the target: %s" % (cmd, proc.stderr.decode()))
        return proc.stdout.decode()

    def ip(self, *args):
        return json.loads(self.inside("ip", "-j", *args) or "[]")

    def end(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def target():
    made = []

    def make(setup=""):
        made.append(Target(setup))
        return made[-1]
    yield make
    for t in made:
        t.end()


@pytest.fixture
def started():
    helpers = []

    def start(mode, options, pid, **kw):
        helpers.append(helper.start(mode, options, pid, **kw))
        return helpers[-1]
    yield start
    for h in helpers:
        h.stop()


def gone(pid):
    """No such process (or only its zombie, which holds nothing)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def children():
    """This process's children, from /proc (the helpers are ours until reaped)."""
    found = set()
    for task in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/children" % task) as f:
            found.update(int(p) for p in f.read().split())
    return found


def interface(t, name):
    links = {link["ifname"]: link for link in t.ip("addr")}
    assert name in links, "no %s in the target: %s" % (name, sorted(links))
    link = links[name]
    inet = [(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"]
    return link, inet


def default_via(t):
    routes = t.ip("route", "show", "default")
    assert len(routes) == 1, routes
    return routes[0]["gateway"], routes[0]["dev"]


CONNECT = r"""
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, "timeout" if isinstance(e, socket.timeout) else str(e)))
"""


def connect_from(t, address, port, timeout):
    return t.inside(sys.executable, "-c", CONNECT, address, str(port), str(timeout)).strip()


def accepted(server, timeout):
    server.settimeout(timeout)
    try:
        conn, _ = server.accept()
    except socket.timeout:
        return False
    conn.close()
    return True


# -- the network it makes -------------------------------------------------------------------

def test_slirp4netns_configures_tap0(target, started):
    needs("slirp4netns")
    t = target()
    h = started("slirp4netns", {}, t.pid)
    assert h.name == "slirp4netns" and h.pid in children()
    link, inet = interface(t, "tap0")  # configured when start returns: no wait
    assert "UP" in link["flags"] and link["mtu"] == 65520 and inet == [("10.0.2.100", 24)]
    assert default_via(t) == ("10.0.2.2", "tap0")
    assert helper.nameserver("slirp4netns", {}) == "10.0.2.3"


def test_slirp4netns_cidr_and_mtu(target, started):
    needs("slirp4netns")
    t = target()
    options = {"cidr": "10.9.8.0/24", "mtu": "1500"}
    started("slirp4netns", options, t.pid)
    link, inet = interface(t, "tap0")
    assert link["mtu"] == 1500 and inet == [("10.9.8.100", 24)]
    assert default_via(t) == ("10.9.8.2", "tap0")
    assert helper.nameserver("slirp4netns", options) == "10.9.8.3"


def test_pasta_copies_the_hosts_interface(target, started):
    needs("pasta")
    host = default_route()
    host_link = json.loads(subprocess.run(["ip", "-j", "addr", "show", "dev", host["dev"]],
                                          capture_output=True, check=True).stdout)[0]
    host_inet = [(a["local"], a["prefixlen"]) for a in host_link["addr_info"] if a["family"] == "inet"]
    t = target()
    h = started("pasta", {}, t.pid)
    assert h.name == "pasta" and h.pid in children()
    link, inet = interface(t, host["dev"])
    assert "UP" in link["flags"] and link["mtu"] == 65520 and inet == host_inet
    assert default_via(t) == (host["gateway"], host["dev"])
    assert helper.nameserver("pasta", {}) == "169.254.1.1"


# -- how they end ---------------------------------------------------------------------------

def test_slirp4netns_exits_0_by_itself_once_the_target_is_reaped(target, started):
    needs("slirp4netns")
    t = target()
    h = started("slirp4netns", {}, t.pid)
    t.end()  # killed and reaped, as the owner reaps a container's first process
    pid, status = until(lambda: (lambda r: r if r[0] else None)(os.waitpid(h.pid, os.WNOHANG)),
                        what="slirp4netns's own exit")
    h.pid = 0
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_pasta_stays_until_stopped(target, started):
    needs("pasta")
    t = target()
    h = started("pasta", {}, t.pid)
    pid = h.pid
    t.end()
    time.sleep(0.5)  # pasta does not watch the target: it must still be there to be stopped
    assert os.waitpid(pid, os.WNOHANG) == (0, 0)
    h.stop()
    assert h.pid == 0 and gone(pid) and pid not in children()


@pytest.mark.parametrize("mode", MODES)
def test_killing_the_owner_leaves_no_helper(mode):
    needs(mode)
    owner = subprocess.Popen([sys.executable, OWNER, mode, "{}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        said = json.loads(owner.stdout.readline())
        assert "error" not in said, said
        assert not gone(said["helper"])
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        until(lambda: gone(said["helper"]), what="the helper's death with its owner")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if "said" in locals():
            os.kill(said["target"], signal.SIGKILL)


@pytest.mark.parametrize("mode", MODES)
def test_the_helper_holds_none_of_the_owners_fds(target, started, mode):
    """A pipe's reader sees end of file once every copy of its write end is closed: here
    the one copy the caller holds (inheritable, as a careless caller's fd may be) when it
    starts the helper, and then the owner's stdout and stdin (the helper's are /dev/null)."""
    needs(mode)
    t = target()
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        h = started(mode, {}, t.pid)
        os.close(w)
        w = -1
        os.set_blocking(r, False)
        assert os.read(r, 1) == b""  # not BlockingIOError: no writer is left, the helper has none
        assert not gone(h.pid)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    owner = subprocess.Popen([sys.executable, OWNER, mode, "{}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        said = json.loads(owner.stdout.readline())
        assert "error" not in said, said
        assert owner.stdout.read() == b""  # the owner closed its copy after its report: no one else holds one
        assert not gone(said["helper"])
        owner.stdin.close()  # if the helper held the owner's stdin, the owner would never see its end
        assert owner.wait(timeout=20) == 0
        assert gone(said["helper"])
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


# -- failures -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, options, message", [
    ("slirp4netns", {"port_handler": "rootlesskit"}, "unknown slirp4netns option 'port_handler' (valid: "),
    ("slirp4netns", {"cidr": "10.0.2.0/30"}, "slirp4netns option cidr=10.0.2.0/30: give an IPv4 network"),
    ("pasta", {"ports": "80"}, "unknown pasta option 'ports' (valid: args"),
])
def test_a_bad_option_is_refused_before_anything_starts(target, mode, options, message):
    needs(mode)
    t = target()
    with pytest.raises(UsageError) as caught:
        helper.start(mode, options, t.pid)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert children() == {t.pid}


@pytest.mark.parametrize("mode, options, message", [
    ("slirp4netns", {"outbound_addr": "nosuchif0"}, "slirp4netns could not set up the container's network: "
                                                    "outbound-addr has to be valid ipv4 address or interface name"),
    ("pasta", {"args": ["--no-such-option"]}, "pasta could not set up the container's network: "),
])
def test_a_failing_helper_says_why_in_one_line_and_leaves_nothing(target, mode, options, message):
    needs(mode)
    t = target()
    before = set(os.listdir("/tmp"))
    with pytest.raises(RootlessError) as caught:
        helper.start(mode, options, t.pid)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value), str(caught.value)
    if mode == "pasta":
        assert "unrecognized option '--no-such-option'" in str(caught.value)
    assert children() == {t.pid}
    assert not [d for d in set(os.listdir("/tmp")) - before if d.startswith("rootless-pasta-")]  # its FIFO's


def test_a_target_that_has_gone(target):
    needs("slirp4netns")
    t = target()
    pid = t.pid
    t.end()
    with pytest.raises(RootlessError, match="cannot start slirp4netns for process %d: No such process" % pid):
        helper.start("slirp4netns", {}, pid)
    assert children() == set()


def test_pasta_without_a_default_route_says_so_in_one_line():
    needs("pasta")
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", sys.executable, FAKE_HOST,
                           "--no-route", "pasta", "{}"], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    said = json.loads(proc.stdout.decode().splitlines()[0])
    assert said["type"] == "RootlessError", said
    assert said["error"].startswith("pasta cannot set up the container's network: no interface of this host has a "
                                    "default route, and pasta copies its address and route from one (pasta: External "
                                    "interface not usable, exit 1); use --network slirp4netns"), said
    assert "\n" not in said["error"]


def test_slirp4netns_without_its_sandbox_falls_back_and_says_so(target, started):
    """A target whose user namespace allows no new mount namespace: slirp4netns's sandbox
    (made there) fails; it runs again without one, and ``debug`` is told why."""
    needs("slirp4netns")
    t = target("echo 0 > /proc/sys/user/max_mnt_namespaces")
    said = []
    h = started("slirp4netns", {}, t.pid, debug=said.append)
    assert said == ["slirp4netns: no sandbox here (cannot unshare new mount namespace): running without it"]
    with open("/proc/%d/cmdline" % h.pid) as f:
        argv = f.read().split("\0")
    assert "--enable-sandbox" not in argv and "--ready-fd=" not in argv
    link, inet = interface(t, "tap0")
    assert inet == [("10.0.2.100", 24)]


def test_slirp4netns_uses_its_sandbox_and_seccomp_where_it_can(target, started):
    needs("slirp4netns")
    version = subprocess.run(["slirp4netns", "--version"], capture_output=True, check=True).stdout.decode()
    t = target()
    said = []
    h = started("slirp4netns", {}, t.pid, debug=said.append)
    with open("/proc/%d/cmdline" % h.pid) as f:
        argv = f.read().split("\0")
    assert said == [] and "--enable-sandbox" in argv
    assert ("--enable-seccomp" in argv) == ("\nlibseccomp:" in "\n" + version)


# -- what is reachable from inside ----------------------------------------------------------

@pytest.mark.parametrize("mode, options, reachable", [
    ("slirp4netns", {}, False),
    ("slirp4netns", {"allow_host_loopback": "true"}, True),
    ("pasta", {}, False),
    ("pasta", {"args": ["--map-gw"]}, True),
])
def test_the_hosts_loopback_through_the_gateway(target, started, mode, options, reachable):
    """A listener on the host's 127.0.0.1, and a connection from inside to the gateway at
    its port (slirp4netns: 10.0.2.2; pasta: the host's gateway): refused by default,
    accepted when asked for."""
    needs(mode)
    t = target()
    started(mode, options, t.pid)
    gateway, _ = default_via(t)
    with socket.create_server(("127.0.0.1", 0)) as server:
        # Refused, or never answered (pasta leaves the SYN unanswered): 2 s is ample for a
        # connection through a helper on this machine, which takes milliseconds.
        result = connect_from(t, gateway, server.getsockname()[1], 8 if reachable else 2)
        if reachable:
            assert result == "connected" and accepted(server, 5)
        else:
            assert result != "connected" and not accepted(server, 0.5), result


@pytest.mark.parametrize("mode", MODES)
def test_dns_at_the_nameserver_reaches_the_hosts_resolver(mode):
    """fake_host.py's host has its own resolver (its /etc/resolv.conf names a small DNS
    server, which answers 203.0.113.7 to everything): a query from inside the target to
    ``nameserver(mode)`` is forwarded there by the helper."""
    needs(mode)
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", sys.executable, FAKE_HOST,
                           mode, "{}", "--query", "probe.test"], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=120)
    assert proc.stdout, proc.stderr.decode()
    said = json.loads(proc.stdout.decode().splitlines()[0])
    assert "error" not in said, said
    assert said["nameserver"] == helper.nameserver(mode, {})
    assert said["answer"] == "203.0.113.7", said
    assert proc.returncode == 0
