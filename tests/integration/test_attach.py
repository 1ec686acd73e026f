"""`attach`, detach keys, and `run -it` / `start -ai` through the monitor, on real containers
as the unprivileged test users, each CLI on a pty of its own (its controlling terminal, as
a user's shell would have it).

The module has a storage root and a run dir of its own (as test_detached.py), so that its
monitor is its own. Waits are deadlines around what the terminal shows, never a sleep.
"""

import os
import pty
import select
import signal
import struct
import subprocess
import termios
import fcntl
import time

import pytest

from test_detached import detached_root, end_what_is_left, kill, lines_until, status

PROMPT = "/ # "


@pytest.fixture(scope="module")
def arl(tmp_path_factory, test_images):
    yield from detached_root(tmp_path_factory, test_images, "attach")


@pytest.fixture
def terms(arl):
    """Opens CLIs on terminals of their own (``terms(*args)``); whatever a failed test left
    (a CLI, a container, the monitor) is ended after it."""
    opened = []

    def open_term(*args, rows=24, cols=80):
        opened.append(Term(arl, args, rows, cols))
        return opened[-1]
    yield open_term
    for term in opened:
        term.close()
    end_what_is_left(arl)


class Term:
    """One CLI whose stdin, stdout, stderr and controlling terminal are a new pty's slave;
    the test is the terminal (the master)."""

    def __init__(self, rl, args, rows, cols):
        self.args = args
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(rl.base[0], rl.base + list(args), rl.env())
            finally:
                os._exit(127)
        self.resize(rows, cols)
        self.data, self.seen = b"", 0
        self.code = None

    def resize(self, rows, cols):
        """The terminal changes size: the kernel sends SIGWINCH to the CLI."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text):
        os.write(self.fd, text.encode() if isinstance(text, str) else text)

    def _read(self, timeout) -> bool:
        if not select.select([self.fd], [], [], timeout)[0]:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the CLI and every other holder of the slave are gone
            chunk = b""
        if not chunk:
            raise AssertionError("the terminal of %s closed before the text was seen: %r"
                                 % (" ".join(self.args), self.data[self.seen:]))
        self.data += chunk
        return True

    def expect(self, text, timeout=20):
        """Wait for ``text`` in what the CLI wrote since the last match; past it then."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while True:
            at = self.data.find(wanted, self.seen)
            if at >= 0:
                self.seen = at + len(wanted)
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%r not seen within %ds on %s's terminal; since the last match: %r"
                                     % (text, timeout, " ".join(self.args), self.data[self.seen:]))
            self._read(left)

    def ask(self, command, answer, attempts=20):
        """Type ``command`` until ``answer`` shows (what a signal changes may come late)."""
        for _ in range(attempts):
            self.type(command + "\r")
            try:
                self.expect(answer, timeout=1)
                return
            except AssertionError:
                continue
        self.expect(answer, timeout=1)

    def wait(self, timeout=30) -> int:
        """The CLI's exit code (what it printed until then stays readable in ``data``)."""
        deadline = time.monotonic() + timeout
        while self.code is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(st)
                break
            assert time.monotonic() < deadline, "%s did not end: %r" % (" ".join(self.args), self.data[self.seen:])
            try:
                self._read(0.05)
            except AssertionError:
                time.sleep(0.01)  # the slave is closed; the exit status is on its way
        try:
            while self._read(0):
                pass
        except AssertionError:
            pass
        return self.code

    def close(self):
        if self.code is None:
            kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.code = -9
        os.close(self.fd)


def run_dit(arl, name, *args) -> None:
    arl("run", "-dit", "--name", name, "busybox", *(args or ("sh",)))


def echo(term, word):
    """Have the container's shell print something the typed line itself does not contain."""
    term.type("echo %s-$((6*7))\r" % word)
    term.expect("%s-42" % word)


def test_attach_types_and_sees_and_detaches(arl, terms):
    run_dit(arl, "shell")
    term = terms("attach", "shell")
    term.type("\r")
    term.expect(PROMPT)
    echo(term, "attached")
    term.type(b"\x10\x11")  # ctrl-p ctrl-q
    assert term.wait() == 1  # Docker's client returns the detach as its error
    assert "read escape sequence" in term.data[term.seen:].decode()
    assert status(arl, "shell").startswith("Up ")
    assert "attached-42" in arl.out("logs", "shell")


def test_detach_keys_of_ones_own_and_a_prefix_that_breaks(arl, terms):
    # Each line typed, as the bytes the container read (its tty is canonical: ^P, ^X and z
    # are plain characters there).
    run_dit(arl, "keys", "sh", "-c", "while read -r l; do printf %s \"$l\" | od -An -tx1; done")
    term = terms("attach", "--detach-keys", "ctrl-x,y", "keys")
    # ctrl-p is just input now; ctrl-x then z is not the sequence: ctrl-x is held, then sent.
    term.type(b"\x10\x18")
    term.type(b"z\r")
    term.expect(" 10 18 7a")
    term.type(b"\x18y")
    assert term.wait() == 1 and "read escape sequence" in term.data[term.seen:].decode()
    assert status(arl, "keys").startswith("Up ")


def test_invalid_detach_keys(arl):
    for verb in (["attach"], ["run"], ["start", "-ai"]):
        proc = arl(*verb, "--detach-keys", "ctrl-1", "busybox", check=False)
        assert proc.returncode == 125 and proc.stdout == b""
        assert proc.stderr == b"rootless: error: Invalid detach keys (ctrl-1) provided\n", proc.stderr
    assert arl.out("ps", "-a", "-q") == ""  # refused before anything was created


def test_window_size_follows_the_attaching_terminal(arl, terms):
    run_dit(arl, "sized")
    term = terms("attach", "sized", rows=30, cols=100)
    term.ask("stty size", "30 100")
    term.resize(40, 120)
    term.ask("stty size", "40 120")
    term.type(b"\x10\x11")
    assert term.wait() == 1


def test_run_it_detach_attach_again_exit_3(arl, terms):
    term = terms("run", "-it", "--name", "again", "busybox", "sh")
    term.expect(PROMPT)
    echo(term, "first")
    term.type(b"\x10\x11")
    assert term.wait() == 0  # run -it takes the detach as success, and says nothing
    assert "escape" not in term.data[term.seen:].decode()
    assert status(arl, "again").startswith("Up ")
    assert "first-42" in arl.out("logs", "again")
    term = terms("attach", "again")
    echo(term, "second")
    term.type("exit 3\r")
    assert term.wait() == 3
    assert status(arl, "again").startswith("Exited (3) ")
    arl("rm", "again")


def test_kill_9_of_a_run_it_cli_leaves_the_container_to_its_monitor(arl, terms):
    # The monitor is its parent, not the CLI: the CLI's end is a detach it did not ask for.
    term = terms("run", "-it", "--name", "orphan", "busybox", "sh")
    term.expect(PROMPT)
    os.kill(term.pid, signal.SIGKILL)
    assert term.wait() == -signal.SIGKILL
    assert status(arl, "orphan").startswith("Up ")
    term = terms("attach", "orphan")
    echo(term, "still-there")
    term.type("exit 8\r")
    assert term.wait() == 8
    arl("rm", "orphan")


def test_run_it_rm_is_removed_when_it_ends(arl, terms):
    term = terms("run", "-it", "--rm", "--name", "gone", "busybox", "sh")
    term.expect(PROMPT)
    term.type(b"\x10\x11")
    assert term.wait() == 0 and status(arl, "gone").startswith("Up ")
    term = terms("attach", "gone")
    term.type("exit 6\r")
    assert term.wait() == 6
    assert arl.out("ps", "-a", "-q") == ""  # removed before the attached CLI returned


def test_run_it_errors_are_todays(arl, terms):
    term = terms("run", "-it", "--rm", "busybox", "nosuchcmd")
    assert term.wait() == 127
    assert 'rootless: error: exec: "nosuchcmd": executable file not found in $PATH' in term.data.decode()
    assert arl.out("ps", "-a", "-q") == ""
    # ^C is a byte in raw mode: the container's tty makes it the shell's SIGINT.
    term = terms("run", "-it", "--rm", "busybox", "sh", "-c", "trap 'echo got-INT; exit 9' INT; "
                 "echo ready; while :; do sleep 0.1; done")
    term.expect("ready")
    term.type(b"\x03")
    term.expect("got-INT")
    assert term.wait() == 9


def test_start_ai(arl, terms):
    arl("create", "-it", "--name", "started", "busybox", "sh")
    term = terms("start", "-ai", "started")
    term.expect(PROMPT)
    echo(term, "in-start")
    term.type(b"\x10\x11")
    assert term.wait() == 0 and status(arl, "started").startswith("Up ")
    term = terms("start", "-ai", "started")  # running: as Docker, start -a attaches
    echo(term, "reattached")
    term.type("exit 4\r")
    assert term.wait() == 4
    assert status(arl, "started").startswith("Exited (4) ")
    arl("rm", "started")


def test_start_ai_of_a_tty_container_reads_a_pipe_too(arl):
    # As Docker's start: no terminal needed for stdin (run -it checks; start -ai does not).
    arl("create", "-it", "--name", "fed", "busybox", "sh")
    proc = arl("start", "-ai", "fed", input=b"echo piped-$((6*7))\nexit 2\n", check=False)
    assert proc.returncode == 2 and b"piped-42" in proc.stdout, proc.stderr
    arl("rm", "fed")


def test_attach_to_a_stopped_container(arl):
    arl("create", "--name", "stopped", "busybox", "true")
    proc = arl("attach", "stopped", check=False)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr == b"rootless: error: You cannot attach to a stopped container, start it first\n"
    missing = arl("attach", "nosuch", check=False)
    assert missing.returncode == 125 and missing.stderr == b"rootless: error: No such container: nosuch\n"
    arl("rm", "stopped")


def test_two_clients_see_the_same_output(arl, terms):
    run_dit(arl, "shared")
    one, two = terms("attach", "shared"), terms("attach", "shared")
    for term in (one, two):  # both registered: what one types, the other sees
        term.ask("echo ready-$((1+1))", "ready-2")
    one.type("echo from-one-$((6*7))\r")
    one.expect("from-one-42")
    two.expect("from-one-42")
    two.type(b"\x10\x11")
    assert two.wait() == 1
    one.type("exit 5\r")
    assert one.wait() == 5


def test_attach_without_a_tty_relays_stdin(arl):
    arl("run", "-di", "--name", "piped", "busybox", "sh", "-c", "while read line; do echo got-$line; done")
    proc = arl.popen("attach", "piped", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"x\n")  # read by the CLI once it is attached
        proc.stdin.close()  # the end of attach's input is not the end of the container's
        proc.stdin = None
        assert lines_until(proc, "got-x") == ["got-x"]
        assert status(arl, "piped").startswith("Up ")
        arl("kill", "piped")
        out, err = proc.communicate(timeout=30)
        assert (out, err, proc.returncode) == (b"", b"", 137)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    arl("rm", "piped")


def test_attach_proxies_signals_without_a_tty(arl):
    ticker = "while :; do echo tick; sleep 0.2; done"
    arl("run", "-d", "--name", "proxied", "busybox", "sh", "-c", "trap 'echo got-TERM; exit 7' TERM; " + ticker)
    arl("run", "-d", "--name", "unproxied", "busybox", "sh", "-c", ticker)
    for name, flags in (("proxied", []), ("unproxied", ["--sig-proxy=false"])):
        proc = arl.popen("attach", *flags, name, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        try:
            lines_until(proc, "tick")  # attached, its handlers in place
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            if name == "proxied":  # --sig-proxy, the default: the container gets it
                assert out.endswith(b"got-TERM\n") and proc.returncode == 7, (out, err)
            else:  # the CLI ends, the container does not
                assert proc.returncode == 128 + signal.SIGTERM, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert status(arl, "proxied").startswith("Exited (7) ") and status(arl, "unproxied").startswith("Up ")
    arl("rm", "-f", "proxied", "unproxied")


def test_exec_it_detaches_and_the_process_goes_on(arl, terms):
    """``exec -it`` with the detach keys (ctrl-p ctrl-q, or --detach-keys): the CLI exits 0
    and the exec'd process keeps running, its output drained (no hangup, no full pty)."""
    arl("run", "-d", "--name", "execbox", "busybox", "sleep", "1000")
    for keys, typed in ((None, b"\x10\x11"), ("ctrl-x,y", b"\x18y")):
        args = ["exec", "-it"] + (["--detach-keys", keys] if keys else []) + ["execbox", "sh"]
        term = terms(*args)
        term.type("\r")
        term.expect(PROMPT)
        echo(term, "exec")
        term.type("while :; do echo tick; sleep 0.2; done > /dev/tty & echo $! > /tmp/ticker\r")
        term.expect("tick")
        term.type(typed)
        assert term.wait() == 0
        ticker = arl.out("exec", "execbox", "cat", "/tmp/ticker").strip()
        time.sleep(0.5)
        assert arl("exec", "execbox", "kill", "-0", ticker, check=False).returncode == 0, \
            "the detached exec's shell lost its terminal"
        arl("exec", "execbox", "kill", ticker)
    arl("rm", "-f", "execbox")
