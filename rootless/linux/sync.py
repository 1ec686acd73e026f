"""The one parent/child protocol: JSON messages over an AF_UNIX SOCK_SEQPACKET socketpair.

Every process rootless forks to do work in namespaces (the probes, a container's keeper
and first process, a removal as the container's root) talks to the process that forked
it this way, and the monitor's clients talk to the monitor the same way over its socket.
SEQPACKET keeps message boundaries (the kernel frames them) and, unlike a pipe, carries
file descriptors (``send(..., fds=[...])``: a pty master). A message is one JSON object
with an ``"op"`` key; a reader sees ``None`` (end of file) once every holder of the other
end has closed it or exec'd: the sockets are close-on-exec.

A child's failure travels as one ``error`` message: the exception's class name, errno,
message and file name, plus the exit code it stands for. ``raise_error`` re-raises it in
the parent as the same class: an ``OSError`` keeps its errno (so ``FileNotFoundError``
comes back as itself), a ``rootless.errors`` class keeps its exit code (126, 127, ...).
Anything else comes back as a ``RootlessError`` naming the original class.
"""

from __future__ import annotations

import _socket as socket  # not socket.py: its enum classes cost every run ~2 ms to build
import array
import os

from rootless import jsonfast


TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

MAX_MESSAGE = 65536
_FDS_SPACE = socket.CMSG_SPACE(16 * array.array("i").itemsize)


def pair() -> Tuple[socket.socket, socket.socket]:
    """(parent end, child end): close-on-exec, as Python makes every socket. They are the
    C module's socket objects; the functions here take socket.socket ones (the monitor's)
    as well."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, op: str, fds: Optional[List[int]] = None, **fields) -> None:
    fields["op"] = op
    data = jsonfast.dumps(fields).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
    else:
        sock.sendall(data)


def recv(sock: socket.socket, want_fds: bool = False):
    """The next message (a dict), or None at end of file; with ``want_fds``, (message, fds)
    where the fds that came with it are close-on-exec."""
    flags = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, _FDS_SPACE if want_fds else 0, flags)
    fds: List[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[:len(payload) - len(payload) % got.itemsize])
            fds.extend(got)
    message = jsonfast.loads(data.decode()) if data else None
    return (message, fds) if want_fds else message


def report(sock: Optional[socket.socket], exc: BaseException, code: int = 125) -> None:
    """Send ``exc`` to the parent as an ``error`` message (never raises)."""
    if sock is None:
        return
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    try:
        send(sock, "error", type=type(exc).__name__, errno=getattr(exc, "errno", None) or 0,
             message=" ".join(str(message).split())[:4000], code=getattr(exc, "exit_code", code),
             filename=getattr(exc, "filename", None) if isinstance(exc, OSError) else None)
    except (OSError, ValueError, TypeError):
        pass


def rebuild(message: dict) -> BaseException:
    """The exception an ``error`` message describes, as its own class where we know it."""
    import builtins
    from rootless import errors
    kind, text = message.get("type", ""), message.get("message", "")
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.RootlessError):
        return cls(text)
    cls = getattr(builtins, kind, None)
    if isinstance(cls, type) and issubclass(cls, OSError) and message.get("errno"):
        return OSError(message["errno"], text, message.get("filename"))
    error = errors.RootlessError("%s: %s" % (kind, text) if kind else text)
    error.exit_code = message.get("code") or 125
    return error


def raise_error(message: Optional[dict]) -> None:
    """Raise what an ``error`` message carries (other messages: nothing)."""
    if message and message.get("op") == "error":
        raise rebuild(message)


def child_main(fn, sock: Optional[socket.socket]) -> None:
    """Run ``fn`` in a forked child and ``_exit`` with its code; an exception is reported on
    ``sock`` first. The child never returns into the code that forked it."""
    code = 125
    try:
        code = fn() or 0
    except BaseException as e:
        code = getattr(e, "exit_code", 125)
        report(sock, e, code)
    finally:
        os._exit(code)
