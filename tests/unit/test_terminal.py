"""rootless.runtime.terminal, on real ptys, pipes, sockets and child processes (no mocks)."""

import errno
import os
import select
import signal
import socket
import tempfile
import termios
import time

import pytest

from rootless.linux import sync
from rootless.linux.pty import make_controlling_tty
from rootless.runtime.terminal import RawMode, copy_winsize, get_winsize, on_winch, relay, set_winsize


class Child:
    """A forked child; ``done()`` is the relay's child_done (waitpid WNOHANG, remembered)."""

    def __init__(self, pid):
        self.pid, self.status = pid, None

    def done(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def wait(self):
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]
        if os.WIFEXITED(self.status):
            return os.WEXITSTATUS(self.status)
        return -os.WTERMSIG(self.status)


@pytest.fixture
def spawn():
    """Forks ``fn`` (which must exec or return); kills what a failed test left behind."""
    children = []

    def start(fn):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fn()
                code = 0
            except BaseException as e:
                os.write(2, ("child: %r\n" % e).encode())
            finally:
                os._exit(code)
        children.append(Child(pid))
        return children[-1]

    yield start
    for child in children:
        if child.status is None:
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()


@pytest.fixture(autouse=True)
def deadline():
    """Nothing here may hang: SIGALRM turns a stuck test into a failure after 5 s."""
    def expire(signum, frame):
        raise TimeoutError("the test took more than 5 s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 5)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def on_tty(slave, *argv):
    """A child body: ``argv`` with ``slave`` as its controlling tty and stdio."""
    def body():
        make_controlling_tty(slave)
        os.execvp(argv[0], list(argv))
    return body


def pipe_with(data):
    """The read end of a pipe that yields ``data`` and then EOF."""
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def contents(f):
    f.flush()
    f.seek(0)
    return f.read()


def test_sync_passes_an_fd_with_a_message():
    a, b = sync.pair()
    r, w = os.pipe()
    try:
        sync.send(a, "pty", fds=[w])
        message, fds = sync.recv(b, want_fds=True)
        assert message == {"op": "pty"} and len(fds) == 1
        got = fds[0]
        assert got not in (r, w)
        assert not os.get_inheritable(got)
        os.write(got, b"through the passed fd")
        os.close(got)
        os.close(w)
        assert os.read(r, 100) == b"through the passed fd"
        assert os.read(r, 100) == b""  # both copies closed: the same pipe
        a.close()
        assert sync.recv(b) is None  # end of file once the peer is gone
    finally:
        a.close()
        b.close()
        os.close(r)


def test_raw_mode_sets_and_restores():
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ICANON and before[3] & termios.ECHO
        with RawMode(slave):
            raw = termios.tcgetattr(slave)
            for flag in (termios.ICANON, termios.ECHO, termios.ISIG, termios.IEXTEN):
                assert not raw[3] & flag
            assert not raw[1] & termios.OPOST
            assert not raw[0] & (termios.ICRNL | termios.IXON)
            assert raw[2] & termios.CSIZE == termios.CS8
        assert termios.tcgetattr(slave) == before
        with pytest.raises(RuntimeError):
            with RawMode(slave):
                raise RuntimeError("inside")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_raw_mode_is_a_noop_on_a_pipe():
    r, w = os.pipe()
    try:
        with RawMode(r) as mode:
            assert mode.saved is None
    finally:
        os.close(r)
        os.close(w)


def test_copy_winsize_between_ptys():
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    r, w = os.pipe()
    try:
        set_winsize(s1, 33, 111)
        assert copy_winsize(s1, m2)
        assert get_winsize(s2) == (33, 111)
        assert not copy_winsize(r, m2)  # src is no tty: nothing happens
        assert get_winsize(s2) == (33, 111)
        assert get_winsize(r) is None
    finally:
        for fd in (m1, s1, m2, s2, r, w):
            os.close(fd)


def test_on_winch_copies_and_never_raises():
    host_master, host_slave = os.openpty()
    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        set_winsize(host_slave, 50, 160)
        on_winch(master, host_slave)
        assert get_winsize(slave) == (50, 160)
        on_winch(w, host_slave)  # the "master" is no tty: swallowed
        on_winch(master, r)      # the host side is no tty: nothing to copy
        assert get_winsize(slave) == (50, 160)
    finally:
        for fd in (host_master, host_slave, master, slave, r, w):
            os.close(fd)


def test_stty_in_the_container_sees_the_copied_size(spawn):
    host_master, host_slave = os.openpty()  # stands in for the user's terminal
    master, slave = os.openpty()
    with tempfile.TemporaryFile() as out:
        try:
            set_winsize(host_slave, 41, 97)
            copy_winsize(host_slave, master)
            child = spawn(on_tty(slave, "stty", "size"))
            os.close(slave)
            relay(None, None, master, out.fileno(), child.done)
        finally:
            for fd in (host_master, host_slave, master):
                os.close(fd)
        assert child.wait() == 0
        assert contents(out).split() == [b"41", b"97"]


def test_make_controlling_tty(spawn):
    master, slave = os.openpty()

    def body():
        make_controlling_tty(slave)
        ok = (os.getsid(0) == os.getpid() and os.tcgetpgrp(0) == os.getpgrp()
              and all(os.isatty(fd) for fd in (0, 1, 2)))
        with open("/dev/tty", "wb", buffering=0) as tty:  # only works with a ctty
            tty.write(b"ctty ok\n" if ok else b"ctty bad\n")

    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(body)
            os.close(slave)
            relay(None, None, master, out.fileno(), child.done)
        finally:
            os.close(master)
        assert child.wait() == 0
        assert contents(out) == b"ctty ok\r\n"


def test_relay_pty_cat_gets_input_and_veof(spawn):
    master, slave = os.openpty()
    stdin = pipe_with(b"hello\nworld\n")  # then EOF: the relay sends ^D once
    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(on_tty(slave, "cat"))
            os.close(slave)
            relay(stdin, master, master, out.fileno(), child.done)
        finally:
            os.close(master)
            os.close(stdin)
        assert child.wait() == 0
        got = contents(out)
        # each line twice: the pty's echo, then cat's copy; ONLCR makes \r\n
        assert got.count(b"hello\r\n") == 2 and got.count(b"world\r\n") == 2
        assert len(got) == 2 * len(b"hello\r\nworld\r\n")


def test_relay_pty_loses_nothing_written_just_before_exit(spawn):
    master, slave = os.openpty()
    size = 100 * 1024

    def body():
        make_controlling_tty(slave)
        data = memoryview(b"y" * size)
        while data:
            data = data[os.write(1, data):]
        # returning here _exits at once, with most of it still in the pty

    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(body)
            os.close(slave)
            relay(None, None, master, out.fileno(), child.done)
        finally:
            os.close(master)
        assert child.wait() == 0
        assert contents(out) == b"y" * size


def test_relay_pty_large_input_does_not_deadlock(spawn):
    """cat writes back while we still write to it: both directions must keep moving.

    Echo is off because n_tty drops echoes when the master's buffer is full (its echo
    ring overflows); cat's own copy must arrive complete.
    """
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    data = b"".join(b"%062d\n" % i for i in range(3200))  # canonical mode: short lines
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out:
        stdin.write(data)
        stdin.flush()
        stdin.seek(0)
        try:
            child = spawn(on_tty(slave, "cat"))
            os.close(slave)
            relay(stdin.fileno(), master, master, out.fileno(), child.done)
        finally:
            os.close(master)
        assert child.wait() == 0
        assert contents(out) == data.replace(b"\n", b"\r\n")


def test_relay_pipes_stdin_eof_closes_the_write_end(spawn):
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    stdin = pipe_with(b"no tty here\n" * 100)

    def body():
        os.dup2(to_r, 0)
        os.dup2(from_w, 1)
        os.execvp("cat", ["cat"])

    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(body)
            os.close(to_r)
            os.close(from_w)
            relay(stdin, to_w, from_r, out.fileno(), child.done)
            with pytest.raises(OSError) as e:
                os.fstat(to_w)  # the relay owns and closed the write end
            assert e.value.errno == errno.EBADF
        finally:
            os.close(from_r)
            os.close(stdin)
        assert child.wait() == 0
        assert contents(out) == b"no tty here\n" * 100


def test_relay_pipe_survives_a_container_that_closes_stdin(spawn):
    to_r, to_w = os.pipe()
    with tempfile.TemporaryFile() as stdin:
        stdin.write(b"z" * (1 << 20))  # far more than a pipe holds
        stdin.seek(0)

        def body():
            os.dup2(to_r, 0)
            os.execvp("true", ["true"])

        child = spawn(body)
        os.close(to_r)
        relay(stdin.fileno(), to_w, None, None, child.done)  # EPIPE is not an error
        assert child.wait() == 0


def test_relay_wakes_up_on_sigchld(spawn):
    """The relay returns when SIGCHLD says the child is gone, not at its 1 s backstop
    tick. Timed from the signal, so the shell's start-up does not count; the slave stays
    open here, so no hang-up on the master can wake the relay instead."""
    master, slave = os.openpty()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signalled = []
    old_handler = signal.signal(signal.SIGCHLD, lambda signum, frame: signalled.append(time.monotonic()))
    old_wake = signal.set_wakeup_fd(wake_w)
    try:
        with tempfile.TemporaryFile() as out:
            # (the pause makes the child end while the relay waits in poll)
            child = spawn(on_tty(slave, "sh", "-c", "echo bye; sleep 0.2"))
            relay(None, None, master, out.fileno(), child.done, wake_fd=wake_r, linger=0.1)
            returned = time.monotonic()
            assert contents(out) == b"bye\r\n"
        assert child.wait() == 0
        assert signalled and returned - signalled[0] < 0.5  # the backstop tick with a wake_fd is 1 s
    finally:
        signal.set_wakeup_fd(old_wake)
        signal.signal(signal.SIGCHLD, old_handler)
        for fd in (master, slave, wake_r, wake_w):
            os.close(fd)


def test_relay_does_not_hang_when_someone_else_holds_the_slave(spawn):
    master, slave = os.openpty()  # the parent keeps its slave fd: no EIO will come
    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(on_tty(slave, "sh", "-c", "echo last words"))
            started = time.monotonic()
            relay(None, None, master, out.fileno(), child.done, linger=0.2)
            assert time.monotonic() - started < 2
        finally:
            os.close(master)
            os.close(slave)
        assert child.wait() == 0
        assert contents(out) == b"last words\r\n"


def test_relay_discards_output_nobody_reads(spawn):
    """Our stdout's reader went away (``run -t ... | head``): keep draining, do not block."""
    master, slave = os.openpty()
    out_r, out_w = os.pipe()
    os.close(out_r)
    try:
        child = spawn(on_tty(slave, "sh", "-c", "i=0; while [ $i -lt 2000 ]; do "
                                                 "echo line $i; i=$((i+1)); done"))
        os.close(slave)
        relay(None, None, master, out_w, child.done)
    finally:
        os.close(master)
        os.close(out_w)
    assert child.wait() == 0


def test_relay_detaches_on_the_keys_and_leaves_the_container_running(spawn):
    master, slave = os.openpty()
    # What was typed before the keys reaches the container; the keys and after do not.
    stdin = pipe_with(b"before\n\x10\x11after\n")
    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(on_tty(slave, "cat"))
            os.close(slave)
            detached = relay(stdin, master, master, out.fileno(), child.done, detach_keys=b"\x10\x11")
            assert detached is True
            assert not child.done()  # still running: nobody ended it
            # cat got "before" only (its echo and copy arrive on the master, unread by now).
            seen = b""
            while seen.count(b"before\r\n") < 2:
                select.select([master], [], [])
                seen += os.read(master, 100)
            os.write(master, b"\x04")  # ^D: now it ends
            assert child.wait() == 0
        finally:
            os.close(master)
            os.close(stdin)
        assert b"after" not in contents(out) + seen


def test_relay_without_the_keys_reports_no_detach(spawn):
    master, slave = os.openpty()
    stdin = pipe_with(b"held\x10")  # a prefix of the keys, then EOF: sent, then ^D
    with tempfile.TemporaryFile() as out:
        try:
            child = spawn(on_tty(slave, "head", "-c", "5"))
            os.close(slave)
            assert relay(stdin, master, master, out.fileno(), child.done, detach_keys=b"\x10\x11") is False
        finally:
            os.close(master)
            os.close(stdin)
        assert child.wait() == 0
        assert b"held^P" in contents(out)  # the pty's echo shows the held ctrl-p was sent
