"""A container's network processes ("companions"): its network helper and port forwarder.

A container with a network namespace of its own may have processes beside it, children
of the container's owner (the CLI in the foreground, the monitor for ``-d``): the network
*helper* (slirp4netns or pasta, ``network.helper``) that gives the namespace outbound
access, and, with published ports (``-p``/``-P``), the *forwarder*
(``network.forwarder``) that carries the ports from listeners on the host into the
namespace.

Their order in ``launch.start``::

  owner                                     K / P
  bind the host listeners (``listen``) ---- a port in use fails here: nothing started yet
  fork K ---------------------------------> namespaces, rootfs, fork P (waits for "go")
  <---------------------- pid P ----------
  ``start(bundle, P, listeners)``: the helper configures P's network namespace, then
  the forwarder joins it and reports ready; it owns the listeners from then on (the
  owner's copies are closed)
  "go" -----------------------------------> the command runs with its network up

They end with the container: the owner stops them when it reaps P (``Companions.stop``),
they die with the owner (their parent-death signal), and the forwarder and slirp4netns
also end by themselves when P does (exit 0: not a crash; pasta waits to be stopped). One that ends before its container is a crash: the owner notices it (SIGCHLD)
and leaves the reason in the record (``crash_note``), where ``ps`` and ``inspect`` show it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List

from rootless.linux import signals


class Companion:
    """One process that serves a container: its pid and what it is (for messages)."""

    def __init__(self, pid: int, name: str):
        self.pid, self.name = pid, name

    def stop(self, wait: bool = True) -> None:
        """End it (if still there) and reap it. ``wait=False`` (a CLI about to exit): do
        not wait for its end, which for a helper holding a tap device is the kernel taking
        the device down (~20 ms); killed, it ends without us, and init reaps it."""
        if not self.pid:
            return
        try:
            os.kill(self.pid, signals.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            pass
        self.pid = 0


class Companions:
    """The network processes of one run of a container, and the ports it published."""

    def __init__(self, procs: List[Companion], ports: list):
        self.procs, self.ports = procs, ports

    def pids(self) -> List[int]:
        return [c.pid for c in self.procs if c.pid]

    def stop(self, wait: bool = True) -> None:
        for c in self.procs:
            c.stop(wait)


def listen(bundle) -> list:
    """The host listeners of the bundle's published ports: ``[(binding, socket)]``, bound
    in the owner's network namespace before anything starts (errors exit 125)."""
    if not bundle.ports:
        return []
    from rootless.network import ports
    return ports.listen(bundle.ports)


def start(bundle, pid: int, listeners: list) -> Companions:
    """Start what the container's network needs, for its first process ``pid`` (its
    namespaces exist; it waits for "go"): the helper first (the namespace gets its
    interface and routes), then the forwarder. The owner's copies of the listeners are
    closed whether it succeeds or raises; a helper already started is stopped on failure."""
    procs: List[Companion] = []
    try:
        if bundle.helper:
            from rootless.network import helper
            started = helper.start(bundle.helper, bundle.network_options, pid)
            procs.append(Companion(started.pid, started.name))
    except BaseException:
        for _, sock in listeners:
            sock.close()
        raise
    try:
        _forward(listeners, pid, procs, bundle)
    except BaseException:
        Companions(procs, []).stop()
        raise
    return Companions(procs, [list(b) for b, _ in listeners])


def _forward(listeners: list, pid: int, procs: List[Companion], bundle) -> None:
    if not bundle.intake and bundle.ports:  # one of an earlier run with the bypass
        try:
            os.unlink(os.path.join(bundle.dir, "ports.sock"))
        except OSError:
            pass
    if listeners:
        from rootless.network import forwarder
        # forwarder.start owns the sockets from here: closed in this process, ok or not
        fwd = forwarder.start([(sock, b.container_port, b.proto) for b, sock in listeners], pid,
                              intake=bundle.intake or None)
        procs.append(Companion(fwd, "port forwarder"))


def supervise(intake: str, fds: list, message: dict, debug=None) -> None:
    """A container process's ``seccomp`` message: its filter's listener goes to the port
    forwarder's ``intake`` (``network.bypass``). A process whose kernel refused the filter
    said why instead: its ports stay relayed, and ``debug`` is told."""
    if not fds:
        if debug is not None:
            debug("published ports are relayed: the kernel refused the seccomp filter (%s)" % message.get("error"))
        return
    from rootless.errors import RootlessError
    from rootless.network import bypass
    try:
        bypass.hand_over(intake, fds[0])
    except OSError as e:
        raise RootlessError("cannot hand the container's seccomp listener to its port forwarder (%s): %s"
                            % (intake, e.strerror or e)) from None
    finally:
        for fd in fds:
            os.close(fd)


def join(containers, bundle) -> None:
    """``--network container:NAME``: open that container's user and network namespaces for
    the keeper to join (``bundle.join``), once it is checked to be running; Docker's words
    when it is not. A container on the host's network has no namespace to join: this one
    then shares the host's too."""
    if bundle.network != "container":
        return
    from rootless.errors import Conflict, NotFound
    from rootless.linux import ns
    from rootless.runtime import state
    other = containers.read(bundle.network_container)
    if other is None:
        raise NotFound("joining network namespace of container: No such container: %s" % bundle.network_container)
    if other.get("status") not in state.ACTIVE or not state.first_process_alive(other):
        raise Conflict("cannot join network namespace of a non running container: %s" % other.get("name"))
    opened = ns.open_namespaces(other["pid"], ["user", "network"])
    if not state.first_process_alive(other) or len(opened) != 2:  # ended meanwhile, or no netns of its own
        for fd, _ in opened:
            os.close(fd)
        if len(opened) != 2 and state.first_process_alive(other):
            return
        raise Conflict("cannot join network namespace of a non running container: %s" % other.get("name"))
    bundle.join = opened
    # Its published ports go to its servers directly (network.bypass): this container's
    # processes get the same filter, under the other's forwarder, and so does an exec
    # here (it finds the forwarder through our own directory's name for it).
    intake, mine = os.path.join(containers.dir(other["id"]), "ports.sock"), os.path.join(bundle.dir, "ports.sock")
    try:
        os.unlink(mine)
    except OSError:
        pass
    if os.path.exists(intake):
        bundle.intake = intake
        os.symlink(intake, mine)


def crash_note(name: str, status: int) -> str:
    """What ``ps``/``inspect`` say of a network process that ended before its container."""
    if os.WIFSIGNALED(status):
        try:
            import signal  # its names (a crash, rare: the enums cost every run otherwise)
            how = "killed by " + signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            how = "killed by signal %d" % os.WTERMSIG(status)
    else:
        how = "exit %d" % os.WEXITSTATUS(status)
    return "%s ended (%s)" % (name, how)
