"""Docker's ``rmi`` as a pure function of the index and of what containers use.

Docker (moby ``daemon/images/image_delete.go``) sorts what stands in the way of deleting
an image into *hard* conflicts, which ``--force`` cannot override (a running container),
and *soft* ones, which it can (a stopped container, names in other repositories). A name
is untagged first, and the image goes only when no name is left::

    given            used by           --force   outcome
    NAME, its last   any container     no        conflict: unable to remove repository reference
    NAME, its last   any container     yes       Untagged; the image stays, as <none>
    NAME, its last   none              either    Untagged, Deleted
    NAME, one of     -                 either    Untagged (that name only)
    ID               running           either    conflict ... (cannot be forced)
    ID               stopped           no        conflict ... (must be forced)
    ID               stopped           yes       Untagged..., Deleted; the container keeps its layers
    ID, many repos   none              no        conflict ... referenced in multiple repositories

Where Docker's two image stores differ, ``rmi -f NAME`` follows the containerd store
(Docker 29's default): the image stays, as ``<none>``, while a container uses it (the
graph-driver store does so only for a running container; for a stopped one it drops the
image record and lets the container hold the layers). Messages are the graph-driver
store's, Docker 28's default. A container of a deleted image (``rmi -f ID``) still
starts: ``Store.collect_garbage`` keeps every layer a container names (``Usage.layers``).

The store never reads container state itself (``image/`` does not import ``runtime/``):
the CLI builds a ``Usage`` from the container records and passes it in.
"""

from typing import Dict, Iterable, List, Optional

from rootless.errors import Conflict
from rootless.image import reference

RUNNING_STATES = ("running", "paused", "restarting")  # Docker's IsRunning(), by status name


class Usage:
    """Which images and layers containers use, from records with "id", "status",
    "image_id" and "layers" (as ``runtime.state.Containers.all()`` returns them, oldest
    first: the first container named in a conflict is the oldest, a stable choice)."""

    __slots__ = ("_users", "layers")

    def __init__(self, records: Iterable[dict] = ()):
        self._users: Dict[str, List[tuple]] = {}
        self.layers = set()
        for r in records:
            if r.get("image_id"):
                running = r.get("status") in RUNNING_STATES
                self._users.setdefault(r["image_id"], []).append((r["id"], running))
            self.layers.update(r.get("layers") or ())

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._users

    def images(self) -> set:
        return set(self._users)

    def container(self, image_id: str, running: Optional[bool] = None) -> Optional[str]:
        """The first container using the image (only running, or only stopped, ones when
        ``running`` says so), or None."""
        for cid, is_running in self._users.get(image_id, ()):
            if running is None or running == is_running:
                return cid
        return None


def remove(images: dict, record, name: str, force: bool, usage: Usage) -> List[str]:
    """Remove ``name`` (which found ``record``) from ``images``, the index being changed;
    return Docker's ``Untagged: ...`` / ``Deleted: ...`` lines, or raise Conflict and
    change nothing."""
    if _is_id_prefix(record.id, name):
        return _delete_by_id(images, record, force, usage)
    return _untag(images, record, name, force, usage)


def _is_id_prefix(image_id: str, name: str) -> bool:
    """Docker's test: the name is an ID when it begins the ID, with or without "sha256:"."""
    return image_id.startswith(name) or image_id.split(":", 1)[-1].startswith(name)


def _untag(images: dict, record, name: str, force: bool, usage: Usage) -> List[str]:
    user = usage.container(record.id)
    if user and not force and single_reference(record):
        # Untagging would leave the container's image dangling: Docker wants that forced.
        raise Conflict('conflict: unable to remove repository reference "%s" (must force) - container %s '
                       "is using its referenced image %s" % (name, user[:12], _short(record.id)))
    full = reference.parse(name)
    lines = [_drop(record, str(full))]
    if not full.digest and not any(_repository(t) == full.repository for t in record.repo_tags):
        # The repository's last tag is gone: its digests go with it, as in Docker.
        for d in [d for d in record.repo_digests if _repository(d) == full.repository]:
            lines.append(_drop(record, d))
    if record.repo_tags or record.repo_digests or user:
        return lines  # still named elsewhere, or kept (as <none>) for its containers
    del images[record.id]
    return lines + ["Deleted: " + record.id]


def _delete_by_id(images: dict, record, force: bool, usage: Usage) -> List[str]:
    running = usage.container(record.id, running=True)
    if running:
        raise Conflict(_conflict(record, True, "image is being used by running container %s" % running[:12]))
    stopped = usage.container(record.id, running=False)
    if not force:
        if (record.repo_tags or record.repo_digests) and not single_reference(record):
            raise Conflict(_conflict(record, False, "image is referenced in multiple repositories"))
        if stopped:
            raise Conflict(_conflict(record, False, "image is being used by stopped container %s" % stopped[:12]))
    lines = [_drop(record, ref) for ref in list(record.repo_tags) + list(record.repo_digests)]
    del images[record.id]
    return lines + ["Deleted: " + record.id]


def single_reference(record) -> bool:
    """Docker's isSingleReference: at most one tag, and every digest in the repository of
    that tag (or of the first digest). False when the image has no name at all."""
    tags, digests = record.repo_tags, record.repo_digests
    if len(tags) + len(digests) <= 1:
        return len(tags) + len(digests) == 1
    if len(tags) > 1:
        return False
    first = _repository(tags[0] if tags else digests[0])
    return {_repository(d) for d in digests} == {first}


def _drop(record, ref: str) -> str:
    if ref in record.repo_tags:
        record.repo_tags.remove(ref)
    if ref in record.repo_digests:
        record.repo_digests.remove(ref)
    return "Untagged: " + reference.familiar(ref)


def _repository(ref: str) -> str:
    return reference.parse(ref).repository


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _conflict(record, hard: bool, message: str) -> str:
    return "conflict: unable to delete %s (%s) - %s" % (
        _short(record.id), "cannot be forced" if hard else "must be forced", message)
