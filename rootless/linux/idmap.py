"""User namespace id mappings: /etc/subuid ranges, newuidmap/newgidmap, single-uid maps."""

import os
from typing import List, NamedTuple, Optional, Tuple


class SubIdRange(NamedTuple):
    start: int
    count: int


def parse_subid(text: str, user: str, uid: int) -> List[SubIdRange]:
    """The ranges /etc/subuid (or subgid) gives ``user`` (by name or numeric id). Pure."""
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or line.lstrip().startswith("#"):
            continue
        if parts[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if count > 0 and start >= 0:
            ranges.append(SubIdRange(start, count))
    return ranges


def read_subids(path: str, user: str, uid: int) -> List[SubIdRange]:
    try:
        with open(path) as f:
            return parse_subid(f.read(), user, uid)
    except OSError:
        return []


def helper(name: str) -> Tuple[Optional[str], str]:
    """(path, "") for a usable newuidmap/newgidmap, or (None, why not)."""
    path = which(name) or next((p for p in ("/usr/bin/" + name, "/bin/" + name)
                                 if os.path.exists(p)), None)
    if not path:
        return None, "%s is not installed (Debian/Ubuntu: package uidmap)" % name
    st = os.stat(path)
    if not st.st_mode & 0o4000 and not _has_file_caps(path):
        return None, "%s is neither setuid root nor has file capabilities" % path
    return path, ""


def which(name: str) -> Optional[str]:
    """shutil.which without importing shutil (and with it bz2 and lzma) on every run."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _has_file_caps(path: str) -> bool:
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def single_map(inside: int, outside: int) -> str:
    return "%d %d 1\n" % (inside, outside)


def enter_single_uid_namespace() -> None:
    """unshare a user namespace and map root in it to our uid and gid (no helpers needed).

    setgroups must be denied before an unprivileged process may write its gid_map.
    """
    from rootless.linux import ns
    uid, gid = os.getuid(), os.getgid()
    ns.unshare(ns.CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", single_map(0, uid)),
                       ("gid_map", single_map(0, gid))):
        with open("/proc/self/" + name, "w") as f:
            f.write(text)
