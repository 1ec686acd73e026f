"""``rename OLD NEW``: a container's new name, checked and written under the containers lock.

The lock is the one ``create`` holds while it checks that a name is free, so two renames,
or a rename and a create, cannot both take one name. Checks and messages are Docker's:
the same name, a name that is not ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``, a name in use.
A running container may be renamed; its runtime keeps the name on disk when it next
writes the record (``state.Containers.save``).
"""

import os
import re
from typing import Callable, Optional

from rootless import fsutil
from rootless.errors import Conflict, UsageError
from rootless.runtime import state

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME = re.compile(NAME_CHARS + r"+\Z")


def check_new_name(records, record: dict, new: str) -> str:
    """``new`` without its optional leading ``/``, or Docker's error (pure)."""
    canonical = new if new.startswith("/") else "/" + new
    if canonical == "/" + record["name"]:
        raise UsageError("Renaming a container with the same name as its current name")
    if not _NAME.match(canonical[1:]):
        raise UsageError("Error when allocating new name: Invalid container name (%s), only %s are allowed"
                         % (canonical, NAME_CHARS))
    for other in records:
        if other["name"] == canonical[1:]:
            raise Conflict('Error when allocating new name: Conflict. The container name "%s" is already '
                           'in use by container "%s". You have to remove (or rename) that container to be '
                           "able to reuse that name." % (canonical, other["id"]))
    return canonical[1:]


def rename(paths, old: str, new: str, reap: Optional[Callable[[dict], None]] = None) -> dict:
    """Rename the container ``old`` (name, ID or ID prefix) to ``new``; its record."""
    old, new = old.strip(), new.strip()
    if not old or not new:
        raise UsageError("Neither old nor new names may be empty")
    containers = state.Containers(paths)
    with containers.lock():
        records = containers.all(reap)
        record = state.pick(records, old)
        record["name"] = check_new_name(records, record, new)
        # Not containers.save: that keeps the name on disk, for writers that hold a record
        # read before a rename.
        fsutil.atomic_write_json(os.path.join(containers.dir(record["id"]), state.RECORD), record, durable=False)
    return record
