"""A container's network processes ("companions"): today its port forwarder.

A container with published ports (``-p``/``-P``) and a network namespace of its own has a
process beside it, a child of the container's owner (the CLI in the foreground, the
monitor for ``-d``): the *forwarder* (``network.forwarder``) that carries the ports from
listeners on the host into the namespace. A network helper with outbound access
(slirp4netns, pasta) will be a second companion, started at the same point.

Their order in ``launch.start``::

  owner                                     K / P
  bind the host listeners (``listen``) ---- a port in use fails here: nothing started yet
  fork K ---------------------------------> namespaces, rootfs, fork P (waits for "go")
  <---------------------- pid P ----------
  ``start(bundle, P, listeners)``: the forwarder joins P's namespaces and reports ready;
  it owns the listeners from then on (the owner's copies are closed)
  "go" -----------------------------------> the command runs with its network up

They end with the container: the owner stops them when it reaps P (``Companions.stop``),
they die with the owner (their parent-death signal), and the forwarder also ends by itself
when P does (exit 0: not a crash). One that ends before its container is a crash: the owner notices it (SIGCHLD)
and leaves the reason in the record (``crash_note``), where ``ps`` and ``inspect`` show it.
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List


class Companion:
    """One process that serves a container: its pid and what it is (for messages)."""

    def __init__(self, pid: int, name: str):
        self.pid, self.name = pid, name

    def stop(self) -> None:
        """End it (if still there) and reap it."""
        if not self.pid:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.pid = 0


class Companions:
    """The network processes of one run of a container, and the ports it published."""

    def __init__(self, procs: List[Companion], ports: list):
        self.procs, self.ports = procs, ports

    def pids(self) -> List[int]:
        return [c.pid for c in self.procs if c.pid]

    def stop(self) -> None:
        for c in self.procs:
            c.stop()


def listen(bundle) -> list:
    """The host listeners of the bundle's published ports: ``[(binding, socket)]``, bound
    in the owner's network namespace before anything starts (errors exit 125)."""
    if not bundle.ports:
        return []
    from rootless.network import ports
    return ports.listen(bundle.ports)


def start(bundle, pid: int, listeners: list) -> Companions:
    """Start what the container's network needs, for its first process ``pid`` (its
    namespaces exist; it waits for "go"). The owner's copies of the listeners are closed
    whether it succeeds or raises."""
    procs: List[Companion] = []
    if listeners:
        from rootless.network import forwarder
        # forwarder.start owns the sockets from here: closed in this process, ok or not
        fwd = forwarder.start([(sock, b.container_port, b.proto) for b, sock in listeners], pid)
        procs.append(Companion(fwd, "port forwarder"))
    return Companions(procs, [list(b) for b, _ in listeners])


def crash_note(name: str, status: int) -> str:
    """What ``ps``/``inspect`` say of a network process that ended before its container."""
    if os.WIFSIGNALED(status):
        try:
            how = "killed by " + signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            how = "killed by signal %d" % os.WTERMSIG(status)
    else:
        how = "exit %d" % os.WEXITSTATUS(status)
    return "%s ended (%s)" % (name, how)
