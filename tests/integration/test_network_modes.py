"""The network modes end to end, as an unprivileged user, traffic on loopback only: what
the namespace of each private mode has (interface, address, MTU, route, resolver), host
loopback reachable only when asked for, ``container:NAME``, ``--sysctl`` and the ping
default, the default network with and without helpers, and the helpers' cleanup.

The published-port tests of every mode are in test_network.py.
"""

import json
import os
import signal
import socket
import threading

import pytest

from conftest import have, need, until
from test_network import (HiddenHelpers, fetch, free_port, gone, hidden_helpers_env, mode_needs,  # noqa: F401 (nrl)
                          nrl, served)

HELPERS = ["slirp4netns", "pasta"]


def our_helpers():
    """pids of this user's slirp4netns and pasta processes."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as f:
                comm = f.read().strip()
            if comm.split(".")[0] in ("slirp4netns", "pasta", "passt") and os.stat("/proc/" + entry).st_uid == os.getuid():
                found.append(int(entry))
        except OSError:
            continue
    return found


class HostListener:
    """A TCP listener on the host's 127.0.0.1 that answers every connection with a word."""

    def __init__(self, word=b"from the host\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.word = word
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.word)

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("mode", HELPERS)
def test_private_mode_has_an_interface_a_route_and_mtu_65520(nrl, mode):
    mode_needs(mode)
    out = nrl.out("run", "--rm", "--network", mode, "busybox", "sh", "-c",
                  "ip -o -4 addr show; echo ---; ip route; echo ---; "
                  "for d in /sys/class/net/*; do echo ${d##*/} $(cat $d/mtu); done; echo ---; cat /etc/resolv.conf")
    addrs, routes, mtus, resolv = out.split("---\n")
    ifaces = dict(line.split() for line in mtus.strip().splitlines())
    outside = [i for i in ifaces if i != "lo"]
    assert len(outside) == 1, mtus
    if mode == "slirp4netns":
        assert outside == ["tap0"] and "10.0.2.100/24" in addrs, addrs
        assert "default via 10.0.2.2 dev tap0" in routes, routes
        assert ifaces["tap0"] == "65520"
        assert "nameserver 10.0.2.3" in resolv, resolv
    else:
        assert "default via" in routes, routes
        assert "nameserver 169.254.1.1" in resolv, resolv
    assert "127.0.0.1/8" in addrs


def test_dns_option_replaces_the_helpers_resolver(nrl):
    mode_needs("slirp4netns")
    out = nrl.out("run", "--rm", "--network", "slirp4netns", "--dns", "192.0.2.53", "busybox", "cat", "/etc/resolv.conf")
    assert "nameserver 192.0.2.53" in out and "10.0.2.3" not in out, out


def _reach(rl, mode, address, port):
    p = rl("run", "--rm", "--network", mode, "busybox", "sh", "-c",
           # timeout: busybox nc waits for the far end's close, which pasta does not always
           # pass on; "; true" keeps sh as pid 1, as timeout's TERM cannot end a pid 1
           "timeout 5 nc -w 3 %s %d </dev/null; true" % (address, port), check=False, timeout=60)
    return p.stdout


def test_slirp4netns_reaches_host_loopback_only_when_allowed(nrl):
    mode_needs("slirp4netns")
    host = HostListener()
    try:
        assert _reach(nrl, "slirp4netns", "10.0.2.2", host.port) == b""
        assert _reach(nrl, "slirp4netns:allow_host_loopback=true", "10.0.2.2", host.port) == b"from the host\n"
    finally:
        host.close()


def test_pasta_reaches_host_loopback_only_when_allowed(nrl):
    mode_needs("pasta")
    route = nrl.out("run", "--rm", "--network", "pasta", "busybox", "ip", "route")
    gateway = route.split("default via ")[1].split()[0]
    host = HostListener()
    try:
        assert _reach(nrl, "pasta", gateway, host.port) == b""
        assert _reach(nrl, "pasta:--map-gw", gateway, host.port) == b"from the host\n"
    finally:
        host.close()


@pytest.mark.parametrize("mode", ["none"] + HELPERS)
def test_container_network_is_shared(nrl, mode):
    mode_needs(mode)
    web = served(nrl, mode, name="shared-web-" + mode)
    try:
        page = nrl.out("run", "--rm", "--network", "container:shared-web-" + mode, "busybox", "sh", "-c",
                       "for i in $(seq 50); do wget -q -O- http://127.0.0.1:80/ && break; sleep 0.1; done")
        assert page == "hello from the container\n"
        joined = nrl.out("create", "--network", "container:shared-web-" + mode, "busybox", "true").strip()
        doc = json.loads(nrl.out("inspect", joined))[0]
        assert doc["HostConfig"]["NetworkMode"] == "container:" + web
        gone(nrl, joined)
    finally:
        gone(nrl, web)


def test_container_network_of_a_stopped_container_fails(nrl):
    stopped = nrl.out("create", "--network", "none", "busybox", "true").strip()
    try:
        p = nrl("run", "--rm", "--network", "container:" + stopped, "busybox", "true", check=False)
        assert p.returncode == 125 and b"non running container" in p.stderr, p.stderr
        p = nrl("run", "--rm", "--network", "container:" + stopped, "-p", "80", "busybox", "true", check=False)
        assert p.returncode == 125 and b"conflicting options: port publishing" in p.stderr, p.stderr
    finally:
        gone(nrl, stopped)


def test_ping_works_in_a_private_network(nrl):
    out = nrl.out("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                  "cat /proc/sys/net/ipv4/ping_group_range; ping -c 1 -W 2 127.0.0.1")
    low, high = out.split("\n")[0].split()
    assert low == "0" and int(high) >= 0
    assert "1 packets received" in out, out


@pytest.mark.needs_subuid
def test_ping_group_range_lets_any_user_open_an_icmp_socket(nrl, test_images):
    nrl("load", "-i", os.path.join(test_images, "debian-docker.tar"))
    script = 'use Socket; socket(S, PF_INET, SOCK_DGRAM, 1) or die "no icmp socket: $!\\n"; print "ok\\n"'
    doc = nrl.out("run", "--rm", "--network", "none", "-u", "1000:1000", "debian", "perl", "-e", script)
    assert doc == "ok\n"
    p = nrl("run", "--rm", "--network", "none", "--sysctl", "net.ipv4.ping_group_range=1 0", "-u", "1000:1000",
            "debian", "perl", "-e", script, check=False)
    assert p.returncode != 0 and b"no icmp socket" in p.stderr, p.stderr


def test_sysctl_sets_the_containers_own_keys_and_refuses_the_hosts(nrl):
    out = nrl.out("run", "--rm", "--network", "none", "--sysctl", "net.ipv4.ip_forward=1",
                  "--sysctl", "kernel.shmmni=1000", "busybox", "sh", "-c",
                  "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    assert out.split() == ["1", "1000"]
    for bad, says in ((["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], b"host network namespace"),
                      (["--sysctl", "kernel.hostname=x"], b"is not allowed"),
                      (["--sysctl", "net/../../x=1"], b"invalid --sysctl")):
        p = nrl("run", "--rm", *bad, "busybox", "true", check=False)
        assert p.returncode == 125 and says in p.stderr, (bad, p.stderr)


def test_default_network_is_the_first_helper(nrl):
    need(have("slirp4netns") or have("pasta"), "slirp4netns or pasta on PATH")
    expected = "slirp4netns" if have("slirp4netns") else "pasta"
    p = nrl("run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net")
    assert p.stderr == b"", p.stderr
    assert sorted(p.stdout.decode().split()) != ["lo"] and "eth0p" not in p.stdout.decode()
    cid = nrl.out("create", "busybox", "true").strip()
    assert json.loads(nrl.out("inspect", cid))[0]["HostConfig"]["NetworkMode"] == expected
    gone(nrl, cid)
    assert nrl.out("info", "--format", "{{.Network.Default}}").strip() == expected


def test_default_network_without_helpers_is_the_hosts_with_a_notice(tmp_path, test_images):
    need(os.getuid() != 0, "containers must be run as an unprivileged user")
    hrl = HiddenHelpers(str(tmp_path / "root"), hidden_helpers_env(tmp_path))
    hrl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    p = hrl("create", "busybox", "true")
    assert p.stderr.count(b"\n") == 1 and b"neither slirp4netns nor pasta" in p.stderr, p.stderr
    doc = json.loads(hrl.out("inspect", p.stdout.decode().strip()))[0]
    assert doc["HostConfig"]["NetworkMode"] == "host"
    info = hrl.out("info")
    assert "Default network: host" in info and "install slirp4netns or passt" in info, info
    p = hrl("run", "--rm", "--network", "slirp4netns", "busybox", "true", check=False)
    assert p.returncode == 125 and b"slirp4netns is not installed" in p.stderr, p.stderr
    hrl("system", "reset", "--force", check=False)


@pytest.mark.parametrize("mode", HELPERS)
def test_helper_ends_with_the_container(nrl, mode):
    mode_needs(mode)
    before = set(our_helpers())
    port = free_port()
    cid = served(nrl, mode, "-p", "127.0.0.1:%d:80" % port)
    try:
        fetch(port)
        mine = set(our_helpers()) - before
        assert len(mine) == 1, mine
        nrl("stop", "-t", "1", cid)
        until(lambda: not (set(our_helpers()) & mine), what="the helper to end after stop")
        nrl("start", cid)
        fetch(port)
        again = set(our_helpers()) - before
        assert len(again) == 1, again
        monitor = _parent(json.loads(nrl.out("inspect", cid))[0]["State"]["Pid"])
        os.kill(monitor, signal.SIGKILL)
        until(lambda: not (set(our_helpers()) & again), what="the helper to end with its monitor")
    finally:
        gone(nrl, cid)


@pytest.mark.parametrize("mode", HELPERS)
def test_a_killed_helper_shows_in_ps_and_inspect(nrl, mode):
    mode_needs(mode)
    before = set(our_helpers())
    cid = served(nrl, mode)
    try:
        mine = set(our_helpers()) - before
        assert len(mine) == 1, mine
        os.kill(mine.pop(), signal.SIGKILL)
        note = "%s ended (killed by SIGKILL)" % mode

        def noted():
            return note in nrl.out("ps", "--filter", "id=" + cid, "--format", "{{.Status}}")
        until(noted, what="ps to show the killed helper")
        assert json.loads(nrl.out("inspect", cid))[0]["State"]["Error"] == note
    finally:
        gone(nrl, cid)


def _parent(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])
