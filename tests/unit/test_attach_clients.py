"""The monitor's attached clients (rootless.runtime.attach) on real sockets, pipes and
ptys: what a client gets, and the bounds that keep a client that does not read from
costing the monitor more than MAX_QUEUED bytes."""

import json
import os
import select
import socket

import pytest

from rootless.runtime import attach, terminal


class Started:
    def __init__(self, master=None):
        self.pid, self.master = 0, master


class Watched:
    """What runtime.attach reads of the monitor's Watched."""

    def __init__(self, cid, master=None, stdin_w=None):
        self.cid, self.started, self.stdin_w = cid, Started(master), stdin_w
        self.streams = {master: "stdout"} if master is not None else {}


@pytest.fixture
def hub():
    poll = select.poll()
    hub = attach.Attachments(poll)
    hub.pump = lambda: [hub.event(fd, mask) for fd, mask in poll.poll(0)]
    return hub


def pair():
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return mine, theirs


def messages(sock):
    got = []
    sock.setblocking(False)
    while True:
        try:
            message = sock.recv(attach.RECV)
        except BlockingIOError:
            return got
        if not message:
            got.append(b"EOF")
            return got
        got.append(message)


def test_every_client_gets_the_output_then_the_exit_then_end_of_file(hub):
    w = Watched("c1")
    (m1, c1), (m2, c2) = pair(), pair()
    hub.add(w, m1, stdin=False)
    hub.add(w, m2, stdin=False)
    hub.output("c1", "stdout", b"out")
    hub.output("c1", "stderr", b"err")
    hub.output("other", "stdout", b"not theirs")
    hub.ended("c1", 3)
    hub.finish("c1")
    for client in (c1, c2):
        assert messages(client) == [attach.OUT + b"out", attach.ERR + b"err",
                                    json.dumps({"op": "exit", "code": 3}).encode(), b"EOF"]
    assert not hub.clients and not hub.lingering()


def test_a_client_that_does_not_read_loses_its_oldest_output_only(hub):
    w = Watched("c1")
    mine, theirs = pair()
    hub.add(w, mine, stdin=False)
    chunk = b"x" * 60000
    for n in range(40):  # ~2.4 MB: far more than the socket and the queue hold
        hub.output("c1", "stdout", bytes([n]) + chunk)
    client = hub.clients[mine.fileno()]
    assert client.queued <= attach.MAX_QUEUED
    hub.ended("c1", 0)
    hub.finish("c1")
    assert hub.lingering()  # the monitor stays for it, up to LINGER
    got = []
    while hub.clients:
        got += messages(theirs)
        hub.pump()
    got += messages(theirs)
    firsts = [m[1] for m in got if m[:1] == attach.OUT]
    assert firsts == sorted(firsts) and firsts[-1] == 39  # in order, the newest kept
    assert len(firsts) < 40  # some were dropped
    assert got[-2:] == [b'{"op": "exit", "code": 0}', b"EOF"]


def test_input_reaches_a_pipe_and_eof_closes_it(hub):
    r, w_end = os.pipe()
    w = Watched("c1", stdin_w=w_end)
    mine, theirs = pair()
    hub.add(w, mine, stdin=True)
    theirs.send(attach.IN + b"typed\n")
    theirs.send(b'{"op": "eof"}')
    hub.pump()
    hub.pump()
    assert os.read(r, 100) == b"typed\n"
    assert os.read(r, 100) == b""  # closed: the container reads end of file
    assert w.stdin_w is None  # so the monitor does not close it again
    os.close(r)
    hub.ended("c1", 0)
    hub.finish("c1")


def test_input_from_a_client_without_stdin_is_ignored(hub):
    r, w_end = os.pipe()
    w = Watched("c1", stdin_w=w_end)
    mine, theirs = pair()
    hub.add(w, mine, stdin=False)
    theirs.send(attach.IN + b"ignored\n")
    hub.pump()
    os.set_blocking(r, False)
    with pytest.raises(BlockingIOError):
        os.read(r, 100)
    hub.ended("c1", 0)
    hub.finish("c1")
    os.close(r)
    os.close(w_end)


def test_input_is_throttled_not_dropped_when_the_container_does_not_read(hub):
    r, w_end = os.pipe()
    w = Watched("c1", stdin_w=w_end)
    mine, theirs = pair()
    hub.add(w, mine, stdin=True)
    theirs.setblocking(False)
    sent = 0
    try:
        while True:  # until the pipe, the monitor's queue and the socket are full
            theirs.send(attach.IN + b"y" * 4096)
            sent += 4096
            hub.pump()
    except BlockingIOError:
        pass
    assert len(hub.inputs["c1"].pending) < attach.MAX_INPUT + attach.RECV
    os.set_blocking(r, False)
    received = 0
    while received < sent:
        try:
            received += len(os.read(r, 65536))
        except BlockingIOError:
            hub.pump()
    assert received == sent
    hub.ended("c1", 0)
    hub.finish("c1")
    os.close(r)
    os.close(w_end)


def test_resize_and_input_on_a_pty(hub):
    master, slave = os.openpty()
    os.set_blocking(master, False)
    w = Watched("c1", master=master)
    mine, theirs = pair()
    hub.add(w, mine, stdin=True, size=(30, 100))
    assert terminal.get_winsize(slave) == (30, 100)
    theirs.send(b'{"op": "resize", "rows": 40, "cols": 120}')
    theirs.send(attach.IN + b"line\n")
    hub.pump()
    hub.pump()
    assert terminal.get_winsize(slave) == (40, 120)
    assert os.read(slave, 100) == b"line\n"
    hub.ended("c1", 0)  # its dup of the master is closed; the monitor's own is not
    os.fstat(master)
    hub.finish("c1")
    for fd in (master, slave):
        os.close(fd)
