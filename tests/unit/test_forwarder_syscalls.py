"""The forwarder's system calls (rootless.linux.splice, pidfd, netlink) on real pipes,
sockets and processes, through both the os module's functions and the ctypes ones a
Python below 3.10 uses; and the relay's pure choice of what counts as a loopback client."""

import errno
import os
import select
import socket
import subprocess

import pytest

from rootless.linux import child, netlink, ns, pidfd, splice
from rootless.network import relay

SPLICERS = [splice._libc_splice()]
if hasattr(os, "splice"):
    SPLICERS.append(splice._os_splice())


@pytest.mark.parametrize("fn", SPLICERS, ids=["libc", "os"][:len(SPLICERS)])
def test_splice_moves_bytes_socket_to_pipe_to_socket(fn):
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    r, w = splice.pipe()
    try:
        a.sendall(b"through the pipe")
        b.setblocking(False)
        assert fn(b.fileno(), w, 1 << 16, relay.SPLICE_FLAGS) == 16
        assert fn(r, c.fileno(), 16, relay.SPLICE_FLAGS) == 16
        assert d.recv(100) == b"through the pipe"
        with pytest.raises(BlockingIOError):  # nothing more to read: EAGAIN, not a block
            fn(b.fileno(), w, 1 << 16, relay.SPLICE_FLAGS)
        a.close()
        assert fn(b.fileno(), w, 1 << 16, relay.SPLICE_FLAGS) == 0  # EOF
        with pytest.raises(OSError) as raised:  # neither end a pipe
            fn(b.fileno(), d.fileno(), 16, 0)
        assert raised.value.errno == errno.EINVAL
    finally:
        for sock in (a, b, c, d):
            sock.close()
        os.close(r)
        os.close(w)


def test_a_pipe_grows_to_what_the_kernel_allows():
    r, w = splice.pipe()
    try:
        assert splice.pipe_size(w) == relay.PIPE_DEFAULT
        assert splice.set_pipe_size(w, 1 << 18) == 1 << 18
        with open("/proc/sys/fs/pipe-max-size") as f:
            limit = int(f.read())
        if os.getuid() != 0:  # root may go past pipe-max-size
            with pytest.raises(OSError) as raised:
                splice.set_pipe_size(w, limit * 2)
            assert raised.value.errno == errno.EPERM
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("fn", [pidfd.pidfd_open, pidfd.syscall_pidfd_open], ids=["os", "syscall"])
def test_a_pidfd_becomes_readable_when_its_process_ends(fn):
    proc = subprocess.Popen(["sleep", "30"])
    fd = fn(proc.pid)
    try:
        assert select.select([fd], [], [], 0)[0] == []
        proc.kill()
        assert select.select([fd], [], [], 10)[0] == [fd]  # before it is reaped
    finally:
        os.close(fd)
        proc.wait()
    with pytest.raises(ProcessLookupError):
        fn(proc.pid)


def test_netlink_sets_a_link_attribute_in_a_network_namespace_of_our_own():
    def in_new_namespaces():
        ns.unshare(ns.CLONE_NEWUSER | ns.CLONE_NEWNET)
        netlink.set_link(netlink.LOOPBACK_INDEX, [(netlink.IFLA_GSO_IPV4_MAX_SIZE, 1 << 17)])
        try:
            netlink.set_link(4242, [(netlink.IFLA_GSO_IPV4_MAX_SIZE, 1 << 17)])
        except OSError as e:
            return errno.errorcode[e.errno]
        return "set a link that does not exist"
    ok, answer = child.run_in_child(in_new_namespaces)
    assert (ok, answer) == (True, "ENODEV")


@pytest.mark.parametrize("peer, loopback", [
    (("127.0.0.1", 5000), True), (("127.3.4.5", 1), True), (("::1", 1, 0, 0), True),
    (("::ffff:127.0.0.1", 1, 0, 0), True), (("10.0.0.1", 1), False), (("::ffff:10.0.0.1", 1, 0, 0), False),
    (("2001:db8::1", 1, 0, 0), False), ("", False)])
def test_only_a_client_on_this_hosts_loopback_gets_the_loopback_congestion_control(peer, loopback):
    assert relay._is_loopback(peer) is loopback
