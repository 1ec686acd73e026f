"""User namespace id mappings: /etc/subuid ranges, newuidmap/newgidmap, single-uid maps."""

from __future__ import annotations

import os
from collections import namedtuple

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import List, Optional, Tuple
    Maps = List[dict]  # OCI linux.uidMappings: [{"containerID", "hostID", "size"}]


SubIdRange = namedtuple("SubIdRange", "start count")  # ints (typing's NamedTuple: ~2 ms to import)


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


def single(inside: int, outside: int) -> Maps:
    return [{"containerID": inside, "hostID": outside, "size": 1}]


def write_maps(pid, uid_map: Maps, gid_map: Maps, helpers: Optional[Tuple[str, str]] = None) -> None:
    """Write the id maps of the user namespace of ``pid`` (a number, or "self"): the only
    writer of uid_map and gid_map in rootless.

    With ``helpers`` (newuidmap, newgidmap paths) the setuid helpers write them, which may
    name subordinate ids. Without, the maps are written directly, which the kernel allows an
    unprivileged process for one id each way only, mapped to its own ids, and only once
    setgroups is denied (else it could drop groups that deny it access)."""
    if helpers:
        # The two helpers write different files and run at the same time: each is the
        # exec of a setuid program (its dynamic loading, PAM-free but not free), ~3 ms.
        started = []
        try:
            for tool, maps in zip(helpers, (uid_map, gid_map)):
                args = [str(m[k]) for m in maps for k in ("containerID", "hostID", "size")]
                started.append((tool, _start([tool, str(pid)] + args)))
        finally:  # each helper started is waited for, even when the next could not start
            results = [(tool, _finish(child)) for tool, child in started]
        for tool, (code, output) in results:
            if code:
                raise OSError(0, "%s failed: %s" % (os.path.basename(tool), output.strip() or "exit %d" % code))
        return
    for name, maps in (("setgroups", None), ("uid_map", uid_map), ("gid_map", gid_map)):
        text = "deny" if maps is None else "".join(
            "%d %d %d\n" % (m["containerID"], m["hostID"], m["size"]) for m in maps)
        with open("/proc/%s/%s" % (pid, name), "w") as f:
            f.write(text)


def spawn(argv: List[str], env=None) -> Tuple[int, str]:
    """(exit status, stdout+stderr) of a helper: posix_spawn, since importing subprocess
    would cost every run ~6 ms. ``env``: its environment (default: ours)."""
    return _finish(_start(argv, env))


def _start(argv: List[str], env=None) -> Tuple[int, int]:
    """A helper started with its output on a pipe: (pid, read end)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ if env is None else env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)])
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return pid, r


def _finish(child: Tuple[int, int]) -> Tuple[int, str]:
    """(exit status, stdout+stderr) of a helper from ``_start``, once it has ended."""
    from rootless.linux.child import read_all
    pid, r = child
    output = read_all(r)
    status = os.waitpid(pid, 0)[1]
    return (128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), output


def enter_single_uid_namespace() -> None:
    """unshare a user namespace and map root in it to our uid and gid (no helpers needed)."""
    from rootless.linux import ns
    uid, gid = os.getuid(), os.getgid()
    ns.unshare(ns.CLONE_NEWUSER)
    write_maps("self", single(0, uid), single(0, gid))
