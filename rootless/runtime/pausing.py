"""``pause`` and ``unpause``: every process of a running container frozen, then thawed.

With the container's own cgroup (cgroups.v2), the kernel's freezer does it
(``cgroup.freeze``, waiting for ``cgroup.events`` to say ``frozen 1``): the processes
cannot tell. Without one (no limits were asked, or the host delegates nothing), each
process of its pid namespace gets SIGSTOP, and SIGCONT at ``unpause``, which their parents
can see (a wait that reports a stopped child), so ``pause`` says so in one notice line.

The record says ``paused`` until ``unpause`` (or the end: killing a paused container
works; ``stop`` and ``kill`` thaw it first, so that its stop signal is delivered).
"""

import os
import sys
import time

from rootless.errors import Conflict, RootlessError
from rootless.linux import signals
from rootless.runtime import state

NO_FREEZER = ("container %s has no cgroup of its own (it runs without limits, or this host delegates "
              "none: see 'rootless info'): its processes are stopped with SIGSTOP, which their "
              "parents can see")


def pause(paths, record: dict) -> None:
    containers = state.Containers(paths)
    current = containers.settle(containers.read(record["id"]) or record)
    if current is None or current["status"] not in state.ACTIVE or not state.first_process_alive(current):
        raise _refusal("container %s is not running" % record["id"])
    if current["status"] == state.PAUSED:
        raise _refusal("container %s is already paused" % record["id"])
    if current["status"] != state.RUNNING:
        raise _refusal("container %s is restarting, wait until the container is running" % record["id"])
    if current.get("cgroup"):
        _freeze(current["cgroup"], True)
    else:
        sys.stderr.write("rootless: notice: %s\n" % (NO_FREEZER % current["name"]))
        _stop_all(current["pid"])

    def paused(r: dict):
        if r["status"] != state.RUNNING:
            return None
        r["status"] = state.PAUSED
        return r
    if containers.update(record["id"], paused) is None:
        thaw(current)  # it ended meanwhile (or was removed): nothing stays frozen
        raise _refusal("container %s is not running" % record["id"])


def unpause(paths, record: dict) -> None:
    containers = state.Containers(paths)
    current = containers.read(record["id"]) or record
    if current["status"] != state.PAUSED:
        raise _refusal("Container %s is not paused" % record["id"])
    thaw(current)

    def running(r: dict):
        if r["status"] != state.PAUSED:
            return None
        r["status"] = state.RUNNING
        return r
    containers.update(record["id"], running)


def thaw(record: dict) -> None:
    """Let a paused container's processes run again (``unpause``, and before a stop)."""
    if record.get("cgroup"):
        _freeze(record["cgroup"], False)
    elif record.get("pid") and state.first_process_alive(record):
        from rootless.runtime.processes import container_pids
        for pid in container_pids(record["pid"]):
            _kill(pid, signals.SIGCONT)


def _freeze(path: str, frozen: bool) -> None:
    from rootless.cgroups import v2
    try:
        with open(os.path.join(path, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")
    except OSError as e:
        raise RootlessError("cannot %s the container's cgroup %s: %s" % (
            "freeze" if frozen else "thaw", path, e.strerror))
    deadline = time.monotonic() + 10
    while v2.keyed(v2.read(path, "cgroup.events")).get("frozen") != (1 if frozen else 0):
        if time.monotonic() > deadline:
            raise RootlessError("the container's cgroup %s did not %s within 10 s" % (
                path, "freeze" if frozen else "thaw"))
        time.sleep(0.002)


def _stop_all(first: int) -> None:
    from rootless.runtime.processes import Paused, container_pids
    Paused(container_pids(first)).__enter__()  # SIGSTOP each, until each says so (2 s at most)


def _refusal(message: str) -> Conflict:
    """Docker's CLI exits 1 when its daemon refuses a pause or an unpause."""
    error = Conflict(message)
    error.exit_code = 1
    return error


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
