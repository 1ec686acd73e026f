"""The test run itself: no test can reach anything but loopback.

``.ci/run`` starts the suite in a network namespace of its own whose only interface is
``lo``; this module proves the fence is there (elsewhere it skips: a developer's machine
may have a network, and then conftest's audit hook still stops the test process itself
from connecting anywhere but loopback)."""

import socket
import subprocess
import sys

import pytest

from conftest import need

PROBE = r"""
import errno, socket, sys
for address in (("192.0.2.1", 443), ("8.8.8.8", 53)):  # TEST-NET-1, and a public resolver
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as e:
        print(address[0], errno.errorcode.get(e.errno, e.errno))
    else:
        print(address[0], "connected")
"""


def interfaces():
    return sorted(name for _, name in socket.if_nameindex())


def test_only_loopback_is_reachable(rl):
    need(interfaces() == ["lo"], "a network namespace with only loopback (bash .ci/run makes one); "
         "interfaces here: %s" % ", ".join(interfaces()))
    # In a child process: this one's audit hook (conftest) would refuse before the kernel does.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, timeout=60, check=True).stdout
    assert out.decode().split("\n") == ["192.0.2.1 ENETUNREACH", "8.8.8.8 ENETUNREACH", ""]
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
