"""A container's own cgroup v2: made before its first process, filled with its limits,
entered by its keeper (so every process of the container is in it), removed at its end.

Two ways to a directory we may write (``cgroups.detect`` chose one at ``create``):

* ``cgroupfs``: our own cgroup ``D`` is delegated to us. The container's cgroup is
  ``D/[PARENT/]rootless-ID``. cgroup v2 lets a cgroup hand controllers to its children
  only while it holds no process itself, so when ``D`` holds some (our shell, this CLI)
  they are moved into ``D/leaf`` first, once.
* ``systemd``: the systemd user manager's tree is ours. The user manager is asked (busctl,
  StartTransientUnit) for a delegated scope ``S`` with the keeper in it; the keeper is
  moved on to ``S/container``, the container's cgroup, and the controllers are handed
  down from ``S``, which then holds no process itself. Once the container's first process
  runs, the keeper moves on to ``S/holder`` and waits there: systemd removes ``S``, with
  everything in it, the moment it is empty, and its owner must read ``memory.events``
  first. The owner ends the keeper after that.

Nothing here is ever written outside those directories.
"""

from __future__ import annotations

import errno
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List

from rootless.errors import RootlessError
from rootless.linux import signals

# The order runc and crun write them in: cpuset before the rest, memory.low before max.
FILE_ORDER = ("cpuset.cpus", "cpuset.mems", "memory.low", "memory.max", "memory.swap.max",
              "cpu.weight", "cpu.max", "pids.max", "io.weight")
LEAF = "leaf"


def controllers_for(files: "Dict[str, str]") -> "List[str]":
    """The controllers whose files ``files`` writes."""
    return sorted({name.split(".", 1)[0] for name in files})


def enter(spec: dict, cid: str, pid: int, files: "Dict[str, str]", optional=()) -> str:
    """Make the container's cgroup, write ``files`` into it and move ``pid`` in; its
    directory. ``spec``: the bundle's cgroup annotation ({"strategy", "parent", "below"}).
    ``optional``: files that may be missing (a default of dockerd's, not asked for)."""
    wanted = controllers_for(files)
    if spec.get("strategy") == "systemd":
        return _enter_scope(spec, cid, pid, files, optional, wanted)
    if spec.get("strategy") != "cgroupfs":
        raise RootlessError("unknown cgroup strategy %r in the bundle" % spec.get("strategy"))
    base = spec["parent"]
    _hand_down(base, wanted, make_leaf=True)
    path = base
    for name in [n for n in (spec.get("below") or "").split("/") if n]:
        path = os.path.join(path, name)
        _mkdir(path)
        _hand_down(path, wanted, make_leaf=False)
    path = os.path.join(path, "rootless-" + cid)
    _fill(path, files, optional)
    move(path, pid)
    return path


def move(path: str, pid: int) -> None:
    _write(os.path.join(path, "cgroup.procs"), str(pid))


def hold(path: str, keeper: int) -> None:
    """Move the keeper out of the container's cgroup of a systemd scope into the scope's
    ``holder``: it keeps the scope (so the container's cgroup, and its memory.events)
    until the container's owner has read it, and counts against none of its limits."""
    holder = os.path.join(os.path.dirname(path), "holder")
    _mkdir(holder)
    move(holder, keeper)


def join(path: str, pid: int) -> None:
    """Move ``pid``, a process of ours from outside (``exec``'s helper), into the running
    container's cgroup ``path``. Where we may not (a systemd scope: the common ancestor is
    root's), the user manager moves it (busctl AttachProcessesToUnit, systemd >= 238)."""
    try:
        move(path, pid)
        return
    except RootlessError as e:
        scope = os.path.dirname(path)
        if getattr(e, "errno", None) != errno.EACCES or not scope.endswith(".scope"):
            raise
    from rootless.cgroups import detect
    from rootless.linux.idmap import spawn, which
    busctl = which("busctl")
    if not busctl:
        raise RootlessError("busctl is not installed: it asks the systemd user manager to move the process")
    argv = [busctl, "--user", "--quiet", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "AttachProcessesToUnit", "ssau", os.path.basename(scope),
            "/" + os.path.basename(path), "1", str(pid)]
    code, said = spawn(argv, env=detect.user_bus_env(os.getuid()))
    if code:
        raise RootlessError("the systemd user manager did not move the process into the container's cgroup: %s"
                            % (said.strip().splitlines()[-1] if said.strip() else "busctl exit %d" % code))
    want = path[len(detect.hierarchy(detect.read_text("/proc/self/mounts"))[1]):]
    deadline = time.monotonic() + 10
    while detect.own_path(detect.read_text("/proc/%d/cgroup" % pid)) != want:
        if time.monotonic() > deadline:
            raise RootlessError("the process did not reach the container's cgroup %s within 10 s" % path)
        time.sleep(0.002)


def remove(path: str, timeout: float = 2.0) -> None:
    """End whatever is left in ``path`` (cgroup.kill, where the kernel has it) and remove
    it, then the systemd scope around it when it was ours and is now empty."""
    if not path or not os.path.isdir(path):
        return
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        try:
            os.rmdir(path)
            break
        except FileNotFoundError:
            break
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise RootlessError("cannot remove the container's cgroup %s: %s" % (path, e.strerror))
        if not killed:
            kill(path)
            killed = True
        time.sleep(0.005)
    scope = os.path.dirname(path)
    if os.path.basename(path) == "container" and scope.endswith(".scope"):
        _rmdir_quietly(os.path.join(scope, "holder"))  # once the keeper has gone
        _rmdir_quietly(scope)  # else systemd removes it, once it sees it empty


def kill(path: str) -> bool:
    """SIGKILL every process in the cgroup and below (cgroup.kill, Linux >= 5.14; else
    each pid of cgroup.procs, here and below). Whether anything was signalled."""
    try:
        _write(os.path.join(path, "cgroup.kill"), "1")
        return True
    except (OSError, RootlessError):
        pass
    sent = False
    for root, _, _ in os.walk(path):
        for pid in procs(root):
            try:
                os.kill(pid, signals.SIGKILL)
                sent = True
            except OSError:
                pass
    return sent


def procs(path: str) -> "List[int]":
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(line) for line in f if line.strip()]
    except OSError:
        return []


def oom_killed(path: str) -> bool:
    """Whether the kernel's OOM killer ended a process of this cgroup (memory.events)."""
    return keyed(read(path, "memory.events")).get("oom_kill", 0) > 0


def all_procs(path: str) -> "List[int]":
    """Every process in the cgroup and below, sorted (``top``)."""
    found = set()
    for root, _, _ in os.walk(path):
        found.update(procs(root))
    return sorted(found)


def read(path: str, name: str) -> str:
    """A cgroup file's text ("" when it cannot be read)."""
    try:
        with open(os.path.join(path, name)) as f:
            return f.read()
    except OSError:
        return ""


def keyed(text: str) -> "Dict[str, int]":
    """A flat-keyed cgroup file (memory.events, cpu.stat, ...) as {key: number}."""
    values = {}
    for line in text.splitlines():
        key, _, number = line.partition(" ")
        if number.strip().isdigit():
            values[key] = int(number)
    return values


def _fill(path: str, files: "Dict[str, str]", optional) -> None:
    _mkdir(path, exist_ok=False)
    try:
        write_files(path, files, optional)
    except BaseException:
        _rmdir_quietly(path)
        raise


def write_files(path: str, files: "Dict[str, str]", optional) -> None:
    """Write the limit files into the cgroup ``path``, in FILE_ORDER; nothing is written
    when one of them (not ``optional``) is missing: its controller is not enabled there."""
    missing = [n for n in files if n not in optional and not os.path.exists(os.path.join(path, n))]
    if missing:
        raise RootlessError("the container's cgroup %s has no %s (its controller is not enabled there)"
                            % (path, " ".join(sorted(missing))))
    for name in sorted(files, key=lambda n: FILE_ORDER.index(n) if n in FILE_ORDER else len(FILE_ORDER)):
        target = os.path.join(path, name)
        if name in optional and not os.path.exists(target):
            continue
        try:
            _write(target, files[name])
        except RootlessError as e:
            raise RootlessError("cannot set %s to %r for the container: %s" % (name, files[name], e))


def _hand_down(path: str, wanted: "List[str]", make_leaf: bool) -> None:
    """Enable ``wanted`` in ``path``'s cgroup.subtree_control, with every other controller
    of cgroups.detect.CONTROLLERS that ``path`` has (so that ``update`` may set any limit
    later). A cgroup with processes of its own cannot (EBUSY): with ``make_leaf``, they are
    moved into ``path/leaf`` first."""
    from rootless.cgroups.detect import CONTROLLERS
    have = read(path, "cgroup.controllers").split()
    wanted = sorted(set(wanted) | {c for c in CONTROLLERS if c in have})
    enabled = read(path, "cgroup.subtree_control").split()
    missing = [c for c in wanted if c not in enabled]
    if not missing:
        return
    text = " ".join("+" + c for c in missing)
    try:
        _write(os.path.join(path, "cgroup.subtree_control"), text)
        return
    except RootlessError as e:
        if getattr(e, "errno", None) != errno.EBUSY or not make_leaf:
            raise RootlessError("cannot enable %s for the containers' cgroups in %s: %s" % (
                " ".join(missing), path, e))
    leaf = os.path.join(path, LEAF)
    _mkdir(leaf)
    for _ in range(10):  # processes may fork while they are moved: until none is left
        left = procs(path)
        if not left:
            break
        for pid in left:
            try:
                move(leaf, pid)
            except RootlessError:
                pass  # it ended meanwhile
    _write(os.path.join(path, "cgroup.subtree_control"), text)


def _enter_scope(spec: dict, cid: str, pid: int, files, optional, wanted) -> str:
    unit = "rootless-%s-%s.scope" % (cid[:12], os.urandom(3).hex())
    scope = _start_scope(unit, pid, spec.get("below") or "")
    path = os.path.join(scope, "container")
    _mkdir(path, exist_ok=False)
    try:
        move(path, pid)  # within the scope, ours: allowed
        _hand_down(scope, wanted, make_leaf=False)  # the scope itself holds no process now
        write_files(path, files, optional)
    except BaseException:
        kill(scope)
        raise
    return path


def _start_scope(unit: str, pid: int, slice_name: str) -> str:
    """Ask the user manager (over the user bus, with busctl: no D-Bus library here) for a
    transient scope ``unit``, delegated to us, with ``pid`` in it; the scope's directory.
    We could not move ``pid`` there ourselves: cgroup v2 lets a process be moved only by
    whoever may write the cgroup.procs of the common ancestor of where it is and where it
    goes, and that is root's (the user manager asks PID 1 when it may not either)."""
    from rootless.cgroups import detect
    from rootless.linux.idmap import spawn, which
    busctl = which("busctl")
    if not busctl:
        raise RootlessError("busctl is not installed: it asks the systemd user manager for a cgroup")
    props = [("Description", "s", "rootless container " + unit.split("-")[1]), ("PIDs", "au", "1", str(pid)),
             ("Delegate", "b", "true"), ("CollectMode", "s", "inactive-or-failed")]
    if slice_name:
        props.append(("Slice", "s", slice_name))
    argv = [busctl, "--user", "--quiet", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail",
            str(len(props))] + [x for prop in props for x in prop] + ["0"]
    code, said = spawn(argv, env=detect.user_bus_env(os.getuid()))
    if code:
        raise RootlessError("the systemd user manager made no scope for the container: %s" % (
            said.strip().splitlines()[-1] if said.strip() else "busctl exit %d" % code))
    deadline = time.monotonic() + 10
    while True:
        path = detect.own_path(detect.read_text("/proc/%d/cgroup" % pid))
        if path.endswith("/" + unit):
            return detect.hierarchy(detect.read_text("/proc/self/mounts"))[1] + path
        if time.monotonic() > deadline:
            raise RootlessError("the systemd user manager did not put the container in its scope %s within 10 s" % unit)
        time.sleep(0.002)


def _mkdir(path: str, exist_ok: bool = True) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        if exist_ok:
            return
        if procs(path):
            raise RootlessError("the cgroup %s exists already, with processes in it" % path)
        _rmdir_quietly(path)  # left by a run whose owner was killed: empty, made afresh
        _mkdir(path, exist_ok=False)
    except OSError as e:
        raise RootlessError("cannot make the cgroup %s: %s" % (path, e.strerror))


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _error(path, e)
    try:
        os.write(fd, text.encode())
    except OSError as e:
        raise _error(path, e)
    finally:
        os.close(fd)


def _error(path: str, e: OSError) -> RootlessError:
    err = RootlessError("writing %s: %s" % (path, e.strerror))
    err.errno = e.errno
    return err
