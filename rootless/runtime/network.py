"""A container's network processes: its network helper and its port forwarder.

A container with a network namespace of its own may need two processes beside it, both
children of the container's owner (the CLI in the foreground, the monitor for ``-d``):

* the *helper* (slirp4netns or pasta, ``network.helpers``) that gives the namespace an
  interface with outbound access, for ``--network slirp4netns|pasta`` (and the default);
* the *forwarder* (``network.forwarder``) that carries the published ports (``-p``/``-P``)
  from listeners on the host into the namespace, in every private mode, ``none`` included.

Their order in ``launch.start``::

  owner                                     K / P
  bind the host listeners (``listen``) ---- a port in use fails here: nothing started yet
  fork K ---------------------------------> namespaces, rootfs, fork P (waits for "go")
  <---------------------- pid P ----------
  ``start(bundle, P, listeners)``: the helper joins P's namespaces and reports ready; the
  forwarder joins them and reports ready; the owner closes its copies of the listeners
  "go" -----------------------------------> the command runs with its network up

They end with the container: the owner stops them when it reaps P (``Companions.stop``),
they die with the owner (their parent-death signal), and the forwarder also ends by itself
when P does. One that ends before its container is a crash: the owner notices it (SIGCHLD)
and leaves the reason in the record (``crash_note``), where ``ps`` and ``inspect`` show it.
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple


class Companion:
    """One process that serves a container: its pid and what it is (for messages)."""

    def __init__(self, pid: int, name: str, stop=None):
        self.pid, self.name, self._stop = pid, name, stop

    def stop(self) -> None:
        """End it (if still there) and reap it."""
        if not self.pid:
            return
        if self._stop is not None:
            self._stop()
        else:
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

    def find(self, pid: int) -> Optional[Companion]:
        for c in self.procs:
            if c.pid == pid:
                return c
        return None

    def stop(self) -> None:
        for c in self.procs:
            c.stop()


NONE = Companions([], [])


def wanted(bundle) -> bool:
    """Whether this container needs any network process (most runs do not: no cost)."""
    return bool(getattr(bundle, "ports", None)) or bool(getattr(bundle, "network", None))


def listen(bundle) -> list:
    """The host listeners of the bundle's published ports: ``[(binding, socket)]``, bound
    in the owner's network namespace before anything starts (errors exit 125)."""
    if not getattr(bundle, "ports", None):
        return []
    from rootless.network import ports
    return ports.listen(bundle.ports)


def start(bundle, pid: int, listeners: list) -> Companions:
    """Start what the container's network needs, for its first process ``pid`` (its
    namespaces exist; it waits for "go"). Closes the owner's copies of the listeners. On a
    failure, stops what was started and raises."""
    procs: List[Companion] = []
    try:
        mode = getattr(bundle, "network", None)
        if mode:
            from rootless.network import helpers
            helper = helpers.start(mode, getattr(bundle, "network_options", None) or {}, pid)
            procs.append(Companion(helper.pid, helper.name, helper.stop))
        if listeners:
            from rootless.network import forwarder
            fwd = forwarder.start([(sock, b.container_port, b.proto) for b, sock in listeners], pid)
            procs.append(Companion(fwd, "port forwarder"))
    except BaseException:
        for c in procs:
            c.stop()
        raise
    finally:
        close(listeners)
    return Companions(procs, [list(b) for b, _ in listeners])


def close(listeners: list) -> None:
    for _, sock in listeners:
        sock.close()


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
