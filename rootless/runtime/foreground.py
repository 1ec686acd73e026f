"""A container in the foreground: the CLI is its parent, passes signals on, relays the tty.

Signals sent to the CLI go to P, as Docker's sig-proxy does. Forwarding starts before
the fork: P may run its command, and be signalled, before its pid reaches us; until then
a signal is held for it, not lost (nor fatal to the CLI, which would take the container
with it).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, List, Optional

from rootless.linux import signals
from rootless.runtime import process as init  # code_of, kill_quietly


class Foreground:
    def __init__(self, bundle, interactive: bool, debug=None, start=None, detach_keys=None):
        """``start(stdio, on_pid)`` -> ``launch.Started`` starts the process (default: the
        bundle's container, ``launch.start``; ``runtime.exec`` passes its own)."""
        self.bundle, self.interactive, self.debug = bundle, interactive, debug
        self.start = start or self._start_container
        # With a tty and stdin, the user may detach (``exec -it``): the process goes on,
        # its output drained by a child of ours (``_drain_in_background``).
        self.detach_keys = detach_keys
        self.pid: Optional[int] = None
        self.held: List[int] = []
        self.watched = None  # the Started whose network processes a SIGCHLD may concern
        self.on_companion_end = None

    def _companions_check(self) -> None:
        """On SIGCHLD: reap a network process that ended before the container, and say so."""
        started = self.watched
        if started is None or started.companions is None:
            return
        for c in started.companions.procs:
            if not c.pid:
                continue
            try:
                pid, status = os.waitpid(c.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = c.pid, 0
            if pid:
                c.pid = 0
                if self.on_companion_end is not None:
                    self.on_companion_end(c.name, status)

    def run(self, on_started: Optional[Callable[[object], None]] = None,
            on_companion_end: Optional[Callable[[str, int], None]] = None) -> int:
        """Start the container and wait for it; its exit code (Docker's codes).
        ``on_started(started)`` gets the ``launch.Started`` once it runs;
        ``on_companion_end(name, status)`` hears of a network process of the container
        that ended before it (a crash: ``runtime.network``)."""
        self.on_companion_end = on_companion_end
        old = self._forward_signals()
        null = None
        try:
            stdin = 0
            if not self.interactive:
                null = os.open(os.devnull, os.O_RDONLY)
                stdin = null
            started = self.start((stdin, 1, 2), self._known)
            if null is not None:
                os.close(null)
                null = None
            for sig in self.held:
                init.kill_quietly(started.pid, sig)
            if started.companions is not None:
                self.watched = started
                old.setdefault(signals.SIGCHLD, signals.signal(signals.SIGCHLD, lambda s, f: self._companions_check()))
            if on_started is not None:
                on_started(started)
            if started.master is not None:
                return self._attach_tty(started)
            return started.wait()
        finally:
            _restore_handlers(old)
            if null is not None:
                os.close(null)

    def _start_container(self, stdio, on_pid):
        from rootless.runtime import launch
        return launch.start(self.bundle, stdio, on_pid=on_pid, debug=self.debug)

    def _known(self, pid: int) -> None:
        self.pid = pid

    def _forward_signals(self) -> dict:
        old = {}

        def forward(sig, frame):
            if self.pid is None:
                self.held.append(sig)
            else:
                init.kill_quietly(self.pid, sig)
        for name in init.FORWARDED:
            sig = getattr(signals, name, None)
            if sig is not None:
                old[sig] = signals.signal(sig, forward)
        return old

    def _attach_tty(self, started) -> int:
        # Imported here, in the CLI on the host, only for -t (termios and the relay: ~1 ms).
        from rootless.runtime import terminal
        master = started.master
        status: List[int] = []

        def child_done() -> bool:
            if not status:
                pid, st = os.waitpid(started.pid, os.WNOHANG)
                if pid:
                    status.append(st)
            return bool(status)
        size_from = 0 if os.isatty(0) else 1
        terminal.copy_winsize(size_from, master)
        old_winch = signals.signal(signals.SIGWINCH, lambda s, f: terminal.copy_winsize(size_from, master))
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wake = signals.set_wakeup_fd(wfd)
        old_chld = signals.signal(signals.SIGCHLD, lambda s, f: self._companions_check())
        detached = False
        try:
            raw = terminal.RawMode(0) if self.interactive else None
            if raw is not None:
                raw.__enter__()
            try:
                detached = terminal.relay(0 if self.interactive else None, master if self.interactive else None,
                                          master, 1, child_done, wake_fd=rfd,
                                          detach_keys=self.detach_keys if self.interactive else None)
            finally:
                if raw is not None:
                    raw.__exit__(None, None, None)
        finally:
            signals.set_wakeup_fd(old_wake)
            signals.signal(signals.SIGCHLD, old_chld)
            signals.signal(signals.SIGWINCH, old_winch)
            os.close(rfd)
            os.close(wfd)
            if detached and not status:
                _drain_in_background(master)
            os.close(master)
        if detached and not status:
            started.end_keeper()
            return 0
        if not status:
            status.append(os.waitpid(started.pid, 0)[1])
        started.release_cgroup()  # before the keeper, which may hold its systemd scope
        started.end_keeper()
        started.end_companions(wait=False)  # this CLI exits next: init reaps them
        return init.code_of(status[0])


def _drain_in_background(master: int) -> None:
    """After a detach: a child in a session of its own keeps the pty master open and reads
    it until the process's last tty fd closes, so the process neither gets a hangup nor
    blocks on a full terminal. Docker's daemon does the same for a detached exec."""
    if os.fork() != 0:
        return
    try:
        os.setsid()
        signals.signal(signals.SIGHUP, signals.SIG_IGN)
        for fd in (0, 1, 2):
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
        os.set_blocking(master, True)
        while os.read(master, 65536):
            pass
    except OSError:
        pass
    finally:
        os._exit(0)


def _restore_handlers(old: dict) -> None:
    for sig, handler in old.items():
        signals.signal(sig, handler)

