"""The test run itself: no test can reach anything off the machine.

``.ci/run`` starts the suite in a network namespace of its own with ``lo`` and one veth
pair whose both ends stay in it: ``eth0`` (192.0.2.10/24, a default route via
192.0.2.1) exists so that pasta finds a host interface with a default route to copy, and
whatever is sent through it arrives at ``eth0p``, which has no address and forwards
nothing. This module proves the fence is exactly that (elsewhere it skips: a developer's
machine may have a network, and then conftest's audit hook still stops the test process
itself from connecting anywhere but loopback)."""

import json
import socket
import subprocess
import sys

import pytest

from conftest import have, need

PROBE = r"""
import errno, socket
# The pair's gateway (TEST-NET-1) and a public resolver: nothing answers ARP for the
# gateway (.ci/run gives up on it after 20 ms), so both fail at once.
for address in (("192.0.2.1", 443), ("8.8.8.8", 53)):
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as e:
        print(address[0], errno.errorcode.get(e.errno, e.errno))
    else:
        print(address[0], "connected")
"""


def interfaces():
    return sorted(name for _, name in socket.if_nameindex())


def ip_json(*args):
    return json.loads(subprocess.run(["ip", "-j"] + list(args), capture_output=True, check=True).stdout or b"[]")


def test_nothing_off_the_machine_is_reachable(rl):
    need(interfaces() == ["eth0", "eth0p", "lo"], "a network namespace with loopback and a veth pair closed "
         "on itself (bash .ci/run makes one); interfaces here: %s" % ", ".join(interfaces()))
    need(have("ip"), "iproute2's ip is not installed")
    links = {link["ifname"]: link for link in ip_json("link")}
    # Each end's peer is the other, here (a peer in another namespace shows a link_netnsid).
    for end, peer in (("eth0", "eth0p"), ("eth0p", "eth0")):
        assert links[end].get("link") == peer and "link_netnsid" not in links[end], links[end]
    addresses = {a["ifname"]: sorted((i["family"], i["local"], i["prefixlen"]) for i in a["addr_info"]
                                     if i.get("scope") != "link") for a in ip_json("addr")}
    assert addresses == {"lo": [("inet", "127.0.0.1", 8), ("inet6", "::1", 128)],
                         "eth0": [("inet", "192.0.2.10", 24)], "eth0p": []}
    routes = sorted((r["dst"], r.get("gateway", ""), r["dev"]) for r in ip_json("route", "show", "table", "main"))
    assert routes == [("192.0.2.0/24", "", "eth0"), ("default", "192.0.2.1", "eth0")]
    assert all(r["dst"] == "fe80::/64" for r in ip_json("-6", "route", "show", "table", "main"))
    # In a child process: this one's audit hook (conftest) would refuse before the kernel does.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, timeout=60, check=True).stdout
    assert out.decode().split("\n") == ["192.0.2.1 EHOSTUNREACH", "8.8.8.8 EHOSTUNREACH", ""]
    with socket.create_server(("127.0.0.1", 0)) as server:  # loopback itself works
        socket.create_connection(server.getsockname(), timeout=5).close()
    # rootless meets the same fence: Docker Hub is out of reach, and it says so in one line.
    proc = rl("pull", "busybox", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.startswith("rootless: error: ") and err.count("\n") == 1, err


def test_the_test_process_cannot_connect_beyond_loopback():
    """conftest's audit hook: a connection from a test to anything but loopback is an error
    before any packet leaves, on every machine."""
    with pytest.raises(RuntimeError, match="loopback only"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
