"""Named and anonymous volumes: directories under the storage root, Docker's layout.

``volumes/NAME/_data`` is what containers mount; ``volumes/NAME/volume.json`` is the
record (``Name``, ``Driver`` local, ``Labels``, ``Options``, ``CreatedAt``, and whether it
is anonymous). A volume is created whole or not at all: made as ``volumes/.NAME.new`` and
renamed into place, so a killed create leaves nothing listed (the next create or
``volume prune`` removes what is left). Creating and removing hold ``locks/volumes.lock``.

The local driver's options, as Docker's: none (a directory), ``type=tmpfs`` with
``o=size=...,mode=...`` (a tmpfs mounted for each container that uses it: its content
lasts as long as that container), or ``o=bind`` with ``device=/host/path`` (that path,
which must exist, bound). Other types need mount(8) as root and are refused.

A volume is in use while a container (of any state) names it in its record's
``mounts``; ``rm`` refuses it then, as Docker does, and ``prune`` leaves it. What a
container wrote into a volume as one of its sub-ids is not the user's to delete on the
host: the callers that remove volumes pass a ``remove_tree`` that falls back to the
container's way (a user namespace with the sub-id mapping).
"""

from __future__ import annotations

import os
import re
import time

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Dict, List, Optional

from rootless import fsutil, jsonfast
from rootless.errors import Conflict, NotFound, UsageError

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
RECORD = "volume.json"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


class Volumes:
    def __init__(self, paths, remove_tree=None) -> None:
        """``remove_tree(path)``: how a removed volume's tree is deleted (what a container
        wrote into it as one of its sub-ids needs a user namespace with the sub-id mapping:
        ``runtime.start.remove_as_mapped_root``; storage never imports the runtime)."""
        self.paths = paths
        self.top = os.path.join(paths.root, "volumes")
        self.remove_tree = remove_tree or fsutil.remove_tree

    def lock(self) -> fsutil.FileLock:
        os.makedirs(self.paths.locks, 0o700, exist_ok=True)
        return fsutil.FileLock(os.path.join(self.paths.locks, "volumes.lock"))

    def dir(self, name: str) -> str:
        if not NAME.match(name):
            raise UsageError("invalid volume name %r: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name)
        return os.path.join(self.top, name)

    def data(self, name: str) -> str:
        return os.path.join(self.dir(name), "_data")

    def read(self, name: str) -> Optional[dict]:
        record = fsutil.read_json(os.path.join(self.dir(name), RECORD))
        return record if isinstance(record, dict) else None

    def get(self, name: str) -> dict:
        record = self.read(name)
        if record is None:
            raise NotFound("no such volume: %s" % name)
        return record

    def names(self) -> List[str]:
        try:
            entries = sorted(os.listdir(self.top))
        except FileNotFoundError:
            return []
        return [n for n in entries if not n.startswith(".") and os.path.exists(os.path.join(self.top, n, RECORD))]

    def all(self) -> List[dict]:
        return [r for r in (self.read(n) for n in self.names()) if r is not None]

    def create(self, name: str = "", labels: Optional[Dict[str, str]] = None,
               options: Optional[Dict[str, str]] = None, driver: str = "local",
               anonymous: bool = False, exist_ok: bool = True) -> dict:
        """The volume ``name`` (a new anonymous one without), created if it does not exist.
        Docker's ``volume create`` of an existing name returns it as it is."""
        if driver != "local":
            raise UsageError("volume driver %r is not supported: rootless has the local driver only" % driver)
        options = dict(options or {})
        check_options(options)
        if not name:
            name = os.urandom(32).hex()
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self.lock():
            existing = self.read(name)
            if existing is not None:
                if not exist_ok:
                    raise Conflict("volume %s exists already" % name)
                return existing
            self._collect()
            os.makedirs(self.top, 0o700, exist_ok=True)
            new = os.path.join(self.top, "." + name + ".new")
            fsutil.remove_tree(new)
            os.mkdir(new, 0o700)
            try:
                os.mkdir(os.path.join(new, "_data"), 0o755)
                record = {"Name": name, "Driver": "local", "Labels": labels, "Options": options,
                          "CreatedAt": time.time(), "Scope": "local", "Anonymous": anonymous}
                fsutil.atomic_write(os.path.join(new, RECORD), jsonfast.dumps(record).encode())
                os.rename(new, self.dir(name))
            except BaseException:
                fsutil.remove_tree(new)
                raise
        return record

    def remove(self, name: str, users: List[str]) -> None:
        """Remove the volume; ``users``: the containers that use it (refused if any)."""
        with self.lock():
            if self.read(name) is None:
                raise NotFound("no such volume: %s" % name)
            if users:
                raise Conflict("remove %s: volume is in use - [%s]" % (name, ", ".join(users)))
            trash = os.path.join(self.top, "." + name + ".removing")
            os.rename(self.dir(name), trash)
        self.remove_tree(trash)

    def users(self, records: List[dict]) -> Dict[str, List[str]]:
        """{volume name: IDs of the containers (of ``records``) that mount it}."""
        out: Dict[str, List[str]] = {}
        for r in records:
            for m in r.get("mounts") or ():
                if m.get("Type") == "volume" and m.get("Name"):
                    out.setdefault(m["Name"], []).append(r["id"])
        return out

    def _collect(self) -> None:
        """What a killed create or remove left (callers hold the lock)."""
        try:
            entries = os.listdir(self.top)
        except FileNotFoundError:
            return
        for n in entries:
            if n.startswith(".") and n.endswith((".new", ".removing")):
                try:
                    fsutil.remove_tree(os.path.join(self.top, n))
                except OSError:
                    pass

    def inspect(self, record: dict) -> dict:
        """Docker's ``volume inspect`` object."""
        return {"CreatedAt": _rfc3339(record.get("CreatedAt") or 0), "Driver": record.get("Driver", "local"),
                "Labels": record.get("Labels") or {}, "Mountpoint": self.data(record["Name"]),
                "Name": record["Name"], "Options": record.get("Options") or {}, "Scope": "local"}


def check_options(options: Dict[str, str]) -> None:
    """The local driver's options that work without root (see the module's docstring)."""
    for key in options:
        if key not in ("type", "o", "device", "size"):
            raise UsageError("invalid option key: %r (the local driver takes type, o and device)" % key)
    kind = options.get("type", "")
    o = options.get("o", "")
    if kind == "tmpfs":
        return
    if kind in ("", "none") and "bind" in o.split(","):
        device = options.get("device", "")
        if not device.startswith("/") or not os.path.isdir(device):
            raise UsageError("invalid volume option device=%r: o=bind needs an existing absolute directory" % device)
        return
    if kind or o or options.get("device"):
        raise UsageError("volume options type=%s o=%s need mount(8) as root: rootless makes directories, "
                         "tmpfs (type=tmpfs) and binds (o=bind,device=/path)" % (kind or "''", o or "''"))


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
