"""Our own port forwarder: one process per container, in both network namespaces at once.

A socket belongs to the network namespace of the process that created it, for its whole
life, whatever namespace that process moves to later. The forwarder uses this: it is
forked by the container's owner (the CLI in the foreground, the monitor for ``-d``) in the
host's namespaces, after the host's listening sockets are bound, and then joins the
container's user and network namespaces with setns. From then on

* ``accept()`` on an inherited listener returns a *host* socket (a socket's connections are
  made in the listener's namespace), and
* every ``socket()`` it creates is the *container's*, so it reaches the container's port at
  127.0.0.1:PORT directly, as a client inside the container would:

        host network namespace          |  container network namespace
                                         |
    client --TCP--> listener 0.0.0.0:8080|
                        | accept()       |
                        v                |
                   [ forwarder: epoll, splice socket -> pipe -> socket ] --> 127.0.0.1:80 --> server
                    joined: user ns + net ns of the container; mount ns, pid ns: the host's

RootlessKit's builtin driver reaches the same end with two processes: a parent on the
host that accepts, and a child inside the container's namespace that, for each
connection, is asked over a Unix socket to connect and hands the connected socket back
with SCM_RIGHTS; the parent then copies between the two. Here no helper exists and no
message is exchanged per connection: a connection costs one accept and one non-blocking
connect, and there is one process fewer to start, watch and clean up. What it costs: the
forwarder holds capabilities in the container's user namespace (not on the host), and
the container's server sees its clients come from 127.0.0.1, as with RootlessKit's
driver (a server bound only to another address inside the container refuses them).

Start-up, and what the caller may rely on when ``start`` returns (the sequence is the
``rootless.linux.sync`` protocol over a socketpair)::

    caller (CLI / monitor)                         forwarder (forked)
    bind listeners (ports.listen)
    fork ----------------------------------------> PDEATHSIG=SIGKILL, getppid() check, setsid
    close its copies of the listeners              stdio: /dev/null, stderr -> log_path
                                                   pidfd_open(target), open /proc/T/ns/{user,net}
                                                   close every other fd
                                                   setns(user), setns(net), PDEATHSIG again
                    <----------------------------- "ready"   (or "error": start raises, reaps)
    start the container's command                  epoll loop until the target ends -> exit 0

The listeners are the forwarder's alone once ``start`` returns (or raises): the caller's
copies are closed, so a forwarder that dies, however, leaves nothing listening, and one
whose parent dies is killed by its parent-death signal. The forwarder exits 0 once the
target process has ended (its pidfd is readable: it has exited, reaped or not).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

BIG_TCP = 524280  # the kernel's GSO_MAX_SIZE, loopback's tso_max_size
READY_TIMEOUT = 30.0  # seconds the caller waits for "ready"; the set-up takes ~1 ms
NAME = b"rootless-fwd"  # its comm, as ps shows it (the command line stays the parent's)


def start(listeners, target_pid: int, log_path: Optional[str] = None, *,
          udp_idle: float = 60.0, copy: bool = False, intake: Optional[str] = None) -> int:
    """Fork the forwarder for ``listeners``, a list of (socket, container port, "tcp" |
    "udp"), into the network namespace of ``target_pid``; return its pid once it is in
    there and serving. The caller must reap it (waitpid); it ends by itself when the
    target ends, and with the caller (SIGKILL). Raises RootlessError if it cannot join the
    namespaces (the target is not ours, has gone, shares our network namespace). The
    listeners are closed here either way: the forwarder holds the only copies.

    ``udp_idle``: seconds after which a UDP flow with no datagram either way is closed.
    ``copy``: relay through recv/send buffers, never splice (tests; odd kernels).
    ``intake``: where to take the container's seccomp listeners (``network.bypass``) and
    hand its TCP servers the host's listeners; the socket exists there once ``start`` has
    returned if and only if the forwarder does so (it can reach the target's fds).
    Must be called from a single thread's process or the forking thread's death kills the
    forwarder (PR_SET_PDEATHSIG follows the thread)."""
    import gc
    import resource  # noqa: F401  (what the forwarder uses is imported before the fork:
    import signal  # after it closes the caller's fds, a zipapp's module table is gone)
    import fcntl  # noqa: F401
    import struct  # noqa: F401
    import threading  # noqa: F401
    from rootless.errors import RootlessError
    from rootless.linux import caps, netlink, ns, pidfd, sync  # noqa: F401
    from rootless.network import relay  # noqa: F401
    if intake:
        from rootless.linux import libc, notify  # noqa: F401
        from rootless.network import bypass  # noqa: F401
    parent_end, child_end = sync.pair()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError as e:
        _close(listeners, parent_end, child_end)
        raise RootlessError("cannot start the port forwarder: fork: %s" % e.strerror) from None
    if pid == 0:  # the forwarder: nothing may return into the caller's code
        code = 125
        try:
            gc.freeze()  # the caller's garbage is not ours to collect (its sockets' fds...)
            parent_end.close()
            code = _forwarder(listeners, child_end, target_pid, parent, log_path, udp_idle, copy, intake)
        except BaseException as e:
            sync.report(child_end, e, 125)
        finally:
            os._exit(code)
    _close(listeners, child_end)
    try:
        parent_end.settimeout(READY_TIMEOUT)
        message = sync.recv(parent_end)
    except OSError:
        message = None
    except BaseException:  # ^C in the caller while it waits: no forwarder left behind
        _reap(pid, signal.SIGKILL)
        raise
    finally:
        parent_end.close()
    if message and message.get("op") == "ready":
        return pid
    _reap(pid, signal.SIGKILL)
    if message and message.get("op") == "error":
        error = sync.rebuild(message)
        if not isinstance(error, RootlessError):
            error = RootlessError("cannot start the port forwarder: %s" % error)
        raise error
    raise RootlessError("the port forwarder for process %d ended before it was ready" % target_pid)


def _forwarder(listeners, chan, target: int, parent: int, log_path, udp_idle: float, copy: bool,
               intake: Optional[str]) -> int:
    """The forked child, up to its loop; returns its exit code."""
    import resource
    import signal
    from rootless.errors import RootlessError
    from rootless.linux import caps, netlink, ns, pidfd, sync
    from rootless.network import relay
    _own_signals(signal)
    caps.set_pdeathsig(signal.SIGKILL)
    # The kernel signals only for a parent that dies after the call: an orphan already
    # adopted by init or a subreaper is detected by its parent's pid.
    if os.getppid() != parent:
        return 1
    os.setsid()  # out of the terminal's process group: ^C is for the container
    os.chdir("/")  # hold no directory of the caller's (a mount could not be unmounted)
    _set_name(NAME)
    _stdio(log_path)
    # Everything about the target is opened while /proc is read as the host's process:
    # the pidfd (so a reused pid can never be mistaken for it) and its namespace files.
    try:
        watch = pidfd.pidfd_open(target)
    except OSError as e:
        if e.errno != 38:  # ENOSYS: Linux < 5.3, /proc is polled instead
            raise RootlessError("cannot start the port forwarder: process %d: %s" % (target, e.strerror))
        watch = -1
    try:
        opened = ns.open_namespaces(target, ("user", "network"))
    except OSError as e:
        raise RootlessError("cannot start the port forwarder: cannot open the namespaces of process %d "
                            "(%s): %s" % (target, e.filename, e.strerror))
    if ns.CLONE_NEWNET not in [flag for _, flag in opened]:
        raise RootlessError("cannot start the port forwarder: process %d shares this network namespace "
                            "(ports of --network host are the host's own)" % target)
    supervised = _supervision(intake, watch) if intake else None  # (intake socket, factory end)
    keep = [sock.fileno() for sock, _, _ in listeners] + [chan.fileno(), watch] + [fd for fd, _ in opened]
    if supervised:
        keep += [supervised[0].fileno()] + [end.fileno() for end in supervised[1]]
    _close_other_fds(keep)
    if supervised:
        supervised = supervised[0], _fork_factory(supervised[1], parent_signals=signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # six fds a TCP connection (two sockets, two pipes); raised after the
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # close, which goes to soft
    try:
        ns.join(opened)  # the user namespace first: it gives the capability setns(net) needs
    except OSError as e:
        raise RootlessError("cannot start the port forwarder: cannot join the namespaces of process %d: %s"
                            % (target, e.strerror))
    caps.set_pdeathsig(signal.SIGKILL)  # a credential change may have cleared it
    if os.getppid() != parent:
        return 1
    _big_loopback(netlink)
    loop = relay.serve(listeners, pidfd=watch, pid=target, copy=copy, udp_idle=udp_idle)
    door = None
    if supervised:
        from rootless.network import bypass
        tcp = [h for h in loop.handlers.values() if isinstance(h, relay.TcpListener)]
        door = bypass.Intake(loop, supervised[0], bypass.Supervisor(loop, tcp, supervised[1]), intake)
    sync.send(chan, "ready")
    chan.close()
    try:
        loop.run()
    except Exception as e:  # one line for the log; the caller sees the exit code
        os.write(2, ("rootless: port forwarder: %s: %s\n" % (type(e).__name__, e)).encode(errors="replace"))
        return 1
    finally:
        if door is not None:
            door.close()
    return 0


def _supervision(intake: str, watch: int):
    """(intake socket, factory socket) when this forwarder can take the target's fds (it
    tries one: pidfd_getfd needs ptrace rights, which a hardened host may deny), else
    None: then the ports are relayed, and no intake exists for a process to look for."""
    from rootless.network import bypass
    from rootless.linux import notify
    try:
        os.unlink(intake)
    except OSError:
        pass
    if watch < 0:
        return None
    try:
        os.close(notify.pidfd_getfd(watch, 2))
    except OSError as e:
        if e.errno != 9:  # EBADF: allowed, and no fd 2
            return None
    import _socket
    here, there = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    return bypass.bind_intake(intake), (here, there)


def _fork_factory(ends, parent_signals):
    """The host-socket factory (``bypass.factory_main``): forked while we are still in
    the host's network namespace; dies with us. Returns our end."""
    here, there = ends
    pid = os.fork()
    if pid == 0:
        try:
            from rootless.linux import caps
            from rootless.network import bypass
            caps.set_pdeathsig(parent_signals.SIGKILL)
            _close_other_fds([there.fileno()])
            bypass.factory_main(there)
        finally:
            os._exit(0)
    there.close()
    return here


def _big_loopback(netlink) -> None:
    """Every forwarded byte crosses the container's loopback: let TCP there build 512 KiB
    packets rather than 64 KiB ones ("BIG TCP", Linux 6.3), an eighth of the per-packet
    work for the forwarder and the container's server alike (measured on 2 vCPUs, best of
    5 runs of 1 GiB: upload 3992 -> 4429 MB/s, download 3072 -> 4632 MB/s, the host
    loopback 4018 and 4032 in the same run). Only the container's lo, which the forwarder
    may change as root of its user namespace; kernels before 6.3 ignore the attribute."""
    try:
        netlink.set_link(netlink.LOOPBACK_INDEX, [(netlink.IFLA_GSO_IPV4_MAX_SIZE, BIG_TCP),
                                                  (netlink.IFLA_GRO_IPV4_MAX_SIZE, BIG_TCP)])
    except OSError:
        pass  # a device that cannot: the default 64 KiB works


def _own_signals(signal) -> None:
    """Drop the caller's Python handlers (they would run the caller's code here), ignore
    what a terminal or a session's end sends; SIGPIPE stays ignored (a peer that has gone
    is an EPIPE for the relay, not our death); SIGTERM ends us."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for sig in signal.valid_signals():
        try:
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    for name in ("SIGINT", "SIGHUP", "SIGQUIT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPIPE"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _set_name(name: bytes) -> None:
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(name)
    except OSError:
        pass


def _stdio(log_path) -> None:
    """stdin and stdout: /dev/null (a pipe of the caller's stays closable); stderr: the
    log file when given, else the caller's."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    if log_path:
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.dup2(log, 2)
        os.close(log)


def _close_other_fds(keep: List[int]) -> None:
    """Close every fd but 0-2 and ``keep``: nothing of the caller's (its pty, its log, a
    container's pipe, the zipapp's module table, so nothing imports after this) is held."""
    low = 3
    for fd in sorted(set(fd for fd in keep if fd >= 3)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _close(listeners, *socks) -> None:
    for sock, _, _ in listeners:
        sock.close()
    for sock in socks:
        sock.close()


def _reap(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
