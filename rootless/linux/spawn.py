"""Run a helper program (slirp4netns, pasta) as our child: fork, set up, exec.

Not ``subprocess``: importing it costs a run ~6 ms, and what a helper needs here is
short and exact. The child, between fork and exec:

* arms PR_SET_PDEATHSIG (SIGKILL) and then checks that its parent is still the process
  that forked it (the kernel signals only for a parent that dies after the call; an
  orphan already adopted by init or a subreaper is caught by the pid check);
* leaves the caller's session (``setsid``): a ^C at the terminal is the container's;
* gets default signal dispositions and an empty signal mask (Python ignores SIGPIPE and
  SIGXFSZ, and an ignored signal or a blocked mask survives exec);
* gets /dev/null as stdin (and stdout unless told otherwise), the caller's scratch file
  as stderr, and no other fd but those it is given (``keep``): nothing of the caller's
  (its pty, a container's pipe, the zipapp) is held by the helper.

Everything the child runs is imported before the fork. Output goes to a *scratch* file
(a memfd): it never fills up and blocks the helper, as a pipe nobody reads would.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Iterable, List, Optional, Tuple


def scratch(name: str) -> int:
    """A close-on-exec, unnamed, growable file for a child's output (memfd; else an
    unlinked file in /tmp), at fd 3 or above."""
    try:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # a libc or kernel without memfd_create
        path = "/tmp/.rootless-%s-%s" % (name, os.urandom(6).hex())
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.unlink(path)
    return above_stdio(fd)


def above_stdio(fd: int) -> int:
    """``fd``, or a close-on-exec copy of it at 3 or above when it is 0, 1 or 2 (a caller
    started with a closed stdio gets its new fds there, and the child's dup2 onto 0-2
    would overwrite them)."""
    if fd > 2:
        return fd
    import fcntl
    try:
        copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 3)  # F_DUPFD_CLOEXEC: not in every Python's fcntl
        os.set_inheritable(copy, False)
        return copy
    finally:
        os.close(fd)


def read_tail(fd: int, limit: int = 16384) -> str:
    """The last ``limit`` bytes written to a scratch file, decoded."""
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, limit, max(0, size - limit)).decode(errors="replace")
    except OSError:
        return ""


def spawn(argv: List[str], keep: Iterable[int] = (), stdout: Optional[int] = None,
          stderr: Optional[int] = None) -> int:
    """Fork and exec ``argv`` (``argv[0]`` a path) as described above; its pid. ``keep``:
    fds (3 and above) it inherits at the same numbers; ``stdout``/``stderr``: fds for its
    1 and 2 (default /dev/null). An exec failure is written to its stderr, exit 127.
    Must be called from a single thread's process: PR_SET_PDEATHSIG follows the thread
    that forked."""
    from rootless.linux import caps, signals  # noqa: F401  (imported before the fork: the child cannot)
    keep = sorted(set(keep))
    if any(fd < 3 for fd in keep):
        raise ValueError("spawn: fds to keep must be 3 or above: %s" % keep)
    null = above_stdio(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
    parent = os.getpid()
    try:
        pid = os.fork()
    except BaseException:
        os.close(null)
        raise
    if pid == 0:  # the child: nothing may return into the caller's code
        try:
            _child(argv, keep, null, stdout, stderr, parent, signals, caps)
        except BaseException as e:
            try:
                os.write(2, ("cannot run %s: %s\n" % (argv[0], getattr(e, "strerror", None) or e))
                         .encode(errors="replace"))
            except OSError:
                pass
        finally:
            os._exit(127)
    os.close(null)
    return pid


def _child(argv, keep, null, stdout, stderr, parent, signals, caps) -> None:
    caps.set_pdeathsig(signals.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    os.setsid()
    for sig in signals.valid_signals():
        try:
            if signals.getsignal(sig) not in (signals.SIG_DFL, None):
                signals.signal(sig, signals.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP, the real-time signals Python does not know
    signals.pthread_sigmask(signals.SIG_SETMASK, ())
    for number, fd in enumerate((null, null if stdout is None else stdout, null if stderr is None else stderr)):
        os.dup2(fd, number)  # dup2 makes 0-2 inheritable
    for fd in keep:
        os.set_inheritable(fd, True)
    _close_others(keep)
    os.execv(argv[0], argv)


def _close_others(keep: List[int]) -> None:
    """Close every fd above 2 but ``keep``: those /proc/self/fd lists (closerange to the
    fd limit makes a million close calls on a Python without close_range, 3.8 among them)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, os.sysconf("SC_OPEN_MAX")))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, gone already


def wait_ready(child: int, fd: int, complete: Callable[[bytes], bool],
               timeout: float) -> Tuple[bytes, str]:
    """Read from ``fd`` (non-blocking) what ``child`` writes there to say it is ready,
    until ``complete(data)``. Returns (data, how): how is "ready", "closed" (end of file:
    every writer has gone), "ended" (the child ended first) or "late" (``timeout``
    seconds passed). The child is watched with a pidfd (Linux >= 5.3), else polled."""
    import select
    import time
    from rootless.linux import pidfd
    try:
        watch = pidfd.pidfd_open(child)
    except OSError:
        watch = -1
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if watch >= 0:
        poller.register(watch, select.POLLIN)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return data, "late"
            slice_ = left if watch >= 0 else min(left, 0.02)
            events = dict(poller.poll(int(slice_ * 1000) + 1))
            if fd in events:
                try:
                    chunk = os.read(fd, 256)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    data += chunk
                    if complete(data):
                        return data, "ready"
                    continue
                if chunk == b"":
                    return data, "closed"
            if (watch >= 0 and watch in events) or (watch < 0 and ended(child)):
                return data, "ended"
    finally:
        if watch >= 0:
            os.close(watch)


def ended(child: int) -> bool:
    """Whether our child ``child`` has ended (a zombie), without reaping it."""
    try:
        return os.waitid(os.P_PID, child, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def reap(child: int, grace: float = 0.0) -> Optional[int]:
    """Wait up to ``grace`` seconds for ``child`` to end by itself, then SIGKILL it; its
    wait status (None if someone else reaped it)."""
    from rootless.linux import signals
    if grace > 0:
        _wait_end(child, grace)
    try:
        os.kill(child, signals.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            return os.waitpid(child, 0)[1]
        except ChildProcessError:
            return None
        except InterruptedError:
            continue


def _wait_end(child: int, timeout: float) -> None:
    import select
    import time
    from rootless.linux import pidfd
    try:
        watch = pidfd.pidfd_open(child)
    except OSError:
        deadline = time.monotonic() + timeout
        while not ended(child) and time.monotonic() < deadline:
            time.sleep(0.002)
        return
    try:
        select.select([watch], [], [], timeout)
    finally:
        os.close(watch)
