"""``start``/``run`` of a created container, in the foreground, and its removal.

This is the runtime's entry point: it reads the container's record and bundle (never the
image store), hands the bundle to ``foreground``, and records the state transitions.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

from rootless import fsutil
from rootless.errors import Conflict
from rootless.linux import signals
from rootless.runtime import state


def start(paths, record: dict, interactive: bool, debug=None) -> int:
    """Run the container to its end in the foreground; its exit code."""
    from rootless.runtime.config import Bundle
    from rootless.runtime.foreground import Foreground
    containers = state.Containers(paths)
    bundle = Bundle.load(containers.dir(record["id"]))
    if bundle.network == "container" or bundle.pid_container:  # another's namespaces,
        from rootless.runtime import joins  # opened while it is checked to run
        joins.join(containers, bundle)
    owner = state.me()

    def running(r: dict) -> dict:
        if r["status"] in state.ACTIVE:
            raise Conflict("container %s is already running" % r["name"])
        if r["status"] == state.REMOVING:
            raise Conflict("container %s is being removed" % r["name"])
        return state.begin_run(r, owner)
    record = containers.update(record["id"], running) or record

    procs = []

    def started(proc) -> None:
        pid, ports = proc.pid, proc.ports()
        procs.append(proc)

        def known(r: dict) -> Optional[dict]:
            if r["status"] != state.RUNNING:
                return None
            r.update(pid=pid, pid_start=state.process_start_time(pid), ports=ports or None,
                     cgroup=proc.cgroup or None)
            return r
        if _removed(containers.update(record["id"], known)):
            # An rm -f came while the container started, before its pid was recorded (so
            # it could not signal it): what a removed container runs must end with it.
            try:
                os.kill(pid, signals.SIGKILL)
            except ProcessLookupError:
                pass
    code = 125
    try:
        code = Foreground(bundle, interactive, debug).run(
            on_started=started, on_companion_end=lambda name, status: companion_ended(containers, record["id"], name, status))
        return code
    except Exception as e:
        if _removed(containers.read(record["id"])):
            code = 128 + signals.SIGKILL  # its set-up lost its files to that rm -f: killed, as Docker says
            return code
        code = getattr(e, "exit_code", 125)
        raise
    except BaseException as e:
        code = getattr(e, "exit_code", 125)
        raise
    finally:
        finish(containers, record, code, _release_cgroup(procs))


def _release_cgroup(procs) -> bool:
    """Remove the container's cgroup; whether the OOM killer ended one of its processes."""
    oom = False
    for proc in procs:
        oom = proc.release_cgroup() or oom
        if proc.cgroup_error:
            sys.stderr.write("rootless: warning: %s\n" % proc.cgroup_error)
    return oom


def companion_ended(containers, cid: str, name: str, status: int) -> None:
    """Leave in the record that a network process of the running container ended (a
    crash: they end after it otherwise); ``ps`` and ``inspect`` show it. Exit 0 is no
    crash: the forwarder saw the container end before its owner did."""
    if status == 0:
        return
    from rootless.runtime.network import crash_note
    note = crash_note(name, status)

    def noted(r: dict) -> Optional[dict]:
        if r["status"] != state.RUNNING:
            return None
        r["network_error"] = note
        return r
    try:
        containers.update(cid, noted)
    except OSError:
        pass  # a full disk: the container runs on; the note is lost, its effect is not


def _removed(current: Optional[dict]) -> bool:
    """Whether a container's fresh record says an rm took it (gone, or being removed)."""
    return current is None or current["status"] == state.REMOVING


def finish(containers, record: dict, code: int, oom_killed: bool = False) -> None:
    """Record the exit (unless ``rm`` is removing it), and remove a ``--rm`` container. On
    a full disk the code is left in the run dir, where readers find it."""
    def exited(r: dict) -> Optional[dict]:
        if r["status"] == state.REMOVING:
            return None
        r.update(status=state.EXITED, exit_code=code, finished=time.time(), monitor=None, pid=None,
                 ports=None, cgroup=None, oom_killed=oom_killed)
        return r
    try:
        current = containers.update(record["id"], exited)
    except OSError:
        containers.leave_code(record["id"], code)
        current = None
    if current is not None and current["status"] == state.EXITED and state.removed_at_exit(current):
        remove(containers.paths, current)


def remove(paths, record: dict, volumes: bool = False) -> None:
    """Delete a container's directory, and its anonymous volumes with ``volumes`` (``rm
    -v``) or ``--rm`` (as Docker). Files its processes made under sub-ids cannot be
    removed by you directly; those are removed from inside a user namespace with the
    container's mapping."""
    containers = state.Containers(paths)
    cdir = containers.dir(record["id"])
    trash = os.path.join(containers.top, "." + record["id"] + ".removing")
    held = state.claim(cdir)  # a create's collector of dead removals must leave it alone
    if held is None:
        return  # removed already
    try:
        _remove(containers, record, cdir, trash)
    finally:
        os.close(held)
    if record.get("anonymous_volumes") and (volumes or record.get("auto_remove")):
        remove_volumes(paths, record["anonymous_volumes"])


def remove_as_mapped_root(path: str) -> None:
    """Remove a tree (a volume's); what in it belongs to other sub-ids of the user (a
    container's non-root users wrote it) is removed as the root of a user namespace with
    the sub-id mapping, as a container's own files are."""
    try:
        fsutil.remove_tree(path)
    except PermissionError:
        from rootless.runtime import idmapping
        from rootless.runtime.launch import as_mapped_root
        try:
            uid_map, gid_map = idmapping.get("subuid").maps(False, 0, 0)
        except (OSError, LookupError, ValueError):
            raise PermissionError(13, "cannot remove files of other users in it (no sub-ids)", path)
        as_mapped_root(_SubIds(uid_map, gid_map), lambda: fsutil.remove_tree(path))


class _SubIds:
    """What ``as_mapped_root`` reads of a bundle: the sub-id maps."""

    idmap = "subuid"

    def __init__(self, uid_map, gid_map) -> None:
        self.uid_map, self.gid_map = uid_map, gid_map


def remove_volumes(paths, names) -> None:
    """Remove a removed container's anonymous volumes that no other container mounts (a
    ``--volumes-from`` of it may still)."""
    from rootless.errors import NotFound
    from rootless.storage.volumes import Volumes
    volumes = Volumes(paths, remove_as_mapped_root)
    users = volumes.users(state.Containers(paths).all())
    for name in names:
        if users.get(name):
            continue
        try:
            volumes.remove(name, [])
        except NotFound:
            pass


def _remove(containers, record: dict, cdir: str, trash: str) -> None:
    try:
        os.rename(cdir, trash)
    except FileNotFoundError:
        return  # another rm had it first
    for leftover in (containers.log_error_file(record["id"]),) + (
            () if record.get("auto_remove") else (containers.exit_file(record["id"]),)):
        try:  # (a --rm container's exit code stays: a late `wait` may still ask for it)
            os.unlink(leftover)
        except OSError:
            pass
    try:
        fsutil.remove_tree(trash)
    except PermissionError:
        from rootless.runtime.config import Bundle
        from rootless.runtime.launch import as_mapped_root
        bundle = Bundle.load(trash)
        if bundle.idmap != "subuid":
            raise
        as_mapped_root(bundle, lambda: fsutil.remove_tree(trash))
