"""Published TCP ports without a relay: the container's server gets the host's listener.

Relaying a published port costs each byte a second TCP connection (host loopback, then
the container's) and the relay's copies; on two cores that caps the rate near 0.6x the
host's loopback (docs/benchmarks.md, section 10). Here the connection ends at the
container's server itself, as bypass4netns does for nerdctl:

* The container's processes run under a seccomp filter (``linux.notify``) whose marked
  calls, bind, connect and shutdown(SHUT_RD/SHUT_RDWR), wait for the port forwarder
  (this module runs in it) to answer. Its first process installs it before giving up its
  capabilities, each ``exec`` does the same, and each sends its listener fd to the
  forwarder through the forwarder's *intake* socket (``ports.sock`` in the container's
  directory; only the same user may connect).
* **bind** of a TCP socket to the wildcard address and a published container port: the
  forwarder puts its own listener for that port (already bound on the host and
  listening, the one ``-p`` made) in place of the server's socket (SECCOMP_IOCTL_NOTIF_ADDFD)
  and stops accepting on it. From then on the host's clients are the server's own
  connections: no relay, no second connection. The forwarder keeps its copy, so the port
  stays the container's while it runs, and a server that starts again gets the same
  listener. Any other bind runs as made. ``getsockname`` on that socket then names the
  host's address and port, not the container's.
* **connect** from inside the container to that port on a loopback address (a health
  check's ``wget localhost``): nothing listens there in the container any more, so the
  forwarder connects a new host socket to its listener and puts that in place of the
  client's socket.
* **The rule that keeps this safe**: a host socket in the container must never become a
  client of the host's network (``connect(AF_UNSPEC)`` disconnects any TCP socket,
  shutdown(SHUT_RD) a listener; either could then reach the host's loopback, which
  ``allow_host_loopback=false`` forbids). So every connect and shutdown of an inet socket
  is made *by the forwarder* on the caller's socket (a copy through pidfd_getfd): it
  refuses them with EPERM on a host socket (one whose network namespace it may not open:
  SIOCGSKNS fails), and makes them on the container's. Acting on the copy it checked,
  rather than letting the kernel carry on with the caller's fd number, leaves no window
  in which another thread could swap the fd. A connect on a blocking socket is made on a
  thread of the forwarder's, so it never stalls the others.
* What is not closed: connect on sockets of other families (AF_UNIX and others, whose
  addresses are resolved in the caller's mount namespace) runs as made after the check
  that it is not an inet socket; a multi-threaded process that swaps that fd for a host
  socket between the check and the call could still connect it. Only containers with
  published TCP ports on a private network have host sockets at all; ``--network none``
  never uses this, and a container created with ``ROOTLESS_PORT_BYPASS=0`` in the
  environment has its ports relayed.

Every marked call waits for the forwarder: one round trip (~50 us) per connect. Once no
process holds a listener fd (the forwarder has ended), marked calls fail with ENOSYS.
"""

from __future__ import annotations

import _socket as socket
import errno
import os
import select

from rootless.linux import notify

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict

INTAKE = "ports.sock"  # in the container's directory
SIOCGSKNS = 0x894C
SO_DOMAIN = getattr(socket, "SO_DOMAIN", 39)
SO_PROTOCOL = getattr(socket, "SO_PROTOCOL", 38)
SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
INET = (socket.AF_INET, socket.AF_INET6)
CONNECT_TIMEOUT = 2.0  # seconds for a connect to our own listener on the host's loopback
EPOLLIN, EPOLLHUP, EPOLLERR = select.EPOLLIN, select.EPOLLHUP, select.EPOLLERR


def enabled(bundle) -> bool:
    """Whether ``bundle``'s published ports go to its server directly: TCP ports, a
    private network with outbound access (slirp4netns or pasta), a machine the filter is
    written for, and not turned off (created with ``ROOTLESS_PORT_BYPASS=0``: the
    annotation ``io.rootless.port-bypass``, as the monitor that starts it has its own
    environment)."""
    from rootless.runtime import config
    return (bool(bundle.helper) and any(b.proto == "tcp" for b in bundle.ports)
            and bundle.annotations.get(config.PORT_BYPASS) != "false" and notify.supported(os.uname().machine))


def intake_path(directory: str) -> str:
    return os.path.join(directory, INTAKE)


def _address(path: str):
    """A connectable name for ``path`` within sun_path's 108 bytes: through /proc/self/fd
    when the directory's own path is longer. (name, fd to close or -1)."""
    if len(path.encode()) < 100:
        return path, -1
    dirfd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return "/proc/self/fd/%d/%s" % (dirfd, os.path.basename(path)), dirfd


def hand_over(path: str, fd: int) -> None:
    """Send a filter's listener ``fd`` to the forwarder whose intake is ``path``. OSError
    when it is not there (the caller decides what that means)."""
    import array
    name, dirfd = _address(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.settimeout(5.0)
        sock.connect(name)
        sock.sendmsg([b"n"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())])
        sock.recv(1)  # the forwarder's word that it watches the fd
    finally:
        sock.close()
        if dirfd >= 0:
            os.close(dirfd)


def bind_intake(path: str):
    """The intake's listening socket (made by the forwarder before it leaves the host's
    namespaces; a stale one of a killed forwarder is replaced)."""
    name, dirfd = _address(path)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)
        try:
            sock.bind(name)
        finally:
            os.umask(old)
        sock.listen(16)
        sock.setblocking(False)
        return sock
    finally:
        if dirfd >= 0:
            os.close(dirfd)


class Intake:
    """Accepts listener fds from the container's owner and from each ``exec``."""

    def __init__(self, loop, sock, supervisor: "Supervisor", path: str) -> None:
        self.loop, self.sock, self.supervisor, self.path = loop, sock, supervisor, path
        loop.watch(sock.fileno(), EPOLLIN, self)

    def ready(self, fd: int, events: int) -> None:
        import array
        import struct
        try:
            conn_fd, _ = self.sock._accept()
        except OSError:
            return
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, conn_fd)
        try:
            conn.settimeout(2.0)
            _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, 12))
            data, ancillary, _, _ = conn.recvmsg(16, socket.CMSG_SPACE(4 * 4), getattr(socket, "MSG_CMSG_CLOEXEC", 0))
            fds = array.array("i")
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % 4])
            for got in fds:
                if uid == os.getuid() and data == b"n":  # our user's (as seen in this user namespace)
                    self.supervisor.add(got)
                else:
                    os.close(got)
            conn.send(b"k")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Supervisor:
    """Answers the marked calls of every filter listener it is given (see the module)."""

    def __init__(self, loop, listeners, factory) -> None:
        """``listeners``: relay.TcpListener of the published TCP ports; ``factory``: the
        socket to ask for new host sockets (``factory_main``)."""
        self.loop, self.factory = loop, factory
        self.ports: Dict[int, list] = {}
        for listener in listeners:
            self.ports.setdefault(listener.port, []).append(listener)
        self.given: Dict[int, object] = {}  # container port -> the TcpListener handed over
        self.listeners: Dict[int, int] = {}  # listener fds we watch -> 1

    def add(self, fd: int) -> None:
        self.listeners[fd] = 1
        self.loop.watch(fd, EPOLLIN, self)

    def ready(self, fd: int, events: int) -> None:
        if not events & EPOLLIN:  # EPOLLHUP: every process under that filter has ended
            self.loop.forget(fd)
            self.listeners.pop(fd, None)
            os.close(fd)
            return
        try:
            notif_id, tid, nr, arch, args = notify.recv(fd)
        except OSError:
            return  # the caller was interrupted: nothing to answer
        call = _call_name(nr, arch)
        try:
            if call == "bind":
                self._bind(fd, notif_id, tid, args)
            elif call == "connect":
                self._connect(fd, notif_id, tid, args)
            elif call == "shutdown":
                self._shutdown(fd, notif_id, tid, args)
            else:
                notify.respond(fd, notif_id, carry_on=True)
        except _Answer as answer:
            _respond_error(fd, notif_id, answer.errno)
        except OSError as e:
            _respond_error(fd, notif_id, e.errno or errno.EPERM)
        except Exception as e:  # a bug of ours fails that one call, and says so in the log
            os.write(2, ("rootless: port forwarder: %s (%s): %s: %s\n"
                         % (call or "call %d" % nr, tid, type(e).__name__, e)).encode(errors="replace"))
            _respond_error(fd, notif_id, errno.EPERM)

    # -- the calls ----------------------------------------------------------------------

    def _bind(self, listener: int, notif_id: int, tid: int, args) -> None:
        fd, length = int(args[0]) & 0xFFFFFFFF, int(args[2])
        port, wildcard, family = None, False, None
        if length in (16, 28):
            data = _memory(listener, notif_id, tid, args[1], length)
            family, port, wildcard = _parse_inet(data)
        candidates = self.ports.get(port) if wildcard else None
        if not candidates:
            return self._carry_on(listener, notif_id)
        target = _Target(listener, notif_id, tid)
        try:
            sock = target.socket(fd)
            try:
                if (sock.getsockopt(socket.SOL_SOCKET, SO_PROTOCOL) != socket.IPPROTO_TCP
                        or sock.getsockopt(socket.SOL_SOCKET, SO_DOMAIN) != family or _is_host(sock)):
                    return self._carry_on(listener, notif_id)
                chosen = self._listener_for(port, family)
                if chosen is None:
                    return self._carry_on(listener, notif_id)
                _same_blocking(sock, chosen.sock)
                try:
                    notify.add_fd(listener, notif_id, chosen.fd, fd, target.cloexec(fd))
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.ESRCH):
                        return None  # the caller is gone or was interrupted: nobody to answer
                    return self._carry_on(listener, notif_id)  # Linux < 5.9: the port stays relayed
            finally:
                sock.close()
        finally:
            target.close()
        if port not in self.given:
            self.given[port] = chosen
            self.loop.forget(chosen.fd)  # its accept() is the server's now
        notify.respond(listener, notif_id, 0)

    def _listener_for(self, port: int, family: int):
        """The listener handed over for ``port``: the one already given, else one of the
        caller's family, else (an IPv6 server also takes IPv4) an IPv4 one."""
        given = self.given.get(port)
        if given is not None:
            return given if given.sock.family == family or family == socket.AF_INET6 else None
        mine = self.ports[port]
        for want in (family, socket.AF_INET if family == socket.AF_INET6 else None):
            for candidate in mine:
                if candidate.sock.family == want:
                    return candidate
        return None

    def _connect(self, listener: int, notif_id: int, tid: int, args) -> None:
        fd, address, length = int(args[0]) & 0xFFFFFFFF, args[1], int(args[2])
        target = _Target(listener, notif_id, tid)
        try:
            sock = target.socket(fd)
        except BaseException:
            target.close()
            raise
        try:
            domain = sock.getsockopt(socket.SOL_SOCKET, SO_DOMAIN)
            if domain not in INET:
                return self._carry_on(listener, notif_id)
            if _is_host(sock):
                raise _Answer(errno.EPERM)  # a host socket never connects anywhere
            data = _memory(listener, notif_id, tid, address, min(max(length, 0), 128)) if length > 0 else b""
            family, port, _ = _parse_inet(data) if len(data) in (16, 28) else (None, None, False)
            given = self.given.get(port) if family is not None and _is_loopback(data) else None
            if given is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM:
                return self._connect_to_given(listener, notif_id, target, sock, fd, given)
            blocking = os.get_blocking(sock.fileno())
        except BaseException:
            sock.close()
            target.close()
            raise
        target.close()
        if blocking:
            _on_thread(lambda: _answer_connect(listener, notif_id, sock, data))
        else:
            _answer_connect(listener, notif_id, sock, data)

    def _connect_to_given(self, listener, notif_id, target, sock, fd: int, given) -> None:
        """A client inside the container, for a port whose listener is the server's: a
        host socket connected to that listener, in place of the client's."""
        try:
            host = self._host_socket(given.sock.family)
            try:
                ip, port = given.sock.getsockname()[:2]
                if ip in ("0.0.0.0", "::"):
                    ip = "127.0.0.1" if given.sock.family == socket.AF_INET else "::1"
                host.setblocking(False)
                err = host.connect_ex((ip, port))
                if err == errno.EINPROGRESS:
                    select.select([], [host], [], CONNECT_TIMEOUT)
                    err = host.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise _Answer(err)
                _same_blocking(sock, host)
                notify.add_fd(listener, notif_id, host.fileno(), fd, target.cloexec(fd))
            finally:
                host.close()
        finally:
            sock.close()
            target.close()
        notify.respond(listener, notif_id, 0)

    def _host_socket(self, family: int):
        """A new TCP socket of the host's network namespace, from the factory."""
        import array
        self.factory.sendall(b"6" if family == socket.AF_INET6 else b"4")
        _, ancillary, _, _ = self.factory.recvmsg(1, socket.CMSG_SPACE(4))
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:4])
        if not fds:
            raise _Answer(errno.ENOBUFS)
        return socket.socket(family, socket.SOCK_STREAM, 0, fds[0])

    def _shutdown(self, listener: int, notif_id: int, tid: int, args) -> None:
        fd, how = int(args[0]) & 0xFFFFFFFF, int(args[1]) & 0xFFFFFFFF
        target = _Target(listener, notif_id, tid)
        try:
            sock = target.socket(fd)
        finally:
            target.close()
        try:
            if _is_host(sock) and (sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) or not _connected(sock)):
                raise _Answer(errno.EPERM)  # it would become a bare, unconnected host socket
            sock.shutdown(how)
        finally:
            sock.close()
        notify.respond(listener, notif_id, 0)

    def _carry_on(self, listener: int, notif_id: int) -> None:
        notify.respond(listener, notif_id, carry_on=True)


def _respond_error(listener: int, notif_id: int, err: int) -> None:
    try:
        notify.respond(listener, notif_id, error=err)
    except OSError:
        pass  # nobody waits for it any more


class _Answer(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.errno = err


class _Target:
    """The calling process of one notification: its pidfd, opened once it is known that
    the thread ``tid`` (and so its process) is still the caller."""

    def __init__(self, listener: int, notif_id: int, tid: int) -> None:
        self.tgid = _thread_group(tid)
        self.pidfd = -1
        try:
            self.pidfd = _pidfd(self.tgid)
        except OSError:
            raise _Answer(errno.ESRCH)
        if not notify.still_waiting(listener, notif_id):
            self.close()
            raise _Answer(errno.ESRCH)

    def socket(self, fd: int):
        try:
            dup = notify.pidfd_getfd(self.pidfd, fd)
        except OSError as e:
            raise _Answer(errno.EBADF if e.errno == errno.EBADF else errno.EPERM)
        try:
            return socket.socket(fileno=dup)  # family and type read from the fd
        except OSError as e:
            os.close(dup)
            raise _Answer(errno.ENOTSOCK if e.errno == errno.ENOTSOCK else e.errno)

    def cloexec(self, fd: int) -> bool:
        try:
            with open("/proc/%d/fdinfo/%d" % (self.tgid, fd)) as f:
                for line in f:
                    if line.startswith("flags:"):
                        return bool(int(line.split()[1], 8) & os.O_CLOEXEC)
        except (OSError, ValueError):
            pass
        return False

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def _pidfd(pid: int) -> int:
    from rootless.linux import pidfd
    return pidfd.pidfd_open(pid)


def _thread_group(tid: int) -> int:
    try:
        with open("/proc/%d/status" % tid) as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    raise _Answer(errno.ESRCH)


def _memory(listener: int, notif_id: int, tid: int, address: int, size: int) -> bytes:
    """The caller's bytes, trusted only once the notification is known to be still
    waiting (the tid cannot have been reused meanwhile)."""
    try:
        data = notify.read_memory(tid, address, size)
    except OSError:
        raise _Answer(errno.EFAULT)
    if not notify.still_waiting(listener, notif_id):
        raise _Answer(errno.ESRCH)
    return data


def _parse_inet(data: bytes):
    """(family, port, wildcard) of a sockaddr_in/sockaddr_in6; (None, None, False) else."""
    if len(data) < 16:
        return None, None, False
    family = int.from_bytes(data[:2], "little")
    port = int.from_bytes(data[2:4], "big")
    if family == socket.AF_INET:
        return family, port, data[4:8] == bytes(4)
    if family == socket.AF_INET6 and len(data) >= 24:
        return family, port, data[8:24] == bytes(16)
    return None, None, False


def _is_loopback(data: bytes) -> bool:
    family = int.from_bytes(data[:2], "little")
    if family == socket.AF_INET:
        return data[4] == 127
    address = data[8:24]
    return address == bytes(15) + b"\x01" or (address[:12] == bytes(10) + b"\xff\xff" and address[12] == 127)


def _is_host(sock) -> bool:
    """Whether ``sock`` belongs to a network namespace we may not open: the host's (the
    forwarder holds every capability in the container's)."""
    import fcntl
    try:
        os.close(fcntl.ioctl(sock.fileno(), SIOCGSKNS))
    except OSError as e:
        return e.errno == errno.EPERM
    return False


def _connected(sock) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _same_blocking(model, sock) -> None:
    os.set_blocking(sock.fileno(), os.get_blocking(model.fileno()))


def _answer_connect(listener: int, notif_id: int, sock, address: bytes) -> None:
    """connect(2) on our copy of the caller's socket, and its result as the caller's."""
    import ctypes
    from rootless.linux.libc import libc
    try:
        buf = ctypes.create_string_buffer(address, len(address))
        result = libc().connect(ctypes.c_int(sock.fileno()), buf, ctypes.c_uint(len(address)))
        err = ctypes.get_errno() if result == -1 else 0
    finally:
        sock.close()
    try:
        notify.respond(listener, notif_id, 0, error=err)
    except OSError:
        pass  # the listener was closed meanwhile: nobody waits


def _on_thread(fn) -> None:
    import threading
    threading.Thread(target=fn, daemon=True).start()


def _call_name(nr: int, arch: int) -> str:
    index = 1 if arch == notify.AUDIT_ARCH_I386 else 0
    if index == 0:
        nr &= ~0x40000000
    for name, numbers in notify.CALLS.items():
        if numbers[index] == nr:
            return name
    return ""


def factory_main(sock) -> None:
    """The host-socket factory, a child forked by the forwarder before it joins the
    container's namespaces: a byte "4" or "6" in, a new TCP socket of that family out,
    until end of file. It holds nothing else."""
    import array
    while True:
        try:
            want = sock.recv(1)
        except InterruptedError:
            continue
        if not want:
            return
        family = socket.AF_INET6 if want == b"6" else socket.AF_INET
        try:
            made = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            sock.sendall(b"e")
            continue
        sock.sendmsg([b"s"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [made.fileno()]).tobytes())])
        made.close()
