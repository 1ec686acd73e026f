"""Id mapping strategies, one per rung of the user-namespace ladder (``runtime.userns``
probes which one a host allows). Chosen once at ``create``, recorded by name in the
bundle (``io.rootless.idmap``); the runtime asks the strategy and never branches on the
name. Every map is written by ``linux.idmap.write_maps``, from the parent side.

* ``subuid``: newuidmap/newgidmap map 0 to you and 1..N to your subordinate ids, so image
  files keep their owners and ``setgroups`` works.
* ``single-uid``: one id each way (the container's user is you); setgroups is denied by
  the kernel's rule, and a seccomp filter makes chown-family and set*id calls that cannot
  be honoured succeed as no-ops, so package managers still work.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple
    Maps = List[dict]

from rootless.errors import Unsupported, UsageError
# confine() runs in the container's first process after pivot_root, where nothing more
# can be imported from the zipapp: what it needs is loaded with this module.
from rootless.linux import caps, idmap, seccomp


def _entry(inside: int, outside: int, size: int) -> dict:
    return {"containerID": inside, "hostID": outside, "size": size}


class SubUid:
    name = "subuid"
    devpts_gid: Optional[int] = 5  # the tty group exists only when sub-ids are mapped
    can_setgroups = True

    def maps(self, keep_id: bool, user_uid: int, user_gid: int) -> Tuple[Maps, Maps]:
        """0 -> you, 1.. -> your sub-ids; with keep-id your id sits at its own number."""
        import pwd
        uid, gid = os.getuid(), os.getgid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        subu = idmap.read_subids("/etc/subuid", name, uid)[0]
        subg = idmap.read_subids("/etc/subgid", name, uid)[0]
        return _ranges(uid, subu.start, subu.count, keep_id), _ranges(gid, subg.start, subg.count, keep_id)

    def write(self, pid, uid_map: Maps, gid_map: Maps) -> None:
        helpers = []
        for name in ("newuidmap", "newgidmap"):
            path, why = idmap.helper(name)
            if not path:
                raise Unsupported("%s: this container needs subordinate ids" % why)
            helpers.append(path)
        idmap.write_maps(pid, uid_map, gid_map, helpers=(helpers[0], helpers[1]))

    def confine(self, no_new_privileges: bool) -> None:
        if no_new_privileges:
            caps.set_no_new_privs()


class SingleUid:
    name = "single-uid"
    devpts_gid: Optional[int] = None
    can_setgroups = False

    def maps(self, keep_id: bool, user_uid: int, user_gid: int) -> Tuple[Maps, Maps]:
        """The container's user (or, with keep-id, your own number) -> you."""
        inside_uid, inside_gid = (os.getuid(), os.getgid()) if keep_id else (user_uid, user_gid)
        return [_entry(inside_uid, os.getuid(), 1)], [_entry(inside_gid, os.getgid(), 1)]

    def write(self, pid, uid_map: Maps, gid_map: Maps) -> None:
        idmap.write_maps(pid, uid_map, gid_map)

    def confine(self, no_new_privileges: bool) -> None:
        # The seccomp filter needs no_new_privs (it is unprivileged), whatever was asked.
        caps.set_no_new_privs()
        seccomp.install(seccomp.fake_id_calls_program(os.uname().machine))


STRATEGIES = {SubUid.name: SubUid, SingleUid.name: SingleUid}


def get(name: str):
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise Unsupported("unknown id mapping %r (subuid or single-uid)" % name)


def check_userns(userns: str) -> bool:
    """``--userns``: "" or host (the default mapping) or keep-id; whether it is keep-id."""
    if userns not in ("", "host", "keep-id"):
        raise UsageError("unsupported --userns %r (use keep-id)" % userns)
    return userns == "keep-id"


def _ranges(mine: int, start: int, count: int, keep: bool) -> Maps:
    if not keep:
        return [_entry(0, mine, 1), _entry(1, start, count)]
    if mine >= count:
        raise Unsupported("--userns=keep-id needs at least %d subordinate ids (you have %d)" % (mine + 1, count))
    return [_entry(0, start, mine), _entry(mine, mine, 1), _entry(mine + 1, start + mine, count - mine)]
