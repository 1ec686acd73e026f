"""A container in the foreground: the CLI is its parent, passes signals on, relays the tty.

Signals sent to the CLI go to P, as Docker's sig-proxy does. Forwarding starts before
the fork: P may run its command, and be signalled, before its pid reaches us; until then
a signal is held for it, not lost (nor fatal to the CLI, which would take the container
with it).
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, List, Optional

from rootless.runtime import init, launch


class Foreground:
    def __init__(self, bundle, interactive: bool, debug=None):
        self.bundle, self.interactive, self.debug = bundle, interactive, debug
        self.pid: Optional[int] = None
        self.held: List[int] = []

    def run(self, on_started: Optional[Callable[[int], None]] = None) -> int:
        """Start the container and wait for it; its exit code (Docker's codes)."""
        old = self._forward_signals()
        null = None
        try:
            stdin = 0
            if not self.interactive:
                null = os.open(os.devnull, os.O_RDONLY)
                stdin = null
            started = launch.start(self.bundle, (stdin, 1, 2), on_pid=self._known, debug=self.debug)
            if null is not None:
                os.close(null)
                null = None
            for sig in self.held:
                init.kill_quietly(started.pid, sig)
            if on_started is not None:
                on_started(started.pid)
            if started.master is not None:
                return self._attach_tty(started)
            return started.wait()
        finally:
            _restore_handlers(old)
            if null is not None:
                os.close(null)

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
            sig = getattr(signal, name, None)
            if sig is not None:
                old[sig] = signal.signal(sig, forward)
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
        old_winch = signal.signal(signal.SIGWINCH, lambda s, f: terminal.copy_winsize(size_from, master))
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wake = signal.set_wakeup_fd(wfd)
        old_chld = signal.signal(signal.SIGCHLD, lambda s, f: None)
        try:
            raw = terminal.RawMode(0) if self.interactive else None
            if raw is not None:
                raw.__enter__()
            try:
                terminal.relay(0 if self.interactive else None, master if self.interactive else None,
                               master, 1, child_done, wake_fd=rfd)
            finally:
                if raw is not None:
                    raw.__exit__(None, None, None)
        finally:
            signal.set_wakeup_fd(old_wake)
            signal.signal(signal.SIGCHLD, old_chld)
            signal.signal(signal.SIGWINCH, old_winch)
            os.close(rfd)
            os.close(wfd)
            os.close(master)
        if not status:
            status.append(os.waitpid(started.pid, 0)[1])
        started.end_keeper()
        return init.code_of(status[0])


def _restore_handlers(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)

