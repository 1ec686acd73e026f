"""Resolve ``--user`` against the container's /etc/passwd and /etc/group (pure functions).

Docker's rules: ``-u NAME|UID[:GROUP|GID]``. A numeric uid need not exist in /etc/passwd
(its gid is then 0, or the one given); a name must. Supplementary groups are every group
of /etc/group that lists the user's name. The caller reads the two files from inside the
rootfs (never through the host's view of a symlink) and passes their text here.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

from rootless.errors import UsageError


class User(namedtuple("User", "uid gid additional_gids name home", defaults=((), "", "/"))):
    """uid: int, gid: int, additional_gids: Tuple[int, ...] = (), name: str = "",
    home: str = "/" (a namedtuple: typing's costs every run ~2 ms to import)."""

    __slots__ = ()


def parse_passwd(text: str) -> List[Tuple[str, int, int, str]]:
    """(name, uid, gid, home) for each well-formed line."""
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and not line.startswith("#"):
            try:
                entries.append((parts[0], int(parts[2]), int(parts[3]), parts[5] or "/"))
            except ValueError:
                continue
    return entries


def parse_group(text: str) -> List[Tuple[str, int, List[str]]]:
    """(name, gid, members) for each well-formed line."""
    entries = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and not line.startswith("#"):
            try:
                members = [m for m in parts[3].split(",") if m]
                entries.append((parts[0], int(parts[2]), members))
            except ValueError:
                continue
    return entries


def resolve(spec: Optional[str], passwd: str = "", group: str = "") -> User:
    """The uid, gid and supplementary groups for ``--user spec`` (None or "" = root)."""
    users = parse_passwd(passwd)
    groups = parse_group(group)
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    name, uid, gid, home = _find_user(user_part, users)
    if group_part:
        gid = _find_group(group_part, groups)
    extra = tuple(sorted({g for (_, g, members) in groups if name and name in members} - {gid}))
    return User(uid, gid, extra if not group_part else (), name, home)


def _find_user(text: str, users) -> Tuple[str, int, int, str]:
    if text.isdigit():
        uid = int(text)
        for name, u, g, home in users:
            if u == uid:
                return name, u, g, home
        return "", uid, 0, "/"
    for name, u, g, home in users:
        if name == text:
            return name, u, g, home
    raise UsageError("unable to find user %s: no matching entries in passwd file" % text)


def _find_group(text: str, groups) -> int:
    if text.isdigit():
        return int(text)
    for name, g, _ in groups:
        if name == text:
            return g
    raise UsageError("unable to find group %s: no matching entries in group file" % text)

