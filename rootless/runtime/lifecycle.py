"""The lifecycle verbs on a container record: start (detached), stop, kill, wait, remove.

No daemon: the CLI signals a container's first process itself (it is yours, in a user
namespace you own), and whoever owns the record (the monitor for ``-d``, a foreground
``run``) writes the exit. A command waits for what it asked for with a deadline and
never on a dead owner: a record whose owner is gone is settled by the reading itself.
"""

import errno
import os
import signal
import time
from typing import Optional

from rootless.errors import Conflict, RootlessError
from rootless.runtime import state

POLL = 0.01


def start_detached(paths, record: dict) -> int:
    """Have this user's monitor start the container; its first process's pid."""
    from rootless.runtime import monitor_client
    return monitor_client.request(paths, "start", id=record["id"])["pid"]


def signal_number(name: str) -> int:
    """A signal by number or name, with or without SIG, RTMIN+n/RTMAX-n (Docker's forms)."""
    from rootless.errors import UsageError
    text = str(name).upper()
    text = text[3:] if text.startswith("SIG") else text
    if text.isdigit():
        number = int(text)
    elif text.startswith("RTMIN+") and text[6:].isdigit():
        number = signal.SIGRTMIN + int(text[6:])
    elif text.startswith("RTMAX-") and text[6:].isdigit():
        number = signal.SIGRTMAX - int(text[6:])
    elif text in ("RTMIN", "RTMAX"):
        number = signal.SIGRTMIN if text == "RTMIN" else signal.SIGRTMAX
    else:
        number = getattr(signal, "SIG" + text, 0)
        number = int(number) if isinstance(number, signal.Signals) else 0
    if not 0 < number < signal.NSIG:
        raise UsageError("invalid signal: %s" % name)
    return number


def kill(paths, record: dict, sig: int, by_user: bool = True) -> None:
    """Send ``sig`` to the container's first process (Docker's error if it is not running).
    As dockerd's killWithSignal: any kill marks the container stopped by its user (so
    ``unless-stopped`` does not restart it), and cancels its restart policy altogether
    unless a stop signal was configured and ``sig`` is another one (see cancels_restart)."""
    containers = state.Containers(paths)
    if by_user:
        _mark_stopped(containers, record, cancel=cancels_restart(sig, record.get("stop_signal") or ""))
    current = containers.settle(containers.read(record["id"]) or record)
    if by_user and current is not None and current["status"] == state.RESTARTING:
        return  # as dockerd: between two runs, the mark above is all a kill has to do
    if by_user and current is not None and current["status"] == state.RUNNING \
            and (current.get("restart") or {}).get("name", "no") != "no" and not state.first_process_alive(current):
        # Its run has just ended and its monitor has not recorded it yet: between two runs
        # as well. The mark stops the next run; refusing would leave the kill half-done
        # (the restart cancelled, yet "not running" said).
        return
    if current is None or current["status"] not in (state.RUNNING, state.PAUSED) \
            or not state.first_process_alive(current):
        raise Conflict("cannot kill container: %s: container %s is not running" % (record["name"], record["id"]))
    if current["status"] == state.PAUSED and sig not in (signal.SIGKILL, signal.SIGSTOP):
        from rootless.runtime.pausing import thaw
        thaw(current)  # a frozen process takes no other signal; it stays "paused" in the record
    try:
        os.kill(current["pid"], sig)
    except ProcessLookupError:
        pass
    if sig == signal.SIGKILL:
        _kill_cgroup(current)


def stop(paths, record: dict, timeout: Optional[int] = None, sig: Optional[int] = None) -> None:
    """The stop signal, then SIGKILL after ``timeout`` seconds (default 10), then wait for
    the owner to record the exit. Stopping a stopped container does nothing, as Docker."""
    from rootless.runtime.config import Bundle
    containers = state.Containers(paths)
    _mark_stopped(containers, record)
    current = containers.read(record["id"])
    if current is None or current["status"] not in state.ACTIVE:
        return
    if current["status"] == state.RESTARTING:
        # Between two runs (its monitor waits out the backoff, up to a minute): nothing to
        # signal; it is exited now, and the monitor finds it so when its restart is due.
        def exited(r: dict) -> Optional[dict]:
            if r["status"] != state.RESTARTING:
                return None
            r.update(status=state.EXITED, monitor=None, pid=None, finished=time.time())
            return r
        containers.update(record["id"], exited)
        return
    if current["status"] == state.PAUSED and state.first_process_alive(current):
        from rootless.runtime.pausing import thaw
        thaw(current)  # its stop signal must reach it
        current["status"] = state.RUNNING
    if current["status"] == state.RUNNING and state.first_process_alive(current):
        if sig is None:
            sig = signal_number(Bundle.load(containers.dir(record["id"])).stop_signal)
        _signal(current, sig)
        if not _died(current, 10 if timeout is None else timeout):
            _signal(current, signal.SIGKILL)
            _died(current, 10)
    wait_settled(containers, record["id"], timeout=10)


def restart(paths, record: dict, timeout: Optional[int] = None, sig: Optional[int] = None) -> None:
    """``restart``: stop, then start detached. A ``--rm`` container is not removed by the
    exit a restart causes (dockerd's HasBeenManuallyRestarted): the mark, read where an
    exit is recorded (``state.removed_at_exit``), lasts until the next start."""
    containers = state.Containers(paths)

    def mark(r: dict) -> Optional[dict]:
        if not r.get("auto_remove") or r.get("restarting_by_user"):
            return None
        r["restarting_by_user"] = True
        return r
    containers.update(record["id"], mark)
    stop(paths, record, timeout, sig)
    current = containers.find(record["id"])
    start_detached(paths, current)


def wait_settled(containers, cid: str, timeout: Optional[float] = None) -> Optional[dict]:
    """Wait until the container is neither running nor restarting (its exit recorded, or
    its owner dead); the record then (None if it was removed)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL
    while True:
        record = containers.read(cid)
        if record is None:
            return None
        record = containers.settle(record)
        if record is None or record["status"] not in (state.RUNNING, state.RESTARTING, state.PAUSED):
            return record
        if deadline is not None and time.monotonic() > deadline:
            raise RootlessError("container %s did not stop within %d s" % (record["name"], timeout))
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def wait_exit(paths, record: dict) -> int:
    """``wait``: block until the container stops; its exit code."""
    containers = state.Containers(paths)
    last = wait_settled(containers, record["id"])
    if last is None:
        code = containers.left_code(record["id"])
        return 0 if code is None else code
    return last.get("exit_code") or 0


def remove(paths, record: dict, force: bool, volumes: bool = False) -> None:
    """``rm``: refuse a running container without ``force``; with it, kill the container,
    wait for its processes to end, and remove it (its owner then leaves the record be)."""
    from rootless.runtime.start import remove as remove_dir
    containers = state.Containers(paths)
    marked = []

    def removing(r: dict) -> Optional[dict]:
        r = containers.settle(r) or r
        if r["status"] in state.ACTIVE and not force:
            raise Conflict('cannot remove container "/%s": container is running: stop the container '
                           "before removing or force remove" % r["name"])
        marked.append(dict(r))
        r["status"] = state.REMOVING
        return r
    try:
        if containers.update(record["id"], removing) is None:
            return  # removed meanwhile
    except OSError as e:
        # A full disk cannot take the mark; the rename that begins the removal (which
        # needs no space) claims the container instead, so rm still frees the disk.
        if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not marked:
            raise
    before = marked[0]
    if before["status"] in state.ACTIVE and state.first_process_alive(before):
        _signal(before, signal.SIGKILL)
        _died(before, 10)
    remove_dir(paths, before, volumes=volumes)


def cancels_restart(sig: int, configured_stop_signal: str) -> bool:
    """Whether ``kill -s sig`` ends the restart policy (dockerd's ExitOnNext): SIGKILL, any
    signal when no stop signal was configured, or the configured one (pure)."""
    if sig == signal.SIGKILL or not configured_stop_signal:
        return True
    return sig == signal_number(configured_stop_signal)


def _mark_stopped(containers, record: dict, cancel: bool = True) -> None:
    """A container stopped (or killed) by its user: ``unless-stopped`` does not restart it
    (dockerd's HasBeenManuallyStopped) and, with ``cancel``, no policy does (ExitOnNext:
    every stop, and most kills). Both last until the next ``start``."""
    def mark(r: dict) -> Optional[dict]:
        if r.get("stopped_by_user") and (r.get("restart_cancelled") or not cancel):
            return None
        r["stopped_by_user"] = True
        r["restart_cancelled"] = bool(r.get("restart_cancelled") or cancel)
        return r
    containers.update(record["id"], mark)


def _signal(record: dict, sig: int) -> None:
    if state.first_process_alive(record):
        try:
            os.kill(record["pid"], sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            _kill_cgroup(record)


def _kill_cgroup(record: dict) -> None:
    """SIGKILL, with a cgroup of its own: every process in it at once (cgroup.kill), not
    only through the end of its pid namespace (an exec'd process's children included)."""
    if record.get("cgroup"):
        from rootless.cgroups import v2
        v2.kill(record["cgroup"])


def _died(record: dict, timeout: float) -> bool:
    """Whether the first process is gone within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while state.first_process_alive(record):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True
