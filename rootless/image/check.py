"""``system check``: is the storage root sound? Read-only unless asked to repair.

What is checked (each problem one line, naming the path and what to do):

* every blob under ``blobs/sha256`` hashes to its name;
* ``images.json`` reads, and each image's config and manifest blobs and layers are there
  (a layer: its directory with ``meta.json`` and ``diff/``);
* no layer directory is left that neither an image nor a container uses (an orphan: a
  killed ``rmi`` or ``load``);
* every container record reads and names a status, and its layers are there;
* every volume record reads;
* nothing is left in ``tmp/`` by a command that is not running any more (work a running
  command holds is left alone, and not reported);
* partial downloads in ``downloads/`` are reported (not a problem: the next pull of that
  image resumes them; ``system prune`` removes them).

``--repair`` removes only what is provably unused, under the store's GC lock (so no load
or pull is adding anything meanwhile): orphan layers and blobs, abandoned work in
``tmp/``. A layer an image or a container uses is never removed, even if it is damaged:
that is reported with the image to load or pull again.
"""

from __future__ import annotations

import hashlib
import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Tuple

from rootless import fsutil, jsonfast
from rootless.errors import Conflict


def check(store, containers: List[dict], volumes) -> Tuple[List[str], List[str]]:
    """(problems, notes): lines for the user."""
    paths = store.paths
    problems, notes = [], []
    blobs = _names(paths.blobs)
    for hexd in blobs:
        path = os.path.join(paths.blobs, hexd)
        if _sha256(path) != hexd:
            problems.append("blob %s does not match its digest: remove the image that uses it and load or "
                            "pull it again" % path)
    try:
        images = store.images(shared=False) if os.path.exists(paths.images_index) else []
    except (ValueError, KeyError, TypeError, OSError) as e:
        problems.append("%s cannot be read (%s): `rootless system reset` empties the store" % (paths.images_index, e))
        images = []
    wanted = set()
    for rec in images:
        name = (rec.repo_tags or [rec.id[7:19]])[0]
        for what, digest in (("config", rec.id), ("manifest", rec.manifest)):
            if digest and digest[7:] not in blobs and not store.has_blob(digest):  # or an image store's
                problems.append("image %s: its %s blob %s is missing: load or pull it again" % (name, what, digest))
        for diff_id in rec.layers:
            wanted.add(diff_id[7:])
            problem = _layer_problem(store.layer_dir(diff_id))
            if problem:
                problems.append("image %s: layer %s %s: load or pull it again" % (name, diff_id[7:19], problem))
    for record in containers:
        if not record.get("status"):
            problems.append("container %s: its record names no status" % record.get("id", "?"))
        for diff_id in record.get("layers") or ():
            wanted.add(diff_id[7:])
            problem = _layer_problem(store.also(record.get("image_stores") or ()).layer_dir(diff_id))
            if problem:
                problems.append("container %s: layer %s %s: remove the container (rootless rm -f %s)"
                                % (record.get("name", "?"), diff_id[7:19], problem, record.get("name", "?")))
    for hexd in _names(paths.layers):
        if hexd not in wanted:
            problems.append("layer %s is used by no image and no container (system check --repair removes it)"
                            % os.path.join(paths.layers, hexd))
    for name in _names(volumes.top):
        if volumes.read(name) is None:
            problems.append("volume %s: its record cannot be read" % os.path.join(volumes.top, name))
    for name in _abandoned(paths.tmp):
        problems.append("%s was left by a command that ended (system check --repair removes it)"
                        % os.path.join(paths.tmp, name))
    partial = _names(paths.downloads)
    if partial:
        notes.append("%d partial download(s) in %s: the next pull resumes them; system prune removes them"
                     % (len(partial), paths.downloads))
    return problems, notes


def repair(store) -> dict:
    """Remove what is provably unused (see the module's docstring); what was removed."""
    gc = store.lock("gc.lock", shared=False, blocking=False)
    if not gc.acquire():
        raise Conflict("a load or pull is under way: run system check --repair when it has finished")
    gc.release()
    return store.collect_garbage(blocking=False)


def _layer_problem(path: str) -> str:
    if not os.path.isdir(path):
        return "is missing"
    if not os.path.isdir(os.path.join(path, "diff")):
        return "has no diff/"
    try:
        with open(os.path.join(path, "meta.json")) as f:
            jsonfast.load(f)
    except (OSError, ValueError):
        return "has no readable meta.json"
    return ""


def _names(path: str) -> List[str]:
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except FileNotFoundError:
        return []


def _abandoned(tmp: str) -> List[str]:
    """Work in ``tmp/`` whose command ended: its lock file is gone or free (fsutil.WorkDir
    holds it while it works). Tested without creating anything."""
    import fcntl
    out = []
    for name in _names(tmp):
        if name.endswith(fsutil.WorkDir.LOCK_SUFFIX):
            continue
        try:
            fd = os.open(os.path.join(tmp, name) + fsutil.WorkDir.LOCK_SUFFIX, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            out.append(name)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            out.append(name)
        except BlockingIOError:
            pass  # a running command's
        finally:
            os.close(fd)
    return out


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()
