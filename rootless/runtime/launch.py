"""Start a container from its bundle: the parent's side of the set-up.

The parent is the CLI for a foreground ``run``/``start``, or the monitor for ``-d``
(``runtime.monitor``). Three processes, forked (not re-executed: the parent has started
no thread, and a fork saves an interpreter start, ~30 ms, on every run); every message
is one ``linux.sync`` message on one socketpair, whose child end K and P share::

  parent (host, you)              K: keeper (runtime.keeper)        P: first process (runtime.init)
  ------------------              --------------------------        -------------------------------
  fork K  ----------------------> die with the parent
                                  unshare(USER)
          <--------- map --------
  strategy.write(K's maps)
          ---------- mapped ---->
                                  unshare(MNT); / private;
                                  rootfs mounted
          <--------- cgroup ----- (only with limits: cgroups.v2)
  make its cgroup, move K in
          ---------- entered --->
                                  unshare(the rest: CGROUP too)
                                  fork_sibling P -----------------> die with the parent
          <--------- pid N ------ (P is the parent's child)
  network helpers (meanwhile)     exit (fuse-overlayfs: wait)       mounts; pivot_root
          ---------- go ----------------------------------------->  (waits for it)
          <--------- pty + fd ---------------------------------- [-t] user, caps, rlimits,
                                                                    no_new_privs, confinement
          <--------- end of file (exec) or error ---------------- exec
  wait for P; end K

Any child's failure is one ``error`` message, re-raised here as the same exception
(``linux.sync``). End of file after ``go`` means the command was exec'd: the socket is
close-on-exec. Nothing leaks: K, P and fuse-overlayfs die with the parent
(PR_SET_PDEATHSIG; K checks its parent right after arming it, P waits for ``go``, which a
dead parent never sends), P's death ends every process of its pid namespace, and every
mount lives in the container's own mount namespaces, which go with their last process.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Tuple

from rootless.errors import RootlessError
from rootless.linux import signals, sync
from rootless.runtime import idmapping, init, keeper
from rootless.runtime.process import Started, take_stdio, waitpid as _waitpid  # noqa: F401  (Started: launch's result)


def start(bundle, stdio: Tuple[int, int, int] = (0, 1, 2),
          on_pid: Optional[Callable[[int], None]] = None, debug=None) -> Started:
    """Set the container up and exec its command; ``on_pid(pid)`` is called as soon as P's
    pid is known (before it may exec). Raises what the set-up raised in K or P."""
    strategy = idmapping.get(bundle.idmap)
    listeners = []
    if bundle.ports:  # most runs: no network process, no import
        from rootless.runtime import network
        listeners = network.listen(bundle)  # a port in use fails here, before anything runs
    init.preload(bundle.process, bool(bundle.intake))
    try:
        parent_end, child_end = sync.pair()
        me = os.getpid()
        pid = os.fork()
    except BaseException:
        for _, sock in listeners:
            sock.close()
        for fd, _ in bundle.join or ():
            os.close(fd)
        bundle.join = None
        raise
    if pid == 0:
        parent_end.close()
        for _, sock in listeners:
            sock.close()
        take_stdio(stdio)
        sync.child_main(lambda: keeper.main(bundle, child_end, me, debug), child_end)
    child_end.close()
    for fd, _ in bundle.join or ():  # K has them (container:NAME): the parent needs them no more
        os.close(fd)
    bundle.join = None
    setup = _Setup(pid, strategy, bundle, on_pid, listeners, debug)
    try:
        setup.follow(parent_end)
    except BaseException:
        setup.abandon()
        raise
    finally:
        parent_end.close()
    started = Started(setup.pid, pid, setup.master)
    started.cgroup = setup.cgroup
    if setup.companions is not None:
        started.companions = setup.companions
    return started


class _Setup:
    """The parent's half of the messages above."""

    def __init__(self, keeper_pid: int, strategy, bundle, on_pid, listeners, debug=None):
        self.keeper, self.strategy, self.bundle, self.on_pid = keeper_pid, strategy, bundle, on_pid
        self.debug = debug
        self.listeners = listeners  # closed here once the forwarder has them (or on failure)
        self.companions = None  # runtime.network.Companions, when the container needs them
        self.pid: Optional[int] = None
        self.went = False
        self.master: Optional[int] = None
        self.cgroup = ""  # the container's cgroup directory, once made

    def follow(self, sock) -> None:
        while True:
            message, fds = sync.recv(sock, want_fds=True)
            if message is None:
                break
            op = message.get("op")
            if op == "map":
                self.strategy.write(self.keeper, self.bundle.uid_map, self.bundle.gid_map)
                sync.send(sock, "mapped")
            elif op == "cgroup":
                from rootless.cgroups import v2
                self.cgroup = v2.enter(self.bundle.cgroup, os.path.basename(self.bundle.dir), self.keeper,
                                       self.bundle.resources, self.bundle.cgroup.get("optional") or ())
                sync.send(sock, "entered")
            elif op == "pid":
                self.pid = message["pid"]
                if self.cgroup and self.bundle.cgroup.get("strategy") == "systemd":
                    from rootless.cgroups import v2
                    v2.hold(self.cgroup, self.keeper)
                if self.on_pid is not None:
                    self.on_pid(self.pid)
                if self.bundle.ports or self.bundle.helper:
                    from rootless.runtime import network
                    listeners, self.listeners = self.listeners, []
                    self.companions = network.start(self.bundle, self.pid, listeners)
            elif op == "pty" and fds:
                self.master = fds[0]
            elif op == "seccomp":
                from rootless.runtime import network
                network.supervise(self.bundle.intake, fds, message, self.debug)
            elif op == "error":
                if self.pid is None:
                    self._await_pid(sock)
                self._reap()
                sync.raise_error(message)
            if self.pid and not self.went:
                # Sent as soon as the pid is dealt with: P makes its root meanwhile and
                # finds it waiting, rather than asking and waiting for the answer. P puts
                # itself under the forwarder's seccomp filter if the forwarder took the job.
                supervised = bool(self.bundle.intake) and os.path.exists(self.bundle.intake)
                sync.send(sock, "go", supervised=supervised)
                self.went = True
        if not self.went:
            code = self._reap()
            raise RootlessError("the container's set-up ended without a word (exit %s)" % code)

    def _await_pid(self, sock) -> None:
        """After an error before "pid": P makes its root as K sends "pid", so its error may
        come before K's "pid" message. Read on until that message (P's pid, to reap it and
        to end K) or the end of file (K's own error: K alone had the socket)."""
        while True:
            message = sync.recv(sock)
            if message is None:
                return
            if message.get("op") == "pid":
                self.pid = message["pid"]
                return

    def _reap(self) -> Optional[int]:
        """Wait for whoever reported a failure (they exit right after)."""
        code = None
        if self.pid:
            _waitpid(self.pid)
            if self.keeper:  # past its part (with fuse-overlayfs, it would wait for good)
                init.kill_quietly(self.keeper, signals.SIGKILL)
        if self.keeper:
            code = init.code_of(_waitpid(self.keeper))
            self.keeper = 0
        self.pid = None
        return code

    def abandon(self) -> None:
        for _, sock in self.listeners:
            sock.close()
        self.listeners = []
        if self.companions is not None:
            self.companions.stop()
        for pid in (self.pid, self.keeper):
            if pid:
                init.kill_quietly(pid, signals.SIGKILL)
                _waitpid(pid)
        if self.master is not None:
            os.close(self.master)
        if self.cgroup:
            from rootless.cgroups import v2
            try:
                v2.remove(self.cgroup)
            except RootlessError:
                pass  # the set-up's own error is the one to report


def as_mapped_root(bundle, fn, what: str = "removing as the container's root"):
    """Run ``fn`` in a child that is root of a user namespace with the container's id
    mapping (how files a container made under sub-ids are removed, read and archived), and
    return what it returned (a JSON value, or None).

    The answer comes back on the same socket as the rest, in ``result`` messages of at
    most ``RESULT_CHUNK`` characters (a message is limited to ``sync.MAX_MESSAGE`` bytes,
    and a diff of a big container is longer)::

      parent (host, you)                 child
      ------------------                 -----
      fork ---------------------------> unshare(USER)
           <--------- map ------------
      strategy.write(child's maps)
           ---------- mapped ---------> fn()
           <--------- result (part) --- ... one or more
           <--------- end of file ----- _exit(0)       (or one ``error`` message)
    """
    strategy = idmapping.get(bundle.idmap)
    parent_end, child_end = sync.pair()
    pid = os.fork()
    if pid == 0:
        parent_end.close()

        def body():
            from rootless.linux import ns
            ns.unshare(ns.CLONE_NEWUSER)
            sync.send(child_end, "map")
            if (sync.recv(child_end) or {}).get("op") != "mapped":
                return 125
            value = fn()
            if value is not None:
                from rootless import jsonfast
                text = jsonfast.dumps(value)
                for at in range(0, len(text), RESULT_CHUNK):
                    sync.send(child_end, "result", part=text[at:at + RESULT_CHUNK])
            return 0
        sync.child_main(body, child_end)
    child_end.close()
    parts = []
    try:
        message = sync.recv(parent_end)
        if message and message.get("op") == "map":
            strategy.write(pid, bundle.uid_map, bundle.gid_map)
            sync.send(parent_end, "mapped")
            message = sync.recv(parent_end)
            while message and message.get("op") == "result":
                parts.append(message["part"])
                message = sync.recv(parent_end)
    finally:
        parent_end.close()
        status = _waitpid(pid)
    sync.raise_error(message)
    if init.code_of(status):
        raise RootlessError("%s failed (exit %d)" % (what, init.code_of(status)))
    if not parts:
        return None
    from rootless import jsonfast
    return jsonfast.loads("".join(parts))


# Characters of a result in one message: JSON escapes (\uXXXX) may make one character six
# bytes, and a message may be at most sync.MAX_MESSAGE bytes.
RESULT_CHUNK = 8000

def reap_all() -> List[Tuple[int, int]]:
    """(pid, status) of every child that has ended (WNOHANG)."""
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if not pid:
            return done
        done.append((pid, status))
