"""Docker's rules for ``cp``: which argument is the container's, and where a source lands.

Pure: the sides report what they see (``Seen``), these functions decide. The rules, as
``docker cp --help`` and Docker's documentation give them:

==========================  ============================  =====================================
source                      destination                   result
==========================  ============================  =====================================
a file                      does not exist                the file is saved as DEST
a file                      does not exist, ends in /     error: the directory must exist
a file                      an existing file              DEST is overwritten
a file                      an existing directory         copied into it, as DEST/basename
a directory                 does not exist                DEST is created with SRC's contents
a directory                 an existing file              error: cannot copy a directory to a file
a directory                 an existing directory         copied into it, as DEST/basename
DIR/. (a directory)         an existing directory         DIR's contents go into DEST
==========================  ============================  =====================================

A destination that does not exist needs an existing parent directory. A container's paths
are taken from its root (/), as Docker takes them; a symlink at the end of the source
path is copied as a link unless ``-L`` follows it.
"""

import posixpath
from typing import Optional, Tuple

from rootless.errors import NotFound, UsageError


class Seen:
    """What one side found at a path: whether it exists, is a directory (following a
    symlink at the end), whether its parent is a directory, and the target of the
    symlink at its end, if it is one."""

    def __init__(self, exists: bool, is_dir: bool = False, parent_is_dir: bool = False,
                 link: Optional[str] = None):
        self.exists, self.is_dir, self.parent_is_dir, self.link = exists, is_dir, parent_is_dir, link

    def to_json(self) -> dict:
        return {"exists": self.exists, "is_dir": self.is_dir, "parent_is_dir": self.parent_is_dir,
                "link": self.link}

    @classmethod
    def from_json(cls, data: dict) -> "Seen":
        return cls(bool(data.get("exists")), bool(data.get("is_dir")), bool(data.get("parent_is_dir")),
                   data.get("link"))


def through_link(dst: str, seen: Seen) -> Optional[str]:
    """Where a copy goes when the destination is a symlink: its target (Docker follows one
    link at the end of the destination, taking a relative one from the link's directory).
    None when ``dst`` is not a symlink."""
    if not seen.link:
        return None
    return seen.link if seen.link.startswith("/") else posixpath.join(parent(dst), seen.link)


def split(arg: str) -> Tuple[Optional[str], str]:
    """(container, path) of a ``cp`` argument, container None for a local path: an
    absolute path, or one before whose first colon there is none, or ``./x:y``."""
    if arg.startswith("/"):
        return None, arg
    container, colon, path = arg.partition(":")
    if not colon or container.startswith(".") or not container:
        return None, arg
    return container, path


def direction(src: str, dst: str) -> Tuple[str, str, str, str]:
    """("out", container, container path, local path) or ("in", container, local path,
    container path) for ``cp SRC DST``."""
    if not src or not dst:
        raise UsageError("cp needs a source and a destination: cp CONTAINER:SRC_PATH DEST_PATH|- "
                         "or cp SRC_PATH|- CONTAINER:DEST_PATH")
    (scont, spath), (dcont, dpath) = split(src), split(dst)
    if scont and dcont:
        raise UsageError("copying between containers is not supported: copy to the host first")
    if not scont and not dcont:
        raise UsageError("must specify at least one container source (CONTAINER:PATH)")
    if scont:
        return "out", scont, in_container(spath), dpath
    return "in", dcont, spath, in_container(dpath)


def in_container(path: str) -> str:
    """A container path from its root, keeping a trailing / or /. (they mean something)."""
    return path if path.startswith("/") else "/" + path  # "" is the root


def source_name(path: str, is_dir: bool) -> str:
    """The name a source ``path`` takes at the top of the copy's stream (Docker's rule):
    its base name, or "." for the contents of a directory given as ``DIR/.`` (or /)."""
    norm = posixpath.normpath(path) if path else "."
    if is_dir and (path.endswith("/.") or path == "." or norm == "/"):
        return "."
    return posixpath.basename(norm)


def plan(src: str, src_is_dir: bool, dst: str, seen: Seen) -> Tuple[str, str]:
    """(directory to extract into, the name the source takes there: "." for its contents)
    for copying ``src`` to ``dst``, given what the destination's side saw at ``dst``."""
    name = source_name(src, src_is_dir)
    if seen.exists and seen.is_dir:
        return dst, name
    if seen.exists:
        if src_is_dir:
            raise UsageError("cannot copy the directory %s onto the file %s: name a directory" % (src, dst))
        return parent(dst), posixpath.basename(posixpath.normpath(dst))
    if dst.endswith("/") and not src_is_dir:
        raise NotFound("the destination directory %s does not exist: create it first, or drop the "
                       "trailing / to copy to a file of that name" % dst)
    if not seen.parent_is_dir:
        raise NotFound("the destination's parent directory %s does not exist" % parent(dst))
    return parent(dst), posixpath.basename(posixpath.normpath(dst))


def parent(path: str) -> str:
    return posixpath.dirname(posixpath.normpath(path)) or "."
