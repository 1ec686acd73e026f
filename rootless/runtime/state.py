"""Containers on disk: ``containers/<id>/container.json``, one record each.

A record holds what ``create`` decided (image, bundle, options) and the container's state.
States and the only moves between them (``TRANSITIONS``)::

               start                 exit                     start / restart
    created ---------> running -----------------> exited ----------------------> running
       |                 |  ^    restart policy     |
       |                 |  +---- restarting <------+ (the monitor, while it waits)
       |                 +--> dead (the record's owner vanished and the truth is unknown)
       +-----------------+-------------------------> removing (rm at work; then gone)

Several processes write a record: the CLI (create, start, stop, rm), the monitor of a
detached container, a foreground ``run``. Every change is made under
``locks/containers.lock`` on a fresh read (``update``), and written atomically (temp
file, rename) with a version. A running container names its owner (``monitor``: pid and
start time, since a pid alone may be reused) and its first process (``pid``,
``pid_start``); when the owner is gone, whoever reads the record next settles it:
exited, with the code the owner left in the run dir if it could not write the record
(a full disk), else 137 (the owner's death killed the container). Reading never needs
free space: a settle that cannot be saved is still shown. New containers are built as
``containers/.<id>.new`` and renamed into place under the lock, which keeps names unique.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional

from rootless import fsutil
from rootless.errors import Conflict, NotFound, StoreError
from rootless.paths import Paths

VERSION = 1
CREATED, RUNNING, PAUSED, RESTARTING = "created", "running", "paused", "restarting"
EXITED, DEAD, REMOVING = "exited", "dead", "removing"
TRANSITIONS = {
    CREATED: (RUNNING, REMOVING),
    RUNNING: (EXITED, RESTARTING, PAUSED, DEAD, REMOVING),
    PAUSED: (RUNNING, EXITED, DEAD, REMOVING),
    RESTARTING: (RUNNING, EXITED, DEAD, REMOVING),
    EXITED: (RUNNING, RESTARTING, REMOVING),
    DEAD: (REMOVING,),
    REMOVING: (REMOVING,),
}
ACTIVE = (RUNNING, PAUSED, RESTARTING)  # a process (or its monitor) is there
RECORD = "container.json"


def new_id() -> str:
    return os.urandom(32).hex()


def process_start_time(pid: int) -> Optional[int]:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def living_since(pid: Optional[int], start: Optional[int]) -> bool:
    """Whether ``pid`` is the process that started at ``start`` and has not ended. A
    zombie has ended: a killed monitor adopted by an init that does not reap orphans (or
    not yet) stays one, and must not pass for the owner of its containers."""
    fields = _stat_fields(pid) if pid else None
    return bool(fields) and start is not None and int(fields[19]) == start and fields[0] not in (b"Z", b"X")


def _stat_fields(pid: int) -> Optional[List[bytes]]:
    """The fields of /proc/PID/stat after the command name (state first), None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(b")") + 2:].split()


def claim(path: str, wait: bool = True) -> Optional[int]:
    """An exclusive flock on the directory ``path`` (its descriptor, to close when done),
    or None when it is gone (or, without ``wait``, held). The lock stays with the
    directory through a rename, so rm takes it before a container becomes .removing."""
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def pick(records: List[dict], ref: str) -> dict:
    """The record ``ref`` names among ``records``: by full ID, name, or unique ID prefix
    (Docker's order)."""
    for r in records:
        if r["id"] == ref or r["name"] == ref.lstrip("/"):
            return r
    matches = [r for r in records if len(ref) >= 1 and r["id"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Conflict("multiple containers match %r: give more of the ID" % ref)
    raise NotFound("No such container: %s" % ref)


def alive(monitor: Optional[dict]) -> bool:
    if not monitor:
        return False
    return living_since(monitor["pid"], monitor["start"])


def me() -> dict:
    """This process as a record's owner."""
    return {"pid": os.getpid(), "start": process_start_time(os.getpid())}


def begin_run(record: dict, owner: dict, pid: Optional[int] = None, restarted: bool = False,
              ports: Optional[list] = None, cgroup: str = "") -> dict:
    """``record`` as its owner starts a run: by its user (a fresh start: the restart count
    and the stop marks reset, as Docker's), or by the restart policy (counted). ``ports``:
    the published ports as bound for this run; ``cgroup``: its own cgroup's directory. Pure."""
    record.update(status=RUNNING, monitor=owner, started=time.time(), exit_code=None, finished=None,
                  pid=pid, pid_start=process_start_time(pid) if pid else None, ports=ports or None,
                  network_error=None, cgroup=cgroup or None, oom_killed=False)
    if restarted:
        record["restart_count"] = record.get("restart_count", 0) + 1
    else:
        record.update(restart_count=0, stopped_by_user=False, restart_cancelled=False, restarting_by_user=False)
    return record


def removed_at_exit(record: dict) -> bool:
    """Whether the exit just recorded removes the container: ``--rm``, unless a
    ``restart`` is under way (``lifecycle.restart``). Pure."""
    return bool(record.get("auto_remove")) and not record.get("restarting_by_user")


def first_process_alive(record: dict) -> bool:
    return living_since(record.get("pid"), record.get("pid_start"))


class Containers:
    """The containers of one storage root."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self.top = paths.containers

    def dir(self, cid: str) -> str:
        return os.path.join(self.top, cid)

    def lock(self) -> fsutil.FileLock:
        os.makedirs(self.paths.locks, 0o700, exist_ok=True)
        return fsutil.FileLock(os.path.join(self.paths.locks, "containers.lock"))

    def read(self, cid: str) -> Optional[dict]:
        """The record of the container with the full ID ``cid`` (None if there is none),
        read alone: ``find`` reads every record to resolve a name or prefix."""
        return self._read(cid)

    def _read(self, cid: str) -> Optional[dict]:
        try:
            record = fsutil.read_json(os.path.join(self.dir(cid), RECORD))
        except ValueError:
            # Torn by a power cut: only a --rm container's first record is written without
            # fsync (see create), and such a container was never to outlive its run.
            return None
        if isinstance(record, dict) and record.get("version") == VERSION:
            return record
        return None

    def all(self, reap: Optional[Callable[[dict], None]] = None) -> List[dict]:
        """Every container, oldest first; stale running ones are settled on the way."""
        try:
            names = os.listdir(self.top)
        except FileNotFoundError:
            return []
        records = []
        for cid in names:
            if cid.startswith("."):
                continue
            record = self._read(cid)
            if record is not None:
                record = self.settle(record, reap)
                if record is not None:
                    records.append(record)
        records.sort(key=lambda r: r["created"])
        return records

    def find(self, ref: str, reap: Optional[Callable[[dict], None]] = None) -> dict:
        """By full ID, name, or unique ID prefix (Docker's order)."""
        return pick(self.all(reap), ref)

    def create(self, record: dict, prepare: Callable[[str], None]) -> dict:
        """Write a new container: ``prepare(dir)`` fills its directory before it appears.
        A record without a name gets a generated one, free among the records read here
        (once, under the lock)."""
        os.makedirs(self.top, 0o700, exist_ok=True)
        with self.lock():
            self._collect_new_dirs()
            records = self.all()
            if not record.get("name"):
                from rootless import names
                taken = {r["name"] for r in records}
                record["name"] = names.generate(taken.__contains__)
            for r in records:
                if r["name"] == record["name"]:
                    raise Conflict('the container name "/%s" is already in use by container "%s"; '
                                   "remove (or rename) that container to reuse the name"
                                   % (record["name"], r["id"]))
            new = os.path.join(self.top, "." + record["id"] + ".new")
            os.mkdir(new, 0o700)
            try:
                prepare(new)
                record.update(version=VERSION, status=CREATED)
                # A --rm container's record is disposable: no fsync (two on a disk, ~1 ms
                # of a run --rm). Any other must survive a power cut as written.
                fsutil.atomic_write_json(os.path.join(new, RECORD), record,
                                         durable=not record.get("auto_remove"))
                os.rename(new, self.dir(record["id"]))
            except BaseException:
                fsutil.remove_tree(new)
                raise
        return record

    def _collect_new_dirs(self) -> None:
        """Half-built containers of a create that died, half-removed ones of an rm that
        died. A .new one is never in use (its create holds our lock); a .removing one may
        be: rm removes outside the lock, holding the directory's own flock (``claim``)."""
        for name in os.listdir(self.top):
            if not (name.startswith(".") and name.endswith((".new", ".removing"))):
                continue
            fd = claim(os.path.join(self.top, name), wait=False)
            if fd is None:
                continue  # an rm is at work on it, or it is gone
            try:
                fsutil.remove_tree(os.path.join(self.top, name))
            except PermissionError:
                pass  # files of sub-ids: only a remove in the user namespace can delete them
            finally:
                os.close(fd)

    def save(self, record: dict) -> None:
        """Write ``record`` (callers hold the lock and read it fresh: see ``update``)."""
        fsutil.atomic_write_json(os.path.join(self.dir(record["id"]), RECORD), record, durable=False)

    def update(self, cid: str, change: Callable[[dict], Optional[dict]]) -> Optional[dict]:
        """Re-read the record under the lock, let ``change`` edit it (or return None to
        leave it), save it. None when the container is gone (removed meanwhile). A change
        of status must be a move of ``TRANSITIONS``: every writer goes through here."""
        with self.lock():
            record = self._read(cid)
            if record is None:
                return None
            before = record["status"]
            changed = change(record)
            if changed is not None:
                after = changed["status"]
                if after != before and after not in TRANSITIONS[before]:
                    raise StoreError("container %s is %s; it cannot become %s" % (changed["name"], before, after))
                self.save(changed)
            return record

    def exit_file(self, cid: str) -> str:
        """Where an owner that could not save the record leaves the exit code (run dir)."""
        return os.path.join(self.paths.run, "exits", cid)

    def log_error_file(self, cid: str) -> str:
        """Where a monitor reports lost log lines (runtime.logloss writes and reads it)."""
        return os.path.join(self.paths.run, "log-errors", cid)

    def leave_code(self, cid: str, code: int) -> None:
        """Leave ``code`` in the exit file (never raises: it is the last resort)."""
        path = self.exit_file(cid)
        try:
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            with open(path, "w") as f:
                f.write("%d\n" % code)
        except OSError:
            pass

    def left_code(self, cid: str) -> Optional[int]:
        return _read_code(self.exit_file(cid))

    def settle(self, record: dict, reap: Optional[Callable[[dict], None]] = None) -> Optional[dict]:
        """Show the truth about an active container whose owner died: it exited (with the
        code the owner left, else 137: its first process dies with its owner); remove it
        if it asked for --rm (via ``reap``). None when it is gone.

        A dead --rm container seen by a reader that cannot remove it (no ``reap``: the name
        check of ``create``) is shown as exited but not saved so: an exited --rm record
        would stay listed for good."""
        if record["status"] not in ACTIVE or alive(record.get("monitor")):
            return record
        if first_process_alive(record):
            _kill(record["pid"])  # its owner is gone: nobody would ever reap or log it
        code = self.left_code(record["id"])
        record.update(status=EXITED, exit_code=137 if code is None else code,
                      finished=record.get("finished") or time.time(), monitor=None, pid=None)
        if record.get("auto_remove"):
            if reap is None:
                return record
            reap(record)
            return None
        try:
            self.save(record)
        except OSError:
            pass  # a full disk: shown as settled all the same, saved by a later reader
        return record

    def names(self) -> Dict[str, str]:
        return {r["name"]: r["id"] for r in self.all()}


def _kill(pid: int) -> None:
    from rootless.linux import signals
    try:
        os.kill(pid, signals.SIGKILL)
    except OSError:
        pass


def _read_code(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None
