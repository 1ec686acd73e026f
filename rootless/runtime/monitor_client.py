"""The client's side of the monitor (``runtime.monitor``): find this user's monitor of
this build by its socket, start one when nobody listens, send one request, and raise the
error it answers with as the exception it names. Kept apart so that the CLI imports none
of the monitor's own code."""

import os
import socket
import sys
import time

from rootless.linux import sync

SOCKET_TIMEOUT = 120  # a start waits for fuse-overlayfs (10 s at most) and the id helpers


def build_tag() -> str:
    """Which build of rootless a monitor runs: a client only talks to its own."""
    import hashlib
    from rootless import __version__
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = here if os.path.isdir(here) else os.path.dirname(here)  # the package, or the zipapp
    try:
        stamp = "%d" % os.stat(code).st_mtime_ns
    except OSError:
        stamp = ""
    return hashlib.sha256(("%s|%s|%s" % (__version__, code, stamp)).encode()).hexdigest()[:12]


def socket_path(run_dir: str) -> str:
    return os.path.join(run_dir, "monitor-%s.sock" % build_tag())


# -- the client's side ---------------------------------------------------------------------

def request(paths, op: str, **fields) -> dict:
    """Send one request to this user's monitor (starting it if needed); its reply. An
    ``error`` reply is raised as the exception it names."""
    sock, reply = converse(paths, op, **fields)
    sock.close()
    return reply


def converse(paths, op: str, **fields):
    """``request``, but the connection stays open: (socket, reply), for a request after
    which the monitor keeps talking (``attach``: runtime.attach). The socket blocks, with
    a timeout of SOCKET_TIMEOUT."""
    from rootless.errors import RootlessError
    from rootless.paths import ensure_private_dir
    ensure_private_dir(paths.run)
    path = socket_path(paths.run)
    fields.update(root=paths.root, run=paths.run, root_reason=paths.root_reason)
    for attempt in range(3):
        sock = _connect(path)
        try:
            sock.settimeout(SOCKET_TIMEOUT)
            sync.send(sock, op, **fields)
            reply = sync.recv(sock)
        except (ConnectionResetError, BrokenPipeError):
            reply = None
        except socket.timeout:
            sock.close()
            raise RootlessError("the monitor did not answer within %d s (its log: %s)"
                                % (SOCKET_TIMEOUT, _log_path(paths.run)))
        except BaseException:
            sock.close()
            raise
        if reply is not None:
            if reply.get("op") == "error":
                sock.close()
                sync.raise_error(reply)
            return sock, reply
        sock.close()
        # The monitor was on its way out (its last container had just ended): a new one.
    raise RootlessError("the monitor closed the connection without answering (its log: %s)"
                        % _log_path(paths.run))


def _connect(path: str) -> socket.socket:
    from rootless.errors import RootlessError
    spawned = False
    deadline = time.monotonic() + 10
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
        if not spawned:
            _spawn(path)
            spawned = True
        if time.monotonic() > deadline:
            raise RootlessError("the monitor did not start within 10 s (its log: %s)"
                                % _log_path(os.path.dirname(path)))
        time.sleep(0.005)


def _spawn(path: str) -> None:
    """A new monitor: a fresh interpreter in a session of its own, which forks once more
    (so it is no session leader) and is adopted by init or the user's subreaper."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    boot = ""
    if os.path.isfile(package_parent):
        # The zipapp: its entry point installs the importer of its table of compiled
        # modules (build_zipapp.MAIN); the archive holds no .pyc files for zipimport.
        boot = ("import zipimport; z = zipimport.zipimporter(%r); "
                "exec(z.get_code('__main__'), {'__name__': 'rootless-boot', '__loader__': z}); " % package_parent)
    code = ("import sys; sys.path.insert(0, %r); %sfrom rootless.runtime.monitor import main; "
            "main(%r)" % (package_parent, boot, path))
    log = _log_path(os.path.dirname(path))
    pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", code], dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                                       (os.POSIX_SPAWN_DUP2, 1, 2)],
                         setsid=True)
    os.waitpid(pid, 0)  # it exits as soon as the real monitor is forked


def _log_path(run_dir: str) -> str:
    return os.path.join(run_dir, "monitor.log")
